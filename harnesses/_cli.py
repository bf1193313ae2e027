"""What the CLI harnesses (Claude Code, Codex, Gemini CLI) share: running a CLI in a compute.

A CLI harness does not call a model itself. For each turn it:

1. checks what the run needs (a local sandbox, a model-proxy grant, the CLI installed),
   each missing piece becoming an :class:`Error` that names the fix;
2. decides how the CLI learns the history: it *resumes* its own native session when the
   previous conversation entry was written by the same CLI and that run's state is still in
   this sandbox's workspace; otherwise the history goes in as a delimited preamble
   (:mod:`harnesses._cli_preamble`);
3. runs one shell command in the sandbox (``Sandbox.exec_stream``, under a timeout): it
   creates the run's own ``HOME`` at ``.cerver/runs/<run_id>/home`` in the workspace (copying
   the resumed run's CLI session files into it), starts the proxy forwarder
   (:mod:`compute._proxy_bridge`) and runs the CLI with the proxy's URL and the run's token;
4. feeds stdout lines to the CLI's pure event parser (``*_events.py``) and yields its
   events with provenance (``harness``, ``model``, ``provider``, and the CLI's session id in
   ``metadata["cli_session"]``, which step 2 of the next turn looks for);
5. ends: every tool call without a result gets an error result; a CLI error, a crash
   (non-zero exit without a final event, with the end of stderr), a timeout or a compute
   failure becomes the one final :class:`Error`.

The app's own tools (``TurnContext.client_tools``) reach the CLI as an MCP server the gateway
serves next to the model proxy (``cerver.proxy.app_tools``; each CLI's ``_script`` configures
it). The gateway never answers a call of one: once the CLI has called one and printed nothing
for :attr:`CliHarness.app_call_quiet_s` with no other call open, the run stops the CLI and
ends with those calls, marked ``client_tool``, waiting for the app. The turn that brings the
app's results starts a fresh CLI with the history (the call and its result included) and
:data:`CONTINUE_PROMPT`.

Process control lives here; parsing lives in the parser modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shlex
import tarfile
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from cerver.cli_programs import IMAGE_TOOLS_DIR, TOOLS_LAYOUT, install_sources, layout_programs
from cerver.errors import (
    CerverError,
    ComputeError,
    HarnessError,
    HarnessTimeout,
    InvalidRequest,
    MissingDependency,
    NotConfigured,
)
from cerver.failures import Failure
from cerver.telemetry import metrics
from cerver.types import Entry, ProxyGrant, ToolResultPart
from compute._proxy_bridge import FORWARDER_FAILED_EXIT, forwarder_prelude
from compute.base import CliHosting, Sandbox
from harnesses._cli_preamble import history_preamble
from harnesses._loop import tool_call_entry
from harnesses.base import Error, Harness, HarnessEvent, Message, TurnContext
from harnesses.tools import APP_TOOLS_MCP_SERVER, CLIENT_TOOL_KEY

if TYPE_CHECKING:
    from cerver.providers import Endpoints

__all__ = [
    "CLI_COMPUTES",
    "CLI_INSTALL_KEY",
    "CLI_SANDBOX_KEY",
    "CLI_SESSION_KEY",
    "CONTINUE_PROMPT",
    "CliHarness",
    "CliRun",
    "EventParser",
]

CLI_SESSION_KEY: Final = "cli_session"
"""``Entry.metadata`` key holding the CLI's own session (thread) id."""

CLI_SANDBOX_KEY: Final = "cli_sandbox"
"""``Entry.metadata`` key holding the sandbox the CLI ran in: a native session is resumed only
in the same sandbox (a moved workspace carries the session files, but not the paths and
machine they were made for)."""
CLI_INSTALL_KEY: Final = "cli_installed"
"""``Entry.metadata`` key on a run's first entry when the run installed its CLI in the sandbox
(``{"program", "bytes", "seconds"}``)."""
CLI_COMPUTES: Final = ("local", "relay", "e2b", "daytona", "vercel", "modal")
"""Computes whose sandboxes can host the CLI harnesses (named in refusals)."""
STREAMING_COMPUTES: Final = ("local", "relay", "e2b", "vercel")
"""Computes whose commands stream their output, where a CLI can stop at the app's tools."""
CONTINUE_PROMPT: Final = (
    "The app has answered your calls of its tools: their results are the last entries of "
    "the session history. Continue from there."
)
"""The CLI's prompt for a turn with no new user message (it continues from the results)."""
_STDERR_KEPT: Final = 2000
_TIMEOUT_EXIT: Final = 124


