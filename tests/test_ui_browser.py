"""The live demo page and the API reference, in a real headless Chromium (Debian's package, via Selenium).

.ci/run installs chromium and chromium-driver; on a machine without them these tests are skipped, saying so.
"""
import io
import json
import shutil
import threading
import time
import urllib.request

import pytest
from PIL import Image
from werkzeug.serving import make_server

from sandbox import Settings, create_app
from conftest import FABRIC

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not (CHROMEDRIVER and CHROMIUM),
                                reason="needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
@pytest.fixture(scope="module")
def base_url():
    app = create_app(Settings(size=20))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


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


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the page")


def rows(browser, tbody_id):
    # Read in one script: the live tables are redrawn every second, so element handles go stale.
    return browser.execute_script(f"return [...document.querySelectorAll('#{tbody_id} tr')].map(r => r.innerText)")


def test_demo_page_shows_credentials_faults_and_live_feed(base_url, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/")
    wait_for(lambda: any("Bearer XXXXXX" in r for r in rows(browser, "credential-rows")))
    assert len(rows(browser, "vendor-rows")) == 3

    # A request made elsewhere appears in the live feed.
    request = urllib.request.Request(base_url + "/fabric/v3/redemptions/614b58924e92f6861ac9d43b", headers=FABRIC)
    assert urllib.request.urlopen(request, timeout=5).status == 200
    wait_for(lambda: any("getRedemption" in r and "200" in r for r in rows(browser, "request-rows")))

    # Switch a fault on from the page: the next request fails, and the page lists the rule.
    browser.find_element(By.ID, "fault-vendor").send_keys("fabric")
    browser.find_element(By.ID, "fault-name").send_keys("server-error")
    browser.find_element(By.ID, "add-fault").click()
    wait_for(lambda: any("server-error" in r for r in rows(browser, "fault-rows")))
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=5)
    assert failed.value.code == 500
    # ...and off again.
    browser.execute_script("document.querySelector('#fault-rows button.off').click()")
    wait_for(lambda: rows(browser, "fault-rows") == [])
    assert urllib.request.urlopen(request, timeout=5).status == 200

    # Create a workspace and reset from the page.
    browser.find_element(By.ID, "create-workspace").click()
    wait_for(lambda: "Workspace ws" in browser.find_element(By.ID, "workspace-result").text)
    listed = json.load(urllib.request.urlopen(base_url + "/_sandbox/workspaces", timeout=5))["workspaces"]
    assert len(listed) == 1
    browser.find_element(By.ID, "reset").click()
    wait_for(lambda: "reset" in browser.find_element(By.ID, "story").text)

    # Screenshot check: a full-size, non-blank page.
    png = browser.get_screenshot_as_png()
    (tmp_path / "demo.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[0] >= 1200 and image.size[1] >= 800
    assert len(image.resize((200, 150)).getcolors(maxcolors=30000) or []) > 50  # text, tables, buttons: not blank


def test_docs_render_every_spec_offline(base_url, browser):
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/docs/")
    title = wait_for(lambda: [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".info .title")])
    assert "Returning.AI" in title[0]
    assert wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    # Every resource of the page came from the sandbox itself.
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(base_url) for url in resources)
