"""POSTs with an Idempotency-Key run once."""

from __future__ import annotations

import httpx

from cerver.testing.mock_upstream import MockUpstream


async def test_retry_replays_the_first_answer(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "create-1"}
    first = await http.post("/v2/sessions", json={"user": "u", "compute": None}, headers=headers)
    again = await http.post("/v2/sessions", json={"user": "u", "compute": None}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["session_id"] == first.json()["session_id"]
    assert again.headers["idempotent-replayed"] == "true"
    listed = await http.get("/v2/sessions", params={"user": "u"})
    assert len(listed.json()["sessions"]) == 1


async def test_a_turn_runs_once(http: httpx.AsyncClient, mock_upstream: MockUpstream) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    headers = {"Idempotency-Key": "turn-1"}
    for _ in range(2):
        response = await http.post(
            f"/v2/sessions/{sid}/run-llm", json={"input": "hello"}, headers=headers
        )
        assert response.status_code == 200
    assert len(mock_upstream.requests) == 1
    messages = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]


async def test_same_key_with_another_request_is_422(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k"}
    await http.post("/v2/sessions", json={"user": "a", "compute": None}, headers=headers)
    reused = await http.post("/v2/sessions", json={"user": "b", "compute": None}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_keys_are_per_account_and_errors_are_replayed(http: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "bad"}
    first = await http.post("/v2/sessions", json={"harness": "nope"}, headers=headers)
    second = await http.post("/v2/sessions", json={"harness": "nope"}, headers=headers)
    assert first.status_code == second.status_code == 400
    other = (await http.post("/v2/accounts", json={"name": "other"})).json()["api_key"]
    theirs = await http.post(
        "/v2/sessions",
        json={"harness": "nope"},
        headers={**headers, "Authorization": f"Bearer {other}"},
    )
    assert "idempotent-replayed" not in theirs.headers


async def test_a_busy_answer_is_not_stored(
    http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    import asyncio

    from cerver.testing.mock_upstream import Reply

    sid = (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(Reply(text="slow", delay_ms=600), Reply(text="second"))
    first = asyncio.create_task(http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "A"}))
    await asyncio.sleep(0.2)
    body, headers = {"input": "B", "multitask": "reject"}, {"Idempotency-Key": "k-busy"}
    busy = await http.post(f"/v2/sessions/{sid}/run-llm", json=body, headers=headers)
    assert busy.status_code == 409
    await first
    retry = await http.post(f"/v2/sessions/{sid}/run-llm", json=body, headers=headers)
    assert retry.status_code == 200 and "idempotent-replayed" not in retry.headers
