"""The live demo page, the fault catalogue page and the API reference, in a real headless Chromium (Debian's
package, via Selenium).

.ci/run installs chromium and chromium-driver; on a machine without them the tests that take the browser are skipped,
saying so. SANDBOX_SCREENSHOTS=<directory> makes test_screenshots_of_the_page_in_use write the README's pictures
(demo-feed.png, demo-projector.png) there: `SANDBOX_SCREENSHOTS=docs/screenshots python -m pytest -n 0
tests/test_ui_browser.py -k screenshots`.
"""
import io
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from helpers import CAPILLARY, CAP_UPDATE, FABRIC, served, strict_app
from services import wait_for

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_BROWSER = "needs chromium and chromium-driver (apt-get install chromium chromium-driver)"


@pytest.fixture(scope="module")
def base_url():
    with served(strict_app(size=20)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMEDRIVER and CHROMIUM):
        pytest.skip(NO_BROWSER)
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
    assert form() == ["returning-ai", "*", "latency", "1500"]  # every operation; a delay the room can see
    offered = lambda: {o.get_attribute("value") for o in Select(browser.find_element("id", "fault-name")).options}
    assert offered() == {"latency", "rate-limit", "server-error", "connection-reset", "empty-response", "malformed-body"}
    Select(browser.find_element("id", "fault-operation")).select_by_value("updatePurchaseHistory")
    assert {"latency", "rate-limit", "store-unavailable", "publisher-timeout"} <= offered()  # the vendor's own too
    Select(browser.find_element("id", "fault-operation")).select_by_value("*")
    assert form() == ["returning-ai", "*", "latency", "1500"]
    browser.find_element("id", "add-fault").click()
    wait_for(lambda: any("latency" in r and "1500" in r for r in rows(browser, "fault-rows")))
    assert [(r["operation"], r["fault"], r["latencyMs"]) for r in call(base_url, "GET", "/_sandbox/faults")[1]["rules"]] \
        == [("*", "latency", 1500)]
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


# -- issue 31: a page a trainer can teach a room with ------------------------------------------------------------
# The sizes a room meets: a 1024x768 projector at 150% zoom (a CSS viewport of 683x512), a 1280x720 projector, and
# the trainer's own large screen.
SIZES = {"1024x768 at 150%": (683, 512, 1.5), "1280x720": (1280, 720, 1), "1400x1000": (1400, 1000, 1)}
FABRIC_GET = "/fabric/v3/redemptions/614b58924e92f6861ac9d43b"


