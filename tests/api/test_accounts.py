"""Accounts, keys, and the rule that another account's session is a 404 like a missing one."""

from __future__ import annotations

import re

import httpx
import pytest

from cerver.api import create_app
from cerver.client import AsyncClient
from cerver.errors import AuthenticationFailed, Conflict, NotFound, PermissionDenied
from cerver.gateway import Gateway

# A body each session route accepts, so a 404 cannot be a 422 in disguise.
_BODIES = {
    "/input": {"content": "hi"},
    "/run-llm": {"input": "hi"},
    "/harness": {"harness": "openai"},
    "/switch-tool": {"tool": "openai"},
    "/run": {"code": "echo hi"},
    "/run/stream": {"code": "echo hi"},
    "/files": {"path": "a.txt", "content": "x"},
    "/tool-results": {"results": [{"tool_call_id": "call_1", "output": "ok"}]},
}


# Aliases kept out of the OpenAPI schema (none: the seed's aliases are listed, deprecated).
_HIDDEN: list[tuple[str, str]] = []


def _session_routes(app) -> list[tuple[str, str]]:
    """Every (method, path) of the app that takes a session id, read from its OpenAPI schema."""
    routes = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if "{session_id}" in path
        for method in operations
    ]
    return routes + _HIDDEN


async def test_another_accounts_session_is_a_404_on_every_route(
    gateway: Gateway, client: AsyncClient
) -> None:
    other = await client.create_account("other-tenant")
    theirs = (await client.create_session(user="u"))["session_id"]
    app = create_app(gateway)
    routes = _session_routes(app)
    assert len(routes) >= 14, routes
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {other['api_key']}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as http:
        for method, path in routes:
            suffix = re.sub(r"^/v2/sessions/\{session_id\}", "", path)
            body = _BODIES.get(suffix)
            kwargs = {"json": body} if body is not None and method in ("POST", "PUT") else {}
            responses = [
                await http.request(method, path.replace("{session_id}", sid), **kwargs)
                for sid in (theirs, "sess_doesnotexist")
            ]
            assert [r.status_code for r in responses] == [404, 404], (method, path)
            bodies = [r.json() for r in responses]
            for b, sid in zip(bodies, (theirs, "sess_doesnotexist"), strict=True):
                b["detail"] = b["detail"].replace(sid, "ID")
                b["context"] = {}
            assert bodies[0] == bodies[1], (method, path)
    # And nothing happened to the session.
    assert (await client.messages(theirs))["messages"] == []


async def test_only_admin_creates_accounts(client: AsyncClient, gateway: Gateway) -> None:
    created = await client.create_account("acme")
    assert created["api_key"].startswith("ck_")
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with AsyncClient("http://t", created["api_key"], transport=transport) as acme:
        assert (await acme.account())["name"] == "acme"
        with pytest.raises(PermissionDenied):
            await acme.create_account("sneaky")


async def test_keys_can_be_created_listed_and_revoked(
    client: AsyncClient, gateway: Gateway
) -> None:
    new = await client.create_key("ci")
    assert new["api_key"].startswith(new["prefix"])
    prefixes = [k["prefix"] for k in await client.list_keys()]
    assert new["prefix"] in prefixes
    assert all("api_key" not in k for k in await client.list_keys())
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with AsyncClient("http://t", new["api_key"], transport=transport) as ci:
        assert (await ci.account())["is_admin"] is True
        await client.revoke_key(new["prefix"])
        with pytest.raises(AuthenticationFailed):
            await ci.account()


async def test_first_start_writes_credentials_once(tmp_path, sqlite_url, mock_upstream) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, sqlite_url, mock_upstream, admin_key=None)
    gw = Gateway(settings)
    await gw.start()
    try:
        assert gw.bootstrap is not None and gw.bootstrap.api_key.startswith("ck_")
        path = tmp_path / "credentials"
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert gw.bootstrap.api_key in path.read_text()
    finally:
        await gw.stop()
    again = Gateway(settings)
    await again.start()
    try:
        assert again.bootstrap is None
    finally:
        await again.stop()


async def test_the_last_active_key_cannot_be_revoked(client: AsyncClient, gateway: Gateway) -> None:
    (only,) = await client.list_keys()
    with pytest.raises(Conflict) as refused:
        await client.revoke_key(only["prefix"])
    assert "last active API key" in str(refused.value)
    assert refused.value.context == {"prefix": only["prefix"], "active_keys": 1}
    assert (await client.account())["is_admin"] is True  # the key still works
    # With a second key, the first can go; then the second is the last.
    second = await client.create_key("rotated")
    await client.revoke_key(only["prefix"])
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with AsyncClient("http://t", second["api_key"], transport=transport) as rotated:
        with pytest.raises(Conflict):
            await rotated.revoke_key(second["prefix"])
        with pytest.raises(NotFound):
            await rotated.revoke_key(only["prefix"])  # already revoked
