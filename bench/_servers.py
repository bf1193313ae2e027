"""Start the mock upstream and a gateway as separate processes for benchmarks."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.litellm_env import DEFAULT_PATH as LITELLM_ENV
from bench.litellm_env import interpreter

ADMIN_KEY = "ck_bench_admin_key_000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within 90 s")


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], health_url: str, what: str
) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(health_url, proc, what)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (worker processes), from ``/proc``."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    for each in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine spent busy so far (``/proc/stat``): with
    :func:`cpu_seconds` it shows what else (the load generator, the upstream, other work on a
    shared machine) took the cores during a measurement."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def mock_upstream() -> Iterator[str]:
    """The mock upstream (a test double) in its own process; yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "cerver", "mock-upstream", "--port", str(port)]
    with process(args, dict(os.environ), f"{url}/_mock/health", "mock upstream"):
        yield url


@contextlib.contextmanager
def canned_upstream(*options: str) -> Iterator[str]:
    """The canned Anthropic upstream of ``bench/_canned_upstream.py`` (a test double, lighter
    than the mock upstream) in its own process, with its command-line ``options``; yields its
    base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench._canned_upstream", str(port), *options]
    with process(args, dict(os.environ), f"{url}/_mock/health", "canned upstream"):
        yield url


@contextlib.contextmanager
def gateway(upstream_url: str, *serve_args: str, **extra_env: str) -> Iterator[str]:
    """`cerver serve` on a fresh SQLite store whose harnesses call ``upstream_url``.

    The yielded URL carries the server process as ``url.process`` for CPU accounting.
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cerver-bench-") as data_dir:
        env = {
            **os.environ,
            "CERVER_DATA_DIR": data_dir,
            "CERVER_PORT": str(port),
            "CERVER_ADMIN_KEY": ADMIN_KEY,
            "ANTHROPIC_BASE_URL": upstream_url,
            "ANTHROPIC_API_KEY": "bench",
            "OPENAI_BASE_URL": f"{upstream_url}/v1",
            "OPENAI_API_KEY": "bench",
            **extra_env,
        }
        url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "cerver", "serve", "--log-level", "warning", *serve_args]
        with process(args, env, f"{url}/healthz", "cerver serve") as proc:
            yield ServerURL(url, proc, env)


@contextlib.contextmanager
def bare_relay(upstream_url: str) -> Iterator[str]:
    """The bare FastAPI relay of ``bench/_relay.py`` in its own process; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench._relay", upstream_url, str(port)]
    with process(args, dict(os.environ), f"{url}/health", "bare relay") as proc:
        yield ServerURL(url, proc, {})


@contextlib.contextmanager
def tcp_pipe(upstream_url: str) -> Iterator[str]:
    """The TCP pipe of ``bench/_tcp_pipe.py`` (the floor of a Python relay) in its own
    process; yields its URL, which answers for the upstream."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench._tcp_pipe", upstream_url, str(port)]
    with process(args, dict(os.environ), f"{url}/_mock/health", "TCP pipe") as proc:
        yield ServerURL(url, proc, {})


class ServerURL(str):
    """A server's base URL that also knows the server's process and environment."""

    process: subprocess.Popen
    env: dict[str, str]

    def __new__(cls, url: str, proc: subprocess.Popen, env: dict[str, str]) -> ServerURL:
        made = super().__new__(cls, url)
        made.process, made.env = proc, env
        return made


LITELLM_SKIP_NOTE = (
    "LiteLLM proxy: skipped (not installed; `python -m bench.litellm_env` installs it in an "
    "environment of its own, or set CERVER_BENCH_LITELLM_PYTHON to an interpreter that has "
    "litellm[proxy])"
)


def litellm_python() -> str:
    """The interpreter that runs the LiteLLM proxy: ``CERVER_BENCH_LITELLM_PYTHON``, else the
    environment ``bench.litellm_env`` made, else this one."""
    if chosen := os.environ.get("CERVER_BENCH_LITELLM_PYTHON"):
        return chosen
    made = interpreter(LITELLM_ENV)
    return str(made) if made.exists() else sys.executable


def litellm_proxy_available() -> bool:
    """Whether ``litellm[proxy]`` is importable by :func:`litellm_python` (checked in a child:
    importing it takes seconds, and it is never imported into the gateway or this process)."""
    checked = subprocess.run(
        [litellm_python(), "-c", "import litellm.proxy.proxy_server"],
        capture_output=True,
        timeout=120,
    )
    return checked.returncode == 0


@contextlib.contextmanager
def litellm_proxy(upstream_url: str, model: str) -> Iterator[ServerURL]:
    """The LiteLLM proxy (no database, one worker) in its own process, serving ``model`` from
    the mock upstream through its Anthropic-compatible ``/v1/messages``; yields its URL."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cerver-bench-litellm-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {model}\n"
            "    litellm_params:\n"
            f"      model: anthropic/{model}\n"
            f"      api_base: {upstream_url}\n"
            "      api_key: bench\n"
        )
        url = f"http://127.0.0.1:{port}"
        args = [
            litellm_python(),
            "-m",
            "litellm.proxy.proxy_cli",
            "--config",
            str(config),
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
        # The proxy refuses to start without a strong master key; clients send it as their key.
        env["LITELLM_MASTER_KEY"] = f"sk-{secrets.token_hex(32)}"
        with process(args, env, f"{url}/health/liveliness", "LiteLLM proxy") as proc:
            yield ServerURL(url, proc, env)
