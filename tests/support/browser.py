"""Headless Chromium for the console's browser tests (Debian's chromium and chromium-driver).

Selenium is told the driver's and the browser's paths, and SE_OFFLINE is set, so Selenium
Manager never runs and nothing is fetched from the network. Screenshots go under
`test-results/screenshots/`; the run's summary names the folder.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parents[2] / "test-results" / "screenshots"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
saved: list[Path] = []  # screenshots of this session, for the summary


def start_browser() -> Any:
    """A headless Chromium driven by chromedriver; skips (fails in CI) when they are missing."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium and chromium-driver are required in CI", pytrace=False)
        pytest.skip("chromium/chromium-driver not installed (scripts/system-deps installs them)")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,900", "--disable-gpu", "--lang=en-GB"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    return driver


def look(driver: Any, scheme: str, width: str) -> None:
    """Emulate a colour scheme (light or dark) and a screen width (desktop or phone)."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    w, h = WIDTHS[width]
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": width == "phone"},
    )


def screenshot(driver: Any, name: str) -> Path:
    """Save the page as test-results/screenshots/NAME.png (full height of the page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    saved.append(path)
    return path
