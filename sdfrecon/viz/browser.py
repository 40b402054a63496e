"""Open a local HTML file in headless Chromium and report what a reader's browser would: the
console's errors and warnings, every network request the page made, and a screenshot.

Drives Chromium through selenium and the system's chromedriver (Debian: ``chromium`` and
``chromium-driver``; ``make chromium`` installs both); selenium is never let fetch a driver
of its own (the driver's path is always given, which skips Selenium Manager). Used by the
tests of report.html and by ``make figures`` for the report's screenshot. The DevTools-pipe
client this replaced gave byte-identical screenshots in the same time (2.4 s a page).
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars")
# Chrome's log levels -> the console's names
LEVELS = {"SEVERE": "error", "WARNING": "warning", "INFO": "info", "DEBUG": "debug"}
INSTALL = "sudo apt-get install chromium chromium-driver; pip install selenium (make chromium does both)"


def find_chromium() -> str | None:
    """The Chromium executable on PATH (Debian: chromium), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_browser() -> str | None:
    """Why :func:`load_page` cannot run here (what is not installed), or None when it can."""
    missing = [name for name, ok in (("chromium", find_chromium()), ("chromedriver", shutil.which("chromedriver")))
               if not ok]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium")
    return f"{', '.join(missing)} not installed ({INSTALL})" if missing else None


@dataclass
class PageReport:
    """What loading a page produced: console/log messages (level, text), the URLs it
    requested (the page itself included) and the screenshot's PNG bytes."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: bytes = b""

    @property
    def errors(self) -> list[str]:
        return [text for level, text in self.messages if level == "error"]


def load_page(page: Path, width: int = 1280, height: int = 900, full_page: bool = True,
              timeout: float = 60.0) -> PageReport:
    """Load the local file ``page`` in a fresh headless Chromium at width x height CSS pixels
    and return its console messages, requests and a PNG screenshot (of the whole page, up
    to 8000 pixels high, when full_page). Raises FileNotFoundError naming what is missing."""
    reason = missing_browser()
    if reason is not None:
        raise FileNotFoundError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find_chromium()
    for flag in (*FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        driver.set_page_load_timeout(timeout)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        driver.get(Path(page).resolve().as_uri())  # returns after the load event
        time.sleep(0.3)  # late console messages
        report = PageReport()
        for entry in driver.get_log("browser"):
            report.messages.append((LEVELS.get(entry["level"], entry["level"].lower()), entry["message"]))
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                report.requests.append(message["params"]["request"]["url"])
        shot: dict = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            shot["clip"] = {"x": 0, "y": 0, "width": width, "height": min(size["height"], 8000), "scale": 1}
        report.screenshot = base64.b64decode(driver.execute_cdp_cmd("Page.captureScreenshot", shot)["data"])
        return report
    finally:
        driver.quit()
