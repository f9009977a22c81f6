"""Safe on a developer's laptop and on a team server (issue 15): the Host allow-list (DNS rebinding), cross-site
requests to the control API refused whatever their Content-Type, JSON-only bodies, CORS closed unless opened for
named origins; and the legitimate uses still working. Each attack asserts the refusal and the state after.

Flask's test client sends `Host: localhost` unless told otherwise.
"""
import io
import shutil
from contextlib import ExitStack

import pytest

from helpers import FABRIC, PATCH_URL, bearer, served, strict_app
from services import wait_for
from sandbox import cli as run

EVIL = "http://evil.example"
VOUCHER = "/_sandbox/state/rai_vouchers?id=507f1f77bcf86cd799439016"
CHANGED = {"voucherCode": "CHANGED-BY-ME", "voucherExpiryDate": "31/12/2026"}


def sandbox_app(**settings):
    return strict_app(size=5, **settings)


@pytest.fixture
def client():
    return sandbox_app().test_client()


def voucher_code(client) -> str:
    return client.get(VOUCHER).get_json()["records"][0]["code"]


def assert_refused(response, status, *fragments):
    """A refusal in the control API's envelope, saying each fragment."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == status
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    return error["message"]


# The four ways a page of another site can send a body; the first three need no CORS preflight.
def bodies():
    return {
        "text/plain": {"data": '{"seed": 7}', "content_type": "text/plain"},
        "application/x-www-form-urlencoded": {"data": {"seed": "7"}},
        "multipart/form-data": {"data": {"seed": "7", "file": (io.BytesIO(b"{}"), "x.json")}},
        "application/json": {"json": {"seed": 7}},
    }


# -- cross-site requests to the control API ------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", list(bodies()))
def test_a_foreign_page_cannot_reset_whatever_the_content_type(client, content_type):
    assert client.patch(PATCH_URL, json=CHANGED, headers=bearer()).status_code == 200
    r = client.post("/_sandbox/reset", headers={"Origin": EVIL}, **bodies()[content_type])
    assert_refused(r, 403, "Cross-site request refused", EVIL)
    assert voucher_code(client) == "CHANGED-BY-ME"  # the developer's state is still there
    assert client.get("/_sandbox/health").get_json()["seed"] == 2026


@pytest.mark.parametrize("content_type", list(bodies()))
def test_a_foreign_page_cannot_load_a_scenario_add_a_fault_or_create_a_workspace(client, content_type):
    foreign = {"Origin": EVIL}
    assert_refused(client.post("/_sandbox/scenarios/store-outage", headers=foreign, **bodies()[content_type]), 403)
    assert_refused(client.post("/_sandbox/faults", headers=foreign, **bodies()[content_type]), 403)
    assert_refused(client.post("/_sandbox/workspaces", headers=foreign, **bodies()[content_type]), 403)
    assert client.get("/_sandbox/faults").get_json() == {"rules": []}
    assert client.get("/_sandbox/workspaces").get_json() == {"workspaces": []}
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 200


def test_a_foreign_page_cannot_delete_or_read_either(client):
    rule = client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "server-error"}).get_json()
    assert_refused(client.delete(f"/_sandbox/faults/{rule['id']}", headers={"Origin": EVIL}), 403)
    assert_refused(client.delete("/_sandbox/requests", headers={"Origin": EVIL}), 403)
    assert [r["id"] for r in client.get("/_sandbox/faults").get_json()["rules"]] == [rule["id"]]
    r = client.get("/_sandbox/credentials", headers={"Origin": EVIL})
    assert_refused(r, 403)
    assert "XXXXXX" not in r.get_data(as_text=True)


@pytest.mark.parametrize("origin", ["null", "http://localhost:3000", "https://localhost", "http://127.0.0.1"])
def test_other_origins_of_this_machine_are_foreign_too(client, origin):
    """Another port (a dev server), another scheme, another name of this machine, a sandboxed frame (null)."""
    r = client.post("/_sandbox/reset", headers={"Origin": origin, "Host": "localhost:8080"}, json={})
    assert_refused(r, 403, "Cross-site")


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_without_origin_the_browsers_fetch_metadata_decides(client, site):
    client.patch(PATCH_URL, json=CHANGED, headers=bearer())
    assert_refused(client.post("/_sandbox/reset", headers={"Sec-Fetch-Site": site}, json={}), 403, site)
    assert voucher_code(client) == "CHANGED-BY-ME"
    assert client.get("/_sandbox/health", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert client.get("/_sandbox/health", headers={"Sec-Fetch-Site": "none"}).status_code == 200  # typed URL


def test_a_doubled_slash_is_still_the_control_api(client):
    r = client.post("/", environ_overrides={"PATH_INFO": "//_sandbox/reset"}, headers={"Origin": EVIL}, json={})
    assert_refused(r, 403, "Cross-site")


def test_the_sandboxs_own_origin_and_programs_are_served(client):
    client.patch(PATCH_URL, json=CHANGED, headers=bearer())
    own = {"Origin": "http://localhost:8080", "Host": "localhost:8080"}
    assert client.post("/_sandbox/reset", headers=own, json={}).status_code == 200
    assert voucher_code(client) == "GOLD-2026-0001"
    assert client.post("/_sandbox/faults", headers=own, json={"vendor": "fabric", "fault": "server-error"}).status_code == 201
    assert client.post("/_sandbox/reset").status_code == 200  # curl, CI: no Origin, no body
    assert client.get("/_sandbox/faults").get_json() == {"rules": []}


# -- bodies: JSON only ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_control_bodies_are_json_only(client, content_type):
    r = client.post("/_sandbox/faults", **bodies()[content_type])
    assert_refused(r, 415, "Content-Type: application/json", content_type)
    client.patch(PATCH_URL, json=CHANGED, headers=bearer())
    assert_refused(client.post("/_sandbox/reset", **bodies()[content_type]), 415)
    assert voucher_code(client) == "CHANGED-BY-ME"
    assert client.get("/_sandbox/faults").get_json() == {"rules": []}
    r = client.post("/_sandbox/faults", data='{"vendor": "fabric", "fault": "server-error"}',
                    content_type="application/json; charset=utf-8")
    assert r.status_code == 201


def test_vendor_routes_answer_clients_from_anywhere(client):
    r = client.get("/fabric/v3/redemptions/614b58924e92f6861ac9d43b", headers={**FABRIC, "Origin": EVIL})
    assert r.status_code == 200 and r.get_json()["id"] == "614b58924e92f6861ac9d43b"
    r = client.patch(PATCH_URL, json=CHANGED, headers={**bearer(), "Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 200


# -- CORS ----------------------------------------------------------------------------------------------------------
def test_cors_is_closed_by_default(client):
    preflight = client.options("/_sandbox/reset", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert_refused(preflight, 403)
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in client.get("/_sandbox/health").headers


def test_cors_opens_for_the_named_origins_only():
    client = sandbox_app(cors_origins=["http://dashboard.example:3000"]).test_client()
    named = {"Origin": "http://dashboard.example:3000"}
    preflight = client.options("/_sandbox/reset", headers={**named, "Access-Control-Request-Method": "POST",
                                                          "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://dashboard.example:3000"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    r = client.post("/_sandbox/faults", headers=named, json={"vendor": "fabric", "fault": "server-error"})
    assert r.status_code == 201 and r.headers["Access-Control-Allow-Origin"] == "http://dashboard.example:3000"
    assert_refused(client.post("/_sandbox/reset", headers=named, data="{}", content_type="text/plain"), 415)
    assert_refused(client.post("/_sandbox/reset", headers={"Origin": EVIL}, json={}), 403)
    assert len(client.get("/_sandbox/faults").get_json()["rules"]) == 1


# -- DNS rebinding: the Host allow-list ----------------------------------------------------------------------------
REBOUND = {"Host": "evil.example:8080"}


@pytest.mark.parametrize("path", ["/_sandbox/credentials", "/_sandbox/state/export", "/_sandbox/state/cap_tills",
                                  "/_sandbox/state/cap_oauth_clients", "/_sandbox/specs/sandbox.yaml", "/",
                                  "/docs/", "/fabric/v3/redemptions/614b58924e92f6861ac9d43b", "/no/such/path"])
def test_a_rebound_host_is_refused_everywhere(client, path):
    r = client.get(path, headers={**REBOUND, **FABRIC})
    assert_refused(r, 403, "Host evil.example:8080 is not this sandbox's", "--allowed-host")
    text = r.get_data(as_text=True)
    for secret in ("XXXXXX", "server123", "cap-demo-secret", "fabric-demo-token", "evil.example:8080/"):
        assert secret not in text


def test_a_rebound_host_changes_nothing(client):
    client.patch(PATCH_URL, json=CHANGED, headers=bearer())
    assert_refused(client.post("/_sandbox/faults", headers=REBOUND, json={"vendor": "fabric", "fault": "server-error"}),
                   403)
    assert_refused(client.post("/_sandbox/reset", headers=REBOUND, json={}), 403)
    assert_refused(client.patch(PATCH_URL, headers={**REBOUND, **bearer()}, json={"voucherCode": "X"}), 403)
    assert client.get("/_sandbox/faults").get_json() == {"rules": []}
    assert voucher_code(client) == "CHANGED-BY-ME"
    assert client.get("/_sandbox/requests/count").get_json() == {"count": 1}  # the refused PATCH never ran


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1:8080", "127.0.0.2", "[::1]:8080"])
def test_loopback_hosts_are_served(client, host):
    assert client.get("/_sandbox/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.1.evil.example", "10.0.0.5:8080",
                                  "localhost.", "127.0.0.1@evil.example", "", "LOCALHOST:8080 x"])
def test_other_hosts_are_refused(client, host):
    assert client.get("/_sandbox/health", headers={"Host": host}).status_code == 403


def test_allowed_host_serves_a_team_name_in_specs_and_builds_no_redirect():
    client = sandbox_app(allowed_hosts=["sandbox.team.example"]).test_client()
    named = {"Host": "sandbox.team.example:8080"}
    spec = client.get("/_sandbox/specs/returning-ai.json", headers={**named, "X-Forwarded-Host": "evil.example"})
    assert spec.status_code == 200
    assert spec.get_json()["servers"][0]["url"].startswith("http://sandbox.team.example:8080/")
    # No redirect is built at all (issue 26: paths match as written), so none can carry a rebound Host.
    served = client.get("/docs//", headers=named)
    assert served.status_code == 200 and "Location" not in served.headers
    refused = client.get("/docs//", headers=REBOUND)
    assert refused.status_code == 403 and "Location" not in refused.headers
    assert client.get("/_sandbox/specs/returning-ai.json", headers={"Host": "other.example"}).status_code == 403


def test_bound_to_every_address_serves_ip_addresses_but_names_only_when_given():
    client = sandbox_app(host="0.0.0.0", control_open=False, admin_token="s3cret",
                         allowed_hosts=["sandbox.team.example"]).test_client()
    token = {"X-Sandbox-Admin-Token": "s3cret"}
    for host in ("10.0.0.5:8080", "sandbox.team.example", "127.0.0.1"):
        assert client.get("/_sandbox/health", headers={**token, "Host": host}).status_code == 200, host
    assert_refused(client.get("/_sandbox/health", headers={"Host": "10.0.0.5:8080"}), 401, "admin token")
    # The token is no way round the Host check, nor the Origin check.
    assert_refused(client.get("/_sandbox/health", headers={**token, **REBOUND}), 403, "Host")
    assert_refused(client.post("/_sandbox/reset", headers={**token, "Host": "10.0.0.5:8080", "Origin": EVIL}, json={}),
                   403, "Cross-site")


def test_off_loopback_without_a_token_the_control_api_stays_off():
    client = sandbox_app(host="0.0.0.0", control_open=False).test_client()
    assert_refused(client.get("/_sandbox/health", headers={"Host": "10.0.0.5:8080"}), 403, "--admin-token")
    assert client.get(PATCH_URL.replace("purchase-histories", "x"), headers={"Host": "10.0.0.5:8080"}).status_code == 404


# -- run.py's options ----------------------------------------------------------------------------------------------
def test_run_py_allowed_host_and_cors_origin(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    monkeypatch.setenv("SANDBOX_ALLOWED_HOSTS", "ci.team.example")
    run.main(["--size", "5", "--allowed-host", "sandbox.team.example", "--cors-origin", "http://dash.example"])
    out = capsys.readouterr().out
    assert "sandbox.team.example" in out and "ci.team.example" in out and "CORS open to http://dash.example" in out
    client = served["app"].test_client()
    for host in ("sandbox.team.example", "ci.team.example:8080", "127.0.0.1:8080"):
        assert client.get("/_sandbox/health", headers={"Host": host}).status_code == 200, host
    assert client.get("/_sandbox/health", headers=REBOUND).status_code == 403
    r = client.get("/_sandbox/health", headers={"Origin": "http://dash.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://dash.example"


def test_help_documents_the_options():
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "run.py", "--help"], cwd=Path(__file__).parent.parent, capture_output=True,
                         text=True, check=True).stdout
    assert "--allowed-host" in out and "SANDBOX_ALLOWED_HOSTS" in out
    assert "--cors-origin" in out and "SANDBOX_CORS_ORIGINS" in out


# -- the pages ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/", "/docs/"])
def test_pages_cannot_be_framed_by_another_site(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


# -- in a real browser ---------------------------------------------------------------------------------------------
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(not (CHROMEDRIVER and CHROMIUM), reason="needs chromium and chromium-driver "
                                   "(apt-get install chromium chromium-driver)")


class Recorder:
    """Every request the sandbox receives, as it arrives and how it was answered (outside the guard)."""

    def __init__(self, app):
        self.app, self.seen = app, []

    def __call__(self, environ, start_response):
        def recorded(status, headers, exc_info=None):
            self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_ORIGIN"),
                              int(status.split()[0])))
            return start_response(status, headers, exc_info)

        return self.app(environ, recorded)


ATTACK = """<!doctype html><html><body>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<form id="form" method="POST" action="{target}/_sandbox/scenarios/store-outage" target="sink1">
  <input name="seed" value="7"></form>
