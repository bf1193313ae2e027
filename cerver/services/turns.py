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

from cerver.errors import CerverError, Conflict, InvalidRequest, RunCancelled, RunInterrupted
from cerver.failures import Failure
from cerver.ids import new_id
from cerver.options import PluginOptions
from cerver.proxy import ModelProxy
from cerver.services.admission import TurnAdmission
from cerver.services.client_tools import OFFERED_TOOLS_KEY, client_tool_specs
from cerver.services.execs import ExecService
from cerver.services.locks import SessionLocks
from cerver.services.plugins import HarnessPool
from cerver.services.runs import CancelReason, RunService
from cerver.services.sessions import HarnessChoice, SessionService, stored_options
from cerver.services.unfinished import Unfinished
from cerver.store import SessionRecord, SessionWriter, Store, StoredEvent
from cerver.store.runs import finishing_run, starting_run
from cerver.telemetry import metrics, tracing
from cerver.types import Entry, ToolCallPart, Usage
from harnesses.base import Error, Harness, Message, TextDelta, TurnContext, TurnOptions
from harnesses.base import Usage as UsageEvent
from harnesses.tools import CLIENT_TOOL_KEY, ToolSpec

__all__ = ["TurnHandle", "TurnRequest", "TurnResult", "TurnService"]

log = logging.getLogger("cerver.turns")

