"""The live demo page and the API reference, in a real headless Chromium (Debian's package, via Selenium).

.ci/run installs chromium and chromium-driver; on a machine without them these tests are skipped, saying so.
"""
import io
import json
import shutil
import time
import urllib.error
import urllib.request

import pytest
from PIL import Image

from helpers import CAPILLARY, CAP_UPDATE, FABRIC, served, strict_app
from services import wait_for

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not (CHROMEDRIVER and CHROMIUM),
                                reason="needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
@pytest.fixture(scope="module")
def base_url():
    with served(strict_app(size=20)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()



def rows(browser, tbody_id):
    # Read in one script: the live tables are redrawn every second, so element handles go stale.
    return browser.execute_script(f"return [...document.querySelectorAll('#{tbody_id} tr')].map(r => r.innerText)")


PATCH_URL = "/returning-ai/v1/purchase-histories/ORD202641612055614747"
DOC_KEY = {"Authorization": "Bearer XXXXXX", "Content-Type": "application/json"}


def call(base_url, method, path, body=None, headers=None):
    """A request as a client makes it; (status, parsed body or None)."""
    request = urllib.request.Request(base_url + path, method=method, headers=headers or {},
                                     data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
            return answer.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def open_page(browser, base_url):
    call(base_url, "POST", "/_sandbox/reset", {})
    browser.get(base_url + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(base_url + "/")
    wait_for(lambda: rows(browser, "credential-rows"))


def test_the_feed_is_above_the_fold_and_a_request_opens_with_its_bodies_headers_and_why(base_url, browser, tmp_path):
    open_page(browser, base_url)
    call(base_url, "PATCH", PATCH_URL, {"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2026"}, DOC_KEY)
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "Ring twice"}, {**DOC_KEY, "X-Sandbox-Fault": "rate-limit"})
    wait_for(lambda: len(rows(browser, "request-rows")) == 2)

    # At 1400x1000 the live feed is in view, above the credentials and vendors, with its rows.
    box = browser.execute_script("""const r = document.getElementById('feed').getBoundingClientRect();
        const c = document.getElementById('credentials').getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: innerHeight, width: innerWidth,
                credentials: c.top, ratio: devicePixelRatio}""")
    assert box["width"] >= 1380 and box["top"] < 120 and box["bottom"] < box["height"] and box["credentials"] > box["bottom"]
    png = browser.get_screenshot_as_png()
    (tmp_path / "demo.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    scale = box["ratio"]
    feed = image.crop(tuple(int(v * scale) for v in (box["left"], box["top"], box["right"], box["bottom"])))
    assert feed.size[1] > 60 and len(feed.getcolors(maxcolors=100000) or []) > 20  # drawn text and rows, in the picture

    # A row opens: the bodies, both sets of headers, and why it was decided.
    browser.execute_script("[...document.querySelectorAll('#request-rows tr')].find(r => r.innerText.includes('429')).click()")
    wait_for(lambda: browser.execute_script("return !document.getElementById('request-detail').hidden"))
    detail = browser.execute_script("""return {title: detail('detail-title'), why: detail('detail-why'),
        requestBody: detail('detail-request-body'), responseBody: detail('detail-response-body'),
        requestHeaders: detail('detail-request-headers'), responseHeaders: detail('detail-response-headers')};
        function detail(id) { return document.getElementById(id).innerText; }""")
    assert detail["title"].startswith("#") and f"PATCH {PATCH_URL} → 429" in detail["title"]
    assert "fault rate-limit" in detail["why"] and "X-Sandbox-Fault: rate-limit" in detail["why"]
    assert '"redemptionInstructions": "Ring twice"' in detail["requestBody"]
    assert "Too many requests" in detail["responseBody"] and "Retry-After" in detail["responseHeaders"]
    assert "Bearer ‹secret" in detail["requestHeaders"] and "XXXXXX" not in detail["requestHeaders"]
    browser.execute_script("[...document.querySelectorAll('#request-rows tr')].find(r => r.innerText.includes('409')).click()")
    wait_for(lambda: "Refused by the rule" in browser.find_element("id", "detail-why").text)
    assert "GOLD-TAKEN-0001" in browser.find_element("id", "detail-why").text  # the vendor's own message


def test_faults_are_chosen_by_vendor_operation_and_fault_with_a_visible_latency(base_url, browser):
    from selenium.webdriver.support.ui import Select

    open_page(browser, base_url)
    wait_for(lambda: Select(browser.find_element("id", "fault-operation")).options)
    form = lambda: browser.execute_script("""return ['fault-vendor', 'fault-operation', 'fault-name', 'fault-latency']
        .map(id => document.getElementById(id).value)""")
    assert form() == ["returning-ai", "updatePurchaseHistory", "latency", "1500"]  # a delay the room can see
    offered = [o.get_attribute("value") for o in Select(browser.find_element("id", "fault-name")).options]
    assert {"latency", "rate-limit", "store-unavailable", "publisher-timeout"} <= set(offered)
    browser.find_element("id", "add-fault").click()
    wait_for(lambda: any("latency" in r and "1500" in r for r in rows(browser, "fault-rows")))
    assert [(r["operation"], r["fault"], r["latencyMs"]) for r in call(base_url, "GET", "/_sandbox/faults")[1]["rules"]] \
        == [("updatePurchaseHistory", "latency", 1500)]
    started = time.monotonic()
    assert call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "slow"}, DOC_KEY)[0] == 200
    assert time.monotonic() - started >= 1.5

    # A vendor's own fault, on one operation: no latency unless asked for.
    Select(browser.find_element("id", "fault-vendor")).select_by_value("capillary")
    Select(browser.find_element("id", "fault-operation")).select_by_value("updateRedeemPoints")
    Select(browser.find_element("id", "fault-name")).select_by_value("redemption-update-failed")
    assert form() == ["capillary", "updateRedeemPoints", "redemption-update-failed", "0"]
    browser.find_element("id", "add-fault").click()
    wait_for(lambda: any("redemption-update-failed" in r for r in rows(browser, "fault-rows")))
    status, body = call(base_url, "PUT", "/capillary/v2/points/updateRedemption", CAP_UPDATE, CAPILLARY)
    assert status == 409 and body["errors"][0]["code"] == 750
    # every operation of a vendor offers only the faults every one of them accepts
    Select(browser.find_element("id", "fault-operation")).select_by_value("*")
    assert "redemption-update-failed" not in [o.get_attribute("value") for o in
                                              Select(browser.find_element("id", "fault-name")).options]
    for _ in range(2):
        browser.execute_script("document.querySelector('#fault-rows button.off').click()")
        time.sleep(0.3)
    wait_for(lambda: rows(browser, "fault-rows") == [])
    assert call(base_url, "GET", "/_sandbox/faults")[1]["rules"] == []


