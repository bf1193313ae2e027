"""The ``cerver`` command: serve the gateway, run the demo, inspect sessions, set up tools."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cerver import __version__

if TYPE_CHECKING:
    from cerver.cli.serving import ServeOptions
    from cerver.gateway import Gateway

app = typer.Typer(
    help="Cerver: a self-hostable session gateway for AI apps.",
    no_args_is_help=True,
    add_completion=False,
)
sessions_app = typer.Typer(help="Inspect sessions on a running gateway.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")

console = Console()

UrlOption = Annotated[
    str, typer.Option("--url", envvar="CERVER_URL", help="The gateway's base URL.")
]
KeyOption = Annotated[
    str | None, typer.Option("--api-key", envvar="CERVER_API_KEY", help="A ck_… API key.")
]


@app.command()
def version() -> None:
    """Print Cerver's version."""
    console.print(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: $CERVER_HOST or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: $CERVER_PORT or 8787.")] = None,
    log_level: str = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="CERVER_WORKERS",
            help="Gateway processes sharing the port and the store (SQLite included); "
            "about one per core.",
        ),
    ] = 1,
) -> None:
    """Start the gateway (SQLite under the data directory unless CERVER_DATABASE_URL is set).

    SIGTERM drains it: /readyz turns 503 at once, running turns get
    CERVER_SHUTDOWN_GRACE_SECONDS (default 10) to finish and are then recorded interrupted.
    With --workers N the same holds for each of the N processes.
    """
    from cerver.cli.serving import STARTUP_FAILURE, ServeOptions, serve_gateway

    options = ServeOptions(host=host, port=port, log_level=log_level, workers=workers)
    if workers == 1:
        if not serve_gateway(options, on_started=_print_start_banner):
            raise typer.Exit(STARTUP_FAILURE)
        return
    code = _serve_workers(options)
    if code:
        raise typer.Exit(code)


def _serve_workers(options: ServeOptions) -> int:
    """``serve --workers N``: prepare the store once, bind, then supervise N workers."""
    import asyncio

    from cerver.cli.serving import STARTUP_FAILURE
    from cerver.cli.workers import Supervisor, listening_sockets
    from cerver.gateway import Gateway
    from cerver.settings import Settings
    from cerver.telemetry import logs

    logs.configure(options.log_level.upper())
    settings = Settings()
    gateway = Gateway(settings)

    async def prepare() -> None:
        try:
            await gateway.prepare()
        finally:
            await gateway.store.close()

    try:
        asyncio.run(prepare())
    except ValueError as exc:  # a setting the store refuses (CERVER_ADMIN_KEY …)
        console.print(f"[bold red]Cannot start:[/] {escape(str(exc))}")
        return STARTUP_FAILURE
    host, port = options.host or settings.host, options.port or settings.port
    try:
        sockets = listening_sockets(host, port, options.workers)
    except OSError as exc:
        console.print(f"[bold red]Cannot listen on {host}:{port}:[/] {exc}")
        return STARTUP_FAILURE
    _print_start_banner(gateway)
    console.print(f"workers: {options.workers} processes on http://{host}:{port}")
    try:
        return Supervisor(options, sockets).run()
    finally:
        for sock in sockets:
            sock.close()


def _print_start_banner(gateway: Gateway) -> None:
    from cerver.cli.serving import event_loop_stack
    from cerver.gateway import MOCK_NOTICE

    settings = gateway.settings
    console.print(f"[bold]Cerver {__version__}[/] — data: {settings.resolved_data_dir}")
    console.print(f"store: {gateway.store.db.dialect}")
    loop, http = event_loop_stack()
    console.print(f"event loop: {loop}, HTTP parser: {http}")
    if gateway.upstream_is_mock:
        console.print(f"[bold yellow]MOCK UPSTREAM (test double):[/] {escape(MOCK_NOTICE)}")
    boot = gateway.bootstrap
    if boot is not None and boot.api_key is not None:
        console.print(
            f"[bold green]Admin API key (shown once):[/] {boot.api_key}\n"
            f"  also written to {boot.credentials} (mode 0600)"
        )


@app.command("mock-upstream")
def mock_upstream(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8788,
    host: str = "127.0.0.1",
) -> None:
    """Run the mock upstream: a TEST DOUBLE speaking the Anthropic and OpenAI APIs."""
    from cerver.testing.mock_upstream import serve as serve_mock

    serve_mock(host=host, port=port)


@app.command()
def relay(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8790,
    token: Annotated[
        str, typer.Option(envvar="CERVER_RELAY_TOKEN", help="Secret the gateway must send.")
    ] = "",
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    root: Annotated[str | None, typer.Option(help="Where workspaces live.")] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Register with this gateway URL and send heartbeats.")
    ] = None,
    api_key: KeyOption = None,
    label: Annotated[str, typer.Option(help="Name shown in GET /v2/computes.")] = "relay",
    public_url: Annotated[
        str | None, typer.Option(help="URL the gateway reaches this relay at.")
    ] = None,
    heartbeat_every: Annotated[float, typer.Option(help="Seconds between heartbeats.")] = 30.0,
) -> None:
    """Serve this machine's compute to a gateway (the local bridge)."""
    from pathlib import Path

    from cerver.cli.relay_agent import Announce, serve_relay

    if not token:
        console.print("[red]A relay needs a secret: --token T (or CERVER_RELAY_TOKEN).[/]")
        raise typer.Exit(2)
    announce = None
    if gateway:
        if not api_key:
            console.print("[red]--gateway needs --api-key (or CERVER_API_KEY).[/]")
            raise typer.Exit(2)
        url = public_url or f"http://{host}:{port}"
        announce = Announce(gateway, api_key, label, url, heartbeat_every)
    console.print(f"Cerver relay on http://{host}:{port}")
    serve_relay(
        host=host, port=port, token=token, root=Path(root) if root else None, announce=announce
    )


