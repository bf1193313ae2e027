"""Budgets: a turn that would start over budget fails with 402 before any upstream call."""

from __future__ import annotations

import httpx
import pytest

from cerver import pricing
from cerver.client import AsyncClient
from cerver.errors import BudgetExceeded
from cerver.gateway import Gateway
from cerver.services.budgets import BudgetService
from cerver.testing.mock_upstream import MockUpstream, Reply

PRICED = {"input_tokens": 1000, "output_tokens": 0}  # $0.001 on claude-haiku-4-5


async def test_session_budget_refuses_the_turn_before_any_upstream_call(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    session = await client.create_session(
        compute=None, model="claude-haiku-4-5", max_cost_usd=0.0015
    )
    sid = session["session_id"]
    assert session["max_cost_usd"] == 0.0015
    mock_upstream.script(Reply(text="a", usage=PRICED), Reply(text="b", usage=PRICED))
    await client.run_llm(sid, "one")  # $0.001 spent: under the limit
    await client.run_llm(sid, "two")  # starts under, ends over ($0.002)
    requests_before = len(mock_upstream.requests)
    entries_before = len((await client.messages(sid))["messages"])

    refused = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "three"})
    assert refused.status_code == 402
    body = refused.json()
    assert body["code"] == "budget_exceeded" and body["context"]["scope"] == "session"
    assert "max_cost_usd" in body["detail"]
    assert len(mock_upstream.requests) == requests_before
    assert len((await client.messages(sid))["messages"]) == entries_before


