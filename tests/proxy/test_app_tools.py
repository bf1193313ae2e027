"""The MCP server of the app's tools (``/v2/proxy/mcp``): what a CLI run sees and how its calls
are parked until the run ends, on this replica or another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cerver.errors import AuthenticationFailed
from cerver.gateway import Gateway
from cerver.proxy.app_tools import MAX_PARKED_PER_RUN, AppToolsServer
from cerver.proxy.grants import ProxyGrants
from cerver.types import ProxyGrant
from harnesses.tools import APP_TOOLS_MCP_PATH, ToolSpec
from tests.proxy.test_shared_grants import issue, started_run

LOOKUP = ToolSpec("lookup_order", "Find an order.", {"type": "object"})
ACCEPT = "application/json, text/event-stream"


class Grants:
    """The server's authority over run tokens: this process's grants, nothing stored."""

    def __init__(self) -> None:
        self.grants = ProxyGrants()

    async def authorize(self, token: str | None) -> ProxyGrant:
        return self.grants.resolve(token)[0]

    async def until_ended(self, grant: ProxyGrant) -> None:
        await self.grants.until_ended(grant)


@pytest.fixture
async def served() -> AsyncIterator[tuple[AppToolsServer, Grants]]:
    grants = Grants()

    async def tools_of(grant: ProxyGrant) -> tuple[ToolSpec, ...]:
        return (LOOKUP,) if grant.run_id == "run_with_tools" else ()

    server = AppToolsServer(grants, tools_of)
    yield server, grants
    await server.aclose()


def grant_for(grants: Grants, run_id: str) -> ProxyGrant:
    return grants.grants.issue(
        run_id=run_id, session_id="sess_1", harness="claude-code", on_usage=lambda *_: None
    )


async def rpc(
    server: AppToolsServer, token: str, method: str, params: dict[str, Any] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        return await client.post(
            APP_TOOLS_MCP_PATH,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}},
            headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        )


async def test_a_run_sees_the_tools_its_app_offered_and_no_others(
    served: tuple[AppToolsServer, Grants],
) -> None:
    server, grants = served
    offered, other = grant_for(grants, "run_with_tools"), grant_for(grants, "run_without")
    hello = await rpc(
        server,
        offered.token,
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "cli", "version": "1"},
        },
    )
    assert hello.status_code == 200
    assert hello.json()["result"]["capabilities"]["tools"] is not None

    listed = (await rpc(server, offered.token, "tools/list")).json()["result"]["tools"]
    assert listed == [
        {"name": "lookup_order", "description": "Find an order.", "inputSchema": {"type": "object"}}
    ]
    assert (await rpc(server, other.token, "tools/list")).json()["result"]["tools"] == []


async def test_a_call_is_parked_until_the_run_ends(served: tuple[AppToolsServer, Grants]) -> None:
    server, grants = served
    grant = grant_for(grants, "run_with_tools")
    call = asyncio.create_task(
        rpc(server, grant.token, "tools/call", {"name": "lookup_order", "arguments": {"id": "9"}})
    )
    await asyncio.sleep(0.3)
    assert not call.done()  # the CLI waits; the app answers in the next turn

    grants.grants.revoke(grant)
    result = (await asyncio.wait_for(call, 5)).json()["result"]
    assert result["isError"] is True
    assert "result comes with the next turn" in result["content"][0]["text"]


async def test_a_tool_the_app_did_not_offer_is_an_error_at_once(
    served: tuple[AppToolsServer, Grants],
) -> None:
    server, grants = served
    grant = grant_for(grants, "run_with_tools")
    answer = await rpc(server, grant.token, "tools/call", {"name": "refund", "arguments": {}})
    result = answer.json()["result"]
    assert result["isError"] is True
    assert "No tool 'refund' here" in result["content"][0]["text"]


async def test_a_request_without_a_live_run_token_is_refused(
    served: tuple[AppToolsServer, Grants],
) -> None:
    server, grants = served
    grant = grant_for(grants, "run_with_tools")
    grants.grants.revoke(grant)
    for token in (grant.token, "cpx_forged"):
        refused = await rpc(server, token, "tools/list")
        assert refused.status_code == 401
        assert refused.json()["code"] == AuthenticationFailed.code.value
        assert "live run token" in refused.json()["detail"]


async def test_another_replica_parks_a_call_until_the_issuing_replica_ends_the_run(
    gateways: tuple[Gateway, Gateway],
) -> None:
    a, b = gateways
    sid, run_id = await started_run(a)
    issued = await issue(a, sid, run_id, [])
    seen_by_b = await b.proxy.authorize(issued.token)
    assert (seen_by_b.run_id, seen_by_b.session_id) == (run_id, sid)

    parked = asyncio.create_task(b.proxy.until_ended(seen_by_b))
    await asyncio.sleep(0.3)
    assert not parked.done()
    await a.proxy.release(issued)
    await asyncio.wait_for(parked, 5)
    with pytest.raises(AuthenticationFailed):
        await b.proxy.authorize(issued.token)


async def test_a_run_parks_at_most_a_bounded_number_of_calls(
    served: tuple[AppToolsServer, Grants],
) -> None:
    server, grants = served
    grant = grant_for(grants, "run_with_tools")
    call = {"name": "lookup_order", "arguments": {}}
    parked = [
        asyncio.create_task(rpc(server, grant.token, "tools/call", call))
        for _ in range(MAX_PARKED_PER_RUN)
    ]
    await asyncio.sleep(0.5)
    assert not any(task.done() for task in parked)

    refused = (await rpc(server, grant.token, "tools/call", call)).json()["result"]
    assert refused["isError"] is True and "Too many calls" in refused["content"][0]["text"]
    grants.grants.revoke(grant)
    await asyncio.wait_for(asyncio.gather(*parked), 10)