@contextmanager
def viewport(browser, width, height, scale=1):
    """The page's viewport at this CSS size and device scale (Chrome DevTools' device metrics), until the block ends."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False})
    try:
        yield
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def sideways(browser):
    """What scrolls sideways or sticks out: the page, any panel, scroll box, table or form whose content is wider than
    it, and any control (button, field, menu) or feed cell outside its panel. [] when everything fits."""
    return browser.execute_script("""
        const shown = (e) => e.getClientRects().length > 0;
        const name = (e) => e.id || (e.className && String(e.className)) || e.tagName;
        const found = [];
        const page = document.documentElement;
        if (page.scrollWidth > page.clientWidth) found.push(`page: ${page.scrollWidth} > ${page.clientWidth}`);
        for (const e of document.querySelectorAll('header, main, section, .scroll, form, table, .secret, .confirm')) {
            if (shown(e) && e.scrollWidth > e.clientWidth) found.push(`${name(e)}: ${e.scrollWidth} > ${e.clientWidth}`);
        }
        for (const e of document.querySelectorAll('button, input, select, #request-rows td')) {
            const panel = e.closest('section, header');
            if (!shown(e) || !panel) continue;
            const r = e.getBoundingClientRect(), p = panel.getBoundingClientRect();
            if (r.left < p.left - 0.5 || r.right > p.right + 0.5) found.push(`${name(e)} outside ${name(panel)}`);
        }
        return found;""")


def projector(browser, on: bool):
    """Projector mode on or off with its toggle in the header, as a trainer sets it."""
    button = browser.find_element("id", "projector")
    if (button.get_attribute("aria-pressed") == "true") != on:
        button.click()
    wait_for(lambda: browser.execute_script("return document.documentElement.classList.contains('projector')") == on)


# JS: how many lines an element's text takes (its text's line boxes, told apart by their tops).
LINES = """function lines(element) {
    const tops = [], walk = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(walk.currentNode);
        for (const r of range.getClientRects()) if (r.width > 0) tops.push(r.top);
    }
    const half = parseFloat(getComputedStyle(element).fontSize) / 2;
    return tops.sort((a, b) => a - b).filter((top, i) => i === 0 || top - tops[i - 1] > half).length;
}
"""


def small_text(browser):
    """Every piece of text shown in a font under 18 px, with its size."""
    return browser.execute_script("""
        const small = [];
        const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        while (walk.nextNode()) {
            const text = walk.currentNode, parent = text.parentElement;
            if (!text.textContent.trim() || !parent || !parent.getClientRects().length) continue;
            if (['SCRIPT', 'STYLE', 'OPTION'].includes(parent.tagName)) continue;
            const size = parseFloat(getComputedStyle(parent).fontSize);
            if (size < 18) small.push(`${text.textContent.trim().slice(0, 30)}: ${size}px`);
        }
        return small;""")


def test_the_fault_form_aims_at_every_operation_of_the_vendor_and_says_so(base_url, browser):
    """Issue 31 point 1: a fault switched on live catches the call being demoed, whichever it is: the form starts at
    every operation (*) of the vendor, again on each vendor chosen, and says which calls the rule will catch."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, base_url)
    wait_for(lambda: Select(browser.find_element(By.ID, "fault-operation")).options)
    scope = lambda: browser.find_element(By.ID, "fault-scope").text
    assert browser.find_element(By.ID, "fault-operation").get_attribute("value") == "*"
    assert scope() == "Every operation of returning-ai (8): the rule catches whichever returning-ai call you make next."
    Select(browser.find_element(By.ID, "fault-vendor")).select_by_value("fabric")
    assert browser.find_element(By.ID, "fault-operation").get_attribute("value") == "*"  # not listRedemptions
    assert scope().startswith("Every operation of fabric (7)")
    Select(browser.find_element(By.ID, "fault-operation")).select_by_value("listRedemptions")
    assert scope() == "Only listRedemptions: other fabric calls answer as usual."
    Select(browser.find_element(By.ID, "fault-operation")).select_by_value("*")
    Select(browser.find_element(By.ID, "fault-name")).select_by_value("server-error")
    browser.find_element(By.ID, "add-fault").click()
    wait_for(lambda: any("server-error" in r for r in rows(browser, "fault-rows")))
    assert [(r["vendor"], r["operation"]) for r in call(base_url, "GET", "/_sandbox/faults")[1]["rules"]] == [("fabric", "*")]
    assert call(base_url, "GET", FABRIC_GET, headers=FABRIC)[0] == 500  # the call demoed, whichever operation it is

    # Switching it off is one visible click, with a real pointer, even while the list is polled every second.
    wait_for(lambda: "1" in browser.find_element(By.CSS_SELECTOR, "#fault-rows td.fired").text)
    time.sleep(1.2)  # at least one poll redrew the list since
    off = browser.find_element(By.CSS_SELECTOR, "#fault-rows button.off")
    assert off.is_displayed() and off.text == "Switch off" and sideways(browser) == []
    off.click()
    wait_for(lambda: call(base_url, "GET", "/_sandbox/faults")[1]["rules"] == [])
    wait_for(lambda: rows(browser, "fault-rows") == [])
    assert "Fault off: server-error on fabric *" in browser.find_element(By.ID, "notice").text
    assert browser.find_element(By.ID, "no-rules").is_displayed()
    assert call(base_url, "GET", FABRIC_GET, headers=FABRIC)[0] == 200