async def test_user_budget_uses_the_account_default_and_per_user_overrides(
    client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    await client.set_budgets(default_user_max_cost_usd=0.0005, users={"vip": 1.0})
    assert (await client.budgets())["users"] == {"vip": 1.0}
    for user in ("carol", "vip"):
        sid = (await client.create_session(user=user, compute=None, model="claude-haiku-4-5"))[
            "session_id"
        ]
        mock_upstream.script(Reply(text="a", usage=PRICED))
        await client.run_llm(sid, "one")
    # carol's spend counts across all her sessions.
    fresh = (await client.create_session(user="carol", compute=None))["session_id"]
    with pytest.raises(BudgetExceeded) as refused:
        await client.run_llm(fresh, "again")
    assert refused.value.context["scope"] == "user"
    assert refused.value.context["user"] == "carol"
    vip = (await client.create_session(user="vip", compute=None))["session_id"]
    assert (await client.run_llm(vip, "fine"))["status"] == "completed"


async def test_a_fan_out_counts_n_times(
    gateway: Gateway, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (
        await client.create_session(compute=None, model="claude-haiku-4-5", max_cost_usd=0.0035)
    )["session_id"]
    mock_upstream.script(Reply(text="a", usage=PRICED))
    await client.run_llm(sid, "one")  # spent 0.001; mean turn 0.001
    account_id = (await client.account())["account_id"]
    session = await gateway.sessions.get(account_id, sid)
    budgets = BudgetService(gateway.store)
    await budgets.ensure_within_budget(session, turns=1)
    await budgets.ensure_within_budget(session, turns=3)  # 0.001 + 2 × 0.001 < 0.0035
    with pytest.raises(BudgetExceeded) as refused:
        await budgets.ensure_within_budget(session, turns=4)  # 0.001 + 3 × 0.001 ≥ 0.0035
    assert refused.value.context["turns"] == 4
    assert refused.value.context["estimated_turn_cost_usd"] == pytest.approx(0.001)


async def test_the_fanout_route_refuses_n_turns_over_budget(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (
        await client.create_session(compute=None, model="claude-haiku-4-5", max_cost_usd=0.0025)
    )["session_id"]
    mock_upstream.script(Reply(text="a", usage=PRICED))
    await client.run_llm(sid, "one")  # spent 0.001; mean turn 0.001
    requests_before = len(mock_upstream.requests)
    variants = [{"harness": "anthropic", "model": "claude-haiku-4-5"}] * 3
    refused = await http.post(
        f"/v2/sessions/{sid}/fanout", json={"input": "again", "variants": variants}
    )
    assert refused.status_code == 402  # 0.001 + 2 × 0.001 ≥ 0.0025
    assert refused.json()["context"]["turns"] == 3
    assert len(mock_upstream.requests) == requests_before
    children = await client.list_sessions(parent_session_id=sid)
    assert children["sessions"] == []


async def test_fan_out_variant_spend_counts_against_the_parent_session_budget(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (
        await client.create_session(compute=None, model="claude-haiku-4-5", max_cost_usd=0.0015)
    )["session_id"]
    mock_upstream.script(Reply(text="a", usage=PRICED), Reply(text="b", usage=PRICED))
    variants = [{"harness": "anthropic", "model": "claude-haiku-4-5"}] * 2
    first = await http.post(
        f"/v2/sessions/{sid}/fanout",
        json={"input": "q", "variants": variants, "judge": {"type": "fastest"}, "keep": "none"},
    )
    assert first.status_code == 200  # nothing spent yet: it starts
    assert first.json()["status"] == "completed"
    # The variants spent $0.002 in their child sessions: the parent is over its $0.0015.
    requests_before = len(mock_upstream.requests)
    turn = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "more"})
    assert turn.status_code == 402
    assert turn.json()["context"]["scope"] == "session"
    assert turn.json()["context"]["spent_usd"] == pytest.approx(0.002)
    again = await http.post(
        f"/v2/sessions/{sid}/fanout", json={"input": "q2", "variants": variants}
    )
    assert again.status_code == 402
    assert len(mock_upstream.requests) == requests_before


async def test_budgets_are_validated(http: httpx.AsyncClient) -> None:
    response = await http.put("/v2/account/budgets", json={"default_user_max_cost_usd": -1})
    assert response.status_code == 422
    response = await http.post("/v2/sessions", json={"compute": None, "max_cost_usd": -0.5})
    assert response.status_code == 422


async def test_a_budgeted_turn_on_a_model_without_a_price_is_refused_before_the_call(
    client: AsyncClient, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(compute=None, model="claude-mystery-9", max_cost_usd=1e-7))[
        "session_id"
    ]
    refused = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "one"})
    assert refused.status_code == 402
    body = refused.json()
    assert body["code"] == "budget_exceeded"
    assert body["context"]["reason"] == "unpriced"
    assert body["context"]["unpriced_models"] == ["claude-mystery-9"]
    assert "claude-mystery-9" in body["detail"] and "CERVER_PRICES_FILE" in body["detail"]
    assert mock_upstream.requests == []
    assert (await client.messages(sid))["messages"] == []
    # Without a limit the same model runs, and its call is reported as unpriced.
    free = (await client.create_session(compute=None, model="claude-mystery-9"))["session_id"]
    assert (await client.run_llm(free, "one"))["status"] == "completed"
    assert (await client.metrics(free))["llm_calls_unpriced"] == 1


async def test_recorded_unpriced_spend_refuses_turns_until_the_model_is_priced(
    client: AsyncClient, http: httpx.AsyncClient, fixture_prices: pricing.PriceTable
) -> None:
    await client.set_budgets(users={"dana": 10.0})
    sid = (await client.create_session(user="dana", compute=None, model="claude-haiku-4-5"))[
        "session_id"
    ]
    # A caller-driven turn reports tokens of a model no source prices.
    await client.append_input(
        sid, "done", role="assistant", model="house-model", usage={"input_tokens": 1_000_000}
    )
    refused = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "next"})
    assert refused.status_code == 402
    context = refused.json()["context"]
    assert (context["reason"], context["scope"], context["unpriced_models"]) == (
        "unpriced",
        "user",
        ["house-model"],
    )
    # The operator adds the model's rates: the recorded call is priced ($2), under $10.
    house = pricing.PriceTable.from_json(
        {"house-model": {"input_per_mtok": 2, "output_per_mtok": 2}}
    )
    with pricing.use(pricing.Pricer([house, fixture_prices])):
        assert (await client.run_llm(sid, "next"))["status"] == "completed"
        await client.set_budgets(users={"dana": 1.0})
        with pytest.raises(BudgetExceeded) as over:
            await client.run_llm(sid, "more")
        assert over.value.context["spent_usd"] >= 2.0
