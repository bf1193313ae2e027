"""Costs end to end: priced messages and ledger rows, session metrics, ``GET /v2/usage``."""

from __future__ import annotations

import httpx
import pytest

from cerver.client import AsyncClient
from cerver.testing.mock_upstream import MockUpstream, Reply


async def test_assistant_messages_record_tokens_and_cost(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="alice", compute=None, model="claude-haiku-4-5"))[
        "session_id"
    ]
    mock_upstream.script(Reply(text="hi", usage={"input_tokens": 1000, "output_tokens": 100}))
    result = await client.run_llm(sid, "hello")

    expected = 1000 * 1e-6 + 100 * 5e-6  # the fixture table: $1 / $5 per million
    assert result["usage"]["cost_usd"] == pytest.approx(expected)
    assert result["message"]["usage"]["cost_usd"] == pytest.approx(expected)
    stored = (await client.messages(sid))["messages"][-1]
    assert stored["usage"] == {
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": pytest.approx(expected),
        "cost_reason": None,
        "cost_source": "file:prices.json",
    }
    metrics = await client.metrics(sid)
    assert metrics["llm_cost_usd"] == pytest.approx(expected)
    assert metrics["by_harness"][0]["model"] == "claude-haiku-4-5"


async def test_unknown_price_is_null_with_a_reason_never_a_guess(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="bob", compute=None, model="house-model-7"))[
        "session_id"
    ]
    mock_upstream.script(Reply(text="hi", usage={"input_tokens": 10, "output_tokens": 5}))
    result = await client.run_llm(sid, "hello")
    assert result["usage"]["cost_usd"] is None
    stored = (await client.messages(sid))["messages"][-1]
    assert stored["usage"]["cost_usd"] is None
    assert "house-model-7" in stored["usage"]["cost_reason"]
    metrics = await client.metrics(sid)
    assert metrics["llm_calls_unpriced"] == 1 and metrics["input_tokens"] == 10
    # Nothing could be priced: the totals are unknown, not 0.0, and say why.
    assert metrics["llm_cost_usd"] is None and metrics["cost_estimate_usd"] is None
    assert "CERVER_PRICES_FILE" in metrics["cost_note"]


async def test_usage_groups_spend_for_billing(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    for user, model in (("alice", "claude-haiku-4-5"), ("bob", "claude-haiku-4-5")):
        sid = (await client.create_session(user=user, compute=None, model=model))["session_id"]
        mock_upstream.script(Reply(text="x", usage={"input_tokens": 1000, "output_tokens": 0}))
        await client.run_llm(sid, "hello")
    sid = (await client.create_session(user="alice", compute=None, model="house-model"))[
        "session_id"
    ]
    mock_upstream.script(Reply(text="x", usage={"input_tokens": 7, "output_tokens": 3}))
    await client.run_llm(sid, "hello")

    by_user = await client.usage("user")
    rows = {r["key"]: r for r in by_user["rows"]}
    assert rows["alice"]["cost_usd"] == pytest.approx(0.001)
    assert rows["alice"]["unpriced_calls"] == 1 and rows["alice"]["input_tokens"] == 1007
    assert rows["bob"]["calls"] == 1
    assert by_user["total"]["cost_usd"] == pytest.approx(0.002)
    assert "1 call(s) have no known price" in by_user["cost_note"]  # the total leaves it out

    by_model = {r["key"]: r for r in (await client.usage("model"))["rows"]}
    assert by_model["house-model"]["cost_usd"] is None
    assert set(by_model) == {"claude-haiku-4-5", "house-model"}
    assert [r["key"] for r in (await client.usage("provider"))["rows"]] == ["anthropic"]
    (day,) = (await client.usage("day"))["rows"]
    assert len(day["key"]) == 10  # YYYY-MM-DD

    only_bob = await client.usage("model", user="bob")
    assert only_bob["total"]["calls"] == 1 and only_bob["cost_note"] is None
    future = await client.usage("user", since="2999-01-01T00:00:00Z")
    assert future["rows"] == [] and future["total"]["cost_usd"] is None

    bad = await http.get("/v2/usage", params={"group_by": "colour"})
    assert bad.status_code == 422
