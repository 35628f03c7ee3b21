"""The status page in a real headless browser (Debian's chromium via Selenium)."""

import shutil

import pytest
from serve_parts import BRANCH, wait_until

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed"
)


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip(
            "chromium and chromedriver are not installed "
            "(apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path=driver_path)
    )
    yield driver
    driver.quit()


def _script(browser, code):
    return browser.execute_script(code)


def test_the_page_shows_each_stream_and_follows_adds_and_removes(
    browser, daemons, pets_video, models_dir
):
    stream = {"source": str(pets_video), "branch": BRANCH, "loop": True}
    daemon = daemons({"models": str(models_dir), "streams": [{"id": "a", **stream}]})
    browser.get(f"http://127.0.0.1:{daemon.port}/")
    wait_until(
        lambda: _script(
            browser,
            """
            const card = document.getElementById('stream-a');
            const img = card && card.querySelector('img');
            return img && img.complete && img.naturalWidth > 0;""",
        ),
        30,
        "stream a's latest frame on the page",
    )
    card = browser.find_element("id", "stream-a")
    assert card.find_element("css selector", ".branch").text == BRANCH
    wait_until(
        lambda: _script(
            browser,
            "return document.querySelectorAll("
            "'#stream-a polyline.latency').length === 1",
        ),
        10,
        "the latency plot",
    )

    assert daemon.client.post("/streams", json={"id": "b", **stream}).status_code == 201
    wait_until(
        lambda: _script(browser, "return !!document.getElementById('stream-b')"),
        15,
        "the new stream on the page",
    )
    daemon.client.delete("/streams/b")
    wait_until(
        lambda: _script(browser, "return !document.getElementById('stream-b')"),
        15,
        "the removed stream to leave the page",
    )
