"""One model turn of a session: the orchestration loop behind ``POST …/run-llm``.

A turn runs as a task of its own, so a client that disconnects from the stream does not
cancel it: everything it produces is persisted and can be replayed from the event log with
``Last-Event-ID``. The request handler either streams the turn's events or awaits its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from cerver.errors import CerverError
from cerver.failures import Failure
from cerver.ids import new_id
from cerver.proxy import ModelProxy
from cerver.services.admission import TurnAdmission
from cerver.services.execs import ExecService
from cerver.services.locks import SessionLocks
from cerver.services.plugins import HarnessPool
from cerver.services.sessions import HarnessChoice, SessionService
from cerver.store import SessionRecord, SessionWriter, Store, StoredEvent
from cerver.store.runs import finish_run, start_run
from cerver.types import Entry, Usage
from harnesses.base import Error, Harness, Message, TextDelta, TurnContext, TurnOptions
from harnesses.base import Usage as UsageEvent

__all__ = ["TurnHandle", "TurnRequest", "TurnResult", "TurnService"]

log = logging.getLogger("cerver.turns")

_EVENT_FOR_KIND = {"tool_call": "tool_call", "tool_result": "tool_result"}


@dataclass(frozen=True, slots=True)
class TurnRequest:
    input: str
    harness: HarnessChoice | None = None
    system_prompt: str | None = None
    max_steps: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    wait: bool = True


@dataclass(slots=True)
class TurnResult:
    session_id: str
    run_id: str
    harness: str
    model: str
    status: str = "completed"
    message: Entry | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    #: Why the turn failed (``status == "failed"``), as the harness or the gateway said.
    error: Failure | None = None
    #: The model that answered last (a fallback model when the turn's model was down).
    answered_model: str | None = None


@dataclass(slots=True)
class TurnHandle:
    """A started turn: its identity, its live events and its eventual result."""

    session: SessionRecord
    run_id: str
    harness: str
    model: str
    #: ``{"policy", "rule"}`` when the account's routing policy chose the harness/model.
    routed_by: dict[str, Any] | None = None
    task: asyncio.Task[TurnResult] | None = None
    _events: asyncio.Queue[StoredEvent | None] = field(default_factory=asyncio.Queue)

    async def events(self) -> AsyncIterator[StoredEvent]:
        """The turn's events as they happen, ending after ``turn.completed`` or ``error``."""
        while (event := await self._events.get()) is not None:
            yield event

    async def result(self) -> TurnResult:
        assert self.task is not None
        return await asyncio.shield(self.task)


