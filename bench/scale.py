"""Sessions at scale: list and tail through the API with many sessions and entries stored.

Starts ``cerver serve`` on a fresh store (SQLite by default, or ``--database-url`` for
PostgreSQL), fills it straight through the schema with ``--sessions`` sessions spread over
``--users`` end users and ``--entries`` transcript entries (a few long conversations and many
short ones), then times, through the HTTP API, each of:

* ``healthz``: a request that does nothing (the floor of any request here);
* ``list by user``: ``GET /v2/sessions?user=…&limit=50``;
* ``list by status``: ``GET /v2/sessions?status=paused&limit=50`` (a rare status);
* ``tail``: ``GET /v2/sessions/{id}?tail=20`` of the longest conversation;
* ``turn, old session`` vs ``turn, new session``: ``run-llm`` on the longest conversation and
  on a fresh one;
* ``direct, old`` vs ``direct, new``: the same streamed model call made straight from this
  process with a lean client (the body, its messages shaped as the harness sends them, posted
  as JSON bytes with httpx, the stream's text read as it comes), with the same conversations
  growing the same way: the baseline, the upstream's own cost of a longer history. (The
  Anthropic SDK's ``messages.stream`` is no baseline here: it copies and serializes a long
  conversation in Python, which costs more than the whole of what Cerver adds.) DESIGN §7:
  what Cerver *adds* to a turn on an old session is no more than what it adds on a new one.

DESIGN §7 budgets the three reads at ≤ 10 ms p50 with 100k sessions and 1M entries.

    python -m bench.scale [--sessions 100000] [--entries 1000000] [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from bench._servers import ServerURL, cpu_seconds, gateway, mock_upstream
from bench.throughput import AUTH, MODEL
from cerver.event_stream import read_events
from cerver.store import Database
from cerver.store.schema import accounts, entries, sessions

LONG_CONVERSATIONS = 10
LONG_SHARE = 0.2  # of all entries, in the long conversations


async def _fill(url: str, n_sessions: int, n_entries: int, n_users: int) -> tuple[str, str]:
    """Insert the rows; returns (a user to list, the longest session's id)."""
    db = Database(url)
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(days=30)
    account_id = await db.read(
        lambda conn: conn.execute(sa.select(accounts.c.id).limit(1)).scalar_one()
    )

    async def insert(table: sa.Table, rows: list[dict]) -> None:
        await db.write(lambda conn: conn.execute(table.insert(), rows))

    ids = [f"sess_bench{i:08d}" for i in range(n_sessions)]
    long_entries = int(n_entries * LONG_SHARE) // LONG_CONVERSATIONS
    short_entries = (n_entries - long_entries * LONG_CONVERSATIONS) // max(
        n_sessions - LONG_CONVERSATIONS, 1
    )
    counts = [long_entries] * LONG_CONVERSATIONS + [short_entries] * (
        n_sessions - LONG_CONVERSATIONS
    )
    statuses = ["ready"] * 97 + ["closed"] * 2 + ["paused"]
    for first in range(0, n_sessions, 5_000):
        batch = range(first, min(first + 5_000, n_sessions))
        rows = [
            {
                "id": ids[i],
                "account_id": account_id,
                "user": f"user_{i % n_users}",
                "status": rng.choice(statuses),
                "harness": "anthropic",
                "model": "claude-sonnet-4-6",
                "harness_options": {},
                "metadata": {},
                "fallback_models": [],
                "next_seq": counts[i] + 1,
                "next_event_id": 1,
                "exec_count": 0,
                "exec_total_ms": 0.0,
                "stream_count": 0,
                "stream_open_total_ms": 0.0,
                "interaction_count": counts[i] // 2,
                "compute_seconds": 0.0,
                "created_at": start + timedelta(seconds=i),
                "updated_at": start + timedelta(seconds=i),
            }
            for i in batch
        ]
        await insert(sessions, rows)
    pending: list[dict] = []
    for i, count in enumerate(counts):
        for seq in range(1, count + 1):
            pending.append(
                {
                    "session_id": ids[i],
                    "seq": seq,
                    "role": "user" if seq % 2 else "assistant",
                    "kind": "text",
                    "content": f"message {seq} of a benchmark conversation",
                    "parts": [],
                    "status": "complete",
                    "metadata": {},
                    "created_at": start,
                }
            )
            if len(pending) >= 20_000:
                await insert(entries, pending)
                pending = []
    if pending:
        await insert(entries, pending)
    await db.dispose()
    return "user_1", ids[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    extra = {"CERVER_DATABASE_URL": args.database_url} if args.database_url else {}
    with mock_upstream() as upstream, gateway(upstream, **extra) as url:
        database_url = args.database_url or _sqlite_url_of(url)
        started = time.perf_counter()
        user, longest = await _fill(database_url, args.sessions, args.entries, args.users)
        print(
            f"filled {args.sessions} sessions / {args.entries} entries in "
            f"{time.perf_counter() - started:.0f} s ({database_url.split(':')[0]})"
        )
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as http:
            fresh = (await http.post("/v2/sessions", json={"user": "new", "compute": None})).json()
            paths = {
                "healthz": ("GET", "/healthz", None),
                "list by user": ("GET", f"/v2/sessions?user={user}&limit=50", None),
                "list by status": ("GET", "/v2/sessions?status=paused&limit=50", None),
                "tail": ("GET", f"/v2/sessions/{longest}?tail=20", None),
                "turn, old session": ("POST", f"/v2/sessions/{longest}/run-llm", {"input": "hi"}),
                "turn, new session": (
                    "POST",
                    f"/v2/sessions/{fresh['session_id']}/run-llm",
                    {"input": "hi"},
                ),
            }
            timings: dict[str, list[float]] = {name: [] for name in paths}
            gateway_cpu = {name: 0.0 for name in paths}  # seconds, after the warm-up rounds
            direct = {"direct, old": _conversation(_long_entries(args)), "direct, new": []}
            timings.update({name: [] for name in direct})
            direct_client = httpx.AsyncClient(
                base_url=upstream,
                headers={"x-api-key": "bench", "anthropic-version": "2023-06-01"},
                timeout=60,
            )
            for round_ in range(args.rounds + 5):
                for name, (method, path, body) in paths.items():
                    began, cpu = time.perf_counter(), cpu_seconds(url.process.pid)
                    response = await http.request(method, path, json=body)
                    response.raise_for_status()
                    if round_ >= 5:  # the first rounds warm caches and pools
                        timings[name].append((time.perf_counter() - began) * 1000)
                        gateway_cpu[name] += cpu_seconds(url.process.pid) - cpu
                for name, messages in direct.items():
                    began = time.perf_counter()
                    await _direct_turn(direct_client, messages)
                    if round_ >= 5:
                        timings[name].append((time.perf_counter() - began) * 1000)
            await direct_client.aclose()
    print(f"{'request':<18} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in timings.items():
        print(
            f"{name:<18} {percentile(values, 0.5):8.2f} {percentile(values, 0.99):8.2f} "
            f"{statistics.fmean(values):8.2f}"
        )
    floor = percentile(timings["healthz"], 0.5)
    for name in ("list by user", "list by status", "tail"):
        p50 = percentile(timings[name], 0.5)
        print(f"{name}: p50 {p50:.2f} ms = {p50 / floor:.1f}x an empty request (budget <= 10 ms)")
    old, new = (percentile(timings[f"turn, {k} session"], 0.5) for k in ("old", "new"))
    print(f"turn on the longest conversation / on a new one, p50: {old / new:.2f}x")
    base_old, base_new = (percentile(timings[f"direct, {k}"], 0.5) for k in ("old", "new"))
    print(
        f"added by cerver, p50: old session {old - base_old:.2f} ms, new session "
        f"{new - base_new:.2f} ms: {(old - base_old) / (new - base_new):.2f}x (budget ~1)"
    )
    old_cpu, new_cpu = (
        gateway_cpu[f"turn, {k} session"] * 1000 / args.rounds for k in ("old", "new")
    )
    print(
        f"gateway CPU per turn: old session {old_cpu:.2f} ms, new session {new_cpu:.2f} ms: "
        f"{old_cpu / new_cpu:.2f}x (budget ~1; the request's body, the whole conversation, is "
        "still serialized and sent)"
    )


def _long_entries(args: argparse.Namespace) -> int:
    return int(args.entries * LONG_SHARE) // LONG_CONVERSATIONS


def _conversation(count: int) -> list[dict[str, Any]]:
    """The longest conversation as _fill wrote it, as Messages API messages."""
    return [
        _message("user" if seq % 2 else "assistant", f"message {seq} of a benchmark conversation")
        for seq in range(1, count + 1)
    ]


def _message(role: str, text: str) -> dict[str, Any]:
    """A message shaped as the ``anthropic`` harness sends it (content as text blocks): the
    upstream (a test double) parses a conversation of blocks ~15 % slower than one of plain
    strings, and that is no cost of Cerver's."""
    return {"role": role, "content": [{"type": "text", "text": text}]}


async def _direct_turn(upstream: httpx.AsyncClient, messages: list[dict[str, Any]]) -> None:
    """One streamed call with the conversation so far, grown by the question and its answer
    as Cerver grows its transcript."""
    messages.append(_message("user", "hi"))
    body = {"model": MODEL, "max_tokens": 1024, "messages": messages, "stream": True}
    text: list[str] = []
    async with upstream.stream("POST", "/v1/messages", content=orjson.dumps(body)) as response:
        response.raise_for_status()
        async for sent in read_events(response.aiter_lines()):
            delta = orjson.loads(sent.data).get("delta") or {}
            if delta.get("type") == "text_delta":
                text.append(delta["text"])
    messages.append(_message("assistant", "".join(text)))


def _sqlite_url_of(url: ServerURL) -> str:
    return f"sqlite+aiosqlite:///{url.env['CERVER_DATA_DIR']}/cerver.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", help="a PostgreSQL URL (postgresql+asyncpg://…)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