def test_events_read_as_rows(base_url, browser):
    open_page(browser, base_url)
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "Ring twice"}, DOC_KEY)
    event = wait_for(lambda: [r for r in rows(browser, "event-rows") if "update:purchase-history" in r])[0]
    time_cell, name, details = event.split("\t")
    assert name == "update:purchase-history" and not details.startswith("{")
    assert "purchaseHistoryID: 507f1f77bcf86cd799439012" in details and " · " in details


def test_a_workspace_shows_every_vendors_credentials_and_can_be_watched(base_url, browser):
    open_page(browser, base_url)
    browser.find_element("id", "create-workspace").click()
    listed = wait_for(lambda: rows(browser, "workspace-credential-rows"))
    workspaces = call(base_url, "GET", "/_sandbox/workspaces")[1]["workspaces"]
    workspace = workspaces[-1]["id"]
    credentials = call(base_url, "GET", "/_sandbox/credentials", headers={"X-Sandbox-Workspace": workspace})[1]["credentials"]
    assert len(listed) == len(credentials) >= 8
    assert {r.split("\t")[1] for r in listed} == {"returning-ai", "fabric", "capillary"}
    assert any(f"Bearer XXXXXX.{credentials[0]['headers']['Authorization'].rsplit('.', 1)[1]}" in r for r in listed)
    browser.find_element("id", "watch-workspace").click()
    wait_for(lambda: browser.find_element("id", "world").get_attribute("value") == workspace)
    key = next(c for c in credentials if c["name"] == "XXXXXX")["headers"]
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "in the workspace"}, {**key, "Content-Type": "application/json"})
    wait_for(lambda: len(rows(browser, "request-rows")) == 1)  # the workspace's journal only
    call(base_url, "DELETE", f"/_sandbox/workspaces/{workspace}")


