"""Statements run on the driver's cursor store exactly what ``Connection.execute`` stores."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cerver.store import Store
from cerver.store.compiled import execute
from cerver.store.schema import events, ledger, runs
from tests.store.helpers import make_session

_INSERT_LEDGER = ledger.insert()
_INSERT_EVENTS = events.insert()
_FINISH = (
    runs.update()
    .where(runs.c.id == sa.bindparam("w_id"), runs.c.status == "running")
    .values(status=sa.bindparam("v_status"), ended_at=sa.bindparam("v_ended_at"))
)


def _ledger_row(session_id: str, account_id: str, **values: object) -> dict[str, object]:
    return {
        "account_id": account_id,
        "session_id": session_id,
        "user": "u\u00e9",
        "run_id": None,
        "kind": "llm",
        "input_tokens": 3,
        "output_tokens": 4,
        "cost_usd": 0.25,
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        **values,
    }


async def test_rows_written_on_the_cursor_read_back_as_through_sqlalchemy(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    fast = [
        _ledger_row(session.id, account_id, model="fast"),
        _ledger_row(session.id, account_id, model=None),
    ]
    slow = [_ledger_row(session.id, account_id, model="slow")]

    def write(conn: sa.Connection) -> int:
        conn.execute(_INSERT_LEDGER, slow)
        return execute(conn, _INSERT_LEDGER, fast)

    await store.db.write(write)

    def read(conn: sa.Connection) -> list[dict[str, object]]:
        query = sa.select(ledger).order_by(ledger.c.id)
        return [dict(row._mapping) for row in conn.execute(query)]

    rows = await store.db.read(read)
    assert [r["model"] for r in rows] == ["slow", "fast", None]
    assert len({r["id"] for r in rows}) == 3
    for row in rows:  # everything but the id and the model is the same, whichever way it went
        assert {k: v for k, v in row.items() if k not in ("id", "model")} == {
            k: v for k, v in rows[0].items() if k not in ("id", "model")
        }
    assert rows[0]["created_at"] == datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


async def test_an_update_counts_the_rows_its_where_clause_matched(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    ended = datetime(2026, 1, 2, tzinfo=UTC)

    def start(conn: sa.Connection) -> None:
        conn.execute(
            runs.insert(),
            {"id": "run_1", "session_id": session.id, "kind": "turn", "status": "running"},
        )

    await store.db.write(start)
    params = {"w_id": "run_1", "v_status": "completed", "v_ended_at": ended}
    assert await store.db.write(lambda conn: execute(conn, _FINISH, params)) == 1
    # The literal in its WHERE clause ("running") is kept: the run is no longer running.
    assert await store.db.write(lambda conn: execute(conn, _FINISH, params)) == 0
    run = await store.runs.get(session.id, "run_1")
    assert (run.status, run.ended_at) == ("completed", ended)


async def test_each_set_of_columns_and_a_statement_returning_rows_work_too(
    store: Store, account_id: str
) -> None:
    session = await make_session(store, account_id)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    some = [{"session_id": session.id, "id": 1, "event": "a", "data": "{}"}]  # default time
    more = [{"session_id": session.id, "id": 2, "event": "b", "data": "{}", "created_at": when}]
    await store.db.write(lambda conn: execute(conn, _INSERT_EVENTS, some))
    await store.db.write(lambda conn: execute(conn, _INSERT_EVENTS, more))
    returning = ledger.insert().returning(ledger.c.id)
    row = _ledger_row(session.id, account_id)
    await store.db.write(lambda conn: execute(conn, returning, row))
    assert [e.event for e in await store.transcript.events(session.id)] == ["a", "b"]
    assert len(await store.ledger.session_totals(session.id)) == 1