class EventParser(Protocol):
    """A CLI's pure line parser (see ``claude_code_events`` and ``codex_events``)."""

    session_id: str | None
    finished: bool
    failed: bool

    def feed(self, line: str) -> list[HarnessEvent]: ...


@dataclass(frozen=True, slots=True)
class CliRun:
    """One CLI run's places in the workspace (paths relative to it) and how it starts.

    Attributes:
        directory: ``.cerver/runs/<run_id>``, the run's own directory.
        home: the run's ``HOME``.
        resume: the CLI session id to resume, or ``None`` for a fresh CLI session.
        resumed_run: the run whose CLI session is resumed (its files are copied over).
        preamble: the history block for a fresh session that takes over a conversation.
    """

    directory: str
    home: str
    resume: str | None = None
    resumed_run: str | None = None
    preamble: str | None = None


class CliHarness(Harness):
    """Base class of the CLI harnesses; subclasses say how to invoke and parse their CLI.

    Args:
        base_url, api_key: accepted (the gateway passes its provider's upstream) and
            ignored: the real key stays in the gateway, the CLI reaches the model only
            through the proxy with its run's token.
        timeout: seconds a whole CLI run may take before its process tree is killed.
    """

    uses_model_proxy: ClassVar[bool] = True
    supports_client_tools: ClassVar[bool] = True
    app_tool_prefix: ClassVar[str] = f"mcp__{APP_TOOLS_MCP_SERVER}__"
    """What the CLI puts before an app's tool name: Claude Code's ``mcp__<server>__<tool>``,
    which the Codex parser also uses for Codex's MCP calls."""
    app_call_quiet_s: ClassVar[float] = 1.0
    """Seconds of silence, once the CLI has called an app's tool and no other call is open,
    after which it is stopped: it is then blocked on that call (the gateway never answers
    it), and the turn ends with the calls waiting for the app."""
    install_step: ClassVar[str]
    """How to install the CLI, named in the error when it is missing."""
    resume_state: ClassVar[str]
    """The CLI's session files under ``HOME`` that a resumed run needs from the last one."""
    native_resume: ClassVar[bool] = True
    """False for a CLI whose own resume is not reliable: history always goes in a preamble."""

    def __init__(
        self, *, base_url: str | None = None, api_key: str | None = None, timeout: float = 600.0
    ) -> None:
        del base_url, api_key
        self.timeout = timeout

    @classmethod
    def upstream_arguments(cls, endpoints: Endpoints) -> dict[str, Any]:
        """None: the CLI never holds a key. Checks that the proxy will have one to forward
        with (raises NotConfigured otherwise), so a session fails at creation, not mid-run."""
        endpoints.require(cls.provider)
        return {}

    @abstractmethod
    def _parser(self) -> EventParser:
        """A fresh parser for one run's output."""

    @abstractmethod
    async def _script(
        self, turn: TurnContext, run: CliRun, program: str
    ) -> tuple[str, dict[str, str]]:
        """The shell lines that run the CLI (after the prelude) and extra environment.

        The lines run in the workspace with ``HOME`` set to ``run.home`` and
        ``$CERVER_PROXY_URL`` pointing at the forwarder; ``turn.proxy.token`` goes in the
        returned environment, never in a file.
        """

    def _prompt(self, turn: TurnContext) -> str:
        """The CLI's prompt: the user's new message, or :data:`CONTINUE_PROMPT` for a turn
        that continues from the app's tool results (the history carries them)."""
        return turn.input or CONTINUE_PROMPT

    async def preflight(
        self, sandbox: Sandbox | None, *, public_url: str | None, client_tools: bool = False
    ) -> None:
        """Refuse, before the turn writes anything, a compute that cannot host this CLI, or
        cannot offer it the app's tools (``client_tools``).

        Raises:
            InvalidRequest: no compute, or one whose sandboxes cannot reach the model proxy
                (the message names the computes that can).
            NotConfigured: the sandbox reaches the gateway over the network and the
                gateway has no public URL (``CERVER_PUBLIC_URL``).
            MissingDependency: the sandbox lacks the CLI and Cerver can neither install it
                there nor has it to install.
        """
        await self._hosting(sandbox, public_url)
        if client_tools and sandbox is not None and not sandbox.streams_exec:
            raise InvalidRequest(
                f"The {self.name!r} harness can offer the app's tools only where a command's "
                f"output streams while it runs, and {sandbox.provider!r} sandboxes return it "
                f"when the command ends. Use {', '.join(STREAMING_COMPUTES)}, or an SDK "
                "harness.",
                context={"param": "tools", "provider": sandbox.provider, "harness": self.name},
            )

    async def _hosting(self, sandbox: Sandbox | None, public_url: str | None) -> CliHosting:
        if sandbox is None:
            raise InvalidRequest(
                f"The {self.name!r} harness runs its CLI inside the session's compute, and "
                'this session has none (it was created with "compute": null). Create the '
                'session with a compute, e.g. "compute": {"provider": "local"}.'
            )
        hosting = await sandbox.cli_hosting()
        provider = sandbox.provider
        if hosting.proxy is None:
            fix = (
                "set CERVER_PUBLIC_URL on the gateway (the relay bridges its sandboxes to it), "
                "then create a new sandbox"
                if provider == "relay"
                else f"move the session to one of {', '.join(CLI_COMPUTES)}, or use an SDK harness"
            )
            raise InvalidRequest(
                f"The {self.name!r} harness cannot run in a {provider!r} sandbox: its commands "
                f"have no way to the gateway's model proxy. To fix it: {fix}.",
                context={"provider": provider, "harness": self.name},
            )
        if hosting.proxy == "url" and not public_url:
            raise NotConfigured(
                f"The {self.name!r} harness in a {provider!r} sandbox reaches its model at the "
                "gateway's public URL, and this gateway has none: set CERVER_PUBLIC_URL to the "
                "URL the sandbox can reach the gateway at (e.g. https://cerver.example.com).",
                context={"provider": provider, "variable": "CERVER_PUBLIC_URL"},
            )
        if self.name in hosting.programs:
            return hosting
        if hosting.proxy == "socket":  # a relay: its machine has its own installs
            raise MissingDependency(
                f"The relay machine of this {provider!r} sandbox does not have the {self.name} "
                f"CLI. Install it there with: {self.install_step}",
                context={"provider": provider, "harness": self.name},
            )
        if hosting.install_dir is None and hosting.proxy != "gateway":
            raise MissingDependency(
                f"The {provider!r} sandbox does not carry the {self.name} CLI and Cerver cannot "
                f"install it there. Use an image that carries it in Cerver's tools layout at "
                f"{IMAGE_TOOLS_DIR} ({TOOLS_LAYOUT[self.name]}), or another compute.",
                context={"provider": provider, "harness": self.name},
            )
        if hosting.install_dir is None or not install_sources(self.name):
            raise MissingDependency(
                f"The {self.name!r} CLI is not installed on this gateway. Install it with: "
                f"{self.install_step}",
                context={"harness": self.name, "provider": provider},
            )
        return hosting

    async def run(self, turn: TurnContext) -> AsyncIterator[HarnessEvent]:
        """Write one turn with the CLI; see the module docstring for the steps."""
        sandbox, grant = turn.sandbox, turn.proxy
        if grant is None:
            yield Error.of(
                NotConfigured(
                    f"The {self.name!r} harness needs the gateway's model proxy, which this "
                    "gateway did not provide for the run."
                )
            )
            return
        installed: dict[str, Any] | None = None
        try:
            hosting = await self._hosting(sandbox, grant.public_url)
            assert sandbox is not None
            program = hosting.programs.get(self.name)
            if program is None:
                program, installed = await self._install(sandbox, hosting)
            run = await self._plan(turn, sandbox)
            script, env = await self._script(turn, run, program)
            prelude = _proxy_prelude(hosting, grant, run)
        except CerverError as exc:
            yield Error.of(exc)
            return
        command = "\n".join(
            [
                f"mkdir -p {shlex.quote(run.home)} || exit 1",
                *self._carry_over(run),
                f'export HOME="$PWD/{run.home}"',
                prelude,
                script,
            ]
        )
        async with contextlib.aclosing(
            self._execute(turn, sandbox, command, env, installed)
        ) as events:
            async for event in events:
                yield event

    async def _install(self, sandbox: Sandbox, hosting: CliHosting) -> tuple[str, dict[str, Any]]:
        """Copy this gateway's install of the CLI into the sandbox's install directory
        (first use in that sandbox); returns the program and what was done, for the record.

        Raises:
            ComputeError: the upload or the unpacking failed.
        """
        assert hosting.install_dir is not None
        started = time.perf_counter()
        archive = await asyncio.to_thread(_tar, install_sources(self.name))
        upload = f".cerver/install-{self.name}.tar"
        await sandbox.write_file(upload, archive)
        target = shlex.quote(hosting.install_dir)
        unpacked = await sandbox.exec(
            f"mkdir -p {target} && tar -xf {shlex.quote(upload)} -C {target}; "
            f"code=$?; rm -f {shlex.quote(upload)}; exit $code",
            timeout=600,
        )
        if unpacked.exit_code != 0:
            raise ComputeError(
                f"Could not install the {self.name} CLI in the {sandbox.provider!r} sandbox: "
                f"{unpacked.stderr.strip()[-500:]}",
                context={"provider": sandbox.provider, "harness": self.name},
            )
        seconds = time.perf_counter() - started
        metrics.cli_installed(self.name, sandbox.provider, seconds)
        program = layout_programs(hosting.install_dir)[self.name]
        record = {"program": program, "bytes": len(archive), "seconds": round(seconds, 3)}
        return program, record

    # -- steps ----------------------------------------------------------------------------

    async def _plan(self, turn: TurnContext, sandbox: Sandbox) -> CliRun:
        directory = f".cerver/runs/{turn.run_id}"
        home = f"{directory}/home"
        previous = (
            _resumable(turn.history, self.name, sandbox.sandbox_id) if self.native_resume else None
        )
        if previous is not None:
            run_id, cli_session = previous
            state = f".cerver/runs/{run_id}/home/{self.resume_state}"
            found = await sandbox.exec(f"test -e {shlex.quote(state)}", timeout=30)
            if found.exit_code == 0:
                return CliRun(directory, home, resume=cli_session, resumed_run=run_id)
            # Another compute, or a reset workspace: hand the history over instead.
        return CliRun(directory, home, preamble=history_preamble(turn.history))

    def _carry_over(self, run: CliRun) -> list[str]:
        if run.resumed_run is None:
            return []
        source = shlex.quote(f".cerver/runs/{run.resumed_run}/home/{self.resume_state}")
        target = shlex.quote(f"{run.home}/{self.resume_state}")
        return [f"mkdir -p {target} && cp -a {source}/. {target}/ || exit 1"]

    async def _execute(
        self,
        turn: TurnContext,
        sandbox: Sandbox,
        command: str,
        env: dict[str, str],
        installed: dict[str, Any] | None = None,
    ) -> AsyncIterator[HarnessEvent]:
        parser = self._parser()
        pending = ""
        stderr = ""
        exit_code: int | None = None
        final_error: Error | None = None
        open_calls: dict[str, str] = {}
        app_calls = _AppCalls(self.app_tool_prefix, {tool.name for tool in turn.client_tools})
        # Calls open when the CLI first called an app's tool: they run before it and end.
        # Calls opened after it wait behind it (the CLI never gets its answer).
        ahead: set[str] = set()
        stream = sandbox.exec_stream(command, timeout=self.timeout, env=env)
        try:
            while True:
                # The CLI waits on the app's tools once it has printed nothing for a moment
                # and no call ahead of them is still running: they are the app's to answer.
                waiting = app_calls and not ahead.intersection(open_calls)
                try:
                    async with asyncio.timeout(self.app_call_quiet_s if waiting else None) as cm:
                        chunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if not cm.expired():
                        raise ComputeError("The sandbox's command stream timed out.") from None
                    break  # cancelling the read stopped the CLI (the iterator kills its tree)
                if chunk.stream == "stdout":
                    *lines, pending = (pending + chunk.data).split("\n")
                elif chunk.stream == "stderr":
                    stderr = (stderr + chunk.data)[-_STDERR_KEPT:]
                    continue
                else:
                    exit_code, lines = chunk.exit_code, [pending]
                for line in lines:
                    for event in parser.feed(line):
                        if isinstance(event, Error):
                            final_error = event  # the contract: an Error is the last event
                            continue
                        if isinstance(event, Message):
                            entry = self._stamp(turn, event.entry, parser.session_id)
                            if installed is not None:  # the first entry records the install
                                meta = {**entry.metadata, CLI_INSTALL_KEY: installed}
                                entry, installed = entry.model_copy(update={"metadata": meta}), None
                            held_before = bool(app_calls)
                            for ready in app_calls.see(entry):
                                _track(ready, open_calls)
                                yield Message(ready)
                            if app_calls and not held_before:
                                ahead = set(open_calls)
                            continue
                        yield event
        except CerverError as exc:
            failure = Failure.from_error(exc)
            final_error = Error(
                replace(failure, message=f"The {self.name!r} CLI could not be run: {exc.message}")
            )
        finally:
            await _close(stream)
        stopped_at_app = bool(app_calls) and exit_code is None and final_error is None
        if stopped_at_app:
            # The app's calls end the turn and wait for the app's results; the calls queued
            # behind them never ran.
            for entry in app_calls.take():
                yield Message(entry)
            reason = "was not run: the turn stopped at a call of the app's tools first"
        else:
            for entry in app_calls.take(plain=True):  # the CLI ended on its own: ordinary
                _track(entry, open_calls)
                yield Message(entry)
            reason = f"did not complete: the {self.name} run ended first"
        for call_id, name in open_calls.items():
            output = f"{name} {reason}"
            part = ToolResultPart(tool_call_id=call_id, output=output, is_error=True)
            entry = Entry(role="tool", kind="tool_result", content=output, parts=[part])
            yield Message(self._stamp(turn, entry, parser.session_id))
        if stopped_at_app:
            return
        if final_error is None:
            final_error = self._exit_error(parser, exit_code, stderr)
        if final_error is not None:
            yield final_error

    def _exit_error(self, parser: EventParser, exit_code: int | None, stderr: str) -> Error | None:
        tail = stderr.strip()[-_STDERR_KEPT:]
        if exit_code == _TIMEOUT_EXIT and not parser.finished:
            return Error.of(
                HarnessTimeout(
                    f"The {self.name} CLI did not finish within {self.timeout:g} s and was "
                    f"stopped. {tail}".strip(),
                    context={"timeout_s": self.timeout},
                )
            )
        if exit_code == FORWARDER_FAILED_EXIT:
            return Error.of(
                HarnessError(f"The model proxy could not be reached from the sandbox: {tail}")
            )
        if exit_code != 0 or not parser.finished:
            return Error.of(
                HarnessError(
                    f"The {self.name} CLI exited with code {exit_code} before finishing the "
                    "turn." + (f" Its last output on stderr: {tail}" if tail else ""),
                    context={"exit_code": exit_code},
                )
            )
        return None

    def _stamp(self, turn: TurnContext, entry: Entry, cli_session: str | None) -> Entry:
        metadata = None
        if cli_session:
            metadata = {**entry.metadata, CLI_SESSION_KEY: cli_session}
            if turn.sandbox is not None:
                metadata[CLI_SANDBOX_KEY] = turn.sandbox.sandbox_id
        return entry.model_copy(
            update={
                "harness": self.name,
                "model": turn.model,
                "provider": self.provider,
                **({"metadata": metadata} if metadata else {}),
            }
        )