def test_reset_asks_first_can_be_cancelled_and_then_says_what_it_did(base_url, browser):
    """Issue 31 point 1: Reset asks in the page (a trainer can cancel) and afterwards says what it did."""
    from selenium.webdriver.common.by import By

    open_page(browser, base_url)
    assert call(base_url, "POST", "/_sandbox/faults", {"vendor": "fabric", "operation": "*", "fault": "server-error",
                                                       "probability": 1})[0] == 201
    call(base_url, "GET", FABRIC_GET, headers=FABRIC)
    wait_for(lambda: rows(browser, "fault-rows") and rows(browser, "request-rows"))
    asked = browser.find_element(By.ID, "reset-ask")
    browser.find_element(By.ID, "reset").click()
    says = wait_for(lambda: asked.is_displayed() and browser.find_element(By.ID, "reset-says").text)
    assert says.startswith("Reset the default world to seed 2026, size 20? It clears the journal (1 request)")
    assert "the fault rules on (1)" in says
    browser.find_element(By.ID, "reset-cancel").click()
    assert not asked.is_displayed()
    assert browser.find_element(By.ID, "reset-said").text == "Reset cancelled: nothing changed."
    assert len(call(base_url, "GET", "/_sandbox/faults")[1]["rules"]) == 1  # nothing happened
    assert len(call(base_url, "GET", "/_sandbox/requests")[1]["requests"]) == 1

    browser.find_element(By.ID, "reset").click()
    wait_for(lambda: asked.is_displayed())
    browser.find_element(By.ID, "reset-confirm").click()
    said = wait_for(lambda: "seed" in browser.find_element(By.ID, "reset-said").text
                    and browser.find_element(By.ID, "reset-said").text)
    assert said == ("Reset the default world: seed 2026, size 20; journal (1 request), events (0), fault rules (1) and "
                    "scenario cleared; data and clock back to the start.")
    assert call(base_url, "GET", "/_sandbox/faults")[1]["rules"] == []
    assert call(base_url, "GET", "/_sandbox/requests")[1]["requests"] == []
    wait_for(lambda: rows(browser, "fault-rows") == [])


def test_every_control_fits_its_panel_at_a_room_s_screen_sizes(base_url, browser):
    """Issue 31 point 1: at 1024x768 at 150% zoom, 1280x720 and 1400x1000, in normal and projector mode, with a long
    rule on, a request opened and a new workspace's credentials shown: no horizontal scrollbar anywhere, and every
    button, field and feed cell inside its panel."""
    from selenium.webdriver.common.by import By

    open_page(browser, base_url)
    assert call(base_url, "POST", "/_sandbox/faults", {
        "vendor": "capillary", "operation": "updateRedeemPoints", "fault": "redemption-update-failed",
        "probability": 0.5, "latencyMs": 1500, "count": 3})[0] == 201
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "Ring twice"}, {**DOC_KEY, "X-Sandbox-Fault": "rate-limit"})
    call(base_url, "GET", FABRIC_GET, headers=FABRIC)
    before = {w["id"] for w in call(base_url, "GET", "/_sandbox/workspaces")[1]["workspaces"]}
    try:
        for size, (width, height, scale) in SIZES.items():
            with viewport(browser, width, height, scale):
                browser.get(base_url + "/")
                wait_for(lambda: len(rows(browser, "request-rows")) == 2 and rows(browser, "fault-rows"))
                browser.execute_script("document.querySelector('#request-rows tr').click()")
                browser.find_element(By.ID, "create-workspace").click()
                wait_for(lambda: rows(browser, "workspace-credential-rows"))
                assert browser.execute_script("return innerWidth") == width
                for mode in (False, True):
                    projector(browser, mode)
                    assert sideways(browser) == [], (size, "projector" if mode else "normal")
                projector(browser, False)
    finally:
        for workspace in call(base_url, "GET", "/_sandbox/workspaces")[1]["workspaces"]:
            if workspace["id"] not in before:
                call(base_url, "DELETE", f"/_sandbox/workspaces/{workspace['id']}")


