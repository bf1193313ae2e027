"""The real `cerver serve` process as a fixture."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import PRICES_FILE

START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`cerver serve` on a free port with an empty data dir and no provider keys."""
    with serve(tmp_path) as running:
        yield running


@contextmanager
def serve(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run `cerver serve` on ``tmp_path`` for the block; yields its URL and data dir."""
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_", "CERVER_"))
    }
    env.update(
        CERVER_DATA_DIR=str(tmp_path), CERVER_PORT=str(port), CERVER_PRICES_FILE=str(PRICES_FILE)
    )
    # Output goes to a file: an undrained pipe fills up (64 KiB of access log) and the
    # server then blocks on its next log line.
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cerver", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    # Generous: a loaded CI machine can take many seconds to import the server's modules.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"cerver serve exited early:\n{log_path.read_text()}")
    else:
        proc.kill()
        pytest.fail(f"cerver serve did not answer /healthz within {START_TIMEOUT_S} s")
    try:
        yield url, tmp_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        print(log_path.read_text()[-20_000:])
