"""One turn requested through a compatibility surface, on Cerver's own turn service.

Both surfaces do the same thing in their own wire format: pick the session (the
``X-Cerver-Session-Id`` header, else a new one), match the re-sent conversation against the
transcript (:mod:`cerver.api.compat.history`), and start a turn with
:class:`~cerver.services.turns.TurnService` — the same lock, transcript, ledger, budgets,
routing policy and event log as ``run-llm``. :func:`follow` then reads the turn's events as
the client sees the answer: text, and the calls of the app's tools.

Session rule: without ``X-Cerver-Session-Id`` every request starts a new session (placed on
the gateway's default compute, as ``POST /v2/sessions`` does) whose id comes back in the
``X-Cerver-Session-Id`` header; the request's ``user`` becomes the session's end-user id. The
``user`` never selects an existing session: one end user has many conversations, and guessing
which one a request continues would merge them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from cerver.api.compat.history import (
    ASSISTANT_TEXT_SEPARATOR,
    ClientMessage,
    Reconciled,
    reconcile,
)
from cerver.api.compat.model_names import ModelName
from cerver.errors import CerverError, ErrorCode, NotFound
from cerver.failures import Failure
from cerver.gateway import Gateway
from cerver.services import event_log
from cerver.services.client_tools import client_tool_specs
from cerver.services.sessions import ComputeChoice, HarnessChoice
from cerver.services.turns import TurnHandle, TurnRequest, TurnResult
from cerver.store import AccountRecord, SessionRecord, StoredEvent
from cerver.types import Entry, ToolCallPart
from harnesses.tools import CLIENT_TOOL_KEY, ToolSpec

__all__ = [
    "CompatTurn",
    "Finished",
    "TextOut",
    "ToolCallOut",
    "TurnOptionsIn",
    "cerver_headers",
    "failure_error",
    "follow",
    "follow_run",
    "raise_for_failure",
    "start_turn",
]


@dataclass(frozen=True, slots=True)
class TurnOptionsIn:
    """The generation options a surface passes through."""

    system_prompt: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(slots=True)
class CompatTurn:
    session: SessionRecord
    handle: TurnHandle
    provider: str
    started: float


async def start_turn(
    gateway: Gateway,
    account: AccountRecord,
    *,
    session_id: str | None,
    user: str | None,
    model: ModelName | None,
    messages: Sequence[ClientMessage] | Callable[[Sequence[Entry]], Reconciled],
    tools: Sequence[ToolSpec],
    options: TurnOptionsIn,
    origin: str,
    detached: bool = False,
) -> CompatTurn:
    """Validate everything, then open (or create) the session and start the turn.

    Nothing is written when the model, the tools or the conversation are refused; a new
    session is created only once they passed. ``messages`` is the re-sent conversation
    (matched by :func:`~cerver.api.compat.history.reconcile`), or a function planning what
    the request adds to the transcript (a surface whose client sends only what is new).
    ``model`` ``None`` keeps the session's harness and model. ``detached``: no client waits
    for the answer (see :attr:`TurnRequest.detached`).

    Raises:
        UnknownPlugin / NotConfigured / MissingDependency: the model's harness cannot run.
        NotFound: ``session_id`` is not a session of this account.
        Conflict: the conversation contradicts the transcript (409).
        InvalidRequest: bad tools, nothing to answer, tool calls without results.
    """
    started = time.perf_counter()
    sessions = gateway.sessions
    session = await sessions.get(account.id, session_id) if session_id else None
    choice = model.choice if model else None
    endpoints = await gateway.harnesses.endpoints_for(account.id)  # its own keys first
    harness_name, _ = sessions.resolve_harness(
        choice or HarnessChoice(), current=session, endpoints=endpoints
    )
    harness = gateway.harnesses.harness_class(harness_name)
    has_sandbox = (
        bool(session.sandbox_id) if session else gateway.settings.default_compute is not None
    )
    specs = client_tool_specs(tools, harness, has_sandbox=has_sandbox)
    entries = await sessions.transcript(session.id) if session else []
    plan = messages(entries) if callable(messages) else reconcile(entries, messages, source=origin)
    created = session is None
    if session is None:
        session = await sessions.create(
            account.id,
            harness=choice or HarnessChoice(),
            compute=ComputeChoice(),
            user=user,
            metadata={"created_by": origin},
        )
        plan.next_seq = session.next_seq
    request = TurnRequest(
        input=plan.input,
        harness=choice,
        system_prompt=options.system_prompt,
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        prelude=tuple(plan.prelude),
        client_tools=specs,
        expected_next_seq=plan.next_seq,
        origin=origin,
        detached=detached,
    )
    try:
        handle = await gateway.turns.start(account.id, session.id, request)
    except CerverError:
        if created:  # refused (a CLI its compute cannot host…): leave nothing behind
            await sessions.delete(session)
        raise
    return CompatTurn(session, handle, harness.provider, started)


def cerver_headers(turn: CompatTurn) -> dict[str, str]:
    """The ``X-Cerver-*`` headers every compatibility response carries."""
    handle = turn.handle
    return {
        "X-Cerver-Session-Id": turn.session.id,
        "X-Cerver-Run-Id": handle.run_id,
        "X-Cerver-Provider": turn.provider,
        "X-Cerver-Harness": handle.harness,
        "X-Cerver-Model": handle.model,
        "X-Cerver-Stream-Latency-Ms": f"{(time.perf_counter() - turn.started) * 1000:.2f}",
    }


@dataclass(frozen=True, slots=True)
class TextOut:
    """Answer text, in the order the client must show it."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    """A call of one of the app's tools: the turn stops, the app runs it."""

    call: ToolCallPart


