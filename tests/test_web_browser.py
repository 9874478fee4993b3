"""The web page in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by tests/install-tools.sh) driven by Selenium, against a real
``aztags serve`` process on 127.0.0.1 over the small store of test_web.py (four weekly files).

Each flow a person would follow: search a tag (suggestions, prefixes, the chart with one bar per
snapshot), paste addresses, show a profile for a region, read the chart from the keyboard, see
the server's sentence for a mistake, and use the page behind HTTP basic auth. Assertions are on
the DOM; a screenshot of each flow is kept in the test's temporary folder (its path is printed:
``pytest -s`` shows it)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.test_web import DATES, build_store

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')"
)
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
)
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "headless Chromium is not installed: as root, sh tests/install-tools.sh installs "
        "Debian's chromium and chromium-driver",
        allow_module_level=True,
    )

USER, PASSWORD = "ops", "s3cret pass"
WAIT = 20  # seconds: a generous bound for a page on a busy 2-core machine, not a timing check


# -- the server and the browser --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``aztags serve`` in a process of its own, stopped with SIGTERM."""

    def __init__(self, folder: Path, db: Path, profiles: Path, auth: bool = False):
        config = folder / "aztags.toml"
        config.write_text(
            f'[auth]\nusername = "{USER}"\npassword = "env:AZTAGS_TEST_WEB_PASSWORD"\n'
            if auth
            else ""
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZTAGS_")}
        env.update(
            XDG_CONFIG_HOME=str(folder / "xdg"),
            AZTAGS_TEST_WEB_PASSWORD=PASSWORD,
            PYTHONUNBUFFERED="1",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "serve.log"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "cli.py"),
                "--config",
                str(config),
                "serve",
                "--port",
                str(self.port),
                "--db",
                str(db),
                "--profiles-dir",
                str(profiles),
                "--max-age-days",
                "36500",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        headers = {}
        if auth:
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        deadline = time.monotonic() + WAIT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"aztags serve exited: {self.log.read_text()}")
            try:
                request = urllib.request.Request(self.url + "/healthz", headers=headers)
                with urllib.request.urlopen(request, timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"aztags serve did not answer: {self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, Path]:
    return build_store(tmp_path_factory.mktemp("web-store"))


@pytest.fixture(scope="module")
def server(store, tmp_path_factory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve"), *store)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def auth_server(store, tmp_path_factory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve-auth"), *store, auth=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=en-US",
        # no traffic of the browser's own: this machine talks to 127.0.0.1 only
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-pings",
        "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, tmp_path):
    """The browser with its logs emptied; after the test, no script error may be in them (the
    console's lines for 4xx answers, which some tests ask for, are not script errors)."""
    browser.get_log("browser")
    browser.get_log("performance")
    yield browser
    errors = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and e.get("source") != "network"
    ]
    assert errors == [], errors


def open_page(driver, url: str) -> None:
    driver.get("about:blank")
    driver.get(url)
    until(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))


def until(driver, check, what: str = "the page"):
    return WebDriverWait(driver, WAIT).until(check, f"waited for {what}")


def shown(driver, element_id: str) -> bool:
    return driver.find_element(By.ID, element_id).is_displayed()


