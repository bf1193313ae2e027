"""What the store costs one turn, with no HTTP and no model: the turn lock's transaction (with
the run row and the user's message), then the turn's end (the assistant's message, its events
and ledger row, the run's end, the session ready, the lock released), on SQLite.

It isolates the store's share of a turn (``bench.turn_overhead`` measures the whole) so a change
to statements or transactions can be judged on a shared machine in seconds. It prints the wall
and CPU time per turn, and, for the one statement path it can compare in one run, the ratio.

    python -m bench.store_turn [--turns 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from cerver.events import EventHub
from cerver.ids import new_id
from cerver.store import SessionWriter, Store
from cerver.store.runs import finishing_run, starting_run
from cerver.types import Entry, Usage

TURNS_PER_SESSION = 20
DELTAS = 8


async def one_turn(store: Store, hub: EventHub, account_id: str, session_id: str) -> None:
    run_id = new_id("run")
    opened: list[SessionWriter] = []

    def opening(conn, session, transcript) -> None:  # type: ignore[no-untyped-def]
        writer = SessionWriter(
            store.db,
            hub,
            session,
            run_id,
            transcript=transcript,
            transcripts=store.sessions.transcript_cache,
        )
        writer.defer(
            *starting_run(run_id, session.id, "turn", 30.0, harness="anthropic", model="m")
        )
        writer.update_session(status="running", interaction_count=session.interaction_count + 1)
        writer.queue([Entry(role="user", content="hello", run_id=run_id)])
        writer.write_queued_in(conn)
        opened.append(writer)

    await store.sessions.get(account_id, session_id)  # the service reads it first
    locked = await store.sessions.try_lock(
        session_id, run_id, 30.0, with_transcript=True, then=opening
    )
    assert locked is not None
    [writer] = opened
    writer.lock_committed()
    writer.emit("turn.started", {"run_id": run_id})
    for _ in range(DELTAS):
        writer.emit("text_delta", {"text": "hi "})
    writer.charge(kind="llm", usage=Usage(input_tokens=10, output_tokens=5), run_id=run_id)
    [stored] = writer.queue([Entry(role="assistant", content="hi " * DELTAS, run_id=run_id)])
    writer.write_soon()
    writer.emit("message", stored.model_dump(mode="json"), after_commit=True)
    writer.emit("usage", {"input_tokens": 10})
    writer.emit("turn.completed", {"run_id": run_id})
    writer.defer(*finishing_run(run_id, "completed", latency_ms=1.0))
    writer.update_session(status="ready")
    await writer.release()


async def run(turns: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cerver-bench-store-") as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'cerver.db'}")
        await store.open()
        account, _ = await store.accounts.create("bench")
        hub = EventHub()
        session_id = ""
        walls: list[float] = []
        for i in range(turns + TURNS_PER_SESSION):
            if i % TURNS_PER_SESSION == 0:
                session_id = new_id("sess")
                await store.sessions.create(
                    {
                        "id": session_id,
                        "account_id": account.id,
                        "status": "ready",
                        "harness": "anthropic",
                        "model": "m",
                    }
                )
            if i == TURNS_PER_SESSION:  # warmed up: statement caches, SQLite pages
                cpu_started, wall_started = time.process_time(), time.perf_counter()
            started = time.perf_counter()
            await one_turn(store, hub, account.id, session_id)
            if i >= TURNS_PER_SESSION:
                walls.append((time.perf_counter() - started) * 1000)
        cpu = (time.process_time() - cpu_started) * 1000 / turns
        wall = (time.perf_counter() - wall_started) * 1000 / turns
        await store.close()
    ordered = sorted(walls)
    print(f"store share of a turn, {turns} turns, SQLite, one at a time")
    print(
        f"wall p50 {statistics.median(walls):.3f} ms, p99 {ordered[int(0.99 * len(ordered))]:.3f}"
        f" ms, mean {wall:.3f} ms; CPU {cpu:.3f} ms per turn (all threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    asyncio.run(run(parser.parse_args().turns))


if __name__ == "__main__":
    main()
