"""A real ``cerver relay`` process for tests, in its own network namespace when possible.

The relay runs as a separate process (``python -m cerver relay``) inside a fresh network
namespace joined to the host by a veth pair, so the gateway reaches it over a real network
hop and can lose it the way a remote machine is lost. Without ``ip netns`` (not root, no
iproute2) it falls back to a plain process on 127.0.0.1 and says so in ``isolation``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["RelayProcess", "relay_process"]


@dataclass
class RelayProcess:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]
    isolation: str  # "netns" or "loopback"
    namespace: str | None
    root: Path
    host_ip: str = "127.0.0.1"
    """The gateway host's address as the relay sees it (its veth peer in netns mode): a
    gateway listening there is the only thing the relay's namespace can reach."""

    def kill(self) -> None:
        """Kill the relay abruptly (SIGKILL), as a crashed machine would vanish."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _netns_usable() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"relay exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"relay did not become healthy:\n{log.read_text()}")


@contextmanager
def relay_process(tmp_path: Path, *, netns: bool = True) -> Iterator[RelayProcess]:
    token = secrets.token_hex(16)
    tag = secrets.token_hex(3)
    namespace = None
    prefix: list[str] = []
    host = host_ip = "127.0.0.1"
    port = _free_port()
    if netns and _netns_usable():
        namespace = f"cerver-{tag}"
        octet = secrets.randbelow(250) + 1
        host_ip, ns_ip = f"10.213.{octet}.1", f"10.213.{octet}.2"
        _ip("netns", "add", namespace)
        _ip("link", "add", f"vh{tag}", "type", "veth", "peer", "name", f"vn{tag}")
        _ip("link", "set", f"vn{tag}", "netns", namespace)
        _ip("addr", "add", f"{host_ip}/30", "dev", f"vh{tag}")
        _ip("link", "set", f"vh{tag}", "up")
        for args in (
            ("addr", "add", f"{ns_ip}/30", "dev", f"vn{tag}"),
            ("link", "set", f"vn{tag}", "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("netns", "exec", namespace, "ip", *args)
        prefix, host, port = ["ip", "netns", "exec", namespace], ns_ip, 8790
    log = tmp_path / f"relay-{tag}.log"
    argv = [*prefix, sys.executable, "-m", "cerver", "relay", "--host", host, "--port", str(port)]
    root = tmp_path / f"relay-{tag}"
    argv += ["--token", token, "--root", str(root)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    relay = RelayProcess(
        f"http://{host}:{port}",
        token,
        process,
        "netns" if namespace else "loopback",
        namespace,
        root,
        host_ip,
    )
    try:
        _wait_healthy(relay.base_url, process, log)
        yield relay
    finally:
        relay.kill()
        if namespace is not None:
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
            subprocess.run(["ip", "link", "del", f"vh{tag}"], capture_output=True)
