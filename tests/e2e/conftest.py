"""The real `cerver serve` process as a fixture."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, PRICES_FILE

START_TIMEOUT_S = 90


def bootstrap_key(data_dir: Path) -> str:
    """The API key `cerver serve` wrote to ``<data_dir>/credentials`` on its first start."""
    return (data_dir / "credentials").read_text().split("CERVER_API_KEY=")[1].split()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`cerver serve` on a free port with an empty data dir and no provider keys."""
    with serving(tmp_path) as running:
        yield running


PORT_ATTEMPTS = 3


@contextmanager
def serving(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Run `cerver serve` on ``tmp_path`` for the block; yields its URL and data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_", "CERVER_"))
    }
    env.update(CERVER_DATA_DIR=str(tmp_path), CERVER_PRICES_FILE=str(PRICES_FILE))
    # Output goes to a file: an undrained pipe fills up (64 KiB of access log) and the
    # server then blocks on its next log line.
    log_path = tmp_path / "serve.log"
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        log = log_path.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cerver", "serve"],
            env={**env, "CERVER_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        if _answers(url, proc):
            break
        log.close()
        output = log_path.read_text()
        # The free port can be taken (a client's ephemeral port) before the server binds it.
        if "address already in use" in output and attempt < PORT_ATTEMPTS:
            continue
        if proc.poll() is None:
            proc.kill()
            pytest.fail(f"cerver serve did not answer /healthz within {START_TIMEOUT_S} s")
        pytest.fail(f"cerver serve exited early:\n{output}")
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


def _answers(url: str, proc: subprocess.Popen[str]) -> bool:
    """Whether the server at ``url`` answers ``/healthz`` before it exits or the start-up
    timeout (generous: a loaded CI machine can take many seconds to import the modules)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            return False
    return False


class ServeProcess:
    """One `cerver serve` process of a test (see the ``serve`` fixture)."""

    def __init__(self, proc: subprocess.Popen[str], url: str, log_path: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_path = log_path

    def output(self) -> str:
        """Everything it printed (waits for it to exit; kill or terminate it first)."""
        self.proc.wait(timeout=30)
        return self.log_path.read_text()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start `cerver serve` processes sharing one store (``tmp_path/cerver.db``) and one admin
    key (``ADMIN_KEY``): call it with extra ``serve`` arguments and ``CERVER_*`` / provider
    variables. Every process still running at the end is killed."""
    started: list[ServeProcess] = []
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_", "CERVER_"))
    }

    def start(*args: str, port: int | None = None, **env: str) -> ServeProcess:
        port = port or free_port()
        data_dir = tmp_path / f"gateway-{len(started)}"
        data_dir.mkdir(parents=True, exist_ok=True)
        variables = {
            **base,
            "CERVER_DATA_DIR": str(data_dir),
            "CERVER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cerver.db'}",
            "CERVER_ADMIN_KEY": ADMIN_KEY,
            "CERVER_PORT": str(port),
            "CERVER_PRICES_FILE": str(PRICES_FILE),
            **env,
        }
        # Output goes to a file, like ``serving``: an undrained pipe would block the server.
        log_path = data_dir / "serve.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cerver", "serve", *args],
                env=variables,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        process = ServeProcess(proc, f"http://127.0.0.1:{port}", log_path)
        started.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"cerver serve exited early:\n{process.output()}")
            try:
                if httpx.get(f"{process.url}/readyz", timeout=1).status_code == 200:
                    return process
            except httpx.TransportError:
                time.sleep(0.1)
        proc.kill()
        pytest.fail(
            f"cerver serve did not get ready within {START_TIMEOUT_S} s:\n{process.output()}"
        )

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()  # a `--workers` parent's workers see it die and drain
        print(process.output()[-20_000:])
