"""Worlds are isolated from each other (issue 15): one world's writes never wait for another's."""
import threading

from conftest import PATCH_URL, bearer


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
