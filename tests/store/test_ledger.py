"""Ledger queries behind usage reports and budgets, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cerver.events import EventHub
from cerver.store import SessionWriter, Store
from cerver.store.ledger import USAGE_GROUPS, SessionCost, Spend, UnpricedCalls
from cerver.types import Usage
from tests.store.helpers import make_session


async def _charge(store: Store, account_id: str, user: str, calls: list[tuple]) -> str:
    session = await make_session(store, account_id, user=user)
    locked = await store.sessions.try_lock(session.id, "run_x", ttl=30)
    assert locked is not None
    writer = SessionWriter(store.db, EventHub(), locked[0], "run_x")
    for run_id, model, tokens, cost, reason in calls:
        writer.charge(
            kind="llm",
            usage=Usage(input_tokens=tokens, output_tokens=1, cost_usd=cost, cost_reason=reason),
            run_id=run_id,
            harness="anthropic",
            model=model,
            provider="anthropic",
        )
    await writer.release()
    return session.id


async def test_usage_spent_and_mean_turn_cost(store: Store, account_id: str) -> None:
    alice = await _charge(
        store,
        account_id,
        "alice",
        [("r1", "m1", 10, 0.5, None), ("r1", "m1", 10, 0.25, None), ("r2", "m2", 5, None, "?")],
    )
    await _charge(store, account_id, "bob", [("r3", "m1", 1, 1.0, None)])

    rows = {r["key"]: r for r in await store.ledger.usage(account_id, "user")}
    assert rows["alice"]["cost_usd"] == pytest.approx(0.75)
    assert rows["alice"]["unpriced_calls"] == 1 and rows["alice"]["input_tokens"] == 25
    assert list(rows) == ["bob", "alice"]  # biggest spend first
    (day,) = await store.ledger.usage(account_id, "day")
    assert day["key"] == datetime.now(UTC).date().isoformat() and day["calls"] == 4
    by_model = {r["key"]: r for r in await store.ledger.usage(account_id, "model", user="bob")}
    assert set(by_model) == {"m1"}
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await store.ledger.usage(account_id, "user", since=later) == []
    assert len(await store.ledger.usage(account_id, "user", until=later)) == 2

    alice_spend = await store.ledger.spent(account_id, session_id=alice)
    assert alice_spend.usd == pytest.approx(0.75)
    # So 0.75 is a lower bound; the unpriced call keeps its tokens to be priced later.
    assert alice_spend.unpriced == (UnpricedCalls("m2", "anthropic", 1, 5, 1),)
    bob_spend = await store.ledger.spent(account_id, user="bob")
    assert bob_spend.usd == pytest.approx(1.0) and bob_spend.unpriced == ()
    assert await store.ledger.spent(account_id, user="nobody") == Spend()
    # r1 cost 0.75; r2 was not priced (no row to average): the mean is over priced runs.
    assert await store.ledger.mean_turn_cost(alice) == pytest.approx(0.75)


@pytest.mark.parametrize("group_by", USAGE_GROUPS)
async def test_every_documented_usage_group_answers(
    store: Store, account_id: str, group_by: str
) -> None:
    sid = await _charge(store, account_id, "alice", [("r1", "m1", 10, 0.5, None)])
    (row,) = await store.ledger.usage(account_id, group_by)
    expected = {
        "user": "alice",
        "model": "m1",
        "harness": "anthropic",
        "provider": "anthropic",
        "session": sid,
        "day": datetime.now(UTC).date().isoformat(),
    }
    assert row["key"] == expected[group_by] and row["calls"] == 1


async def test_spent_by_session_sums_a_page_in_one_query(store: Store, account_id: str) -> None:
    priced = await _charge(
        store, account_id, "alice", [("r1", "m1", 10, 0.25, None), ("r2", "m1", 10, 0.5, None)]
    )
    unpriced = await _charge(store, account_id, "bob", [("r3", "m9", 10, None, "no price")])
    idle = (await make_session(store, account_id, user="carol")).id
    costs = await store.ledger.spent_by_session(account_id, [priced, unpriced, idle])
    assert costs[priced] == SessionCost(0.75, 0)
    assert costs[unpriced] == SessionCost(0.0, 1)
    assert idle not in costs
    assert await store.ledger.spent_by_session(account_id, []) == {}
