"""A real `cerver serve` process and a headless Chromium driven by Selenium, for the console.

The gateway reaches models through the test session's mock upstream (a test double). Chromium
and chromedriver come from the OS packages (`cerver setup` installs them); without them the
browser tests skip. Screenshots go to ``tests/artifacts/console/`` (named in the README).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cerver.testing.mock_upstream import MockUpstream
from tests.conftest import ADMIN_KEY

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def console_url(
    tmp_path_factory: pytest.TempPathFactory, mock_upstream: MockUpstream
) -> Iterator[str]:
    """`cerver serve` with a known admin key, its models served by the mock upstream."""
    data_dir = tmp_path_factory.mktemp("console")
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_", "CERVER_", "OTEL_"))
    }
    env.update(
        CERVER_DATA_DIR=str(data_dir),
        CERVER_PORT=str(port),
        CERVER_ADMIN_KEY=ADMIN_KEY,
        CERVER_MOCK_UPSTREAM="false",
        CERVER_UPSTREAM_MAX_ATTEMPTS="1",
        ANTHROPIC_BASE_URL=mock_upstream.anthropic_base_url,
        ANTHROPIC_API_KEY="test-anthropic-key",
        OPENAI_BASE_URL=mock_upstream.openai_base_url,
        OPENAI_API_KEY="test-openai-key",
        CERVER_PRICES_FILE=os.environ["CERVER_PRICES_FILE"],
    )
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cerver", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            pytest.fail(f"cerver serve exited early:\n{(data_dir / 'serve.log').read_text()}")
    else:
        proc.kill()
        pytest.fail("cerver serve did not answer /healthz within 60 s")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def api(console_url: str) -> Iterator[httpx.Client]:
    """The admin's API client for the same server (to set up and check data)."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=console_url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium through Selenium, offline (no Selenium Manager downloads)."""
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: CI runs `cerver setup`, which installs it.")
        pytest.skip(
            "Chromium and chromedriver are not installed: run `cerver setup` "
            "(apt-get install -y chromium chromium-driver)."
        )
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--window-size=1360,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