_EVENT_FOR_KIND = {"tool_call": "tool_call", "tool_result": "tool_result"}


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What to run. Beside the input, a turn may carry (for the compatibility surfaces and
    the app's own tools):

    Attributes:
        input: the new user message; empty when the turn continues from ``prelude`` (the
            app's tool results, or a retried user message already in the transcript).
        prelude: entries appended, in order, before the input and under the same lock (the
            app's tool results, history a client sent that the transcript did not hold).
        client_tools: the app's own tools, offered to the model next to the sandbox tools.
        expected_next_seq: the transcript's ``next_seq`` the request was checked against;
            if another turn wrote to the session meanwhile, the turn is refused (409).
        origin: the surface the turn came through, recorded as a harness switch's reason.
        detached: no client waits for the answer (a background response): a refusal that
            comes once the turn was accepted, before it began, is recorded as a ``failed``
            run, so the run id the client was given reads back with the reason.
    """

    input: str
    harness: HarnessChoice | None = None
    system_prompt: str | None = None
    max_steps: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    wait: bool = True
    prelude: tuple[Entry, ...] = ()
    client_tools: tuple[ToolSpec, ...] = ()
    expected_next_seq: int | None = None
    origin: str = "run-llm"
    detached: bool = False


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
    #: Calls of the app's own tools the turn stopped at (status ``requires_action``).
    pending_tool_calls: list[ToolCallPart] = field(default_factory=list)
    #: ``time.perf_counter()`` when the turn started, and seconds to its first text.
    started: float = field(default_factory=time.perf_counter)
    first_token_s: float | None = None

    def completed_event(self) -> dict[str, Any]:
        """The ``turn.completed`` event's data; :meth:`from_completed_event` reads it back."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message.model_dump(mode="json") if self.message else None,
            "usage": self.usage.model_dump(),
            "latency_ms": self.latency_ms,
            "harness": self.harness,
            "model": self.model,
            "answered_model": self.answered_model,
            "error": self.error.to_json() if self.error else None,
            "pending_tool_calls": [call.model_dump() for call in self.pending_tool_calls],
        }

    @classmethod
    def from_completed_event(cls, session_id: str, data: dict[str, Any]) -> TurnResult:
        """The result a logged ``turn.completed`` event recorded (a turn read back later)."""
        message = data.get("message")
        error = data.get("error")
        return cls(
            session_id,
            data["run_id"],
            data["harness"],
            data["model"],
            status=data["status"],
            message=Entry.model_validate(message) if message else None,
            usage=Usage.model_validate(data["usage"]),
            latency_ms=data.get("latency_ms") or 0.0,
            error=Failure.from_json(error) if error else None,
            answered_model=data.get("answered_model"),
            pending_tool_calls=[
                ToolCallPart.model_validate(call) for call in data.get("pending_tool_calls", ())
            ],
        )


@dataclass(slots=True)
class TurnHandle:
    """A started turn: its identity, its live events and its eventual result."""

    session: SessionRecord
    run_id: str
    harness: str
    model: str
    #: ``{"policy", "rule"}`` when the account's routing policy chose the harness/model.
    routed_by: dict[str, Any] | None = None
    #: The harness's options for this turn, validated (the session's, or the request's).
    harness_options: PluginOptions | None = None
    task: asyncio.Task[TurnResult] | None = None
    #: Why the turn was stopped on purpose (:meth:`cancel`), or ``None``.
    cancel_reason: CancelReason | None = None
    #: Whether the turn's task has begun to run.
    started: bool = False
    _events: asyncio.Queue[StoredEvent | None] = field(default_factory=asyncio.Queue)

    @property
    def session_id(self) -> str:
        return self.session.id

    def cancel(self, reason: CancelReason = "cancelled") -> None:
        """Stop the turn: the upstream call and any sandbox command are ended, the partial
        output is kept, open tool calls get error results, and the run ends as ``reason``
        (its result too: :meth:`result` returns, it does not raise). Idempotent."""
        if self.cancel_reason is not None or self.task is None or self.task.done():
            return
        self.cancel_reason = reason
        if self.started:
            self.task.cancel()
        # Else the task is not yet running: cancelled now, it would never run its own ending
        # (the events' end, the result, the lock's release), and a client streaming the turn
        # would wait forever. It sees ``cancel_reason`` as it begins and ends the turn there.

    async def wait(self) -> None:
        """Return once the turn has ended and recorded itself."""
        if self.task is not None:
            await asyncio.wait([self.task])

    async def events(self) -> AsyncIterator[StoredEvent]:
        """The turn's events as they happen, ending after ``turn.completed`` or ``error``."""
        while (event := await self._events.get()) is not None:
            yield event

    async def event_batches(self) -> AsyncIterator[list[StoredEvent]]:
        """:meth:`events`, each batch all that had arrived when the last one was taken: a slow
        reader (or a busy loop) gets fewer, larger writes instead of falling behind."""
        queue = self._events
        while (event := await queue.get()) is not None:
            batch = [event]
            while not queue.empty():
                if (event := queue.get_nowait()) is None:
                    yield batch
                    return
                batch.append(event)
            yield batch

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
        runs: RunService | None = None,
    ) -> None:
        self._store = store
        self._locks = locks
        self._sessions = sessions
        self._harnesses = harnesses
        self._execs = execs
        self._proxy = proxy
        self._runs = runs
        self._admission = TurnAdmission(store)
        self._handles: dict[str, TurnHandle] = {}

    async def start(self, account_id: str, session_id: str, request: TurnRequest) -> TurnHandle:
        """Validate the request and start the turn.

        Everything that can be refused (unknown session or harness, closed session, busy
        session with ``wait=False``) is refused here, before anything is written.
        """
        if self._runs is not None:
            self._runs.ensure_accepting()
        session = await self._sessions.get(account_id, session_id)
        self._sessions.ensure_active(session)
        admitted = await self._admission.admit(session, request.harness, request.input)
        # The account's own provider keys, if it stored any, win over the gateway's.
        endpoints = await self._harnesses.endpoints_for(account_id)
        choice = admitted.choice or HarnessChoice()
        name, model = self._sessions.resolve_harness(choice, current=session, endpoints=endpoints)
        options = self._sessions.harness_options(name, choice, current=session)
        harness = self._harnesses.get(name, endpoints)
        self._admission.ensure_priced(admitted, session, harness, model)
        _ensure_supported(type(harness), session, request)
        if harness.uses_model_proxy:
            # A CLI harness on a compute that cannot host it is refused here, before the
            # turn writes anything (its user message, its harness switch).
            sandbox = await self._execs.sandbox(session) if session.sandbox_id else None
            public_url = self._proxy.public_url if self._proxy is not None else None
            tools = bool(request.client_tools)
            await harness.preflight(sandbox, public_url=public_url, client_tools=tools)
            if tools and self._proxy is not None:  # its CLI reaches them over MCP
                self._proxy.app_tools.ensure_available()
        handle = TurnHandle(
            session=session,
            run_id=new_id("run"),
            harness=name,
            model=model,
            routed_by=admitted.routed_by,
            harness_options=options,
        )
        stack = contextlib.AsyncExitStack()
        writer = None
        if not request.wait:
            writer = await stack.enter_async_context(
                self._locks.hold(session.id, handle.run_id, wait=False, with_transcript=True)
            )
        handle.task = asyncio.create_task(self._run(handle, harness, request, stack, writer))
        self._handles[handle.run_id] = handle
        if self._runs is not None:
            self._runs.track_turn(handle.run_id, handle)
        handle.task.add_done_callback(lambda _: self._forget(handle.run_id))
        return handle

    def running(self, run_id: str) -> TurnHandle | None:
        """The handle of a turn started in this process and not yet ended, if any."""
        return self._handles.get(run_id)

    def _forget(self, run_id: str) -> None:
        self._handles.pop(run_id, None)
        if self._runs is not None:
            self._runs.untrack_turn(run_id)

    async def aclose(self) -> None:
        """Stop turns still running (gateway shutdown) as ``interrupted``; their partial
        work is kept."""
        handles = list(self._handles.values())
        for handle in handles:
            handle.cancel("interrupted")
        await asyncio.gather(*(h.wait() for h in handles))

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
        handle.started = True
        result = TurnResult(handle.session.id, handle.run_id, handle.harness, handle.model)
        started = time.perf_counter()
        metrics.turn_started()
        with tracing.span(
            f"invoke_agent {handle.harness}",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": handle.harness,
                "gen_ai.request.model": handle.model,
                "gen_ai.conversation.id": handle.session.id,
                "cerver.run_id": handle.run_id,
            },
        ) as span:
            try:
                await self._run_locked(handle, harness, request, stack, writer, result, started)
            finally:
                seconds = time.perf_counter() - started
                metrics.turn_finished(handle.harness, handle.model, result.status, seconds)
                _record_turn(span, handle, request, result, seconds)
        return result

    async def _run_locked(
        self,
        handle: TurnHandle,
        harness: Harness,
        request: TurnRequest,
        stack: contextlib.AsyncExitStack,
        writer: SessionWriter | None,
        result: TurnResult,
        started: float,
    ) -> None:
        """Steps 1–6 of :meth:`_run`, with the refusals that come before the turn begins."""
        ended = False
        opening = _Opening(self._sessions, handle, harness, request, self._locks.lease_seconds)
        try:
            async with stack:
                if handle.cancel_reason is not None:  # stopped before its task began
                    raise asyncio.CancelledError
                if writer is None:
                    # The lock, the run row and the turn's first entries: one transaction.
                    writer = await stack.enter_async_context(
                        self._locks.hold(
                            handle.session.id,
                            handle.run_id,
                            wait=True,
                            with_transcript=True,
                            opening=opening,
                        )
                    )
                else:  # the lock was taken when the turn was started (multitask "reject")
                    opening(writer)
                await self._turn(handle, harness, request, writer, opening, result, started)
                ended = True
        except CerverError as exc:
            # Refused before the turn began (busy past the wait, closed or paused meanwhile):
            # nothing was written; tell the waiting client why.
            result.status = "failed"
            result.error = Failure.from_error(exc)
            handle._events.put_nowait(
                _unlogged_event(handle.session.id, "error", result.error.to_json())
            )
            if request.detached and not ended:
                await asyncio.shield(self._record_refusal(handle, harness, result.error))
        except asyncio.CancelledError:
            if handle.cancel_reason is None:
                raise
            _uncancel()
            if not ended:  # stopped while it waited for the session: nothing was written
                result.status = handle.cancel_reason
                result.error = _stopped_error(handle.cancel_reason)
                event = _unlogged_event(handle.session.id, "error", result.error.to_json())
                handle._events.put_nowait(event)
        finally:
            handle._events.put_nowait(None)

    async def _record_refusal(self, handle: TurnHandle, harness: Harness, failure: Failure) -> None:
        try:
            await self._store.runs.record_refused(
                handle.run_id,
                handle.session.id,
                error=failure.message,
                harness=handle.harness,
                model=handle.model,
                provider=harness.provider,
            )
        except Exception:  # the refusal still reaches any client following the turn
            log.warning("Could not record refused run %s.", handle.run_id, exc_info=True)

    async def _turn(
        self,
        handle: TurnHandle,
        harness: Harness,
        request: TurnRequest,
        writer: SessionWriter,
        opened: _Opening,
        result: TurnResult,
        started: float,
    ) -> None:
        session = writer.session
        unfinished = Unfinished()

        def emit(event: str, data: Any, *, after_commit: bool = False) -> None:
            writer.emit(event, data, to=handle._events.put_nowait, after_commit=after_commit)

        try:
            # The opening's rows are written (with the lock, or just now); their events follow.
            await writer.flush()
            if opened.switch is not None:  # in the session's log, not the turn's own stream
                writer.emit("harness_switched", opened.switch.model_dump(mode="json"))
            for entry in opened.prelude:
                emit(_EVENT_FOR_KIND.get(entry.kind, "message"), entry.model_dump(mode="json"))
            prelude, user_entry = opened.prelude, opened.user_entry
            emit(
                "turn.started",
                {
                    "run_id": handle.run_id,
                    "harness": handle.harness,
                    "model": handle.model,
                    "provider": harness.provider,
                    "input": user_entry.model_dump(mode="json") if user_entry else None,
                },
            )
            turn = TurnContext(
                session_id=session.id,
                run_id=handle.run_id,
                history=[*writer.transcript, *prelude],
                input=request.input,
                model=handle.model,
                options=self._options(session, request),
                sandbox=await self._execs.sandbox(session) if session.sandbox_id else None,
                metadata=session.metadata,
                fallback_models=tuple(session.fallback_models),
                harness_options=handle.harness_options,
                client_tools=request.client_tools,
            )
            async with (
                self._proxy_grant(turn, handle, harness, writer, result),
                contextlib.aclosing(harness.run(turn)) as events,
            ):
                async for event in events:
                    # Seen first: a write cut short by a cancel is still committed (or kept
                    # queued for the next one), so what it holds must be closed too.
                    unfinished.see(event)
                    self._handle(event, writer, handle, harness, result, emit)
                    writer.maybe_flush()
        except asyncio.CancelledError:
            if handle.cancel_reason is None:  # not asked for (the lock was lost): just stop
                result.status = "cancelled"
                writer.defer(*finishing_run(handle.run_id, "cancelled"))
                writer.update_session(status="ready")
                raise
            # Cancelled or interrupted on purpose: the turn ends here, recorded as such.
            _uncancel()
            await self._stop(handle, harness, unfinished, writer, result, emit)
        except Exception as exc:  # a bug or a store failure: the turn fails, the gateway lives
            log.exception("turn %s of session %s failed", handle.run_id, session.id)
            result.status = "failed"
            result.error = Failure.from_exception(exc)
            emit("error", result.error.to_json())
        if result.status == "completed" and result.pending_tool_calls:
            result.status = "requires_action"
        result.latency_ms = (time.perf_counter() - started) * 1000
        emit("usage", {**result.usage.model_dump(), "latency_ms": result.latency_ms})
        emit("turn.completed", result.completed_event())
        writer.defer(
            *finishing_run(
                handle.run_id,
                result.status,
                latency_ms=result.latency_ms,
                error=result.error.message if result.error else None,
                answered_model=result.answered_model,
            )
        )
        writer.update_session(status="ready")

    def _handle(
        self,
        event: Any,
        writer: SessionWriter,
        handle: TurnHandle,
        harness: Harness,
        result: TurnResult,
        emit: Any,
    ) -> None:
        if isinstance(event, TextDelta):
            if result.first_token_s is None:
                result.first_token_s = time.perf_counter() - result.started
                metrics.turn_first_token(handle.harness, handle.model, result.first_token_s)
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
            # Written at the loop's next tick, or with the release when the turn ends first
            # (its last message and its end: one transaction); told of once committed.
            [stored] = writer.queue([entry])
            writer.write_soon()
            if stored.role == "assistant" and stored.kind == "text":
                result.message = stored
            elif stored.metadata.get(CLIENT_TOOL_KEY) and (call := stored.tool_call) is not None:
                result.pending_tool_calls.append(call)
            event_name = _EVENT_FOR_KIND.get(stored.kind, "message")
            emit(event_name, stored.model_dump(mode="json"), after_commit=True)
        elif isinstance(event, UsageEvent):
            result.usage = result.usage + event.usage
            result.answered_model = event.model
            _count_usage(handle.harness, event.model, event.provider, event.usage)
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
            [stored] = writer.queue(
                [
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
                ]
            )
            writer.write_soon()
            emit("error", {**failure.to_json(), "seq": stored.seq}, after_commit=True)

    async def _stop(
        self,
        handle: TurnHandle,
        harness: Harness,
        unfinished: Unfinished,
        writer: SessionWriter,
        result: TurnResult,
        emit: Any,
    ) -> None:
        """Close a turn stopped on purpose: keep its partial text, give its open tool calls
        results, and set the result's status and error (the run is finished by the caller)."""
        reason = handle.cancel_reason
        assert reason is not None
        result.status = reason
        result.error = _stopped_error(reason)
        closing = unfinished.closing_entries(
            "cancelled" if reason == "cancelled" else "incomplete",
            f"the turn was {reason} first",
        )
        provenance = {
            "run_id": handle.run_id,
            "harness": handle.harness,
            "model": handle.model,
            "provider": harness.provider,
        }
        for entry in closing:
            stored = await writer.append(entry.model_copy(update=provenance))
            if stored.role == "assistant":
                result.message = stored
            emit(_EVENT_FOR_KIND.get(stored.kind, "message"), stored.model_dump(mode="json"))

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

        metered_here: list[Usage] = []

        def on_usage(model: str, provider: str, usage: Usage, latency_ms: float) -> None:
            result.usage = result.usage + usage
            metered_here.append(usage)
            _count_usage(handle.harness, model, provider, usage)
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
            account_id=handle.session.account_id,
        )
        try:
            yield
        finally:
            await self._proxy.release(turn.proxy)
        if self._proxy.shares_grants:
            try:
                await self._add_served_elsewhere(handle.run_id, writer, result, metered_here)
            except Exception:  # the ledger has the calls; only the result's totals miss them
                log.warning(
                    "Could not add the calls other replicas served to run %s's result.",
                    handle.run_id,
                    exc_info=True,
                )

    async def _add_served_elsewhere(
        self, run_id: str, writer: SessionWriter, result: TurnResult, metered_here: list[Usage]
    ) -> None:
        """Add to the run's result the proxied calls another replica served (it wrote them
        straight to the ledger): the run's ``llm`` rows beyond those metered here."""
        await writer.flush()
        calls, input_tokens, output_tokens, cost = await self._store.ledger.run_totals(run_id)
        if calls <= len(metered_here):
            return
        here = sum(metered_here, Usage())
        known = cost is not None and here.cost_usd is not None
        result.usage = result.usage + Usage(
            input_tokens=input_tokens - here.input_tokens,
            output_tokens=output_tokens - here.output_tokens,
            cost_usd=max(cost - here.cost_usd, 0.0) if known else None,  # type: ignore[operator]
            cost_reason=None if known else "a model call of this run has no known price",
        )

    @staticmethod
    def _options(session: SessionRecord, request: TurnRequest) -> TurnOptions:
        defaults = TurnOptions()
        return TurnOptions(
            system_prompt=request.system_prompt or session.system_prompt,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            max_steps=request.max_steps or defaults.max_steps,
        )


