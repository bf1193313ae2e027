"""The sandbox tools an SDK harness offers its model, and how one tool call runs.

Every SDK harness offers the same three tools, defined once here in a provider-neutral form
(:class:`ToolSpec`: a name, a description, a JSON schema); each harness only reshapes them into
its provider's wire format. :func:`run_tool` executes a call on the session's
:class:`~compute.base.Sandbox` and never raises for a failure the model caused or the sandbox
suffered: every call gets a :class:`~cerver.types.ToolResultPart`, with ``is_error=True`` when
the tool could not do what was asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cerver.errors import CerverError
from cerver.types import ExecResult, ToolCallPart, ToolResultPart

if TYPE_CHECKING:
    from compute.base import Sandbox

__all__ = [
    "APP_TOOLS_MCP_PATH",
    "APP_TOOLS_MCP_SERVER",
    "BASH",
    "CLIENT_TOOL_KEY",
    "INVALID_JSON_KEY",
    "MAX_OUTPUT_CHARS",
    "READ_FILE",
    "SANDBOX_TOOLS",
    "WRITE_FILE",
    "ToolSpec",
    "format_exec_result",
    "parse_arguments",
    "run_tool",
    "truncate",
]

MAX_OUTPUT_CHARS = 20_000
"""The most characters of tool output a model sees; the middle of longer output is cut."""

DEFAULT_BASH_TIMEOUT = 120.0
MAX_BASH_TIMEOUT = 600.0
FILE_TIMEOUT = 60.0
"""Seconds allowed for a ``read_file`` / ``write_file`` call on the sandbox."""

_TIMEOUT_GRACE = 15.0
"""Extra seconds given to ``Sandbox.exec`` past the command's own timeout before giving up on
the backend (the sandbox reports a command timeout itself; this guards a hung backend)."""

CLIENT_TOOL_KEY = "client_tool"
"""``Entry.metadata`` key set (to ``True``) on calls of the app's own tools and on the results
the app sent for them: the gateway stops the turn at such a call and hands it to the app."""

APP_TOOLS_MCP_PATH = "/v2/proxy/mcp"
"""Where a CLI harness's CLI reaches the app's tools: an MCP server on the model proxy,
authenticated by the run's proxy token (``cerver.proxy.app_tools``)."""

APP_TOOLS_MCP_SERVER = "app"
"""The name the CLI harnesses give that MCP server: Claude Code shows its tools to the model
as ``mcp__app__<name>``."""

INVALID_JSON_KEY = "_invalid_json"
"""Key under which a harness stores tool arguments the model sent as malformed JSON."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as the model sees it: a name, what it does, and a JSON schema for its input."""

    name: str
    description: str
    parameters: Mapping[str, Any]


BASH = ToolSpec(
    name="bash",
    description=(
        "Run a shell command with `bash -c` in the session's workspace and return its "
        "stdout, stderr and exit code. Each call is a fresh process: `cd` and exported "
        "variables do not persist between calls. Long output is cut in the middle."
    ),
    parameters={
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command to run."},
            "timeout": {
                "type": "number",
                "description": (
                    f"Seconds before the command is killed (default {DEFAULT_BASH_TIMEOUT:g}, "
                    f"at most {MAX_BASH_TIMEOUT:g})."
                ),
            },
        },
        "required": ["command"],
        "additionalProperties": False,
    },
)

READ_FILE = ToolSpec(
    name="read_file",
    description=(
        "Read a UTF-8 text file from the workspace. Paths are relative to the workspace root."
    ),
    parameters={
        "type": "object",
        "properties": {"path": {"type": "string", "description": "The file to read."}},
        "required": ["path"],
        "additionalProperties": False,
    },
)

WRITE_FILE = ToolSpec(
    name="write_file",
    description=(
        "Create or replace a text file in the workspace (parent directories are created). "
        "Paths are relative to the workspace root."
    ),
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "The file to write."},
            "content": {"type": "string", "description": "The file's complete new content."},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    },
)

SANDBOX_TOOLS: tuple[ToolSpec, ...] = (BASH, READ_FILE, WRITE_FILE)
"""The tools an SDK harness offers when the session has a sandbox, in this order."""


class _ToolInputError(Exception):
    """The model's arguments do not fit the tool's schema (reported back to the model)."""


