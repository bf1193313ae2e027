"""``cerver demo``: the main job, end to end, on the embedded defaults.

It starts a real gateway (SQLite, local compute, the mock upstream when no provider key is
set) on a free local port, then drives it over HTTP with :class:`cerver.AsyncClient`: a session
for one end user, a turn that runs a command in the sandbox, a swap to another harness and
model that answers from the earlier history, then the transcript with provenance and metrics.

The sandbox is confined or the demo does not run it: when bubblewrap is missing the demo runs
the ``bubblewrap`` step of ``cerver setup`` (which installs it as root with apt-get), and if
it is still missing it stops with the local compute's refusal, which names the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from rich.console import Console
from rich.markup import escape

from cerver.api import create_app
from cerver.cli.render import render_metrics, render_transcript
from cerver.client import AsyncClient
from cerver.gateway import MOCK_NOTICE, Gateway
from cerver.settings import Settings

__all__ = ["run_demo", "running_gateway"]

FIRST_TURN = (
    "Make a greeting file in the workspace and show it to me: "
    "`echo 'hello from the sandbox' > greeting.txt && cat greeting.txt && uname -s`"
)
SECOND_TURN = "What did the command print earlier in this session?"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[tuple[Gateway, str]]:
    """Serve a gateway over HTTP on a free local port for the duration of the block."""
    gateway = Gateway(settings)
    port = _free_port()
    config = uvicorn.Config(
        create_app(gateway), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
        await asyncio.sleep(0.02)
    try:
        yield gateway, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def ensure_confinement(console: Console) -> str | None:
    """Install bubblewrap if the local sandbox needs it and this host allows it.

    Returns:
        ``None`` when local sandboxes can run (confined, or ``CERVER_LOCAL_ISOLATION=none``),
        else the refusal naming the fix.
    """
    from cerver.cli.setup_tools import install_bubblewrap
    from compute.local import LocalCompute

    problem = LocalCompute.host_report().problem
    if problem is not None and "not installed" in problem:
        console.print("The local sandbox needs bubblewrap to confine commands: setting it up.")
        install_bubblewrap(console)
        problem = LocalCompute.host_report().problem
    return problem


async def run_demo(console: Console, user: str) -> None:
    data_dir = os.environ.get("CERVER_DATA_DIR") or tempfile.mkdtemp(prefix="cerver-demo-")
    settings = Settings(data_dir=Path(data_dir))
    console.rule("[bold]Cerver demo")
    refusal = ensure_confinement(console)
    if refusal is not None:
        console.print(f"[red]The demo's sandbox would not be confined.[/] {escape(refusal)}")
        raise SystemExit(1)
    async with running_gateway(settings) as (gateway, url):
        console.print(f"gateway: {url}  store: {gateway.store.db.dialect} in {data_dir}")
        if gateway.upstream_is_mock:
            console.print(f"[bold yellow]MOCK UPSTREAM (test double):[/] {escape(MOCK_NOTICE)}")
        api_key = gateway.bootstrap.api_key if gateway.bootstrap else settings.admin_key
        async with AsyncClient(url, api_key) as client:
            session = await client.create_session(
                user=user,
                session_name="demo",
                task="Show a session moving between models",
                harness="anthropic",
                compute={"provider": "local"},
            )
            sid = session["session_id"]
            console.print(
                f"\n[bold]1. Session[/] {sid} for end user {user!r} on compute "
                f"{session['provider']!r} (sandbox {session['sandbox_id']}, provisioned in "
                f"{session['metrics']['provision_time_ms']} ms)"
            )
            console.print(f"\n[bold]2. Turn with {session['harness']} · {session['model']}[/]")
            await _stream_turn(console, client, sid, FIRST_TURN)

            switched = await client.switch_harness(sid, "openai", "gpt-5")
            console.print(
                f"\n[bold]3. Swap[/] to {switched['harness']} · {switched['model']}, same "
                "session, same transcript"
            )
            await _stream_turn(console, client, sid, SECOND_TURN)

            console.print("\n[bold]4. The session, as stored[/]")
            stored = await client.get_session(sid, transcript=True)
            render_transcript(console, stored["transcript"])
            render_metrics(console, stored["metrics"])
    console.print(
        "\nNext: `cerver serve` for a persistent gateway; `cerver sessions list` to browse."
    )


async def _stream_turn(console: Console, client: AsyncClient, session_id: str, text: str) -> None:
    console.print(f"[cyan]user>[/] {text}")
    async for event in client.stream_llm(session_id, text):
        if event.event == "text_delta":
            console.print(event.data["text"], end="", markup=False, highlight=False)
        elif event.event == "tool_call":
            call = event.data["parts"][0]
            console.print(f"[magenta]tool call[/] {call['name']} {call['arguments']}")
        elif event.event == "tool_result":
            result = event.data["parts"][0]
            console.print(f"[magenta]tool result[/] {result['output'].strip()}")
        elif event.event == "message":
            console.print()
        elif event.event == "error":
            console.print(f"[red]error:[/] {event.data['detail']}")
        elif event.event == "turn.completed":
            usage = event.data["usage"]
            console.print(
                f"[dim]turn {event.data['status']} in {event.data['latency_ms']:.0f} ms, "
                f"{usage['input_tokens']}/{usage['output_tokens']} tokens[/]"
            )
