"""Fan-out wall time against the slowest variant alone, measured side by side in one run.

Every variant's model call takes a fixed delay at the mock upstream (its own process). Each
round runs, through a gateway process, a fan-out of one variant ("alone"), a fan-out of N
variants ("fan-out"), a fan-out of N where one variant fails at once ("with failure") and,
for reference, N plain ``run-llm`` turns at once on N sessions ("plain turns": the turn path
without fan-out machinery). Rounds are interleaved so drift hits all four alike.

    python -m bench.fanout [--variants 10] [--delay-ms 500] [--rounds 5]

DESIGN §7's budget: fan-out wall time ≤ 1.2 × the slowest variant alone (N = 10), and a
failing variant does not slow the others.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from bench._servers import ADMIN_KEY, gateway, mock_upstream


async def run(variants: int, delay_ms: float, rounds: int) -> None:
    with mock_upstream() as upstream_url, gateway(upstream_url) as gateway_url:
        mock = httpx.AsyncClient(base_url=upstream_url, timeout=30)
        http = httpx.AsyncClient(
            base_url=gateway_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=120
        )

        async def fanout(n: int, *, failing: int = 0) -> float:
            ok = {"text": "ok", "delay_ms": delay_ms, "model": "bench-[0-9]*"}
            replies = [ok] * (n - failing)
            replies += [
                {"error": {"status": 400, "message": "scripted failure"}, "model": "bench-fail"}
            ] * failing
            (await mock.post("/_mock/script", json=replies)).raise_for_status()
            body = {
                "input": "hello",
                "variants": [
                    {"harness": "anthropic", "model": f"bench-{i}"} for i in range(n - failing)
                ]
                + [{"harness": "anthropic", "model": "bench-fail"}] * failing,
                "judge": {"type": "fastest"},
                "max_concurrency": n,
            }
            started = time.perf_counter()
            response = await http.post("/v2/fanouts", json=body)
            wall = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            statuses = [v["status"] for v in response.json()["variants"]]
            assert statuses.count("completed") == n - failing, statuses
            return wall

        async def plain_turns(n: int) -> float:
            """The reference: n run-llm turns at once on n sessions, no fan-out machinery."""
            ok = {"text": "ok", "delay_ms": delay_ms, "model": "bench-[0-9]*"}
            (await mock.post("/_mock/script", json=[ok] * n)).raise_for_status()
            sessions = [
                (await http.post("/v2/sessions", json={"compute": None})).json()["session_id"]
                for _ in range(n)
            ]
            started = time.perf_counter()
            responses = await asyncio.gather(
                *(
                    http.post(
                        f"/v2/sessions/{sid}/run-llm", json={"input": "hi", "model": "bench-0"}
                    )
                    for sid in sessions
                )
            )
            wall = (time.perf_counter() - started) * 1000
            for response in responses:
                response.raise_for_status()
            return wall

        await fanout(1)  # warm imports, pools and SQLite pages
        await fanout(variants)
        await plain_turns(variants)
        timings: dict[str, list[float]] = {
            "alone": [],
            "fan-out": [],
            "with failure": [],
            "plain turns": [],
        }
        for _ in range(rounds):
            timings["alone"].append(await fanout(1))
            timings["fan-out"].append(await fanout(variants))
            timings["with failure"].append(await fanout(variants, failing=1))
            timings["plain turns"].append(await plain_turns(variants))
        await http.aclose()
        await mock.aclose()

    print(
        f"fan-out wall time, N = {variants} variants, {delay_ms:g} ms upstream delay each, "
        f"{rounds} interleaved rounds, mock upstream (a test double)"
    )
    print(f"{'path':<14} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for name, values in timings.items():
        print(f"{name:<14} {statistics.median(values):10.1f} {min(values):8.1f} {max(values):8.1f}")
    alone = statistics.median(timings["alone"])
    ratio = statistics.median(timings["fan-out"]) / alone
    failing = statistics.median(timings["with failure"]) / alone
    print(f"ratio fan-out / slowest alone: {ratio:.3f} (budget ≤ 1.2)")
    print(f"ratio with one failing variant / slowest alone: {failing:.3f}")
    plain = statistics.median(timings["plain turns"]) / alone
    print(f"reference: {variants} plain concurrent run-llm turns / slowest alone: {plain:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=10)
    parser.add_argument("--delay-ms", type=float, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.variants, args.delay_ms, args.rounds))


if __name__ == "__main__":
    main()