def test_projector_mode_is_remembered_and_keeps_the_feed_readable_at_18_px_and_up(base_url, browser):
    """Issue 31 point 2: a toggle in the header, remembered in localStorage (this page and the catalogue); no text
    under 18 px; at 1024x768 at 150% the feed's time, method, status and decider each stay on one line and the path
    whole, inside the panel."""
    from selenium.webdriver.common.by import By

    open_page(browser, base_url)
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "Ring twice"}, {**DOC_KEY, "X-Sandbox-Fault": "rate-limit"})
    with viewport(browser, *SIZES["1024x768 at 150%"]):
        browser.get(base_url + "/")
        wait_for(lambda: rows(browser, "request-rows"))
        assert small_text(browser)  # the normal page has small print
        projector(browser, True)
        assert browser.find_element(By.ID, "projector").get_attribute("aria-pressed") == "true"
        assert browser.execute_script("return localStorage.getItem('sandboxProjector')") == "on"
        browser.get(base_url + "/")  # remembered
        wait_for(lambda: rows(browser, "request-rows"))
        assert browser.execute_script("return document.documentElement.classList.contains('projector')")
        browser.execute_script("document.querySelector('#request-rows tr').click()")
        wait_for(lambda: browser.find_element(By.ID, "request-detail").is_displayed())
        assert small_text(browser) == []
        cells = browser.execute_script(LINES + """
            const feed = document.getElementById('feed').getBoundingClientRect();
            return [...document.querySelector('#request-rows tr').cells].map(c => {
                const r = c.getBoundingClientRect();
                return {name: c.className.split(' ')[0], text: c.innerText, lines: lines(c), inside: r.left >= feed.left
                        && r.right <= feed.right && r.bottom <= innerHeight, size: parseFloat(getComputedStyle(c).fontSize)};
            });""")
        shown = {c["name"]: c for c in cells}
        assert {c["name"] for c in cells} >= {"time", "method", "path", "status", "decider"}
        assert all(c["inside"] and c["size"] >= 18 for c in cells), cells
        assert [shown[n]["lines"] for n in ("time", "method", "status", "decider")] == [1, 1, 1, 1], cells
        assert shown["path"]["text"] == PATCH_URL and shown["status"]["text"] == "429"
        assert shown["decider"]["text"] == "fault: rate-limit"  # the journal's reason, in words
        browser.get(base_url + "/catalogue")  # the catalogue page reads the same setting
        assert browser.execute_script("return document.documentElement.classList.contains('projector')")
        assert small_text(browser) == [] and sideways(browser) == []
        projector(browser, False)
        assert browser.execute_script("return localStorage.getItem('sandboxProjector')") == "off"