def _resumable(history: Sequence[Entry], harness: str, sandbox_id: str) -> tuple[str, str] | None:
    """``(run_id, cli_session)`` when the last conversation entry is this CLI's own, written
    in this sandbox (entries from before the sandbox was recorded: wherever their files are)."""
    last = next((e for e in reversed(history) if e.is_conversation), None)
    if last is None or last.harness != harness or not last.run_id:
        return None
    if last.metadata.get(CLI_SANDBOX_KEY, sandbox_id) != sandbox_id:
        return None
    session = last.metadata.get(CLI_SESSION_KEY)
    return (last.run_id, session) if isinstance(session, str) and session else None


class _AppCalls:
    """The CLI's calls of the app's tools (its MCP tools named ``<prefix><name>``), held
    back until the turn stops at them.

    A call of an offered tool is renamed to the tool's own name and marked
    ``metadata["client_tool"]``; it is held, not yielded, because the CLI may still print a
    result for it (its MCP client failed to reach the gateway), in which case it was an
    ordinary call after all and is released before that result.
    """

    def __init__(self, prefix: str, offered: set[str]) -> None:
        self._prefix = prefix
        self._offered = offered
        self._held: dict[str, Entry] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def see(self, entry: Entry) -> list[Entry]:
        """The entries to yield now for ``entry`` (none while it is a held call)."""
        call = entry.tool_call
        if entry.kind == "tool_call" and call is not None:
            name = call.name.removeprefix(self._prefix)
            if call.name.startswith(self._prefix) and name in self._offered:
                part = call.model_copy(update={"name": name})
                held = tool_call_entry(part)
                self._held[call.id] = entry.model_copy(
                    update={
                        "content": held.content,
                        "parts": held.parts,
                        "metadata": {**entry.metadata, CLIENT_TOOL_KEY: True},
                    }
                )
                return []
        result = entry.tool_result
        if result is not None and (held := self._held.pop(result.tool_call_id, None)):
            return [_plain(held), entry]
        return [entry]

    def take(self, *, plain: bool = False) -> list[Entry]:
        """The calls still held, in the order the CLI made them (``plain``: as ordinary
        calls, without the ``client_tool`` mark); holds nothing after."""
        held, self._held = list(self._held.values()), {}
        return [_plain(entry) for entry in held] if plain else held