class TurnService:
    def __init__(
        self,
        store: Store,
        locks: SessionLocks,
        sessions: SessionService,
        harnesses: HarnessPool,
        execs: ExecService,
        proxy: ModelProxy | None = None,
    ) -> None:
        self._store = store
        self._locks = locks
        self._sessions = sessions
        self._harnesses = harnesses
        self._execs = execs
        self._proxy = proxy
        self._admission = TurnAdmission(store)
        self._tasks: set[asyncio.Task[TurnResult]] = set()

    async def start(self, account_id: str, session_id: str, request: TurnRequest) -> TurnHandle:
        """Validate the request and start the turn.

        Everything that can be refused (unknown session or harness, closed session, busy
        session with ``wait=False``) is refused here, before anything is written.
        """
        session = await self._sessions.get(account_id, session_id)
        self._sessions.ensure_active(session)
        admitted = await self._admission.admit(session, request.harness, request.input)
        name, model = self._sessions.resolve_harness(
            admitted.choice or HarnessChoice(), current=session
        )
        harness = self._harnesses.get(name)
        self._admission.ensure_priced(admitted, session, harness, model)
        handle = TurnHandle(
            session=session,
            run_id=new_id("run"),
            harness=name,
            model=model,
            routed_by=admitted.routed_by,
        )
        stack = contextlib.AsyncExitStack()
        writer = None
        if not request.wait:
            writer = await stack.enter_async_context(
                self._locks.hold(session.id, handle.run_id, wait=False, with_transcript=True)
            )
        handle.task = asyncio.create_task(self._run(handle, harness, request, stack, writer))
        self._tasks.add(handle.task)
        handle.task.add_done_callback(self._tasks.discard)
        return handle

    async def aclose(self) -> None:
        """Cancel turns still running (gateway shutdown); their partial work is kept."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(
        self,
        handle: TurnHandle,
        harness: Harness,
        request: TurnRequest,
        stack: contextlib.AsyncExitStack,
        writer: SessionWriter | None,
    ) -> TurnResult:
        """The turn, in order:

        1. take the session's turn lock (waiting behind a running turn if asked to);
        2. record the harness switch this turn makes, if any, and the run;
        3. commit the user's message before any model is called;
        4. hand the harness the neutral history and the session's sandbox;
        5. persist and publish what the harness produces, as it produces it;
        6. close the turn: totals, final message, run record, session ready, lock released
           (one transaction, also when the turn fails or is cancelled).
        """
        result = TurnResult(handle.session.id, handle.run_id, handle.harness, handle.model)
        started = time.perf_counter()
        try:
            async with stack:
                if writer is None:
                    writer = await stack.enter_async_context(
                        self._locks.hold(
                            handle.session.id, handle.run_id, wait=True, with_transcript=True
                        )
                    )
                # The session may have been closed or paused while this turn waited.
                self._sessions.ensure_active(writer.session)
                await self._turn(handle, harness, request, writer, result, started)
        except CerverError as exc:
            # Refused before the turn began (busy past the wait, closed or paused meanwhile):
            # nothing was written; tell the waiting client why.
            result.status = "failed"
            result.error = Failure.from_error(exc)
            handle._events.put_nowait(
                _unlogged_event(handle.session.id, "error", result.error.to_json())
            )
        finally:
            handle._events.put_nowait(None)
        return result

    async def _turn(
        self,
        handle: TurnHandle,
        harness: Harness,
        request: TurnRequest,
        writer: SessionWriter,
        result: TurnResult,
        started: float,
    ) -> None:
        session = writer.session

        def emit(event: str, data: Any) -> None:
            handle._events.put_nowait(writer.emit(event, data))

        writer.defer(
            start_run(
                handle.run_id,
                session.id,
                "turn",
                self._locks.lease_seconds,
                harness=handle.harness,
                model=handle.model,
                provider=harness.provider,
            )
        )
        try:
            # A turn routed by the account's policy leaves the session's own choice alone.
            if handle.routed_by is None and (handle.harness, handle.model) != (
                session.harness,
                session.model,
            ):
                await self._sessions.record_switch(
                    writer, session, handle.harness, handle.model, {}, "run-llm"
                )
            writer.update_session(status="running", interaction_count=session.interaction_count + 1)
            user_entry = await writer.append(
                Entry(
                    role="user",
                    content=request.input,
                    run_id=handle.run_id,
                    metadata={"routed_by": handle.routed_by} if handle.routed_by else {},
                )
            )
            emit(
                "turn.started",
                {
                    "run_id": handle.run_id,
                    "harness": handle.harness,
                    "model": handle.model,
                    "provider": harness.provider,
                    "input": user_entry.model_dump(mode="json"),
                },
            )
            turn = TurnContext(
                session_id=session.id,
                run_id=handle.run_id,
                history=writer.transcript,
                input=request.input,
                model=handle.model,
                options=self._options(session, request),
                sandbox=await self._execs.sandbox(session) if session.sandbox_id else None,
                metadata=session.metadata,
                fallback_models=tuple(session.fallback_models),
            )
            async with self._proxy_grant(turn, handle, harness, writer, result):
                async for event in harness.run(turn):
                    await self._handle(event, writer, handle, harness, result, emit)
                    await writer.maybe_flush()
        except asyncio.CancelledError:
            result.status = "cancelled"
            writer.defer(finish_run(handle.run_id, "cancelled"))
            writer.update_session(status="ready")
            raise
        except Exception as exc:  # a bug or a store failure: the turn fails, the gateway lives
            log.exception("turn %s of session %s failed", handle.run_id, session.id)
            result.status = "failed"
            result.error = Failure.from_exception(exc)
            emit("error", result.error.to_json())
        result.latency_ms = (time.perf_counter() - started) * 1000
        emit("usage", {**result.usage.model_dump(), "latency_ms": result.latency_ms})
        emit("turn.completed", self._completed_payload(result))
        writer.defer(
            finish_run(
                handle.run_id,
                result.status,
                latency_ms=result.latency_ms,
                error=result.error.message if result.error else None,
                answered_model=result.answered_model,
            )
        )
        writer.update_session(status="ready")

    async def _handle(
        self,
        event: Any,
        writer: SessionWriter,
        handle: TurnHandle,
        harness: Harness,
        result: TurnResult,
        emit: Any,
    ) -> None:
        if isinstance(event, TextDelta):
            emit("text_delta", {"text": event.text})
        elif isinstance(event, Message):
            entry = event.entry.model_copy(
                update={
                    "run_id": handle.run_id,
                    "harness": event.entry.harness or handle.harness,
                    "model": event.entry.model or handle.model,
                    "provider": event.entry.provider or harness.provider,
                }
            )
            stored = await writer.append(entry)
            if stored.role == "assistant" and stored.kind == "text":
                result.message = stored
            emit(_EVENT_FOR_KIND.get(stored.kind, "message"), stored.model_dump(mode="json"))
        elif isinstance(event, UsageEvent):
            result.usage = result.usage + event.usage
            result.answered_model = event.model
            writer.charge(
                kind=event.kind,
                usage=event.usage,
                run_id=handle.run_id,
                harness=handle.harness,
                model=event.model,
                provider=event.provider,
                latency_ms=event.latency_ms,
            )
        elif isinstance(event, Error):
            result.status = "failed"
            result.error = failure = event.failure
            stored = await writer.append(
                Entry(
                    role="event",
                    kind="error",
                    content=failure.message,
                    run_id=handle.run_id,
                    harness=handle.harness,
                    model=handle.model,
                    provider=harness.provider,
                    metadata={
                        "code": failure.code.value,
                        "retryable": failure.retryable,
                        "context": dict(failure.context),
                    },
                )
            )
            emit("error", {**failure.to_json(), "seq": stored.seq})

    @contextlib.asynccontextmanager
    async def _proxy_grant(
        self,
        turn: TurnContext,
        handle: TurnHandle,
        harness: Harness,
        writer: SessionWriter,
        result: TurnResult,
    ) -> AsyncIterator[None]:
        """For a CLI harness: a model-proxy token for this run, revoked when the run ends.

        Every request the CLI makes through the proxy is charged to this run's ledger.
        """
        if not harness.uses_model_proxy or self._proxy is None:
            yield
            return

        def on_usage(model: str, provider: str, usage: Usage, latency_ms: float) -> None:
            result.usage = result.usage + usage
            writer.charge(
                kind="llm",
                usage=usage,
                run_id=handle.run_id,
                harness=handle.harness,
                model=model,
                provider=provider,
                latency_ms=latency_ms,
            )

        turn.proxy = await self._proxy.grant(
            run_id=handle.run_id,
            session_id=handle.session.id,
            harness=handle.harness,
            on_usage=on_usage,
        )
        try:
            yield
        finally:
            await self._proxy.release(turn.proxy)

    @staticmethod
    def _options(session: SessionRecord, request: TurnRequest) -> TurnOptions:
        defaults = TurnOptions()
        return TurnOptions(
            system_prompt=request.system_prompt or session.system_prompt,
            max_tokens=request.max_tokens or defaults.max_tokens,
            temperature=request.temperature,
            max_steps=request.max_steps or defaults.max_steps,
        )

    @staticmethod
    def _completed_payload(result: TurnResult) -> dict[str, Any]:
        return {
            "run_id": result.run_id,
            "status": result.status,
            "message": result.message.model_dump(mode="json") if result.message else None,
            "usage": result.usage.model_dump(),
            "latency_ms": result.latency_ms,
            "harness": result.harness,
            "model": result.model,
            "answered_model": result.answered_model,
            "error": result.error.to_json() if result.error else None,
        }


def _unlogged_event(session_id: str, event: str, data: Any) -> StoredEvent:
    """An event for the waiting client only: nothing was logged, so it carries no id."""
    return StoredEvent(
        session_id=session_id, id=None, event=event, data=orjson.dumps(data).decode()
    )