def screenshot(driver, folder: Path, name: str) -> Path:
    """The whole page (beyond the window) as PNG."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {path}")
    return path


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def bars(driver) -> list[dict[str, str]]:
    return [
        {
            key: bar.get_attribute(f"data-{key}")
            for key in ("change-number", "file-date", "added", "removed")
        }
        | {"class": bar.get_attribute("class")}
        for bar in driver.find_elements(By.CSS_SELECTOR, "#chart svg g.bar")
    ]


def chart_for(driver, subject: str) -> list[dict[str, str]]:
    until(
        driver,
        lambda d: (
            subject in d.find_element(By.ID, "chart-subject").text
            and d.find_elements(By.CSS_SELECTOR, "#chart svg g.bar")
        ),
        f"the chart of {subject}",
    )
    return bars(driver)


def rows(driver, table_id: str) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
        for row in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    ]


# -- the flows -------------------------------------------------------------------------------------


def test_a_tag_search_shows_its_prefixes_and_a_chart_with_one_bar_per_snapshot(
    page, server, tmp_path
):
    open_page(page, server.url + "/")
    suggestions = [
        o.get_attribute("value") for o in page.find_elements(By.CSS_SELECTOR, "#tag-names option")
    ]
    assert sorted(suggestions) == sorted(
        ["AzureCloud", "Storage", "Storage.WestUS", "Sql.WestUS", "New.WestUS"]
    )
    assert "changeNumber 104" in page.find_element(By.ID, "snapshot").text

    box = page.find_element(By.ID, "tag-input")
    box.send_keys("storage.westus", Keys.ENTER)  # any case; Enter submits
    until(page, lambda d: shown(d, "tag-result"), "the prefixes")
    assert page.find_element(By.ID, "tag-title").text == "Storage.WestUS"
    assert page.find_element(By.ID, "tag-prefixes").text.splitlines() == [
        "10.0.1.0/24",
        "10.0.2.0/24",
        "2001:db8::/48",
    ]
    feed = page.find_element(By.ID, "tag-feed").get_attribute("href")
    assert feed == server.url + "/feeds/Storage.WestUS.txt?cloud=public"

    found = chart_for(page, "Storage.WestUS")
    assert [b["change-number"] for b in found] == ["101", "102", "103", "104"]
    assert [b["file-date"] for b in found] == DATES
    assert [(b["added"], b["removed"]) for b in found[1:]] == [("1", "0"), ("2", "1"), ("0", "0")]
    assert "baseline" in found[0]["class"] and "baseline" not in found[1]["class"]
    heights = [
        float(r.get_attribute("height"))
        for r in page.find_elements(By.CSS_SELECTOR, "#chart g.bar rect.added")
    ]
    assert heights[1] > heights[0] > 0 and heights[2] == 0  # +2 is taller than +1; 0 is nothing
    assert len(rows(page, "chart-table")) == 4
    assert page.current_url.endswith("#cloud=public&tag=Storage.WestUS")
    screenshot(page, tmp_path, "tag-search")

    # nothing was loaded from anywhere but this server
    urls = requested_urls(page)
    assert any(u.endswith("/v1/tags/Storage.WestUS/history?cloud=public") for u in urls), urls
    assert all(u.startswith(server.url + "/") for u in urls), urls


def test_pasted_addresses_show_the_tags_that_hold_them(page, server, tmp_path):
    open_page(page, server.url + "/")
    page.find_element(By.ID, "lookup-input").send_keys("10.0.1.5\n20.0.1.9\n2001:db8::1\n")
    page.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    until(page, lambda d: shown(d, "lookup-result"), "the lookup")
    assert rows(page, "lookup-table") == [
        ["10.0.1.5", "Storage.WestUS", "10.0.1.0/24", "westus", "Storage"],
        ["AzureCloud", "10.0.0.0/8", "-", "AzureCloud"],
        ["20.0.1.9", "Sql.WestUS", "20.0.1.0/24", "westus", "Sql"],
        ["AzureCloud", "20.0.0.0/8", "-", "AzureCloud"],
        ["2001:db8::1", "Storage.WestUS", "2001:db8::/48", "westus", "Storage"],
    ]
    summary = page.find_element(By.ID, "lookup-summary").text
    assert summary.startswith("3 entries, 3 in a service tag")
    screenshot(page, tmp_path, "lookup")

    # a line that is not an address gets the server's sentence; the others are still answered
    box = page.find_element(By.ID, "lookup-input")
    box.clear()
    box.send_keys("40.0.0.7\nnot-an-address\n99.0.0.1", Keys.CONTROL, Keys.ENTER)
    until(page, lambda d: "not an address" in d.find_element(By.ID, "lookup-summary").text)
    found = rows(page, "lookup-table")
    assert found[0] == ["40.0.0.7", "New.WestUS", "40.0.0.0/24", "westus", "New"]
    assert found[1][0] == "not-an-address" and "not an IPv4 or IPv6 address" in found[1][1]
    assert found[2] == ["99.0.0.1", "in no service tag"]

    # a tag in the answer opens that tag
    page.find_element(By.CSS_SELECTOR, "#lookup-table button.link").click()
    until(page, lambda d: d.find_element(By.ID, "tag-title").text == "New.WestUS")
    assert page.find_element(By.ID, "tag-prefixes").text == "40.0.0.0/24"


def test_a_profile_for_a_region_shows_its_rules_and_its_chart(page, server, tmp_path):
    open_page(page, server.url + "/")
    Select(page.find_element(By.ID, "profile-select")).select_by_value("storagesql")
    assert "Blob storage and SQL" in page.find_element(By.ID, "profile-description").text
    region = page.find_element(By.ID, "profile-region")
    region.send_keys("West US", Keys.ENTER)
    until(page, lambda d: shown(d, "profile-result"), "the profile")
    assert page.find_element(By.ID, "profile-title").text.startswith("storagesql in westus")
    assert rows(page, "profile-rules") == [
        ["outbound", "tcp", "443", "Storage.WestUS", "2", "1", "blob uploads"],
        ["outbound", "tcp", "1433", "Sql.WestUS", "1", "0", "the database"],
        ["inbound", "tcp", "443", "Nope.{region} (missing)", "0", "0", "a feature we may not use"],
    ]
    assert rows(page, "profile-fqdns") == [["login.microsoftonline.com", "tcp", "443", "sign-in"]]
    assert "3 IPv4 and 1 IPv6" in page.find_element(By.ID, "profile-union").text
    feed = page.find_element(By.ID, "profile-feed").get_attribute("href")
    assert feed == server.url + "/feeds/profile/storagesql.txt?region=westus&cloud=public"

    found = chart_for(page, "profile storagesql in westus")
    assert [b["change-number"] for b in found] == ["101", "102", "103", "104"]
    assert [(b["added"], b["removed"]) for b in found[1:]] == [("1", "0"), ("3", "1"), ("0", "1")]
    screenshot(page, tmp_path, "profile")


def test_the_chart_reads_out_each_snapshot_from_the_keyboard(page, server, tmp_path):
    # a link to a tag opens it; this one is no longer in the file, but its history is drawn
    open_page(page, server.url + "/#tag=Old.WestUS")
    chart_for(page, "Old.WestUS")
    assert "Old.WestUS" in page.find_element(By.ID, "tag-error").text
    assert not shown(page, "chart-error")
    readout = page.find_element(By.ID, "chart-readout")
    svg = page.find_element(By.CSS_SELECTOR, "#chart svg")
    assert svg.get_attribute("tabindex") == "0" and svg.get_attribute("role") == "img"
    assert "4 snapshots" in page.find_element(By.ID, "chart-desc").get_attribute("textContent")

    page.execute_script("arguments[0].focus()", svg)
    assert readout.text.startswith("2025-01-27, changeNumber 104: +0 added, −0 removed")
    ActionChains(page).send_keys(Keys.ARROW_LEFT).perform()
    assert readout.text.startswith("2025-01-20, changeNumber 103: +0 added, −2 removed")
    assert "not in the file" in readout.text
    ActionChains(page).send_keys(Keys.HOME).perform()
    assert readout.text.startswith("2025-01-06, changeNumber 101: first stored snapshot, 2")
    selected = page.find_elements(By.CSS_SELECTOR, "#chart g.bar.selected")
    assert [b.get_attribute("data-change-number") for b in selected] == ["101"]
    screenshot(page, tmp_path, "chart-keyboard")


def test_mistakes_show_the_servers_sentence(page, server, tmp_path):
    open_page(page, server.url + "/")
    page.find_element(By.ID, "tag-input").send_keys("Nosuch.WestUS", Keys.ENTER)
    error = page.find_element(By.ID, "tag-error")
    until(page, lambda d: error.is_displayed(), "the error")
    assert "Nosuch.WestUS" in error.text and error.get_attribute("role") == "alert"
    assert not shown(page, "tag-result")

    page.find_element(By.ID, "profile-region").send_keys("Atlantis", Keys.ENTER)
    profile_error = page.find_element(By.ID, "profile-error")
    until(page, lambda d: profile_error.is_displayed(), "the profile error")
    assert "Atlantis" in profile_error.text

    # a cloud with no snapshot stored says so instead of offering nothing
    Select(page.find_element(By.ID, "cloud")).select_by_value("china")
    until(page, lambda d: "No China snapshot" in d.find_element(By.ID, "snapshot").text)
    assert page.find_elements(By.CSS_SELECTOR, "#tag-names option") == []
    screenshot(page, tmp_path, "mistakes")


def test_behind_basic_auth_the_page_uses_the_credentials_the_browser_has(
    page, auth_server, tmp_path
):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(auth_server.url + "/v1/tags", timeout=5)
    assert refused.value.code == 401

    host = auth_server.url.removeprefix("http://")
    open_page(page, f"http://{USER}:{PASSWORD.replace(' ', '%20')}@{host}/")
    until(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#tag-names option"), "suggestions")
    page.find_element(By.ID, "tag-input").send_keys("Sql.WestUS", Keys.ENTER)
    until(page, lambda d: shown(d, "tag-result"), "the prefixes")
    assert page.find_element(By.ID, "tag-prefixes").text == "20.0.1.0/24"
    assert len(chart_for(page, "Sql.WestUS")) == 4
    page.find_element(By.ID, "lookup-input").send_keys("20.0.1.9")
    page.find_element(By.CSS_SELECTOR, "#lookup-form button[type=submit]").click()
    until(page, lambda d: shown(d, "lookup-result"), "the lookup (a POST)")
    assert rows(page, "lookup-table")[0][:2] == ["20.0.1.9", "Sql.WestUS"]
    screenshot(page, tmp_path, "basic-auth")
