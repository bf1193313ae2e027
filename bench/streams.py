"""Many streamed turns at once: every delta delivered, the added jitter, the gateway's CPU.

``--streams`` turns stream at the same time, each receiving ``--rate`` text deltas a second
from the canned upstream (a test double, its own process: ``bench/_canned_upstream.py``) for
``--seconds``. Four paths, one run, all read by the same lean client (``bench/_lean_http.py``:
raw HTTP/1.1, each delta timed as its bytes arrive), so that on a small machine the cores go
to the gateway rather than to the load generator and the upstream:

* ``direct``: the Messages API stream straight from the upstream (the baseline: the
  upstream's and this client's own jitter);
* ``pipe``: the same stream through the TCP pipe of ``bench/_tcp_pipe.py`` (the floor of any
  Python relay on this machine: one read and one write per delta, nothing parsed);
* ``relay``: the same stream through the bare FastAPI relay of ``bench/_relay.py`` (what a typical
  Python HTTP relay costs per delta: a read from the upstream, a write to the client);
* ``cerver``: ``run-llm`` with ``"stream": true`` through one gateway process, the deltas read
  from its SSE stream.

For each path it prints how many deltas arrived of those sent, and the p50/p99 of the gap
between consecutive deltas minus the scheduled gap. Cerver's *added* jitter is its p99 minus
the direct path's p99 (DESIGN §7: ≤ 10 ms at 500 streams per core). The gateway's CPU is its
user + system time over the window, in cores (budget: under one).

    python -m bench.streams [--streams 500] [--rate 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import orjson

from bench._lean_http import LeanConnection
from bench._servers import (
    ServerURL,
    bare_relay,
    canned_upstream,
    cpu_seconds,
    gateway,
    machine_busy_seconds,
    tcp_pipe,
)
from bench.throughput import AUTH, MODEL


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _jitter(arrivals: list[float], gap_ms: float) -> list[float]:
    return [(b - a) * 1000 - gap_ms for a, b in itertools.pairwise(arrivals)][1:]


async def _arrivals(pieces: AsyncIterator[bytes], marker: bytes) -> list[float]:
    """When each event starting with ``marker`` arrived (a marker cut between two pieces is
    counted once, in the piece that completes it)."""
    arrivals: list[float] = []
    carry = b""
    async for piece in pieces:
        now = time.perf_counter()
        seen = carry + piece
        arrivals.extend([now] * seen.count(marker))
        carry = seen[-(len(marker) - 1) :]
    return arrivals


async def _messages(server: str, streams: int) -> tuple[list[list[float]], float]:
    """``streams`` Messages API streams from ``server`` at once: each one's delta arrivals,
    and the seconds they took."""
    body = {"model": MODEL, "max_tokens": 4096, "messages": [{"role": "user", "content": "go"}]}
    headers = {"x-api-key": "bench", "anthropic-version": "2023-06-01"}

    async def one() -> list[float]:
        connection = LeanConnection(server)
        try:
            pieces = connection.stream("POST", "/v1/messages", {**body, "stream": True}, headers)
            return await _arrivals(pieces, b"event: content_block_delta")
        finally:
            await connection.aclose()

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(streams)))
    return list(results), time.perf_counter() - started


async def _through_cerver(
    url: ServerURL, streams: int
) -> tuple[list[list[float]], float, float, float]:
    connections = [LeanConnection(url) for _ in range(streams)]
    sessions = []
    for connection in connections:
        created = await connection.request(
            "POST", "/v2/sessions", {"user": "bench", "compute": None}, AUTH
        )
        sessions.append(orjson.loads(created)["session_id"])

    async def one(connection: LeanConnection, session_id: str) -> list[float]:
        body = {"input": "go", "stream": True}
        pieces = connection.stream("POST", f"/v2/sessions/{session_id}/run-llm", body, AUTH)
        return await _arrivals(pieces, b"event: text_delta")

    cpu_before, busy_before = cpu_seconds(url.process.pid), machine_busy_seconds()
    started = time.perf_counter()
    results = await asyncio.gather(*(one(c, s) for c, s in zip(connections, sessions, strict=True)))
    elapsed = time.perf_counter() - started
    cores = (cpu_seconds(url.process.pid) - cpu_before) / elapsed
    busy = (machine_busy_seconds() - busy_before) / elapsed
    for connection in connections:
        await connection.aclose()
    return list(results), elapsed, cores, busy


def _report(name: str, results: list[list[float]], sent: int, gap_ms: float) -> float:
    received = sum(len(r) for r in results)
    jitter = [j for r in results for j in _jitter(r, gap_ms)]
    p99 = percentile(jitter, 0.99)
    print(
        f"{name:<8} deltas {received}/{sent}  jitter p50 {percentile(jitter, 0.5):6.2f} ms  "
        f"p99 {p99:6.2f} ms"
    )
    return p99


async def _relayed(server: ServerURL, streams: int) -> tuple[list[list[float]], float]:
    """:func:`_messages` through ``server``, and the CPU seconds its process spent on them."""
    before = cpu_seconds(server.process.pid)
    results, _ = await _messages(server, streams)
    return results, cpu_seconds(server.process.pid) - before


async def run(streams: int, rate: float, seconds: float) -> None:
    deltas = int(rate * seconds)
    sent = streams * deltas
    gap_ms = 1000 / rate
    pacing = ("--deltas", str(deltas), "--gap-ms", str(gap_ms))
    with canned_upstream(*pacing) as upstream:
        direct, _ = await _messages(upstream, streams)
        with tcp_pipe(upstream) as pipe:
            piped, pipe_cpu = await _relayed(pipe, streams)
        with bare_relay(upstream) as relay:
            relayed, relay_cpu = await _relayed(relay, streams)
        with gateway(upstream) as url:
            cerver, elapsed, cores, busy = await _through_cerver(url, streams)
    print(
        f"streams: {streams} turns x {deltas} deltas at {rate:.0f}/s, same canned upstream "
        f"(a test double); {elapsed:.1f} s through cerver"
    )
    direct_p99 = _report("direct", direct, sent, gap_ms)
    _report("pipe", piped, sent, gap_ms)
    _report("relay", relayed, sent, gap_ms)
    cerver_p99 = _report("cerver", cerver, sent, gap_ms)
    print(f"added jitter p99: {cerver_p99 - direct_p99:.2f} ms (budget <= 10)")
    print(
        f"gateway CPU: {cores:.2f} cores (budget < 1); the machine meanwhile: {busy:.2f} cores "
        "busy (the load generator and the upstream included)"
    )
    # Per delta, so that a path that fell behind (and ran longer) is not flattered.
    per_delta = cores * elapsed / sent * 1e6
    relay_per_delta, pipe_per_delta = relay_cpu / sent * 1e6, pipe_cpu / sent * 1e6
    allowed = 1e6 / (streams * rate)
    print(
        f"CPU per delta: cerver {per_delta:.1f} us, bare relay {relay_per_delta:.1f} us "
        f"({per_delta / relay_per_delta:.2f}x), TCP pipe {pipe_per_delta:.1f} us (the floor: "
        f"one read and one write, nothing parsed); one core allows {allowed:.1f} us at "
        f"{streams} x {rate:.0f} deltas/s, {allowed - pipe_per_delta:.1f} us above the floor"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.streams, args.rate, args.seconds))


if __name__ == "__main__":
    main()
