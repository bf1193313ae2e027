"""CLI harness process control with a scripted sandbox: the command, the token, resume,
timeouts and crashes (no CLI binary needed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

import pytest

from cerver.errors import InvalidRequest, MissingDependency, NotConfigured
from cerver.proxy import ProxyGrant
from cerver.types import Entry, ExecResult, ToolCallPart, ToolResultPart
from compute.base import CliHosting, ExecChunk, Sandbox
from harnesses._cli_preamble import PREAMBLE_START
from harnesses.base import Error, Message, TurnContext
from harnesses.codex import CodexHarness

STARTED = (
    '{"type":"thread.started","thread_id":"0abc-1"}\n'
    '{"type":"item.started","item":{"id":"item_0","type":"command_execution",'
    '"command":"sleep 100","status":"in_progress"}}\n'
)


class ScriptedSandbox(Sandbox):
    """Answers ``exec_stream`` with scripted chunks; ``exec`` (the resume probe) with
    ``probe_exit``. Records commands, environments and written files."""

    provider = "local"

    def __init__(
        self,
        chunks: list[ExecChunk],
        probe_exit: int = 1,
        hosting: CliHosting | None = None,
    ) -> None:
        self.sandbox_id = "sbx_fake"
        self.hosting = hosting or CliHosting(programs={"codex": "/opt/codex.js"}, proxy="gateway")
        self.chunks = chunks
        self.probe_exit = probe_exit
        self.commands: list[str] = []
        self.envs: list[Mapping[str, str]] = []
        self.files: dict[str, bytes] = {}

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        self.commands.append(command)
        return ExecResult(exit_code=self.probe_exit, duration_ms=1.0)

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        self.commands.append(command)
        self.envs.append(env or {})
        for chunk in self.chunks:
            yield chunk

    async def read_file(self, path: str) -> bytes:
        return self.files[path]

    async def cli_hosting(self) -> CliHosting:
        return self.hosting

    async def write_file(self, path: str, data: bytes) -> None:
        self.files[path] = data


def turn(sandbox: Sandbox, history: list[Entry] | None = None) -> TurnContext:
    grant = ProxyGrant(
        token="cpx_secret", run_id="run_2", session_id="s", harness="codex",
        expires_at=1e12, socket_path="/tmp/cerver-proxy-x/proxy.sock",
    )  # fmt: skip
    return TurnContext(
        session_id="s",
        run_id="run_2",
        history=history or [],
        input="hello",
        model="gpt-5.5",
        sandbox=sandbox,
        proxy=grant,
    )


async def run(
    sandbox: Sandbox, history: list[Entry] | None = None, context: TurnContext | None = None
) -> list:
    context = context or turn(sandbox, history)
    return [e async for e in CodexHarness(timeout=5).run(context)]


async def test_a_timeout_closes_open_calls_and_fails_the_run() -> None:
    sandbox = ScriptedSandbox([ExecChunk("stdout", STARTED), ExecChunk("exit", exit_code=124)])
    events = await run(sandbox)

    call, result = (e.entry for e in events if isinstance(e, Message))
    assert call.tool_call is not None and result.tool_result is not None
    assert result.tool_result.tool_call_id == call.tool_call.id and result.tool_result.is_error
    assert call.metadata == {"cli_session": "0abc-1", "cli_sandbox": "sbx_fake"}
    assert call.harness == "codex"
    error = events[-1]
    assert isinstance(error, Error) and error.code == "timeout" and error.retryable


async def test_a_crash_reports_its_stderr() -> None:
    sandbox = ScriptedSandbox(
        [ExecChunk("stderr", "boom: bad things"), ExecChunk("exit", exit_code=3)]
    )
    [error] = await run(sandbox)
    assert isinstance(error, Error) and error.code == "harness_error"
    assert "exited with code 3" in error.message and "boom: bad things" in error.message


async def test_the_token_travels_in_the_environment_only() -> None:
    sandbox = ScriptedSandbox([ExecChunk("exit", exit_code=0)])
    await run(sandbox)

    [command] = sandbox.commands  # no resume probe without a previous codex turn
    assert sandbox.envs[0]["CERVER_PROXY_TOKEN"] == "cpx_secret"
    assert "cpx_secret" not in command
    assert all(b"cpx_secret" not in data for data in sandbox.files.values())
    assert 'export HOME="$PWD/.cerver/runs/run_2/home"' in command
    assert 'CODEX_HOME="$PWD/.cerver/runs/run_2/home/.codex"' in command
    assert "--dangerously-bypass-approvals-and-sandbox" in command
    config = sandbox.files[".cerver/runs/run_2/config.toml.in"].decode()
    assert 'wire_api = "responses"' in config and "[analytics]\nenabled = false" in config


def codex_history() -> list[Entry]:
    call = ToolCallPart(id="t1", name="exec_command", arguments={"cmd": "ls"})
    meta = {"cli_session": "thread-1"}
    return [
        Entry(role="user", content="list files"),
        Entry(role="assistant", kind="tool_call", parts=[call], harness="codex",
              run_id="run_1", metadata=meta),
        Entry(role="tool", kind="tool_result", harness="codex", run_id="run_1", metadata=meta,
              parts=[ToolResultPart(tool_call_id="t1", output="a.txt")]),
        Entry(role="assistant", content="There is a.txt", harness="codex", run_id="run_1",
              metadata=meta),
    ]  # fmt: skip


async def test_resumes_when_its_previous_run_is_in_the_workspace() -> None:
    sandbox = ScriptedSandbox([ExecChunk("exit", exit_code=0)], probe_exit=0)
    await run(sandbox, codex_history())

    probe, command = sandbox.commands
    assert probe == "test -e .cerver/runs/run_1/home/.codex/sessions"
    assert "exec resume thread-1 --json" in command
    assert "cp -a .cerver/runs/run_1/home/.codex/sessions/." in command
    assert PREAMBLE_START not in sandbox.files[".cerver/runs/run_2/config.toml.in"].decode()


async def test_hands_over_with_a_preamble_otherwise() -> None:
    sandbox = ScriptedSandbox([ExecChunk("exit", exit_code=0)], probe_exit=1)  # other compute
    history = codex_history()
    await run(sandbox, history)
    config = sandbox.files[".cerver/runs/run_2/config.toml.in"].decode()
    assert "exec resume" not in sandbox.commands[-1]
    assert PREAMBLE_START in config and "There is a.txt" in config

    sandbox = ScriptedSandbox([ExecChunk("exit", exit_code=0)])
    other = [*history, Entry(role="assistant", content="from another harness", harness="openai")]
    await run(sandbox, other)
    assert len(sandbox.commands) == 1  # not this CLI's turn last: no resume probe at all


async def test_without_a_sandbox_the_run_fails_clearly() -> None:
    context = turn(ScriptedSandbox([]))
    context.sandbox = None
    [error] = [e async for e in CodexHarness().run(context)]
    assert isinstance(error, Error) and '"compute": {"provider": "local"}' in error.message


async def test_a_compute_without_a_way_to_the_proxy_is_refused_clearly() -> None:
    sandbox = ScriptedSandbox([], hosting=CliHosting())
    sandbox.provider = "cloudflare"  # type: ignore[misc]
    with pytest.raises(InvalidRequest, match="no way to the gateway's model proxy") as caught:
        await CodexHarness().preflight(sandbox, public_url="http://gw")
    assert "local, relay, e2b" in caught.value.message
    [error] = [e async for e in CodexHarness().run(turn(sandbox))]
    assert isinstance(error, Error) and error.failure.code == "invalid_request"
    assert sandbox.commands == []


async def test_a_networked_sandbox_needs_the_gateways_public_url() -> None:
    remote = CliHosting(programs={"codex": "/opt/cerver-tools/x/codex.js"}, proxy="url")
    sandbox = ScriptedSandbox([ExecChunk("exit", exit_code=0)], hosting=remote)
    sandbox.provider = "e2b"  # type: ignore[misc]
    with pytest.raises(NotConfigured, match="CERVER_PUBLIC_URL"):
        await CodexHarness().preflight(sandbox, public_url=None)
    context = turn(sandbox)
    context.proxy = replace(context.proxy, public_url="http://gw.example:8787")
    await run(sandbox, [], context)
    command = sandbox.commands[-1]
    assert "CERVER_PROXY_URL=http://gw.example:8787" in command
    assert "python3 -c" not in command  # no forwarder: the network reaches the gateway
    assert "node /opt/cerver-tools/x/codex.js exec" in command
    assert sandbox.envs[-1]["CERVER_PROXY_TOKEN"] == "cpx_secret"


async def test_a_sandbox_without_the_cli_and_no_install_names_the_image_layout() -> None:
    sandbox = ScriptedSandbox([], hosting=CliHosting(proxy="url"))
    sandbox.provider = "modal"  # type: ignore[misc]
    with pytest.raises(MissingDependency, match="/opt/cerver-tools"):
        await CodexHarness().preflight(sandbox, public_url="http://gw")


class HangingSandbox(ScriptedSandbox):
    """Starts the CLI (its first lines), then never ends; records when its stream is closed
    (the local sandbox kills the command's whole process tree at that point)."""

    def __init__(self) -> None:
        super().__init__([])
        self.started = asyncio.Event()
        self.closed = False

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        try:
            yield ExecChunk("stdout", STARTED)
            self.started.set()
            await asyncio.Event().wait()
            yield ExecChunk("exit", exit_code=0)  # never reached
        finally:
            self.closed = True


async def test_cancelling_a_run_closes_the_cli_command() -> None:
    sandbox = HangingSandbox()

    async def consume() -> None:
        async with contextlib.aclosing(CodexHarness(timeout=60).run(turn(sandbox))) as events:
            async for _ in events:
                pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(sandbox.started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox.closed
