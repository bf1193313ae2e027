"""Chaos: real `cerver serve` processes on one store, killed, stopped and cancelled mid-turn.

The mock upstream (a test double, in this test process) streams slowly so that every signal
lands mid-stream. The lease is short here (``CERVER_RUN_LEASE_SECONDS``) so that recovery
within one lease is quick to prove.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec
from tests.conftest import ADMIN_KEY
from tests.e2e.conftest import ServeProcess

pytestmark = pytest.mark.e2e

LEASE_S = 5.0
GRACE_S = 8.0
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}
SLOW_TEXT = Reply(text=" ".join(f"word{i}" for i in range(60)), chunk_delay_ms=300)

Serve = Callable[..., ServeProcess]


def _env(upstream: MockUpstream, **more: str) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": upstream.anthropic_base_url,
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "CERVER_MOCK_UPSTREAM": "false",
        "CERVER_DEFAULT_HARNESS": "anthropic",
        "CERVER_RUN_LEASE_SECONDS": str(LEASE_S),
        "CERVER_CANCEL_POLL_SECONDS": "0.2",
        **more,
    }


def _session(url: str, compute: dict[str, str] | None = None) -> str:
    body = {"harness": "anthropic", "compute": compute}
    # Generous timeouts: a loaded machine can take many seconds for a gateway's first request.
    response = httpx.post(f"{url}/v2/sessions", json=body, headers=HEADERS, timeout=120)
    assert response.status_code == 201, response.text
    return response.json()["session_id"]


def _sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of an SSE stream."""
    event = ""
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            yield event, orjson.loads(line[len("data: ") :])


def _streamed_turn(
    stack: contextlib.ExitStack, url: str, sid: str, until: str = "text_delta"
) -> tuple[str, Iterator[tuple[str, dict[str, Any]]]]:
    """Start a streamed turn and read it until its first ``until`` event: returns the run id
    and the rest of its events."""
    response = stack.enter_context(
        httpx.stream(
            "POST",
            f"{url}/v2/sessions/{sid}/run-llm",
            json={"input": "go", "stream": True},
            headers=HEADERS,
            timeout=httpx.Timeout(120, connect=10),
        )
    )
    assert response.status_code == 200
    events = _sse(response.iter_lines())
    run_id = ""
    for event, data in events:
        run_id = data["run_id"] if event == "turn.started" else run_id
        if event == until:
            return run_id, events
    raise AssertionError(f"the turn ended before any {until!r} event")


class _Tail:
    """A live ``GET /events`` tail of one session, read in a thread."""

    def __init__(self, url: str, sid: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.ended = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, sid), daemon=True)
        self._thread.start()

    def _read(self, url: str, sid: str) -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.stream(
                "GET", f"{url}/v2/sessions/{sid}/events", headers=HEADERS, timeout=60
            ) as response,
        ):
            for event, data in _sse(response.iter_lines()):
                self.events.append((event, data))
                if event == "turn.completed":
                    self.ended.set()
                    return


