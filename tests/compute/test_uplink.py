"""A relay's uplink: forwards ``/v2/proxy/…`` (and nothing else) to the gateway's URL."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from compute._uplink import Uplinks
from tests.matrix.support import free_port, serve_app


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "path": request.url.path,
            "query": request.url.query,
            "key": request.headers.get("x-api-key"),
            "body": (await request.body()).decode(),
        }
    )


GATEWAY = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


async def test_the_uplink_reaches_the_gateways_proxy_and_nothing_else(tmp_path: Path) -> None:
    uplinks = Uplinks(tmp_path / "up")
    try:
        async with serve_app(GATEWAY, free_port()) as gateway_url:
            socket_path = await uplinks.ensure(gateway_url)
            assert await uplinks.ensure(gateway_url) == socket_path  # one per gateway URL
            transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
            async with httpx.AsyncClient(transport=transport, base_url="http://uplink") as sandbox:
                proxied = await sandbox.post(
                    "/v2/proxy/anthropic/v1/messages?beta=true",
                    content=b"{}",
                    headers={"x-api-key": "cpx_run_token"},
                )
                assert proxied.json() == {
                    "path": "/v2/proxy/anthropic/v1/messages",
                    "query": "beta=true",
                    "key": "cpx_run_token",
                    "body": "{}",
                }
                for path in (
                    "/v2/sessions",
                    "/healthz",
                    "/v2/proxyx/a",
                    "/v2/proxy/../sessions",
                    "/v2/proxy/%2e%2e/%2e%2e/v2/sessions",
                    "/v2/proxy/anthropic/%2E%2E/%2E%2E/%2e%2e/v2/accounts",
                ):
                    answer = await sandbox.get(path)
                    assert answer.status_code == 404, (path, answer.text)
            assert socket_path.stat().st_mode & 0o777 == 0o666
    finally:
        await uplinks.aclose()


async def test_an_unreachable_gateway_is_a_502_naming_it(tmp_path: Path) -> None:
    uplinks = Uplinks(tmp_path / "up")
    try:
        target = f"http://127.0.0.1:{free_port()}"
        transport = httpx.AsyncHTTPTransport(uds=str(await uplinks.ensure(target)))
        async with httpx.AsyncClient(transport=transport, base_url="http://uplink") as sandbox:
            refused = await sandbox.post("/v2/proxy/openai/responses", content=b"{}")
        assert refused.status_code == 502 and target in refused.text
    finally:
        await uplinks.aclose()
