"""Worlds are isolated from each other (issue 15): one world's writes never wait for another's; workspace IDs and
credentials cannot be guessed; no world can hold, or be reached with, another world's credential."""
import base64
import copy
import re
import secrets
import threading

from helpers import PATCH_URL, bearer, strict_app


def test_a_workspace_holding_its_write_lock_does_not_hold_up_the_default_world(client, sandbox):
    """A reseeding workspace holds its write lock for the whole reseed; the default world writes meanwhile. (The
    figures under load are bench/isolation.py's.)"""
    workspace = client.post("/_sandbox/workspaces", json={"size": 5}).get_json()
    world = sandbox.worlds[workspace["id"]]
    inside, release = threading.Event(), threading.Event()

    def hold():
        with world.store.transaction():
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(10)
        answers = []
        body = {"voucherCode": "DEFAULT-WRITES-1", "voucherExpiryDate": "31/12/2026"}
        patcher = threading.Thread(target=lambda: answers.append(client.patch(PATCH_URL, json=body, headers=bearer())))
        patcher.start()
        patcher.join(10)
        assert not patcher.is_alive(), "the default world's write waited for the workspace's lock"
        assert answers[0].status_code == 200
        assert sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "DEFAULT-WRITES-1"
    finally:
        release.set()
        holder.join()
    # The workspace's own data did not change.
    scoped = {"X-Sandbox-Workspace": workspace["id"]}
    voucher = client.get("/_sandbox/state/rai_vouchers?id=507f1f77bcf86cd799439016", headers=scoped).get_json()
    assert voucher["records"][0]["code"] == "GOLD-2026-0001"


# -- unguessable workspaces ----------------------------------------------------------------------------------------
def _workspace(client, **body):
    r = client.post("/_sandbox/workspaces", json={"size": 0, **body})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def _credentials(workspace) -> dict[str, str]:
    """purpose -> the credential itself (a bearer token, or a till's username)."""
    found = {}
    for c in workspace["credentials"]:
        header = c["headers"].get("Authorization")
        if header and header.startswith("Bearer "):
            found[c["purpose"]] = header.removeprefix("Bearer ")
        elif header and header.startswith("Basic "):
            found[c["purpose"]] = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")[0]
    return found


