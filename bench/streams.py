"""Many streamed turns at once: every delta delivered, the added jitter, the gateway's CPU.

``--streams`` turns stream at the same time, each receiving ``--rate`` text deltas a second
from the mock upstream (a test double, its own process) for ``--seconds``. Two paths, one run:

* ``direct``: the Anthropic SDK streams straight from the mock upstream (the baseline: the
  upstream's and this client's own jitter);
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

import httpx

from bench._servers import cpu_seconds, gateway, mock_upstream
from bench.throughput import AUTH, MODEL


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _script(upstream: str, streams: int, deltas: int, gap_ms: float) -> None:
    reply = {"text": " ".join(["tok"] * deltas), "chunk_delay_ms": gap_ms}
    async with httpx.AsyncClient(timeout=60) as http:
        (await http.post(f"{upstream}/_mock/reset")).raise_for_status()
        (await http.post(f"{upstream}/_mock/script", json=[reply] * streams)).raise_for_status()


def _jitter(arrivals: list[float], gap_ms: float) -> list[float]:
    return [(b - a) * 1000 - gap_ms for a, b in itertools.pairwise(arrivals)][1:]


async def _direct(upstream: str, streams: int) -> tuple[list[list[float]], float]:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=upstream, api_key="bench", max_retries=0)

    async def one() -> list[float]:
        arrivals = []
        async with client.messages.stream(
            model=MODEL, max_tokens=4096, messages=[{"role": "user", "content": "go"}]
        ) as stream:
            async for _ in stream.text_stream:
                arrivals.append(time.perf_counter())
        return arrivals

    started = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(streams)))
    await client.close()
    return list(results), time.perf_counter() - started


async def _through_cerver(url: str, streams: int) -> tuple[list[list[float]], float, float]:
    limits = httpx.Limits(max_connections=streams + 8, max_keepalive_connections=streams + 8)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=300, limits=limits) as http:
        sessions = []
        for _ in range(streams):
            created = await http.post("/v2/sessions", json={"user": "bench", "compute": None})
            created.raise_for_status()
            sessions.append(created.json()["session_id"])

        async def one(session_id: str) -> list[float]:
            arrivals = []
            body = {"input": "go", "stream": True}
            async with http.stream("POST", f"/v2/sessions/{session_id}/run-llm", json=body) as r:
                r.raise_for_status()
                async for line in r.aiter_lines():
                    if line == "event: text_delta":
                        arrivals.append(time.perf_counter())
            return arrivals

        cpu_before = cpu_seconds(url.process.pid)
        started = time.perf_counter()
        results = await asyncio.gather(*(one(s) for s in sessions))
        elapsed = time.perf_counter() - started
        cores = (cpu_seconds(url.process.pid) - cpu_before) / elapsed
    return list(results), elapsed, cores


def _report(name: str, results: list[list[float]], sent: int, gap_ms: float) -> float:
    received = sum(len(r) for r in results)
    jitter = [j for r in results for j in _jitter(r, gap_ms)]
    p99 = percentile(jitter, 0.99)
    print(
        f"{name:<8} deltas {received}/{sent}  jitter p50 {percentile(jitter, 0.5):6.2f} ms  "
        f"p99 {p99:6.2f} ms"
    )
    return p99


async def run(streams: int, rate: float, seconds: float) -> None:
    deltas = int(rate * seconds)
    gap_ms = 1000 / rate
    with mock_upstream() as upstream, gateway(upstream) as url:
        await _script(upstream, streams, deltas, gap_ms)
        direct, _ = await _direct(upstream, streams)
        await _script(upstream, streams, deltas, gap_ms)
        cerver, elapsed, cores = await _through_cerver(url, streams)
    print(
        f"streams: {streams} turns x {deltas} deltas at {rate:.0f}/s, same mock upstream "
        f"(a test double); {elapsed:.1f} s through cerver"
    )
    direct_p99 = _report("direct", direct, streams * deltas, gap_ms)
    cerver_p99 = _report("cerver", cerver, streams * deltas, gap_ms)
    print(f"added jitter p99: {cerver_p99 - direct_p99:.2f} ms (budget <= 10)")
    print(f"gateway CPU: {cores:.2f} cores (budget < 1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.streams, args.rate, args.seconds))


if __name__ == "__main__":
    main()
