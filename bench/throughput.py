"""Requests per second and CPU per request: a bare relay and Cerver's ``run-llm``, one run.

Every path serves the same Anthropic Messages call from the same canned upstream (a test
double, its own process: ``bench/_canned_upstream.py``) under the same closed-loop load:
``--connections`` clients, each on its own keep-alive connection sending its next request as
soon as the last one answered, for ``--seconds`` per path in all, split into ``--rounds``
interleaved rounds (every server runs throughout, each path takes its turn in every round), so
drift on a shared machine hits every path alike. The load generator and the upstream
are kept lean (``bench/_lean_http.py``), so on a small machine the cores go to the servers
measured.

* ``relay``: the bare FastAPI relay of ``bench/_relay.py`` (the reference of DESIGN §7);
* ``cerver``: ``POST /v2/sessions/{id}/run-llm`` on transcript-only sessions (auth, turn lock,
  user message and reply persisted, ledger, history from the store), each client on its own
  session, a new one every 20 turns;
* ``cerver mem``: the same on an in-memory SQLite store ("persistence off": DESIGN §7 budgets
  the persisted gateway at ≥ 0.9 × its requests/s);
* ``cerver x2``: the same with ``cerver serve --workers 2`` when the gateway offers it;
* ``litellm``: the relay's call through the LiteLLM proxy (no database, one worker) when it is
  installed (``python -m bench.litellm_env``), skipped with a note otherwise.

CPU per request is the server process's (and its workers') user + system time over the
measured window divided by the requests answered. Printed ratios are against the relay and
against one Cerver worker; DESIGN §7 budgets ``--workers 2`` at ≥ 1.7 × one worker.

    python -m bench.throughput [--seconds 10] [--rounds 4] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass

import orjson

from bench._lean_http import LeanConnection
from bench._servers import (
    ADMIN_KEY,
    LITELLM_SKIP_NOTE,
    ServerURL,
    bare_relay,
    canned_upstream,
    cpu_seconds,
    gateway,
    litellm_proxy,
    litellm_proxy_available,
    machine_busy_seconds,
)

MODEL = "claude-sonnet-4-6"
TURNS_PER_SESSION = 20
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
MESSAGE = {"model": MODEL, "max_tokens": 256, "messages": [{"role": "user", "content": "hi"}]}


IN_MEMORY_STORE = "sqlite+aiosqlite:///:memory:"

Send = Callable[[int], Awaitable[None]]
"""One closed-loop client's next request (its number, from 0)."""


def _offers_workers() -> bool:
    helped = subprocess.run(
        [sys.executable, "-m", "cerver", "serve", "--help"], capture_output=True, text=True
    )
    return "--workers" in helped.stdout


def cerver_client(connection: LeanConnection) -> Send:
    """One closed-loop client of ``run-llm``: a new transcript-only session every
    :data:`TURNS_PER_SESSION` turns."""
    session = ""

    async def send(i: int) -> None:
        nonlocal session
        if i % TURNS_PER_SESSION == 0:
            created = await connection.request(
                "POST", "/v2/sessions", {"user": "bench", "compute": None}, AUTH
            )
            session = orjson.loads(created)["session_id"]
        await connection.request(
            "POST", f"/v2/sessions/{session}/run-llm", {"input": "hello"}, AUTH
        )

    return send


def messages_client(key: str) -> Callable[[LeanConnection], Send]:
    """Closed-loop clients of ``POST /v1/messages`` (the relay, the LiteLLM proxy)."""

    def make(connection: LeanConnection) -> Send:
        async def send(i: int) -> None:
            await connection.request("POST", "/v1/messages", MESSAGE, {"x-api-key": key})

        return send

    return make


async def _load(
    url: str, connections: int, seconds: float, make_client: Callable[[LeanConnection], Send]
) -> int:
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        connection = LeanConnection(url)
        send = make_client(connection)
        i = 0
        try:
            while time.perf_counter() < deadline:
                await send(i)
                i += 1
                done += 1
        finally:
            await connection.aclose()

    await asyncio.gather(*(client() for _ in range(connections)))
    return done


