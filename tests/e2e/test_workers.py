"""`cerver serve --workers 2`: two processes on one SQLite store keep every session's order.

Concurrent turns on one session and on many sessions go through a 2-worker server, each on a
new connection so that both workers take requests. Afterwards every transcript must hold each
sent message exactly once, numbered 1..n without a gap, each turn's entries together, and the
event log must be gapless; the JSON access log (one line per request, with the process id)
must show both workers serving turns. Not timed: the throughput of the workers is measured
by ``python -m bench.workers``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ServeProcess

pytestmark = pytest.mark.e2e

HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
SAME_SESSION_TURNS = 12
SESSIONS = 8
TURNS_EACH = 4
TURN_PATH = "/run-llm"


def _wait_for_workers(process: ServeProcess, count: int) -> None:
    """Until ``count`` workers (over the server's life) have started serving."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(_started_pids(process)) >= count:
            return
        assert process.proc.poll() is None, "cerver serve --workers exited"
        time.sleep(0.2)
    pytest.fail(f"{count} workers did not start within 120 s")


def _started_pids(process: ServeProcess) -> list[int]:
    """The worker processes that finished starting (the gateway's first log line of its own
    carries its pid; uvicorn then says the startup completed)."""
    text = process.log_path.read_text()
    started = [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", text)]
    completed = text.count("Application startup complete.")
    return list(dict.fromkeys(started))[:completed]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _turns(url: str) -> tuple[str, list[str], dict[str, list[str]]]:
    # No keep-alive: every request is a new connection, accepted by either worker.
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=180, limits=limits) as http:

        async def new_session() -> str:
            response = await http.post(
                "/v2/sessions", json={"harness": "anthropic", "compute": None}
            )
            assert response.status_code == 201, response.text
            return response.json()["session_id"]

        async def turn(session_id: str, text: str) -> None:
            response = await http.post(f"/v2/sessions/{session_id}/run-llm", json={"input": text})
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "completed", response.text

        shared = await new_session()
        shared_inputs = [f"shared turn {i}" for i in range(SAME_SESSION_TURNS)]
        many = {await new_session(): [] for _ in range(SESSIONS)}
        for session_id, inputs in many.items():
            inputs.extend(f"{session_id} turn {i}" for i in range(TURNS_EACH))
        await asyncio.gather(
            *(turn(shared, text) for text in shared_inputs),
            *(turn(sid, text) for sid, inputs in many.items() for text in inputs),
        )
        return shared, shared_inputs, many


def _check_transcript(url: str, session_id: str, inputs: list[str]) -> None:
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as http:
        session = http.get(f"/v2/sessions/{session_id}", params={"transcript": True}).json()
        transcript: list[dict[str, Any]] = session["transcript"]
        assert [e["seq"] for e in transcript] == list(range(1, len(transcript) + 1))
        users = [e["content"] for e in transcript if e["role"] == "user"]
        assert sorted(users) == sorted(inputs), "a message was lost or duplicated"
        assert session["metrics"]["interaction_count"] == len(inputs)
        # Turns never interleave: each run's entries are one unbroken stretch, user first.
        stretches: list[str] = []
        for entry in transcript:
            if not stretches or stretches[-1] != entry["run_id"]:
                stretches.append(entry["run_id"])
        assert len(stretches) == len(set(stretches)) == len(inputs)
        firsts = [
            e
            for i, e in enumerate(transcript)
            if i == 0 or transcript[i - 1]["run_id"] != e["run_id"]
        ]
        assert all(e["role"] == "user" for e in firsts)
        replies = [e for e in transcript if e["role"] == "assistant"]
        assert len(replies) == len(inputs)
        events = http.get(f"/v2/sessions/{session_id}/events", params={"follow": False}).text
        ids = [int(line[4:]) for line in events.splitlines() if line.startswith("id: ")]
        assert ids == list(range(1, len(ids) + 1))
        assert events.count("event: turn.completed") == len(inputs)


def _turn_pids(process: ServeProcess) -> dict[int, int]:
    served: dict[int, int] = defaultdict(int)
    for line in process.log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        record = orjson.loads(line)
        if record.get("logger") == "cerver.access" and record.get("path", "").endswith(TURN_PATH):
            served[record["pid"]] += 1
    return served


def test_two_workers_keep_each_session_in_order_and_both_serve(
    serve: Callable[..., ServeProcess],
) -> None:
    process = serve("--workers", "2")
    _wait_for_workers(process, 2)

    shared, shared_inputs, many = asyncio.run(_turns(process.url))

    _check_transcript(process.url, shared, shared_inputs)
    for session_id, inputs in many.items():
        _check_transcript(process.url, session_id, inputs)
    served = _turn_pids(process)
    assert sum(served.values()) == SAME_SESSION_TURNS + SESSIONS * TURNS_EACH
    assert len(served) == 2, f"turns served per worker pid: {dict(served)}"


def test_a_killed_worker_is_replaced_and_sigterm_stops_them_all(
    serve: Callable[..., ServeProcess],
) -> None:
    process = serve("--workers", "2")
    _wait_for_workers(process, 2)
    first, second = _started_pids(process)[:2]

    os.kill(first, signal.SIGKILL)
    _wait_for_workers(process, 3)
    replacement = _started_pids(process)[2]
    assert replacement not in (first, second)
    assert httpx.get(f"{process.url}/readyz", timeout=30).status_code == 200

    process.proc.send_signal(signal.SIGTERM)
    assert process.proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while not (_gone(second) and _gone(replacement)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(second) and _gone(replacement), "a worker outlived its parent's SIGTERM"
