"""The control API under /_mock/, and the test-double label on every response."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cerver.testing.mock_upstream import MockState, MockUpstream, create_app

LABEL = ("x-cerver-test-double", "mock-upstream")
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def http(upstream: MockUpstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=upstream.url) as client:
        yield client


async def test_health(http: httpx.AsyncClient, upstream: MockUpstream) -> None:
    upstream.script({"text": "queued"})
    response = await http.get("/_mock/health")
    assert response.json() == {
        "status": "ok",
        "test_double": "mock-upstream",
        "queued": 1,
        "requests": 0,
    }


async def test_script_over_http(http: httpx.AsyncClient) -> None:
    response = await http.post("/_mock/script", json=[{"text": "one"}, {"text": "two"}])
    assert response.json() == {"queued": 2}
    response = await http.post("/_mock/script", json={"error": {"status": 503}})
    assert response.json() == {"queued": 3}
    texts = []
    for _ in range(2):
        completion = await http.post("/v1/chat/completions", json=CHAT)
        texts.append(completion.json()["choices"][0]["message"]["content"])
    assert texts == ["one", "two"]
    failed = await http.post("/v1/chat/completions", json=CHAT)
    assert failed.status_code == 503
    assert failed.json()["error"]["type"] == "server_error"


async def test_invalid_script_is_a_422(http: httpx.AsyncClient, upstream: MockUpstream) -> None:
    response = await http.post("/_mock/script", json=[{"text": "ok"}, {"delay_ms": -1}])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == [1, "delay_ms"]
    assert upstream.state.pending == []
    bad_json = await http.post("/_mock/script", content=b"[")
    assert bad_json.status_code == 400


async def test_requests_log_and_clear(http: httpx.AsyncClient) -> None:
    await http.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer k"})
    log = (await http.get("/_mock/requests")).json()
    assert [(e["id"], e["api"], e["headers"]["authorization"]) for e in log] == [
        ("req_1", "chat", "<redacted>")
    ]
    assert (await http.delete("/_mock/requests")).json() == {"cleared": 1}
    assert (await http.get("/_mock/requests")).json() == []


async def test_reset(http: httpx.AsyncClient, upstream: MockUpstream) -> None:
    await http.post("/_mock/script", json=[{"text": "one"}])
    await http.post("/v1/chat/completions", json=CHAT)
    await http.post("/_mock/script", json=[{"text": "two"}])
    assert (await http.post("/_mock/reset")).status_code == 200
    assert (upstream.requests, upstream.state.pending) == ([], [])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/_mock/health", 200),
        ("POST", "/v1/chat/completions", 200),
        ("POST", "/v1/responses", 400),
        ("GET", "/v1/messages", 405),
        ("GET", "/nowhere", 404),
    ],
)
async def test_every_response_is_labelled(
    http: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await http.request(method, path, json=CHAT if method == "POST" else None)
    assert response.status_code == status
    assert response.headers[LABEL[0]] == LABEL[1]


async def test_app_runs_in_process() -> None:
    state = MockState()
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.headers[LABEL[0]] == LABEL[1]
    assert response.json()["choices"][0]["message"]["content"].startswith("[mock upstream]")
    assert len(state.requests) == 1