@dataclass
class Tally:
    """Load measured on one server: what :func:`measure` returns for one window, and (with
    :meth:`add`) a path's windows summed over interleaved rounds."""

    requests: float = 0.0
    elapsed: float = 0.0
    #: The server process's (and its workers') CPU, and every process's on the machine.
    cpu_seconds: float = 0.0
    busy_seconds: float = 0.0

    def add(self, window: Tally) -> None:
        self.requests += window.requests
        self.elapsed += window.elapsed
        self.cpu_seconds += window.cpu_seconds
        self.busy_seconds += window.busy_seconds

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds * 1000 / max(self.requests, 1)

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.elapsed

    @property
    def busy_cores(self) -> float:
        return self.busy_seconds / self.elapsed


async def measure(
    name: str,
    server: ServerURL,
    connections: int,
    seconds: float,
    make_client: Callable[[LeanConnection], Send],
) -> Tally:
    """Closed-loop load on ``server`` for ``seconds`` (after a short warm-up): the requests
    answered, the server's CPU and the machine's busy CPU meanwhile."""
    await _load(server, connections, min(2.0, seconds), make_client)  # warm pools, pages
    cpu_before, busy_before = cpu_seconds(server.process.pid), machine_busy_seconds()
    started = time.perf_counter()
    done = await _load(server, connections, seconds, make_client)
    return Tally(
        requests=done,
        elapsed=time.perf_counter() - started,
        cpu_seconds=cpu_seconds(server.process.pid) - cpu_before,
        busy_seconds=machine_busy_seconds() - busy_before,
    )


async def run(seconds: float, rounds: int, connections: int) -> None:
    paths: dict[str, tuple[ServerURL, Callable[[LeanConnection], Send]]] = {}
    with ExitStack() as stack:
        upstream = stack.enter_context(canned_upstream())
        paths["relay"] = (stack.enter_context(bare_relay(upstream)), messages_client("bench"))
        if litellm_proxy_available():
            proxy = stack.enter_context(litellm_proxy(upstream, MODEL))
            paths["litellm"] = (proxy, messages_client(proxy.env["LITELLM_MASTER_KEY"]))
        paths["cerver"] = (stack.enter_context(gateway(upstream)), cerver_client)
        # "Persistence off": the same gateway on an in-memory SQLite store (nothing on disk).
        in_memory = gateway(upstream, CERVER_DATABASE_URL=IN_MEMORY_STORE)
        paths["cerver mem"] = (stack.enter_context(in_memory), cerver_client)
        if _offers_workers():
            two = gateway(upstream, "--workers", "2")
            paths["cerver x2"] = (stack.enter_context(two), cerver_client)
        results = {name: Tally() for name in paths}
        for _ in range(rounds):
            for name, (server, make_client) in paths.items():
                results[name].add(
                    await measure(name, server, connections, seconds / rounds, make_client)
                )

    print(
        f"throughput, {connections} connections, {seconds:.0f} s per path in {rounds} "
        "interleaved rounds, same canned upstream"
    )
    print(f"{'path':<10} {'req/s':>8} {'CPU ms/req':>11} {'requests':>9} {'machine busy':>13}")
    for name, r in results.items():
        print(f"{name:<10} {r.rps:8.1f} {r.cpu_ms:11.2f} {r.requests:9.0f} {r.busy_cores:13.2f}")
    relay, cerver = results["relay"], results["cerver"]
    print(
        f"cerver/relay req/s: {cerver.rps / relay.rps:.2f}x; "
        f"CPU per request: {cerver.cpu_ms / relay.cpu_ms:.2f}x the relay's"
    )
    if "litellm" in results:
        # Per core: requests per CPU-second of each server process.
        ratio = results["litellm"].cpu_ms / cerver.cpu_ms
        print(f"cerver req/s per core / LiteLLM's per worker: {ratio:.2f}x (budget >= 4)")
    else:
        print(LITELLM_SKIP_NOTE)
    ratio = cerver.rps / results["cerver mem"].rps
    print(f"persistence on / off (in-memory store) req/s: {ratio:.2f}x (budget >= 0.9)")
    if "cerver x2" in results:
        ratio = results["cerver x2"].rps / cerver.rps
        print(f"--workers 2 / one worker req/s: {ratio:.2f}x (budget >= 1.7)")
    else:
        print("--workers: not offered by this gateway (cerver serve --help)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.rounds, args.connections))


if __name__ == "__main__":
    main()