def test_credentials_are_one_header_a_line_with_a_copy_button(base_url, browser):
    """Issue 31 point 2: the demo and a new workspace's credentials, each header on its own line at 1400x1000, with
    a copy button that copies the line as a client sends it."""
    from selenium.webdriver.common.by import By

    open_page(browser, base_url)
    lines = lambda tbody: browser.execute_script(LINES + f"""return [...document.querySelectorAll('#{tbody} .secret code')]
        .map(code => [code.innerText, lines(code)])""")
    shown = dict(lines("credential-rows"))
    assert shown["Authorization: Bearer XXXXXX"] == 1 and shown["x-fabric-tenant-id: 61a5f0c2b3d4e5f6a7b8c9d0"] == 1
    assert all(height == 1 for height in shown.values()), shown
    browser.execute_cdp_cmd("Browser.grantPermissions", {"origin": base_url,
                                                         "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    copy = browser.find_element(By.CSS_SELECTOR, "#credential-rows button.copy[data-copy='Authorization: Bearer XXXXXX']")
    copy.click()
    wait_for(lambda: copy.text == "copied")
    copied = browser.execute_async_script("navigator.clipboard.readText().then(arguments[0], e => arguments[0]('?' + e))")
    assert copied == "Authorization: Bearer XXXXXX"

    browser.find_element(By.ID, "create-workspace").click()
    listed = wait_for(lambda: lines("workspace-credential-rows"))
    workspace = call(base_url, "GET", "/_sandbox/workspaces")[1]["workspaces"][-1]["id"]
    try:
        bearer = [height for text, height in listed if text.startswith("Authorization: Bearer XXXXXX.")]
        assert bearer == [1]  # on one line, not wrapped in a narrow column
        assert browser.find_element(By.ID, "workspace").is_displayed()
        assert "Workspace " in browser.find_element(By.ID, "workspace-said").text
    finally:
        call(base_url, "DELETE", f"/_sandbox/workspaces/{workspace}")


def test_the_catalogue_page_shows_each_vendors_faults_operations_and_magic_values(base_url, browser):
    """Issue 31 point 5: /catalogue, linked from the demo page's header and from /docs, says per vendor what each
    fault does and which operations take it, and per operation the faults it accepts and its magic values: the same
    as GET /_sandbox/faults/catalogue."""
    from selenium.webdriver.common.by import By

    catalogue = call(base_url, "GET", "/_sandbox/faults/catalogue")[1]["vendors"]
    open_page(browser, base_url)
    assert browser.find_element(By.ID, "catalogue-link").get_attribute("href") == base_url + "/catalogue"
    browser.get(base_url + "/docs/")
    assert wait_for(lambda: browser.find_elements(By.ID, "catalogue-link"))[0].get_attribute("href") == base_url + "/catalogue"
    browser.get(base_url + "/catalogue")
    assert browser.find_element(By.TAG_NAME, "h2").text == "Fault catalogue and magic values"
    # Read as [key, text] pairs: the order they are shown in is part of what is checked.
    pairs = browser.execute_script("""
        return [...document.querySelectorAll('section.vendor')].map(s => [s.id, {
            faults: [...s.querySelectorAll('table.faults tbody tr')].map(r => [r.cells[0].innerText.split('\\n')[0], r.innerText]),
            operations: [...s.querySelectorAll('table.operations tbody tr')].map(r => [r.id, r.innerText]),
        }]);""")
    assert [vendor for vendor, _ in pairs] == [v["vendor"] for v in catalogue] == ["returning-ai", "fabric", "capillary"]
    page = {vendor: {"faults": dict(shown["faults"]), "operations": dict(shown["operations"]),
                     "order": ([name for name, _ in shown["faults"]], [op for op, _ in shown["operations"]])}
            for vendor, shown in pairs}
    for vendor in catalogue:
        shown = page[vendor["vendor"]]
        assert shown["order"][0] == [f["name"] for f in vendor["faults"]]
        for fault in vendor["faults"]:
            assert fault["description"] in shown["faults"][fault["name"]]
            assert ("generic" if fault["scope"] == "generic" else f"{vendor['vendor']}'s own") in shown["faults"][fault["name"]]
        assert shown["order"][1] == [f"{vendor['vendor']}-{op['operationId']}" for op in vendor["operations"]]
        for op in vendor["operations"]:
            row = shown["operations"][f"{vendor['vendor']}-{op['operationId']}"]
            own = [f["name"] for f in vendor["faults"] if f["scope"] == "vendor"]
            assert "every generic fault" in row and all(name in row for name in op["faults"] if name in own)
            for magic in op["magicValues"]:
                assert f"{magic['in']} {magic['name']} = {magic['value']} → {magic['fault']}" in row
            if not op["magicValues"]:
                assert "no magic value" in row
    # e.g. Capillary's 750, on the one operation that takes it, and the bill number that always gets it
    assert "updateRedeemPoints" in page["capillary"]["faults"]["redemption-update-failed"]
    assert "body billNumber = FAULT-750 → redemption-update-failed" in page["capillary"]["operations"]["capillary-updateRedeemPoints"]


def test_docs_serve_the_contract_less_only_what_swagger_ui_cannot_read(base_url):
    """Issue 31 point 6: the copy /docs shows is the contract (/_sandbox/specs/<name>.json) less jsonSchemaDialect."""
    for name in ("returning-ai", "fabric", "capillary", "sandbox"):
        contract = call(base_url, "GET", f"/_sandbox/specs/{name}.json")[1]
        status, shown = call(base_url, "GET", f"/docs/specs/{name}.json")
        assert status == 200 and "jsonSchemaDialect" in contract
        assert shown == {key: value for key, value in contract.items() if key != "jsonSchemaDialect"}
    assert call(base_url, "GET", "/docs/specs/no-such-spec.json")[0] == 404


def test_docs_show_every_spec_without_a_warning_or_error_box(base_url, browser):
    """Issue 31 point 6: no red box above any spec (Swagger UI warned of jsonSchemaDialect on each), nor any once
    every operation is opened."""
    from selenium.webdriver.common.by import By

    for name in ("returning-ai", "fabric", "capillary", "sandbox"):
        contract = call(base_url, "GET", f"/_sandbox/specs/{name}.json")[1]
        browser.get(f"{base_url}/docs/?urls.primaryName={name}")
        title = wait_for(lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".info .title")])[0]
        assert title.startswith(contract["info"]["title"])
        operations = sum(1 for item in contract["paths"].values() for method in item
                         if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"))
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-control")) == operations)
        # Eight at a time: opening all of the control API's at once kept the renderer busy past the driver's 30 s
        # on a loaded machine.
        for first in range(0, operations, 8):
            browser.execute_script("[...document.querySelectorAll('.opblock-summary-control')].slice(arguments[0], "
                                   "arguments[0] + 8).forEach(e => e.click())", first)
            wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock .opblock-body"))
                     >= min(first + 8, operations), what=f"operations {first + 1}-{first + 8} of {name} opened")
        time.sleep(0.5)
        boxes = browser.execute_script("""return [...document.querySelectorAll(
            '.errors-wrapper, .errors, .error-wrapper, .version-pragma')].filter(e => e.getClientRects().length)
            .map(e => e.innerText)""")
        assert boxes == [], (name, boxes)


