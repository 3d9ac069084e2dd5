"""Debian's headless Chromium driven by Selenium, for the tests that look at pages."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


def chromium_driver():
    """A headless Chromium at 1400x1000 with a throwaway profile (fails, saying how to install it, when absent)."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(chromium) and os.path.exists(chromedriver)):
        pytest.fail(
            "Debian's chromium and chromium-driver are needed for the browser test; the README's test "
            "command installs them (apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tempfile.mkdtemp(prefix='edgebench-chromium-')}",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(chromedriver), options=opts)
