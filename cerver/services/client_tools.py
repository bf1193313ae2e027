"""The app's own tools: declaring them, finding the calls waiting for the app, taking results.

An app may offer the model its own functions next to the sandbox tools. The model's call of
one ends the turn (the run's status is ``requires_action``) and waits in the transcript as a
``tool_call`` entry marked ``metadata["client_tool"]``; the app runs it and sends the result,
which is appended as a ``tool_result`` entry with the same mark, and the turn continues. A
call is *pending* until a result for it is in the transcript; a new user message abandons the
calls still pending (the model then sees a synthesised "missing result", as after any
interrupted turn).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cerver.errors import Conflict, InvalidRequest
from cerver.types import Entry, ToolCallPart, ToolResultPart
from harnesses.base import Harness
from harnesses.tools import CLIENT_TOOL_KEY, SANDBOX_TOOLS, ToolSpec

__all__ = [
    "OFFERED_TOOLS_KEY",
    "client_tool_specs",
    "offered_tools",
    "pending_tool_calls",
    "result_entries",
    "tool_result_entry",
]

OFFERED_TOOLS_KEY = "client_tools"
"""``Entry.metadata`` key, on the first entry a turn writes, holding the tools the app
offered with it (name, description, parameters), so a continuation can offer them again."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def client_tool_specs(
    tools: Iterable[ToolSpec], harness: type[Harness], *, has_sandbox: bool
) -> tuple[ToolSpec, ...]:
    """Validate the tools an app declares for a turn.

    Raises:
        InvalidRequest: the harness cannot offer client tools, a name is not
            ``[A-Za-z0-9_-]{1,64}``, is declared twice, or is a sandbox tool's name while
            the session has a sandbox. ``context["param"]`` is ``"tools"``.
    """
    specs = tuple(tools)
    if not specs:
        return ()
    if not harness.supports_client_tools:
        raise InvalidRequest(
            f"The {harness.name!r} harness cannot offer the app's own tools (a CLI runs its "
            "own agent loop). Use an SDK harness: anthropic, openai, litellm or pydantic-ai.",
            context={"param": "tools", "harness": harness.name},
        )
    reserved = {spec.name for spec in SANDBOX_TOOLS} if has_sandbox else set()
    seen: set[str] = set()
    for spec in specs:
        if not _NAME.match(spec.name):
            raise InvalidRequest(
                f"Tool name {spec.name!r} is not allowed: use 1-64 letters, digits, '_' or '-'.",
                context={"param": "tools", "name": spec.name},
            )
        if spec.name in seen:
            raise InvalidRequest(
                f"Tool {spec.name!r} is declared twice.",
                context={"param": "tools", "name": spec.name},
            )
        if spec.name in reserved:
            raise InvalidRequest(
                f"Tool name {spec.name!r} is taken by a sandbox tool of this session "
                f"({', '.join(sorted(reserved))}); rename yours.",
                context={"param": "tools", "name": spec.name},
            )
        seen.add(spec.name)
    return specs


def pending_tool_calls(entries: Sequence[Entry]) -> list[ToolCallPart]:
    """The app's tool calls in ``entries`` that have no result yet, oldest first.

    A user message abandons the calls pending before it.
    """
    pending: dict[str, ToolCallPart] = {}
    for entry in entries:
        if entry.role == "user" and entry.kind == "text":
            pending.clear()
        elif entry.kind == "tool_call" and entry.metadata.get(CLIENT_TOOL_KEY):
            if (call := entry.tool_call) is not None:
                pending[call.id] = call
        elif entry.kind == "tool_result" and (result := entry.tool_result) is not None:
            pending.pop(result.tool_call_id, None)
    return list(pending.values())


def result_entries(
    pending: Sequence[ToolCallPart], results: Sequence[ToolResultPart], *, source: str
) -> list[Entry]:
    """The transcript entries for the app's results of the ``pending`` calls.

    Every pending call needs exactly one result (a model API refuses a call left unanswered).

    Raises:
        Conflict: a result names a call that is not pending (409; nothing is written).
        InvalidRequest: no results, two results for one call, or pending calls left without
            a result (``context["missing"]``).
    """
    if not results:
        raise InvalidRequest(
            "No tool results: send one result per pending call.",
            context={"param": "results", "pending": [c.id for c in pending]},
        )
    by_id = {call.id: call for call in pending}
    seen: set[str] = set()
    for result in results:
        if result.tool_call_id not in by_id:
            waiting = ", ".join(repr(c.id) for c in pending) or "none"
            raise Conflict(
                f"Tool call {result.tool_call_id!r} is not waiting for a result (pending: "
                f"{waiting}). Results are accepted once, for calls of the app's own tools "
                "the last turn stopped at.",
                context={"tool_call_id": result.tool_call_id, "pending": list(by_id)},
            )
        if result.tool_call_id in seen:
            raise InvalidRequest(
                f"Two results for tool call {result.tool_call_id!r}.",
                context={"param": "results", "tool_call_id": result.tool_call_id},
            )
        seen.add(result.tool_call_id)
    missing = [call_id for call_id in by_id if call_id not in seen]
    if missing:
        raise InvalidRequest(
            f"Tool call(s) {', '.join(map(repr, missing))} still need a result: send one "
            "result per pending call in the same request.",
            context={"param": "results", "missing": missing},
        )
    return [tool_result_entry(result, source=source) for result in results]


def tool_result_entry(result: ToolResultPart, *, source: str) -> Entry:
    """The ``tool`` entry for a result the app sent (``source`` names the surface)."""
    return Entry(
        role="tool",
        kind="tool_result",
        content=result.output,
        parts=[result],
        metadata={CLIENT_TOOL_KEY: True, "source": source},
    )


def offered_tools(entries: Sequence[Entry], run_id: str) -> tuple[ToolSpec, ...]:
    """The app's tools offered with the turn ``run_id`` (from its first entry's metadata)."""
    for entry in entries:
        if entry.run_id == run_id and OFFERED_TOOLS_KEY in entry.metadata:
            return tuple(_spec(raw) for raw in entry.metadata[OFFERED_TOOLS_KEY])
    return ()


def _spec(raw: Mapping[str, Any]) -> ToolSpec:
    return ToolSpec(raw["name"], raw.get("description", ""), raw.get("parameters", {}))
