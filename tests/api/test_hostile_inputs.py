"""Inputs that once crashed the server (found by schemathesis), replayed: each is now a 4xx
with the error shape, and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cerver.api import create_app
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.store.schema import MAX_INTEGER
from cerver.store.storable import REPLACEMENT
from cerver.testing.mock_upstream import MockUpstream, Reply
from cerver.testing.mock_upstream.script import ToolCallSpec
from tests.conftest import ADMIN_KEY, make_settings

JSON = {"Content-Type": "application/json"}
NUL_COMMAND = "printf 'a\\0b'"


@pytest.fixture
async def store_gateway(
    tmp_path: Path, database_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[Gateway]:
    """A gateway on SQLite, then on PostgreSQL (whose columns are the stricter)."""
    gateway = Gateway(make_settings(tmp_path, database_url, mock_upstream))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@pytest.fixture
async def store_client(store_gateway: Gateway) -> AsyncIterator[AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(store_gateway))
    async with AsyncClient("http://t", ADMIN_KEY, transport=transport) as client:
        yield client


@pytest.fixture
async def store_http(store_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(store_gateway))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


@pytest.fixture
async def sid(client: AsyncClient) -> str:
    return (await client.create_session(user="u", compute={"provider": "local"}))["session_id"]


async def _messages(http: httpx.AsyncClient, sid: str) -> list[dict]:
    return (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("run", b'{"code": "echo a\\u0000b"}', "code"),
        ("run", b'{"code": "echo a", "env": {"A": "x\\u0000y"}}', "env.A"),
        ("run/stream", b'{"code": "echo a\\u0000b"}', "code"),
        ("input", b'{"content": "hi", "metadata": {"n": 1180591620717411303424}}', "metadata.n"),
        ("input", b'{"content": "hi\\u0000"}', "content"),
        ("input", b'{"content": "hi", "metadata": {"x": NaN}}', "metadata.x"),
        ("input", b'{"content": "hi", "metadata": {"x": [1e999]}}', "metadata.x[0]"),
    ],
)
async def test_unstorable_json_is_400_and_stores_nothing(
    http: httpx.AsyncClient, sid: str, path: str, body: bytes, where: str
) -> None:
    response = await http.post(f"/v2/sessions/{sid}/{path}", content=body, headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "invalid_request" and where in error["detail"]
    assert error["context"]["loc"][0] == "body"
    assert await _messages(http, sid) == []
    metrics = (await http.get(f"/v2/sessions/{sid}/metrics")).json()
    assert metrics["total_exec_count"] == 0 and metrics["interaction_count"] == 0


async def test_nul_in_the_url_is_400(http: httpx.AsyncClient, sid: str) -> None:
    for url in ("/v2/sessions?user=a%00b", f"/v2/sessions/{sid}%00/messages"):
        response = await http.get(url)
        assert response.status_code == 400 and response.json()["code"] == "invalid_request"


async def test_integer_query_parameters_are_bounded_on_every_store(
    store_http: httpx.AsyncClient,
) -> None:
    """Seqs and event ids are 32-bit columns: a larger value was a 500 (an overflow)."""
    sid = (await store_http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    for url in (
        f"/v2/sessions/{sid}/messages?after_seq={2**70}",
        f"/v2/sessions/{sid}/messages?after_seq={MAX_INTEGER + 1}",
        f"/v2/sessions/{sid}/events?follow=false&after={2**40}",
    ):
        response = await store_http.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.json()["code"] == "validation_error"
    ok = await store_http.get(f"/v2/sessions/{sid}/messages?after_seq={MAX_INTEGER}")
    assert ok.status_code == 200 and ok.json()["messages"] == []
    tail = await store_http.get(f"/v2/sessions/{sid}/events?follow=false&after={MAX_INTEGER}")
    assert tail.status_code == 200


@pytest.mark.parametrize(
    "usage",
    [{"cost_usd": -1000}, {"input_tokens": -1}, {"output_tokens": MAX_INTEGER + 1}],
)
async def test_reported_usage_is_bounded(http: httpx.AsyncClient, usage: dict) -> None:
    """A negative cost lowered a budget's spend; a token count over 32 bits failed on
    PostgreSQL."""
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    body = {"role": "assistant", "content": "done", "model": "m", "usage": usage}
    response = await http.post(f"/v2/sessions/{sid}/input", json=body)
    assert response.status_code == 422, response.text
    assert (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"] == []


async def test_usage_by_session_answers(client: AsyncClient, sid: str) -> None:
    await client.append_input(sid, "hi", role="assistant", model="m", usage={"input_tokens": 3})
    usage = await client.usage("session")
    assert [(r["key"], r["input_tokens"]) for r in usage["rows"]] == [(sid, 3)]


async def test_chunked_body_over_the_limit_is_413(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    limit = gateway.settings.max_body_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = await http.post("/v2/sessions", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert (await http.get("/v2/sessions")).json()["sessions"] == []


async def test_a_body_without_a_json_content_type_is_422_not_500(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/v2/sessions", content=b"\xff\x00 not json", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 422 and response.json()["code"] == "validation_error"


async def test_405_names_every_method_of_the_path(http: httpx.AsyncClient, sid: str) -> None:
    response = await http.put(f"/v2/sessions/{sid}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "DELETE"}
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize("compute", [{"compute_id": ""}, {"provider": ""}])
async def test_an_empty_compute_name_is_422(http: httpx.AsyncClient, compute: dict) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    for path, body in (
        ("/v2/sessions", {"compute": compute}),
        (f"/v2/sessions/{sid}/spawn", {"compute": compute}),
        (f"/v2/sessions/{sid}/compute", compute),
    ):
        response = await http.post(path, json=body)
        assert response.status_code == 422, (path, response.text)


async def test_a_tool_that_prints_nul_completes_its_turn_on_every_store(
    store_client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    """PostgreSQL cannot hold a NUL: the turn failed with a 500 and left a dangling call."""
    sid = (await store_client.create_session(compute={"provider": "local"}))["session_id"]
    mock_upstream.script(
        Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": NUL_COMMAND})]),
        Reply(text="done"),
    )
    assert (await store_client.run_llm(sid, "print a NUL"))["status"] == "completed"
    result = (await store_client.messages(sid))["messages"][2]
    assert result["kind"] == "tool_result"
    assert result["parts"][0]["output"] == f"a{REPLACEMENT}b"


@pytest.mark.parametrize(
    "moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00"]
)
async def test_extreme_datetimes_in_filters_answer_on_every_store(
    store_http: httpx.AsyncClient, moment: str
) -> None:
    for url, params in (
        ("/v2/sessions", {"created_after": moment}),
        ("/v2/sessions", {"created_before": moment}),
        ("/v2/usage", {"since": moment, "until": moment}),
    ):
        response = await store_http.get(url, params=params)
        assert response.status_code in (200, 422), (url, params, response.text)
