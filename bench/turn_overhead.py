"""What a Cerver turn adds to a model call, measured side by side in one run.

Four paths make the same streamed Anthropic Messages call to the same mock upstream (its own
process): "direct" with the Anthropic SDK from this process, keeping the conversation in a
list as an app would; "relay", the same SDK call through a bare FastAPI relay process (the
reference DESIGN §7 budgets against); "litellm", the same SDK call through the LiteLLM proxy
(no database, one worker) when it is installed (``python -m bench.litellm_env``; skipped
with a note otherwise); and "cerver", a non-streaming ``POST /v2/sessions/{id}/run-llm``
through a gateway process (auth, turn lock, user message and
reply persisted, ledger, history replayed from the store). All start a new conversation every
20 turns, so all send the same growing history. Rounds are interleaved so drift hits every
path alike.

    python bench/turn_overhead.py [--rounds 300]

DESIGN §7's budget: Cerver adds at most 2× what a bare relay adds at p50 (2.5× at p99), and at
most 0.35× what the LiteLLM proxy adds at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from contextlib import ExitStack

import httpx

from bench._servers import (
    ADMIN_KEY,
    LITELLM_SKIP_NOTE,
    bare_relay,
    gateway,
    litellm_proxy,
    litellm_proxy_available,
    mock_upstream,
)

MODEL = "claude-sonnet-4-6"
TURNS_PER_SESSION = 20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(rounds: int) -> None:
    import anthropic

    with_litellm = litellm_proxy_available()
    with ExitStack() as stack:
        upstream_url = stack.enter_context(mock_upstream())
        gateway_url = stack.enter_context(gateway(upstream_url))
        relay_url = stack.enter_context(bare_relay(upstream_url))
        sdk = anthropic.AsyncAnthropic(base_url=upstream_url, api_key="bench", max_retries=0)
        relayed = anthropic.AsyncAnthropic(base_url=relay_url, api_key="bench", max_retries=0)
        sdks = [sdk, relayed]
        http = httpx.AsyncClient(
            base_url=gateway_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30
        )

        def conversation_path(client: anthropic.AsyncAnthropic):
            conversation: list[dict] = []

            async def call(i: int) -> None:
                if i % TURNS_PER_SESSION == 0:
                    conversation.clear()
                conversation.append({"role": "user", "content": "hello"})
                async with client.messages.stream(
                    model=MODEL, max_tokens=4096, messages=conversation
                ) as stream:
                    reply = await stream.get_final_message()
                conversation.append({"role": "assistant", "content": reply.content[0].text})

            return call

        direct, relay = conversation_path(sdk), conversation_path(relayed)

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

        paths = {"direct": direct, "relay": relay, "cerver": through_cerver}
        if with_litellm:
            litellm_url = stack.enter_context(litellm_proxy(upstream_url, MODEL))
            key = litellm_url.env["LITELLM_MASTER_KEY"]
            proxied = anthropic.AsyncAnthropic(base_url=litellm_url, api_key=key, max_retries=0)
            sdks.append(proxied)
            paths["litellm"] = conversation_path(proxied)
        for i in range(TURNS_PER_SESSION):  # warm every path (imports, pools, SQLite pages)
            for path in paths.values():
                await path(i)
        timings: dict[str, list[float]] = {name: [] for name in paths}
        for i in range(rounds):
            for name, path in paths.items():
                started = time.perf_counter()
                await path(i)
                timings[name].append((time.perf_counter() - started) * 1000)
        await http.aclose()
        for client in sdks:
            await client.close()

    print(f"turn overhead, {rounds} interleaved rounds, same mock upstream (a test double)")
    print(f"{'path':<8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name, values in timings.items():
        print(
            f"{name:<8} {percentile(values, 0.5):8.2f} {percentile(values, 0.99):8.2f} "
            f"{statistics.fmean(values):8.2f}"
        )
    d = timings["direct"]
    added = {
        name: (
            percentile(timings[name], 0.5) - percentile(d, 0.5),
            percentile(timings[name], 0.99) - percentile(d, 0.99),
        )
        for name in timings
        if name != "direct"
    }
    for name, (p50, p99) in added.items():
        print(f"added by {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(
        f"cerver/direct p50: {percentile(timings['cerver'], 0.5) / percentile(d, 0.5):.2f}x; "
        f"cerver's added p50 / relay's added p50: {added['cerver'][0] / added['relay'][0]:.2f}x "
        "(budget <= 2)"
    )
    print(
        f"cerver's added p99 / relay's added p99: {added['cerver'][1] / added['relay'][1]:.2f}x "
        "(budget <= 2.5; a p99 difference of a few ms is noise on a shared machine)"
    )
    if "litellm" in added:
        print(
            f"cerver's added p50 / LiteLLM's added p50: "
            f"{added['cerver'][0] / added['litellm'][0]:.2f}x (budget <= 0.35)"
        )
    else:
        print(LITELLM_SKIP_NOTE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(run(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