@dataclass(slots=True)
class Finished:
    """The turn's end: its result, and the whole answer as the client received it."""

    result: TurnResult
    text: str = ""
    tool_calls: list[ToolCallPart] = field(default_factory=list)


async def follow(handle: TurnHandle) -> AsyncIterator[TextOut | ToolCallOut | Finished]:
    """The live turn's answer as the client sees it, ending with one :class:`Finished`."""
    async for item in read_answer(handle.events(), result=handle.result):
        yield item


async def follow_run(
    gateway: Gateway, session_id: str, run_id: str
) -> AsyncIterator[TextOut | ToolCallOut | Finished]:
    """A turn's answer read back from the session's event log, then live: the same items
    :func:`follow` gave the client that started it, wherever and whenever the turn runs."""
    events = event_log.run_events(
        gateway.store,
        gateway.hub,
        session_id,
        run_id,
        queued=lambda: gateway.turns.running(run_id) is not None,
    )
    finished = False
    async for item in read_answer(events):
        finished = finished or isinstance(item, Finished)
        yield item
    if not finished and (ended := await _ended_silently(gateway, session_id, run_id)):
        yield ended


async def _ended_silently(gateway: Gateway, session_id: str, run_id: str) -> Finished | None:
    """The end of a run that logged no ``turn.completed``, from its record: a turn refused
    before it began (a background response), or one whose process died mid-turn."""
    try:
        run = await gateway.store.runs.get(session_id, run_id)
    except NotFound:
        return None
    if run.status == "running":
        return None
    failure = Failure(ErrorCode.RUN_FAILED, run.error) if run.error else None
    result = TurnResult(
        session_id, run_id, run.harness or "", run.model or "", status=run.status, error=failure
    )
    return Finished(result)


async def read_answer(
    events: AsyncIterator[StoredEvent],
    *,
    result: Callable[[], Awaitable[TurnResult]] | None = None,
) -> AsyncIterator[TextOut | ToolCallOut | Finished]:
    """A turn's answer from its events, ending with one :class:`Finished`.

    The result in it is ``result()`` when given (the live turn's own), else the one its
    ``turn.completed`` event recorded; without either (a turn whose process lost the session
    before recording its end) the answer ends without a :class:`Finished`.

    The texts of one answer are separated by a blank line (a model that writes, runs a
    sandbox tool, then writes again), exactly as :mod:`~cerver.api.compat.history` shows
    them when the client re-sends the conversation. A text entry that was not streamed
    chunk by chunk is sent whole when it completes.
    """
    texts: list[str] = []
    calls: list[ToolCallPart] = []
    streamed = ""
    started = False
    completed: TurnResult | None = None
    async for event in events:
        if event.event == "turn.started":
            started = True
            continue
        if not started:
            continue  # the request's own history, appended before the turn
        if event.event == "text_delta":
            chunk = orjson.loads(event.data)["text"]
            if not streamed and texts:
                yield TextOut(ASSISTANT_TEXT_SEPARATOR)
            streamed += chunk
            yield TextOut(chunk)
        elif event.event in ("message", "tool_call"):
            entry: dict[str, Any] = orjson.loads(event.data)
            if entry["role"] == "assistant" and entry["kind"] == "text" and entry["content"]:
                if not streamed:
                    if texts:
                        yield TextOut(ASSISTANT_TEXT_SEPARATOR)
                    yield TextOut(entry["content"])
                texts.append(entry["content"])
                streamed = ""
            elif entry["kind"] == "tool_call" and entry["metadata"].get(CLIENT_TOOL_KEY):
                call = ToolCallPart.model_validate(entry["parts"][0])
                calls.append(call)
                yield ToolCallOut(call)
        elif event.event == "turn.completed":
            completed = TurnResult.from_completed_event(event.session_id, orjson.loads(event.data))
    final = await result() if result is not None else completed
    if final is not None:
        yield Finished(final, ASSISTANT_TEXT_SEPARATOR.join(texts), calls)


def raise_for_failure(result: TurnResult, session_id: str) -> None:
    """Raise a failed turn's failure as its Cerver error (rendered by the API layer)."""
    if result.status == "failed" and result.error is not None:
        result.error.with_context(session_id=session_id, run_id=result.run_id).raise_()


def failure_error(result: TurnResult, session_id: str) -> CerverError:
    """A failed turn's failure as its Cerver error, for an error event in a stream."""
    assert result.error is not None
    return result.error.with_context(session_id=session_id, run_id=result.run_id).to_error()