def _get(url: str, path: str) -> dict[str, Any]:
    response = httpx.get(f"{url}{path}", headers=HEADERS, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _next_turn_runs_at_once(url: str, sid: str, upstream: MockUpstream) -> None:
    upstream.script(Reply(text="next answer"))
    response = httpx.post(
        f"{url}/v2/sessions/{sid}/run-llm",
        json={"input": "again", "multitask": "reject"},
        headers=HEADERS,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["message"]["content"] == "next answer"


def test_kill_9_mid_stream_another_replica_interrupts_the_run_within_a_lease(
    serve: Serve, mock_upstream: MockUpstream
) -> None:
    a, b = serve(**_env(mock_upstream)), serve(**_env(mock_upstream))
    sid = _session(a.url)
    mock_upstream.script(SLOW_TEXT)
    with contextlib.ExitStack() as stack:
        run_id, _ = _streamed_turn(stack, a.url, sid)
        tail = _Tail(b.url, sid)  # a client following the session on the other replica
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait()
        killed = time.monotonic()
    # B's reaper notices the run's lease ran out; no process restarts.
    assert tail.ended.wait(LEASE_S * 3 + 15), f"no terminal event; saw {tail.events}"
    print(f"run interrupted {time.monotonic() - killed:.2f} s after kill -9 (lease {LEASE_S} s)")
    _event, completed = tail.events[-1]
    assert completed["run_id"] == run_id and completed["status"] == "interrupted"
    assert completed["error"]["code"] == "interrupted"
    run = _get(b.url, f"/v2/sessions/{sid}/runs/{run_id}")
    assert run["status"] == "interrupted" and run["ended_at"]
    assert _get(b.url, f"/v2/sessions/{sid}")["status"] == "ready"
    _next_turn_runs_at_once(b.url, sid, mock_upstream)


def test_sigterm_mid_stream_drains_then_interrupts_the_turn_and_exits_in_time(
    serve: Serve, mock_upstream: MockUpstream
) -> None:
    a = serve(**_env(mock_upstream, CERVER_SHUTDOWN_GRACE_SECONDS=str(GRACE_S)))
    b = serve(**_env(mock_upstream))
    sid, other = _session(a.url), _session(b.url)
    mock_upstream.script(SLOW_TEXT)
    with contextlib.ExitStack() as stack:
        run_id, rest = _streamed_turn(stack, a.url, sid)
        a.proc.send_signal(signal.SIGTERM)
        # Readiness fails at once, while the running turn still streams.
        assert httpx.get(f"{a.url}/readyz", timeout=5).status_code == 503
        refused = httpx.post(
            f"{a.url}/v2/sessions/{other}/run-llm",
            json={"input": "new work"},
            headers=HEADERS,
            timeout=10,
        )
        assert refused.status_code == 503 and refused.json()["code"] == "shutting_down"
        ends = [data for event, data in rest if event == "turn.completed"]
    assert ends and ends[0]["status"] == "interrupted"
    a.proc.wait(timeout=GRACE_S + 5)  # exits within the grace + 5 s
    run = _get(b.url, f"/v2/sessions/{sid}/runs/{run_id}")
    assert run["status"] == "interrupted"
    messages = _get(b.url, f"/v2/sessions/{sid}/messages")["messages"]
    assert [(m["role"], m["status"]) for m in messages] == [
        ("user", "complete"),
        ("assistant", "incomplete"),
    ]
    assert messages[1]["content"].startswith("word0 word1")
    _next_turn_runs_at_once(b.url, sid, mock_upstream)


def test_cancel_from_another_replica_mid_tool_kills_the_command(
    serve: Serve, mock_upstream: MockUpstream
) -> None:
    a, b = serve(**_env(mock_upstream)), serve(**_env(mock_upstream))
    sid = _session(a.url, {"provider": "local"})
    marker = "30.5613"  # `sleep 30.5613`: no other process on the machine has this argument
    mock_upstream.script(
        Reply(tool_calls=[ToolCallSpec(name="bash", arguments={"command": f"sleep {marker}"})])
    )
    with contextlib.ExitStack() as stack:
        run_id, rest = _streamed_turn(stack, a.url, sid, until="tool_call")
        _wait_for(lambda: bool(_processes_with(marker)), "the tool's command to start")
        cancelled = httpx.post(
            f"{b.url}/v2/sessions/{sid}/runs/{run_id}/cancel", headers=HEADERS, timeout=30
        )
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        ends = [data for event, data in rest if event == "turn.completed"]
    assert ends and ends[0]["status"] == "cancelled"
    # SIGKILL went to the command's process group; the kernel takes a moment to reap it.
    _wait_for(lambda: not _processes_with(marker), "the tool's command to be gone", timeout=10)
    messages = _get(b.url, f"/v2/sessions/{sid}/messages")["messages"]
    assert [m["kind"] for m in messages] == ["text", "tool_call", "tool_result"]
    assert messages[2]["status"] == "cancelled" and messages[2]["parts"][0]["is_error"]
    # (On A: the session's local sandbox lives on A's machine.)
    _next_turn_runs_at_once(a.url, sid, mock_upstream)


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
    return found


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