@app.command()
def setup(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="Run only these steps: bubblewrap, chromium, codex, gemini-cli, ai-sdk "
            "(repeat it).",
        ),
    ] = None,
) -> None:
    """Install the tools Cerver uses when they are missing: bubblewrap (confines local
    sandboxes), Chromium and chromedriver (the console's browser tests), the Codex CLI and
    Gemini CLI (the ``codex`` and ``gemini-cli`` harnesses, into Cerver's tools prefix), and the
    Vercel AI SDK (the compatibility tests)."""
    from cerver.cli.setup_tools import STEPS

    unknown = sorted(set(only or ()) - set(STEPS))
    if unknown:
        console.print(
            f"[red]Unknown setup step {', '.join(map(repr, unknown))}.[/] "
            f"Known: {', '.join(STEPS)}."
        )
        raise typer.Exit(2)
    ok = True
    for name, step in STEPS.items():
        if not only or name in only:
            ok = step(console) and ok
    raise typer.Exit(0 if ok else 1)


@app.command()
def demo(
    user: Annotated[str, typer.Option(help="The end-user id of the demo session.")] = "user_4f3a",
) -> None:
    """Run the main job end to end on the embedded defaults and show what happened."""
    import anyio

    from cerver.cli.demo import run_demo

    anyio.run(run_demo, console, user)


@app.command()
def compare(
    prompt: Annotated[str, typer.Argument(help="The input every variant answers.")],
    variants: Annotated[
        list[str],
        typer.Argument(help="HARNESS[:MODEL][@COMPUTE], e.g. anthropic:claude-sonnet-4-6."),
    ],
    judge: Annotated[
        str | None, typer.Option(help="llm, consensus, tests, cheapest, fastest, composite.")
    ] = "consensus",
    judge_model: Annotated[str | None, typer.Option(help="The llm judge's model.")] = None,
    rubric: Annotated[str | None, typer.Option(help="What the llm judge scores.")] = None,
    command: Annotated[str | None, typer.Option(help="The tests judge's command.")] = None,
    session: Annotated[
        str | None, typer.Option(help="Fan out on this session (default: a new one).")
    ] = None,
    keep: Annotated[str, typer.Option(help="winner or none.")] = "winner",
    compute: Annotated[
        str | None,
        typer.Option(help="Compute of a new parent session (variants inherit it), e.g. local."),
    ] = None,
    url: UrlOption = "http://127.0.0.1:8787",
    api_key: KeyOption = None,
) -> None:
    """Run one prompt on several harness/model variants at once and show them side by side."""
    from rich.live import Live

    from cerver.cli.compare import CompareBoard, parse_variant
    from cerver.client import Client

    spec = None
    if judge and judge != "none":
        spec = {"type": judge, "model": judge_model, "rubric": rubric, "command": command}
        spec = {k: v for k, v in spec.items() if v is not None}
    board = CompareBoard()
    with Client(url, api_key) as client, Live(board.table(), console=console) as live:
        events = client.stream_fanout(
            prompt,
            [parse_variant(v) for v in variants],
            session_id=session,
            judge=spec,
            keep=keep,
            **({"compute": {"provider": compute}} if compute and not session else {}),
        )
        for event in events:
            board.apply(event.event, event.data)
            live.update(board.table())
    console.print()
    console.print(board.summary())
    if board.final is not None:
        console.print(
            f"fan-out {board.final['fanout_id']} on session {board.final['parent_session_id']}"
        )


@sessions_app.command("list")
def sessions_list(
    url: UrlOption = "http://127.0.0.1:8787",
    api_key: KeyOption = None,
    user: Annotated[str | None, typer.Option(help="Only this end user's sessions.")] = None,
    limit: int = 20,
) -> None:
    """List sessions, newest first."""
    from cerver.client import Client

    with Client(url, api_key) as client:
        page = client.list_sessions(user=user, limit=limit)
    table = Table(
        "session_id", "user", "status", "harness", "model", "provider", "messages", "created"
    )
    for s in page["sessions"]:
        table.add_row(
            s["session_id"],
            s["user"] or "",
            s["status"],
            s["harness"],
            s["model"],
            s["provider"] or "-",
            str(s["message_count"]),
            s["created_at"][:19],
        )
    console.print(table)
    if page["next_cursor"]:
        console.print(f"more: --cursor {page['next_cursor']}")


@sessions_app.command("show")
def sessions_show(
    session_id: str,
    url: UrlOption = "http://127.0.0.1:8787",
    api_key: KeyOption = None,
    tail: Annotated[int | None, typer.Option(help="Only the last N entries.")] = None,
) -> None:
    """Show a session, its transcript with provenance, and its metrics."""
    from cerver.cli.render import render_session
    from cerver.client import Client

    with Client(url, api_key) as client:
        session = client.get_session(session_id, transcript=True, tail=tail)
    render_session(console, session)


def main() -> None:
    # `serve` and `demo` print the mock upstream notice in their own banner, so mute the
    # logger that announces it (cerver.gateway.MOCK_LOGGER; not imported, to keep the CLI light).
    logging.getLogger("cerver.upstream").setLevel(logging.ERROR)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    app()