<form id="multipart" method="POST" enctype="multipart/form-data" action="{target}/_sandbox/workspaces" target="sink2">
  <input name="size" value="0"></form>
<script>
  const simple = fetch("{target}/_sandbox/reset", {{method: "POST", mode: "no-cors",
                        headers: {{"Content-Type": "text/plain"}}, body: '{{"seed": 7}}'}});
  const json = fetch("{target}/_sandbox/faults", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                      body: '{{"vendor": "fabric", "fault": "server-error"}}'}}).catch(() => "refused");
  Promise.all([simple, json]).then(() => {{
    document.getElementById("form").submit();
    document.getElementById("multipart").submit();
    document.title = "sent";
  }});
</script></body></html>"""


@needs_browser
def test_in_a_real_browser_a_foreign_page_and_a_rebound_name_get_nothing_and_the_own_page_works():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    recorder = Recorder(strict_app(size=5))
    servers = ExitStack()
    sandbox_port = servers.enter_context(served(recorder))
    target = f"http://127.0.0.1:{sandbox_port}"

    def attack_page(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return [ATTACK.format(target=target).encode()]

    attacker_port = servers.enter_context(served(attack_page))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--host-resolver-rules=MAP attacker.test 127.0.0.1, MAP rebound.test 127.0.0.1",
                     "--disable-features=HttpsUpgrades"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        state = recorder.app.test_client()
        state.patch(PATCH_URL, json=CHANGED, headers=bearer())

        # A page of another site: a simple fetch (text/plain), a JSON fetch (preflighted), a form, a multipart form.
        browser.get(f"http://attacker.test:{attacker_port}/")
        wait_for(lambda: browser.title == "sent")
        wanted = {("POST", "/_sandbox/reset"), ("OPTIONS", "/_sandbox/faults"), ("POST", "/_sandbox/scenarios/store-outage"),
                  ("POST", "/_sandbox/workspaces")}
        wait_for(lambda: wanted <= {(m, p) for m, p, _, _ in recorder.seen})
        for method, path, origin, status in recorder.seen:
            assert origin == f"http://attacker.test:{attacker_port}" and status == 403, (method, path)
        assert ("POST", "/_sandbox/faults") not in {(m, p) for m, p, _, _ in recorder.seen}  # the preflight failed
        assert voucher_code(state) == "CHANGED-BY-ME"
        assert state.get("/_sandbox/faults").get_json() == {"rules": []}
        assert state.get("/_sandbox/workspaces").get_json() == {"workspaces": []}

        # DNS rebinding: a name of the attacker's that resolves to this machine is not the sandbox's.
        browser.get(f"http://rebound.test:{sandbox_port}/_sandbox/credentials")
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "is not this sandbox's" in text and "XXXXXX" not in text

        # The sandbox's own page still works: reset from its button.
        browser.get(target + "/")
        wait_for(lambda: "Bearer XXXXXX" in browser.find_element(By.ID, "credential-rows").text)
        browser.find_element(By.ID, "reset").click()
        browser.find_element(By.ID, "reset-confirm").click()  # the page asks first (issue 31 point 1)
        wait_for(lambda: voucher_code(state) == "GOLD-2026-0001")
        assert ("POST", "/_sandbox/reset", target, 200) in recorder.seen
    finally:
        browser.quit()
        servers.close()