def test_screenshots_of_the_page_in_use(base_url, browser, tmp_path):
    """Issue 31 point 7: the page in use at 1280x720, a fault rule set with the form and the request it decided
    opened: demo-feed.png, then the same in projector mode, demo-projector.png (in SANDBOX_SCREENSHOTS when set: the
    README's pictures, docs/screenshots/)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    folder = Path(os.environ.get("SANDBOX_SCREENSHOTS") or tmp_path)
    open_page(browser, base_url)
    with viewport(browser, *SIZES["1280x720"]):
        browser.get(base_url + "/")
        wait_for(lambda: Select(browser.find_element(By.ID, "fault-vendor")).options)
        Select(browser.find_element(By.ID, "fault-vendor")).select_by_value("fabric")
        Select(browser.find_element(By.ID, "fault-name")).select_by_value("server-error")
        browser.find_element(By.ID, "add-fault").click()
        wait_for(lambda: rows(browser, "fault-rows"))
        call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "Ring twice"}, DOC_KEY)
        call(base_url, "GET", FABRIC_GET, headers=FABRIC)
        call(base_url, "PATCH", PATCH_URL, {"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2026"}, DOC_KEY)
        wait_for(lambda: len(rows(browser, "request-rows")) == 3)
        browser.execute_script("[...document.querySelectorAll('#request-rows tr')].find(r => r.innerText.includes('500')).click()")
        wait_for(lambda: "a fault rule of this world fired" in browser.find_element(By.ID, "detail-why").text)
        browser.execute_script("document.activeElement.blur(); scrollTo(0, 0)")
        pictures = {}
        for mode, name in ((False, "demo-feed.png"), (True, "demo-projector.png")):
            projector(browser, mode)
            time.sleep(0.3)  # drawn
            assert sideways(browser) == []
            png = browser.get_screenshot_as_png()
            (folder / name).write_bytes(png)
            pictures[name] = Image.open(io.BytesIO(png))
        assert {image.size for image in pictures.values()} == {(1280, 720)}
        projector(browser, False)
    call(base_url, "POST", "/_sandbox/reset", {})


def test_a_scenarios_story_is_steps_whose_buttons_send_the_request_and_show_the_answer(base_url, browser):
    """Issue 31 point 3: after loading, the story is numbered steps; a step's button sends its request with the
    world's demo credential and shows the answer beside it, saying whether it is the one the story says."""
    from selenium.webdriver.common.by import By

    open_page(browser, base_url)
    scenario = "#scenario-buttons button[data-name=\"voucher-typo-reissue\"]"
    wait_for(lambda: browser.execute_script(f"return document.querySelector('{scenario}')"))
    browser.execute_script(f"document.querySelector('{scenario}').click()")
    wait_for(lambda: browser.find_element(By.ID, "scenario-load").is_displayed())
    browser.find_element(By.ID, "scenario-load").click()
    steps = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#story-steps li"))
    assert len(steps) == 3 and "next" in steps[0].get_attribute("class")
    steps[0].find_element(By.TAG_NAME, "button").click()
    answer = wait_for(lambda: steps[0].find_element(By.CLASS_NAME, "answer").text)
    assert answer.startswith("→ 409 - as the story says")
    assert "next" in steps[1].get_attribute("class") and "done" in steps[0].get_attribute("class")
    steps[1].find_element(By.TAG_NAME, "button").click()
    assert wait_for(lambda: steps[1].find_element(By.CLASS_NAME, "answer").text).startswith("→ 200 - as the story says")
    voucher = call(base_url, "GET", "/_sandbox/state/rai_vouchers?id=507f1f77bcf86cd799439016")[1]["records"][0]
    assert voucher["code"] == "GOLD-2026-0001"  # the step changed the world, as its story says