def test_workspace_ids_and_credentials_carry_128_bits_from_secrets(monkeypatch):
    import sandbox.app
    import sandbox.core.world

    drawn = []
    real = secrets.token_hex

    def recorded(nbytes):
        drawn.append(nbytes)
        return real(nbytes)

    monkeypatch.setattr(sandbox.app.secrets, "token_hex", recorded)
    monkeypatch.setattr(sandbox.core.world.secrets, "token_hex", recorded)
    client = strict_app(size=0).test_client()
    workspaces = [_workspace(client) for _ in range(4)]
    assert drawn == [16, 16] * 4  # the ID and the suffix, each 128 bits, drawn separately
    ids = [w["id"] for w in workspaces]
    assert all(re.fullmatch(r"ws[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 4
    suffixes = []
    for workspace in workspaces:
        credentials = _credentials(workspace)
        assert len(credentials) >= 10  # every vendor's demo credentials
        ends = {re.search(r"\.[0-9a-f]{32}$", c).group(0) for c in credentials.values()}
        assert len(ends) == 1  # one suffix per workspace ...
        suffixes.append(ends.pop())
        assert workspace["id"][2:] not in str(workspace["credentials"])  # ... that says nothing of its ID
    assert len(set(suffixes)) == 4  # nor of another workspace's credentials


# -- a world cannot claim another world's credentials ---------------------------------------------------------------
ALL_PERMISSIONS = ["purchase-history", "updateRedemptionTransactionStatus", "createRedemptionStatus", "readRedemptions"]


def _key(key: str) -> dict:
    return {"key": key, "communityID": "507f1f77bcf86cd799439013", "permissions": ALL_PERMISSIONS, "expiresAt": None,
            "active": True, "purpose": "diverted"}


def _export(client, workspace=None):
    headers = {"X-Sandbox-Workspace": workspace} if workspace else {}
    return client.get("/_sandbox/state/export", headers=headers).get_json()


def _journal_count(client, workspace=None):
    headers = {"X-Sandbox-Workspace": workspace} if workspace else {}
    return client.get("/_sandbox/requests/count", headers=headers).get_json()["count"]


def test_the_diverting_import_is_refused_and_the_default_world_keeps_its_traffic(client, sandbox):
    workspace = _workspace(client)["id"]
    scoped = {"X-Sandbox-Workspace": workspace}
    before = _export(client, workspace)
    snapshot = copy.deepcopy(before)
    snapshot["collections"]["rai_api_keys"]["XXXXXX"] = _key("XXXXXX")
    r = client.post("/_sandbox/state/import", json=snapshot, headers=scoped)
    assert r.status_code == 409, r.get_json()
    message = r.get_json()["error"]["message"]
    assert "rai_api_keys XXXXXX" in message and "the default world's credential" in message
    assert _export(client, workspace) == before  # nothing imported
    # The default world's next PATCH is the default world's.
    assert client.patch(PATCH_URL, json=CHANGED, headers=bearer()).status_code == 200
    assert sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "DIVERTED-OR-NOT"
    assert (_journal_count(client), _journal_count(client, workspace)) == (1, 0)
    # Its own export goes back in.
    assert client.post("/_sandbox/state/import", json=before, headers=scoped).status_code == 200


CHANGED = {"voucherCode": "DIVERTED-OR-NOT", "voucherExpiryDate": "31/12/2026"}


def test_no_world_imports_a_workspaces_credential(client):
    first, second = _workspace(client), _workspace(client)
    first_key = next(v for v in _credentials(first).values() if v.startswith("XXXXXX."))
    default_before = _export(client)
    snapshot = copy.deepcopy(default_before)
    snapshot["collections"]["rai_api_keys"][first_key] = _key(first_key)
    r = client.post("/_sandbox/state/import", json=snapshot)
    assert r.status_code == 409 and f"rai_api_keys {first_key} ends like a workspace's credential" in \
        r.get_json()["error"]["message"]
    assert _export(client) == default_before
    second_before = _export(client, second["id"])
    snapshot = copy.deepcopy(second_before)
    snapshot["collections"]["rai_api_keys"][first_key] = _key(first_key)
    r = client.post("/_sandbox/state/import", json=snapshot, headers={"X-Sandbox-Workspace": second["id"]})
    assert r.status_code == 409 and "another workspace's credential" in r.get_json()["error"]["message"]
    assert _export(client, second["id"]) == second_before


def test_a_credential_field_is_checked_too(client):
    """A Capillary OAuth client acts as a till (its username): a workspace's client may not act as the default
    world's till."""
    workspace = _workspace(client)["id"]
    before = _export(client, workspace)
    snapshot = copy.deepcopy(before)
    key, client_record = next(iter(snapshot["collections"]["cap_oauth_clients"].items()))
    client_record["username"] = "store.server"
    r = client.post("/_sandbox/state/import", json=snapshot, headers={"X-Sandbox-Workspace": workspace})
    assert r.status_code == 409 and "cap_oauth_clients store.server" in r.get_json()["error"]["message"]
    assert _export(client, workspace) == before


def test_a_scenario_cannot_give_a_world_another_worlds_credential(tmp_path, backend_settings):
    (tmp_path / "divert.yaml").write_text(
        "title: Divert\nstory: Takes the default world's key.\nsteps:\n  - {say: It takes the key.}\nchanges:\n"
        "  - {collection: rai_api_keys, key: XXXXXX, record: {key: XXXXXX, communityID: 507f1f77bcf86cd799439013, "
        "permissions: [purchase-history], active: true, purpose: diverted}}\n"
        "faults:\n  - {vendor: returning-ai, fault: server-error}\n")
    client = strict_app(size=0, scenarios_dir=tmp_path, **backend_settings).test_client()
    workspace = _workspace(client)
    scoped = {"X-Sandbox-Workspace": workspace["id"]}
    key = next(v for v in _credentials(workspace).values() if v.startswith("XXXXXX."))
    assert client.patch(PATCH_URL, json=CHANGED, headers=bearer(key)).status_code == 200
    r = client.post("/_sandbox/scenarios/divert", headers=scoped)
    assert r.status_code == 409 and "rai_api_keys XXXXXX" in r.get_json()["error"]["message"]
    # Nothing happened: not even the reset that loading a scenario starts with.
    assert client.get("/_sandbox/faults", headers=scoped).get_json() == {"rules": []}
    voucher = client.get("/_sandbox/state/rai_vouchers?id=507f1f77bcf86cd799439016", headers=scoped).get_json()
    assert voucher["records"][0]["code"] == "DIVERTED-OR-NOT"
    assert client.patch(PATCH_URL, json=CHANGED, headers=bearer()).status_code == 200
    assert (_journal_count(client), _journal_count(client, workspace["id"])) == (1, 1)


def test_lookup_resolves_only_to_the_world_that_owns_the_credential(client, sandbox):
    """Even with the default world's key planted in a workspace's store (no control call allows it), the key's
    requests are the default world's; a suffix no workspace has is nobody's."""
    workspace = _workspace(client)["id"]
    sandbox.worlds[workspace].store.put("rai_api_keys", "XXXXXX", _key("XXXXXX"))
    assert client.patch(PATCH_URL, json=CHANGED, headers=bearer()).status_code == 200
    assert (_journal_count(client), _journal_count(client, workspace)) == (1, 0)
    stranger = "XXXXXX." + secrets.token_hex(16)
    assert client.patch(PATCH_URL, json=CHANGED, headers=bearer(stranger)).status_code == 401


def test_oauth_tokens_name_their_world(client):
    workspace = _workspace(client)
    scoped = {"X-Sandbox-Workspace": workspace["id"]}
    clients = client.get("/_sandbox/state/cap_oauth_clients", headers=scoped).get_json()["records"]
    demo = next(c for c in clients if c["key"].startswith("cap-demo-client."))
    r = client.post("/capillary/v3/oauth/token/generate", json={"key": demo["key"], "secret": demo["secret"]})
    token = r.get_json()["data"]["accessToken"]
    assert token.endswith(demo["key"][-33:])  # the workspace's suffix
    r = client.get("/capillary/v1.1/points/isredeemable?id=109943742&points=1",
                   headers={"X-CAP-API-OAUTH-TOKEN": token})
    assert r.status_code == 200
    assert (_journal_count(client), _journal_count(client, workspace["id"])) == (0, 2)
    r = client.post("/capillary/v3/oauth/token/generate", json={"key": "cap-demo-client", "secret": "cap-demo-secret"})
    assert not re.search(r"\.[0-9a-f]{32}$", r.get_json()["data"]["accessToken"])
    assert _journal_count(client) == 1