async def run_tool(sandbox: Sandbox | None, call: ToolCallPart) -> ToolResultPart:
    """Run one tool call on the session's sandbox.

    Never raises for a failure of the call itself: an unknown tool, arguments that do not fit
    the schema, a session without sandbox, a :class:`~cerver.errors.CerverError` from the
    sandbox (``ComputeError``, ``NotFound``, ``InvalidRequest``…), any other exception from the
    backend, or a backend that does not answer in time all become a result with
    ``is_error=True`` and a message naming the problem. A command that exits non-zero is a
    normal result (its output ends with ``exit code N``); one killed by its timeout is an error
    result. Cancellation propagates.

    Args:
        sandbox: the session's sandbox, or ``None`` for a transcript-only session.
        call: the model's tool call.

    Returns:
        The result for ``call`` (same ``tool_call_id``), its output cut to
        :data:`MAX_OUTPUT_CHARS`.
    """
    handler = _HANDLERS.get(call.name)
    if handler is None:
        known = ", ".join(spec.name for spec in SANDBOX_TOOLS)
        return _error(call, f"Unknown tool {call.name!r}. Available tools: {known}.")
    if sandbox is None:
        return _error(call, "No sandbox: this session is transcript-only, so tools cannot run.")
    try:
        output, is_error = await handler(sandbox, call.arguments)
    except _ToolInputError as exc:
        return _error(call, f"Invalid arguments for {call.name}: {exc}")
    except TimeoutError:
        return _error(call, f"{call.name} failed: the sandbox did not answer in time.")
    except CerverError as exc:
        return _error(call, f"{call.name} failed ({exc.code}): {exc.message}")
    except Exception as exc:  # a tool call always gets a result, whatever the backend did
        return _error(call, f"{call.name} failed: {type(exc).__name__}: {exc}")
    return ToolResultPart(tool_call_id=call.id, output=output, is_error=is_error)


def parse_arguments(raw: str) -> dict[str, Any]:
    """Decode tool arguments sent as a JSON string (the OpenAI wire format).

    Malformed JSON or a non-object is kept as ``{INVALID_JSON_KEY: raw}`` so the call can be
    recorded as sent and :func:`run_tool` answers it with an error the model can act on.
    """
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {INVALID_JSON_KEY: raw}
    return value if isinstance(value, dict) else {INVALID_JSON_KEY: raw}


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Cut ``text`` to about ``limit`` characters, keeping its head and tail.

    The tail is kept because that is where commands print their errors and summaries.
    """
    if len(text) <= limit:
        return text
    half = limit // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[… {cut} characters truncated …]\n{text[-half:]}"


def format_exec_result(result: ExecResult, *, timeout: float | None = None) -> str:
    """Render a command's result for the model: stdout, then stderr, then the exit status.

    The exit status line is ``exit code N`` for a non-zero exit, or a timeout notice; it is
    omitted on success. A command with no output and exit 0 reads ``(no output)``.
    """
    body = "\n".join(s.rstrip("\n") for s in (result.stdout, result.stderr) if s)
    lines = [truncate(body)] if body else []
    if result.timed_out:
        after = f" after {timeout:g} s" if timeout is not None else ""
        lines.append(f"command timed out{after} and was killed (exit code {result.exit_code})")
    elif result.exit_code != 0:
        lines.append(f"exit code {result.exit_code}")
    return "\n".join(lines) or "(no output)"


def _error(call: ToolCallPart, message: str) -> ToolResultPart:
    return ToolResultPart(tool_call_id=call.id, output=truncate(message), is_error=True)


def _check_arguments(args: Mapping[str, Any], spec: ToolSpec) -> None:
    if INVALID_JSON_KEY in args:
        raise _ToolInputError(f"the arguments are not a JSON object: {args[INVALID_JSON_KEY]!r}")
    unexpected = sorted(set(args) - set(spec.parameters["properties"]))
    if unexpected:
        raise _ToolInputError(f"unexpected argument(s) {', '.join(map(repr, unexpected))}.")
    for name in spec.parameters["required"]:
        if not isinstance(args.get(name), str):
            raise _ToolInputError(f"{name!r} is required and must be a string.")


async def _bash(sandbox: Sandbox, args: Mapping[str, Any]) -> tuple[str, bool]:
    _check_arguments(args, BASH)
    timeout = args.get("timeout", DEFAULT_BASH_TIMEOUT)
    if timeout is None:
        timeout = DEFAULT_BASH_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _ToolInputError("'timeout' must be a positive number of seconds.")
    timeout = min(float(timeout), MAX_BASH_TIMEOUT)
    async with asyncio.timeout(timeout + _TIMEOUT_GRACE):
        result = await sandbox.exec(args["command"], timeout=timeout)
    return format_exec_result(result, timeout=timeout), result.timed_out


async def _read_file(sandbox: Sandbox, args: Mapping[str, Any]) -> tuple[str, bool]:
    _check_arguments(args, READ_FILE)
    async with asyncio.timeout(FILE_TIMEOUT):
        data = await sandbox.read_file(args["path"])
    if b"\x00" in data:
        return (
            f"{args['path']} is a binary file ({len(data)} bytes); inspect it with bash "
            "(e.g. `xxd` or `file`).",
            True,
        )
    return truncate(data.decode("utf-8", errors="replace")) or "(empty file)", False


async def _write_file(sandbox: Sandbox, args: Mapping[str, Any]) -> tuple[str, bool]:
    _check_arguments(args, WRITE_FILE)
    data = args["content"].encode()
    async with asyncio.timeout(FILE_TIMEOUT):
        await sandbox.write_file(args["path"], data)
    return f"Wrote {len(data)} bytes to {args['path']}.", False


_Handler = Callable[["Sandbox", Mapping[str, Any]], Awaitable[tuple[str, bool]]]
_HANDLERS: dict[str, _Handler] = {
    BASH.name: _bash,
    READ_FILE.name: _read_file,
    WRITE_FILE.name: _write_file,
}