class _Opening:
    """A turn's first writes, queued on the writer as the lock is taken (steps 1–3 of
    :meth:`TurnService._run`): the refusals that still apply (closed or paused, or the
    transcript moved on, while the turn waited), the run row, the harness switch, the
    session's status and counter, the prelude and the user's message.

    Called with the new writer inside the lock's transaction (on the store's thread: it only
    queues, it emits nothing); what it raises rolls the lock back. Afterwards it holds the
    numbered entries, whose events the turn emits.
    """

    def __init__(
        self,
        sessions: SessionService,
        handle: TurnHandle,
        harness: Harness,
        request: TurnRequest,
        lease_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._handle = handle
        self._provider = harness.provider
        self._request = request
        self._lease_seconds = lease_seconds
        # Read here, on the event loop: the store's thread does not see the request context.
        self._trace_id = tracing.current_trace_id()
        self.switch: Entry | None = None
        self.prelude: list[Entry] = []
        self.user_entry: Entry | None = None

    def __call__(self, writer: SessionWriter) -> None:
        handle, request, session = self._handle, self._request, writer.session
        # The session may have been closed or paused while this turn waited.
        self._sessions.ensure_active(session)
        _ensure_unchanged(session, request.expected_next_seq)
        writer.defer(
            *starting_run(
                handle.run_id,
                session.id,
                "turn",
                self._lease_seconds,
                harness=handle.harness,
                model=handle.model,
                provider=self._provider,
                trace_id=self._trace_id,
            )
        )
        # A turn routed by the account's policy leaves the session's own choice alone.
        options = stored_options(handle.harness_options or PluginOptions())
        if handle.routed_by is None and (handle.harness, handle.model, options) != (
            session.harness,
            session.model,
            session.harness_options,
        ):
            self.switch = self._sessions.queue_switch(
                writer, session, handle.harness, handle.model, options, request.origin
            )
        writer.update_session(status="running", interaction_count=session.interaction_count + 1)
        # The turn's first entry records the app's tools, for a continuation to reoffer.
        offered = _offered_metadata(request.client_tools)
        if request.prelude:
            first = {} if request.input else offered
            stamped = [e.model_copy(update={"run_id": handle.run_id}) for e in request.prelude]
            stamped[0] = stamped[0].model_copy(
                update={"metadata": {**stamped[0].metadata, **first}}
            )
            self.prelude = writer.queue(stamped)
        if request.input:
            metadata = {"routed_by": handle.routed_by} if handle.routed_by else {}
            [self.user_entry] = writer.queue(
                [
                    Entry(
                        role="user",
                        content=request.input,
                        run_id=handle.run_id,
                        metadata={**metadata, **offered},
                    )
                ]
            )


def _stopped_error(reason: CancelReason) -> Failure:
    if reason == "cancelled":
        return Failure.from_error(
            RunCancelled("The turn was cancelled (POST …/runs/{run_id}/cancel, close or delete).")
        )
    return Failure.from_error(
        RunInterrupted("The turn was interrupted: the gateway process running it shut down.")
    )


def _uncancel() -> None:
    """Take back the cancellation this task was asked for, once it has been handled, so the
    turn's last writes (its final rows, the lock's release) run to completion."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _ensure_supported(harness: type[Harness], session: SessionRecord, request: TurnRequest) -> None:
    """Refuse the app's tools, or a turn without new input, on a harness that cannot do it."""
    client_tool_specs(request.client_tools, harness, has_sandbox=bool(session.sandbox_id))
    if not request.input and not harness.supports_client_tools:
        raise InvalidRequest(
            f"The {harness.name!r} harness can only answer a new user message (it cannot "
            "continue from tool results or retry the transcript's last message).",
            context={"harness": harness.name},
        )


def _offered_metadata(tools: tuple[ToolSpec, ...]) -> dict[str, Any]:
    if not tools:
        return {}
    return {
        OFFERED_TOOLS_KEY: [
            {"name": t.name, "description": t.description, "parameters": dict(t.parameters)}
            for t in tools
        ]
    }


def _ensure_unchanged(session: SessionRecord, expected_next_seq: int | None) -> None:
    """Refuse a turn checked against a transcript that another turn has since extended."""
    if expected_next_seq is not None and session.next_seq != expected_next_seq:
        raise Conflict(
            f"Session {session.id!r} changed while this request waited: its transcript now "
            f"holds {session.next_seq - 1} entries, the request was checked against "
            f"{expected_next_seq - 1}. Read the conversation again "
            "(GET /v2/sessions/{id}/messages) and resend it.",
            context={"session_id": session.id, "next_seq": session.next_seq},
        )


def _unlogged_event(session_id: str, event: str, data: Any) -> StoredEvent:
    """An event for the waiting client only: nothing was logged, so it carries no id."""
    return StoredEvent(
        session_id=session_id, id=None, event=event, data=orjson.dumps(data).decode()
    )


def _count_usage(harness: str, model: str | None, provider: str | None, usage: Usage) -> None:
    metrics.usage_charged(
        harness=harness,
        model=model,
        provider=provider,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=usage.cost_usd,
    )


def _record_turn(
    span: Any, handle: TurnHandle, request: TurnRequest, result: TurnResult, seconds: float
) -> None:
    """The turn's outcome on its span and in one log line (ids, counts, never content)."""
    error_code = str(result.error.code) if result.error else None
    span.set_attributes(
        {
            "cerver.turn.status": result.status,
            "gen_ai.response.model": result.answered_model or handle.model,
            "gen_ai.usage.input_tokens": result.usage.input_tokens,
            "gen_ai.usage.output_tokens": result.usage.output_tokens,
        }
    )
    if tracing.capture_content():
        span.set_attribute("gen_ai.input.messages", tracing.content(request.input))
        if result.message is not None:
            span.set_attribute("gen_ai.output.messages", tracing.content(result.message.content))
    if result.status != "completed":
        detail = result.error.message if result.error else ""
        tracing.mark_error(span, error_code or result.status, detail)
    log.info(
        "turn %s %s",
        handle.run_id,
        result.status,
        extra={
            "fields": {
                "run_id": handle.run_id,
                "session_id": handle.session.id,
                "harness": handle.harness,
                "model": handle.model,
                "status": result.status,
                "error_code": error_code,
                "latency_ms": round(seconds * 1000, 2),
                "input_tokens": result.usage.input_tokens,
                "output_tokens": result.usage.output_tokens,
                "cost_usd": result.usage.cost_usd,
            }
        },
    )
