"""What a Cerver turn adds to a model call, measured side by side in one run.

Both paths make the same streamed Anthropic Messages call to the same mock upstream (its own
process): "direct" with the Anthropic SDK from this process, "cerver" as a non-streaming
``POST /v2/sessions/{id}/run-llm`` through a gateway process (auth, turn lock, user message and
reply persisted, ledger). Rounds are interleaved so drift hits both paths alike.

    python bench/turn_overhead.py [--rounds 300]

DESIGN §7's budget: Cerver adds at most 2× what a bare relay adds (≈3 ms here) and at most
0.15× what the LiteLLM proxy adds (≈18 ms p50).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from bench._servers import ADMIN_KEY, gateway, mock_upstream

MODEL = "claude-sonnet-4-6"
TURNS_PER_SESSION = 20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(rounds: int) -> None:
    import anthropic

    with mock_upstream() as upstream_url, gateway(upstream_url) as gateway_url:
        sdk = anthropic.AsyncAnthropic(base_url=upstream_url, api_key="bench", max_retries=0)
        http = httpx.AsyncClient(
            base_url=gateway_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        )

        async def direct() -> None:
            async with sdk.messages.stream(
                model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "hello"}]
            ) as stream:
                await stream.get_final_message()

        session_id = ""

        async def through_cerver(i: int) -> None:
            nonlocal session_id
            if i % TURNS_PER_SESSION == 0:
                created = await http.post("/v2/sessions", json={"user": "bench", "compute": None})
                session_id = created.json()["session_id"]
            response = await http.post(
                f"/v2/sessions/{session_id}/run-llm", json={"input": "hello"}
            )
            response.raise_for_status()

        for i in range(20):  # warm both paths (imports, pools, SQLite pages)
            await direct()
            await through_cerver(i)
        timings: dict[str, list[float]] = {"direct": [], "cerver": []}
        for i in range(rounds):
            started = time.perf_counter()
            await direct()
            timings["direct"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await through_cerver(i)
            timings["cerver"].append((time.perf_counter() - started) * 1000)
        await http.aclose()
        await sdk.close()

    d, c = timings["direct"], timings["cerver"]
    print(f"turn overhead, {rounds} interleaved rounds, same mock upstream (a test double)")
    print(f"{'path':<8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in timings.items():
        print(
            f"{name:<8} {percentile(values, 0.5):8.2f} {percentile(values, 0.99):8.2f} "
            f"{statistics.fmean(values):8.2f}"
        )
    added_p50 = percentile(c, 0.5) - percentile(d, 0.5)
    added_p99 = percentile(c, 0.99) - percentile(d, 0.99)
    print(f"added by cerver: p50 {added_p50:.2f} ms, p99 {added_p99:.2f} ms")
    print(f"ratio cerver/direct: p50 {percentile(c, 0.5) / percentile(d, 0.5):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(run(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