def test_a_request_opened_shows_each_record_it_changed_before_and_after_and_the_feed_says_why_in_words(base_url, browser):
    """Issue 31 point 4: the detail shows the record before and after, the changed fields' lines marked; the feed's
    decider column reads as words (conflict: ..., ok), not a class name."""
    from selenium.webdriver.common.by import By

    open_page(browser, base_url)
    call(base_url, "PATCH", PATCH_URL, {"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2030"}, DOC_KEY)
    call(base_url, "PATCH", PATCH_URL, {"redemptionInstructions": "Ask at the desk"}, DOC_KEY)
    deciders = wait_for(lambda: len(found := browser.execute_script(
        "return [...document.querySelectorAll('#request-rows td.decider')].map(td => td.title)")) == 2 and found)
    assert deciders[0] == "ok" and deciders[1].startswith("conflict: ")
    browser.execute_script("document.querySelector('#request-rows tr').click()")
    wait_for(lambda: browser.find_element(By.ID, "detail-changes").is_displayed())
    title = browser.find_element(By.CSS_SELECTOR, "#detail-change-list h4").text
    assert title == ("rai_purchase_histories 507f1f77bcf86cd799439012 - changed: product.redemptionInstructions, "
                     "updatedAt")
    marked = browser.execute_script("return [...document.querySelectorAll('#detail-change-list .changed')]"
                                    ".map(s => s.textContent.trim())")
    assert any(m.startswith("product.redemptionInstructions: ") and "Ask at the desk" in m for m in marked)
    assert any(m.startswith("product.redemptionInstructions: ") and "Ask at the desk" not in m for m in marked)
    assert all(m.split(":")[0] in ("product.redemptionInstructions", "updatedAt") for m in marked)
    browser.execute_script("document.querySelectorAll('#request-rows tr')[1].click()")  # the 409 changed nothing
    wait_for(lambda: not browser.find_element(By.ID, "detail-changes").is_displayed())