def _plain(entry: Entry) -> Entry:
    """A held call that turned out to be an ordinary one: the ``client_tool`` mark removed."""
    metadata = {k: v for k, v in entry.metadata.items() if k != CLIENT_TOOL_KEY}
    return entry.model_copy(update={"metadata": metadata})


async def _close(stream: AsyncIterator[Any]) -> None:
    """Close a command's output iterator (which stops the command if it still runs)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _track(entry: Entry, open_calls: dict[str, str]) -> None:
    if (call := entry.tool_call) is not None and entry.kind == "tool_call":
        open_calls[call.id] = call.name
    elif (result := entry.tool_result) is not None:
        open_calls.pop(result.tool_call_id, None)


def _proxy_prelude(hosting: CliHosting, grant: ProxyGrant, run: CliRun) -> str:
    """Shell lines setting ``$CERVER_PROXY_URL`` to where this sandbox reaches the proxy."""
    port_file = f"{run.directory}/proxy.port"
    if hosting.proxy == "gateway":
        if grant.socket_path is None:
            raise NotConfigured("The gateway's model proxy has no socket for local sandboxes.")
        return forwarder_prelude(grant.socket_path, port_file)
    if hosting.proxy == "socket" and hosting.proxy_socket:
        return forwarder_prelude(hosting.proxy_socket, port_file)
    assert grant.public_url is not None  # checked by _hosting
    return f"CERVER_PROXY_URL={shlex.quote(grant.public_url)}"


def _tar(sources: list[tuple[Path, str]]) -> bytes:
    """An uncompressed tar of host directories under their tools-layout names (a CLI is a
    few hundred MB of mostly incompressible binary: gzip would cost more than it saves)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory, name in sources:
            archive.add(directory, arcname=name)
    return buffer.getvalue()
