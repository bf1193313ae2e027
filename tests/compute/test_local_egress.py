"""Egress of a local sandbox: allow-listed public hosts through the gateway's proxy, nothing
else, and never the gateway host's own services.

The proxy refuses non-public addresses; to reach a test server on loopback, the positive
tests build it with a wider address check (a test seam, not a gateway setting).
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from compute import _egress
from compute.base import SandboxSpec
from compute.local import LocalCompute, LocalSandbox

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed: run `uv run cerver setup --only bubblewrap`",
)

FETCH = (
    "python3 -c 'import sys, urllib.request, urllib.error\n"
    "try:\n"
    "    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
    "except urllib.error.HTTPError as exc:\n"
    "    print(exc.code, exc.read().decode())' "
)


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello from the allowed host"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[int]:
    """A TEST DOUBLE web server on the host's loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


async def networked(compute: LocalCompute) -> AsyncIterator[LocalSandbox]:
    async with await compute.create(SandboxSpec(session_id="s", network=True)) as sandbox:
        yield sandbox
    await compute.aclose()


@pytest.fixture
async def loopback_allowed(tmp_path: Path, web: int) -> AsyncIterator[LocalSandbox]:
    """A sandbox whose proxy may reach loopback (the seam), with ``localhost:<web>`` listed."""
    compute = LocalCompute(tmp_path, egress=[f"localhost:{web}"])
    compute._egress_proxy = _egress.EgressProxy(compute.egress, address_ok=lambda a: True)
    async for sandbox in networked(compute):
        yield sandbox


async def test_an_allow_listed_host_is_reached_through_the_proxy(
    loopback_allowed: LocalSandbox, web: int
) -> None:
    result = await loopback_allowed.exec(FETCH + f"http://localhost:{web}/")

    assert result.stdout.strip() == "hello from the allowed host", result.stderr


async def test_hosts_off_the_list_are_refused_naming_the_setting(
    loopback_allowed: LocalSandbox, web: int
) -> None:
    result = await loopback_allowed.exec(FETCH + "http://example.com/")

    assert result.stdout.startswith("403")
    assert "CERVER_SANDBOX_EGRESS" in result.stdout


async def test_direct_connections_still_fail(loopback_allowed: LocalSandbox, web: int) -> None:
    probe = (
        "python3 -c 'import socket\n"
        "try:\n"
        f'    socket.create_connection(("127.0.0.1", {web}), timeout=2); print("connected")\n'
        "except OSError:\n"
        '    print("blocked")\''
    )

    assert (await loopback_allowed.exec(probe)).stdout == "blocked\n"


async def test_the_host_services_are_never_reached_even_when_listed(
    tmp_path: Path, web: int
) -> None:
    compute = LocalCompute(tmp_path, egress=[f"localhost:{web}", "127.0.0.1:5432"])
    tunnel = (
        "python3 -c 'import http.client, os, urllib.parse\n"
        'proxy = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])\n'
        "conn = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=10)\n"
        'conn.set_tunnel("127.0.0.1", 5432)\n'
        "try:\n"
        '    conn.connect(); print("tunnel open")\n'
        "except OSError as exc:\n"
        "    print(exc)'"
    )
    async for sandbox in networked(compute):
        by_name = await sandbox.exec(FETCH + f"http://localhost:{web}/")
        by_address = await sandbox.exec(tunnel)

    assert by_name.stdout.startswith("403"), by_name.stdout + by_name.stderr
    assert "non-public address" in by_name.stdout
    assert "403" in by_address.stdout, by_address.stdout + by_address.stderr


def test_the_allow_list_matches_hosts_and_ports() -> None:
    allow = ["pypi.org", "*.pythonhosted.org", "example.com:8443"]

    assert _egress.allowed(allow, "pypi.org", 443)
    assert _egress.allowed(allow, "PyPI.org.", 80)
    assert not _egress.allowed(allow, "pypi.org", 22)
    assert _egress.allowed(allow, "files.pythonhosted.org", 443)
    assert not _egress.allowed(allow, "pythonhosted.org.evil.com", 443)
    assert _egress.allowed(allow, "example.com", 8443)
    assert not _egress.allowed(allow, "example.com", 443)


def test_only_public_addresses_are_connectable() -> None:
    for private in ("127.0.0.1", "10.0.0.5", "169.254.169.254", "::1", "0.0.0.0", "fe80::1"):
        assert not _egress.public_address(ipaddress.ip_address(private)), private
    assert _egress.public_address(ipaddress.ip_address("151.101.0.223"))


def test_connect_targets_are_parsed() -> None:
    assert _egress._split_target("pypi.org:443", 80) == ("pypi.org", 443)
    assert _egress._split_target("[::1]:8080", 80) == ("::1", 8080)
    assert _egress._split_target("pypi.org", 80) == ("pypi.org", 80)
    assert socket.AF_INET  # the module imports cleanly without a network