def test_loading_a_scenario_says_what_it_replaces(base_url, browser):
    open_page(browser, base_url)
    assert call(base_url, "POST", "/_sandbox/faults", {"vendor": "fabric", "operation": "*", "fault": "server-error",
                                                       "probability": 1})[0] == 201
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "before"}, DOC_KEY)
    wait_for(lambda: rows(browser, "fault-rows") and rows(browser, "request-rows"))
    browser.execute_script("document.querySelector('#scenario-buttons button[data-name=\"store-outage\"]').click()")
    says = wait_for(lambda: browser.find_element("id", "scenario-replaces").text)
    assert "replaces the 1 fault rule(s) now on (server-error on fabric *" in says
    assert "clears the journal (1 request(s))" in says and "sets 1 rule(s): store-unavailable on returning-ai" in says
    assert call(base_url, "GET", "/_sandbox/faults")[1]["rules"][0]["fault"] == "server-error"  # nothing yet
    browser.find_element("id", "scenario-load").click()
    story = wait_for(lambda: browser.find_element("id", "story").text)
    assert "Replaced 1 fault rule(s), 1 request(s)" in story
    assert [r["fault"] for r in call(base_url, "GET", "/_sandbox/faults")[1]["rules"]] == ["store-unavailable"]


@pytest.fixture(scope="module")
def guarded_url():
    with served(strict_app(size=5, admin_token="s3cret-token")) as port:
        yield f"http://127.0.0.1:{port}"


def test_with_an_admin_token_the_page_asks_for_it_and_fills_in_without_a_reload(guarded_url, browser):
    browser.get(guarded_url + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(guarded_url + "/")
    prompt = wait_for(lambda: browser.find_element("id", "token-prompt").text)
    assert "started with --admin-token" in prompt and rows(browser, "credential-rows") == []
    browser.execute_script("window.sameDocument = true")
    token = browser.find_element("id", "admin-token")
    token.send_keys("wrong")
    browser.find_element("id", "use-token").click()
    wait_for(lambda: "refused" in browser.find_element("id", "token-prompt").text)
    token.clear()
    token.send_keys("s3cret-token")
    browser.find_element("id", "use-token").click()
    wait_for(lambda: any("Bearer XXXXXX" in r for r in rows(browser, "credential-rows")))
    assert browser.execute_script("return window.sameDocument === true")  # filled in, not reloaded
    assert not browser.find_element("id", "token-prompt").is_displayed()
    call(guarded_url, "GET", "/fabric/v3/redemptions/614b58924e92f6861ac9d43b", headers=FABRIC)
    wait_for(lambda: any("200" in r for r in rows(browser, "request-rows")))  # the feed polls with the token


def test_docs_render_every_spec_offline(base_url, browser):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/docs/")
    title = wait_for(lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".info .title")])
    assert "Returning.AI" in title[0]
    assert wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    # Every resource of the page came from the sandbox itself.
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(base_url) for url in resources)


