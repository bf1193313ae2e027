"""Budgets: a turn that would start over budget fails with 402 before any upstream call."""

from __future__ import annotations

import httpx
import pytest

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
