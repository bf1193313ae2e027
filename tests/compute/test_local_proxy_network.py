"""From inside a local sandbox, the model proxy is reachable and nothing else is.

The sandbox's network namespace has only loopback; the proxy arrives over its unix socket
(bound read-only into the sandbox) through the forwarder the CLI harnesses start. These
tests run that forwarder and a probe script inside a real bubblewrap sandbox.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cerver.gateway import Gateway
from cerver.proxy import ProxyGrant
from cerver.testing.mock_upstream import MockUpstream
from compute._proxy_bridge import forwarder_prelude
from compute.base import SandboxSpec
from compute.local import LocalCompute, LocalSandbox

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed: run `cerver setup` or `apt-get install -y bubblewrap`",
)

PROBE = """
import json, os, socket, urllib.error, urllib.request

url = os.environ["CERVER_PROXY_URL"]

def status(path, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    body = json.dumps({"model": "gpt-5.5", "input": "hi from the sandbox"}).encode()
    request = urllib.request.Request(url + path, data=body, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code

def connects(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False

def resolves(name):
    try:
        socket.getaddrinfo(name, 443)
        return True
    except OSError:
        return False

print(json.dumps({
    "proxy": status("/v2/proxy/openai/responses", os.environ["TOKEN"]),
    "proxy_without_token": status("/v2/proxy/openai/responses"),
    "gateway_routes": [status(p, os.environ["TOKEN"]) for p in ("/v2/sessions", "/healthz")],
    "database": connects("127.0.0.1", 5432),
    "host_api": connects("127.0.0.1", int(os.environ["API_PORT"])),
    "internet": connects("1.1.1.1", 443),
    "dns": resolves("api.anthropic.com"),
}))
"""


@pytest.fixture
async def host_api() -> AsyncIterator[int]:
    """A TCP service on the host's loopback, standing for the gateway's own API port."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
async def grant(gateway: Gateway) -> AsyncIterator[ProxyGrant]:
    issued = await gateway.proxy.grant(
        run_id="run_net", session_id="sess_net", harness="codex", on_usage=lambda *_: None
    )
    yield issued
    gateway.proxy.revoke(issued)


@pytest.fixture
async def sandbox(tmp_path: Path, gateway: Gateway) -> LocalSandbox:
    compute = LocalCompute(
        tmp_path / "sandboxes", isolation="bwrap", shared=[gateway.proxy.socket_dir]
    )
    return await compute.create(SandboxSpec(session_id="sess_net"))


def host_connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        return True
    except OSError:
        return False


async def test_only_the_proxy_is_reachable_from_inside(
    sandbox: LocalSandbox, grant: ProxyGrant, host_api: int, mock_upstream: MockUpstream
) -> None:
    assert grant.socket_path is not None
    command = "\n".join(
        [
            forwarder_prelude(grant.socket_path, ".proxy.port"),
            "export CERVER_PROXY_URL",
            'python3 -c "$PROBE"',
        ]
    )
    result = await sandbox.exec(
        command,
        timeout=60,
        env={"PROBE": PROBE, "TOKEN": grant.token, "API_PORT": str(host_api)},
    )
    assert result.exit_code == 0, result.stderr
    seen = json.loads(result.stdout)

    assert seen["proxy"] == 200  # through the forwarder and the socket, to the mock upstream
    assert mock_upstream.requests[-1]["body"]["input"] == "hi from the sandbox"
    assert seen["proxy_without_token"] == 401
    assert seen["gateway_routes"] == [404, 404]  # the socket serves the proxy route alone
    # The host's services answer on the host, and are out of the sandbox's reach.
    assert host_connects(host_api) and not seen["host_api"]
    assert not seen["database"]
    assert not seen["internet"] and not seen["dns"]