def test_docs_try_it_out_sends_the_fault_chosen_above_it(base_url, browser):
    """A trainer picks a fault in the bar above the reference; "Try it out" then gets it from the vendor (fabric's
    500 envelope here), and the journal shows the request carried X-Sandbox-Fault. Choosing none answers as
    documented again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(base_url + "/docs/?urls.primaryName=fabric")
    operation = wait_for(lambda: browser.find_elements(By.ID, "operations-Redemptions-getRedemption"))[0]

    def try_it(fault: str) -> str:
        Select(browser.find_element(By.ID, "fault-header")).select_by_value(fault)
        if not operation.find_elements(By.CSS_SELECTOR, ".execute"):
            if not operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"):
                operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
            wait_for(lambda: operation.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
            for name, value in (("redemptionId", "614b58924e92f6861ac9d43b"),
                                ("x-fabric-tenant-id", FABRIC["x-fabric-tenant-id"])):
                field = operation.find_element(By.CSS_SELECTOR, f"tr[data-param-name='{name}'] input")
                field.clear()
                field.send_keys(value)
        for shown in operation.find_elements(By.CSS_SELECTOR, ".btn-clear"):
            shown.click()
        operation.find_element(By.CSS_SELECTOR, ".execute").click()
        return wait_for(lambda: [e.text for e in operation.find_elements(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status") if e.text.strip()])[0].strip()

    assert try_it("server-error") == "500"
    journal = json.loads(urllib.request.urlopen(base_url + "/_sandbox/requests?vendor=fabric").read())["requests"]
    assert journal[-1]["headers"]["X-Sandbox-Fault"] == "server-error" and journal[-1]["status"] == 500
    assert try_it("") == "200"


def test_a_trainer_freezes_the_worlds_clock_and_moves_it_forward_with_the_effect_said(base_url, browser):
    """Issue 28 point 6: the page shows the world's time; Freeze, +5 min and +1 day move it (GET /_sandbox/clock
    agrees) and say what that does; Let it run starts it again."""
    open_page(browser, base_url)
    wait_for(lambda: "the wall clock" in browser.find_element("id", "clock-state").text)
    browser.find_element("id", "clock-freeze").click()
    wait_for(lambda: browser.find_element("id", "clock-state").text == "frozen")
    frozen = call(base_url, "GET", "/_sandbox/clock")[1]
    assert frozen["frozen"] is True
    shown = browser.find_element("id", "clock-now").text
    assert shown == frozen["now"].replace("T", " ")[:19] + " UTC"
    browser.find_element("id", "clock-5min").click()
    wait_for(lambda: "has expired" in browser.find_element("id", "clock-said").text)
    browser.find_element("id", "clock-1day").click()
    wait_for(lambda: "A day later" in browser.find_element("id", "clock-said").text)
    moved = call(base_url, "GET", "/_sandbox/clock")[1]
    from datetime import datetime
    step = datetime.fromisoformat(moved["now"].replace("Z", "+00:00")) - datetime.fromisoformat(
        frozen["now"].replace("Z", "+00:00"))
    assert moved["frozen"] is True and step.total_seconds() == 300 + 86400
    wait_for(lambda: browser.find_element("id", "clock-now").text == moved["now"].replace("T", " ")[:19] + " UTC")
    browser.find_element("id", "clock-resume").click()
    wait_for(lambda: "running" in browser.find_element("id", "clock-state").text)
    assert call(base_url, "GET", "/_sandbox/clock")[1]["frozen"] is False
    call(base_url, "POST", "/_sandbox/reset", {})


def test_a_member_buys_and_the_webhook_arrives_in_the_inbox_then_the_partner_calls(base_url, browser):
    """Issue 29 point 5: one click makes a purchase whose signed webhook lands in the sandbox's own inbox, shown on
    the page; the partner's next calls are buttons that answer with the demo key."""
    open_page(browser, base_url)
    browser.find_element("id", "buy").click()
    order = wait_for(lambda: [r for r in rows(browser, "inbox-rows") if "returning-ai:purchased-store-item" in r])[0]
    order_id = order.split("\t")[2]
    assert order_id.startswith("ORD") and order_id in browser.find_element("id", "bought").text
    browser.find_element("id", "call-patch").click()
    wait_for(lambda: "→ 200" in browser.find_element("id", "call-answer").text)
    browser.find_element("id", "call-refund").click()
    wait_for(lambda: "redemption-transactions/status → 200" in browser.find_element("id", "call-answer").text)
    history = call(base_url, "POST", "/returning-ai/v1/redemption-transactions/status-history",
                   {"transactionId": order_id}, DOC_KEY)[1]["data"]["history"]
    assert history[-1]["refundCoins"] is True
    call(base_url, "POST", "/_sandbox/reset", {})
