"""Memory under a long mixed load: is the gateway's RSS flat? (issue 14, goal 6)

One `cerver serve` process (SQLite, local sandboxes) and the mock upstream (a test double, its
own process). ``--workers`` clients loop for ``--minutes``, each round doing, on one of a pool
of sessions that is continually renewed (new sessions created, old ones deleted):

* a ``run-llm`` turn (JSON),
* a streamed ``run-llm`` turn (SSE, read to the end),
* a sandbox command (``POST /v2/sessions/{id}/run``),
* a read of the session's messages.

The gateway's RSS is sampled every ``--sample`` seconds. The baseline is the RSS once the
warm-up (the first ``--warmup`` fraction of the run) is over, measured in the same run; the
result is the RSS at the end, and the peak, as ratios of it, against the goal of ±10 %.

    python -m bench.soak [--minutes 10] [--workers 8] [--sessions 40]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from collections import Counter
from pathlib import Path

import httpx

from bench._servers import gateway, mock_upstream
from bench.throughput import AUTH, MODEL

GOAL = 0.10


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (from ``/proc``; 0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Pool:
    """Sessions the load runs on; one in ``renew_every`` rounds replaces the oldest."""

    def __init__(self, http: httpx.AsyncClient, size: int, renew_every: int = 20) -> None:
        self.http, self.size, self.renew_every = http, size, renew_every
        self.ids: list[str] = []
        self.rounds = itertools.count()

    async def fill(self) -> None:
        self.ids = [await self._create() for _ in range(self.size)]

    async def pick(self) -> str:
        if next(self.rounds) % self.renew_every == 0 and self.ids:
            old = self.ids.pop(0)
            self.ids.append(await self._create())
            (await self.http.delete(f"/v2/sessions/{old}")).raise_for_status()
        return random.choice(self.ids)

    async def _create(self) -> str:
        body = {"model": MODEL, "compute": {"provider": "local"}}
        response = await self.http.post("/v2/sessions", json=body)
        response.raise_for_status()
        return response.json()["session_id"]


async def _round(http: httpx.AsyncClient, sid: str, counts: Counter[str]) -> None:
    """One round on session ``sid``; a request that fails in transport (no answer within the
    client's timeout, a dropped connection) is counted under its step's name."""
    step = "turn"
    try:
        answer = await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hello"})
        counts[f"turn {answer.status_code}"] += 1
        step = "stream"
        async with http.stream(
            "POST", f"/v2/sessions/{sid}/run-llm", json={"input": "stream", "stream": True}
        ) as stream:
            async for _ in stream.aiter_bytes():
                pass
        counts[f"stream {stream.status_code}"] += 1
        step = "exec"
        ran = await http.post(f"/v2/sessions/{sid}/run", json={"code": "echo soak > soak.txt"})
        counts[f"exec {ran.status_code}"] += 1
        step = "read"
        read = await http.get(f"/v2/sessions/{sid}/messages")
        counts[f"read {read.status_code}"] += 1
    except httpx.TransportError as exc:  # reported, and the load goes on
        counts[f"{step}: transport error {type(exc).__name__}"] += 1


async def run(args: argparse.Namespace) -> None:
    with mock_upstream() as upstream, gateway(upstream) as url:
        pid = url.process.pid
        limits = httpx.Limits(max_connections=args.workers * 2)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60, limits=limits) as http:
            pool = Pool(http, args.sessions)
            await pool.fill()
            counts: Counter[str] = Counter()
            deadline = time.monotonic() + args.minutes * 60
            samples: list[tuple[float, int]] = []

            async def worker() -> None:
                while time.monotonic() < deadline:
                    await _round(http, await pool.pick(), counts)

            async def sampler() -> None:
                started = time.monotonic()
                while time.monotonic() < deadline:
                    samples.append((time.monotonic() - started, rss_bytes(pid)))
                    await asyncio.sleep(args.sample)

            await asyncio.gather(sampler(), *(worker() for _ in range(args.workers)))
    _report(samples, counts, args)


def _report(
    samples: list[tuple[float, int]], counts: Counter[str], args: argparse.Namespace
) -> None:
    total = args.minutes * 60
    warm = [rss for at, rss in samples if at >= total * args.warmup]
    if len(warm) < 2:
        print("Too few samples after the warm-up: run longer or sample more often.")
        return
    baseline, end, peak = warm[0], warm[-1], max(warm)
    mib = 1024 * 1024
    print(f"requests: {dict(sorted(counts.items()))}")
    print(
        f"RSS after warm-up {baseline / mib:.1f} MiB, at the end {end / mib:.1f} MiB, "
        f"peak {peak / mib:.1f} MiB"
    )
    for label, value in (("end", end), ("peak", peak)):
        ratio = value / baseline
        verdict = "meets" if abs(ratio - 1) <= GOAL else "misses"
        print(f"{label} / warm-up RSS = {ratio:.3f}  ({verdict} the goal 1 ± {GOAL:.2f})")
    print("RSS (MiB) every sample:", " ".join(f"{rss / mib:.0f}" for _, rss in samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--sample", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
