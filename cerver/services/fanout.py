"""Fan-out: run N harness × model × compute variants of one input in parallel, judge them,
and keep the winner as the parent session's next turn.

Each variant is a child session branched from the parent (same transcript and files) that
runs one turn through :class:`~cerver.services.turns.TurnService`. Variants run in a task
group under a semaphore (``max_concurrency``); each has its own timeout, and whatever happens
to one (an upstream error, a hang, a sandbox that dies, a bug) becomes that variant's status
and error: it never cancels or slows its siblings. Each variant's row is written as it
finishes, so ``GET /v2/fanouts/{id}`` shows progress. A fan-out runs as a task of its own, so
a client that disconnects does not cancel it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import orjson

from cerver.errors import BudgetExceeded, CerverError, InvalidRequest, NoOutput, VariantTimeout
from cerver.failures import Failure
from cerver.ids import new_id
from cerver.providers import Endpoints
from cerver.services.branching import BranchingService, Snapshot
from cerver.services.budgets import BudgetService
from cerver.services.execs import ExecService
from cerver.services.judging import HarnessModelCall, build_judge
from cerver.services.keeping import FanoutKeeper, VariantOutcome, VariantPlan, verdict_json
from cerver.services.locks import SessionLocks
from cerver.services.plugins import ComputePool, HarnessPool
from cerver.services.runs import CancelReason, RunService
from cerver.services.sessions import (
    ComputeChoice,
    HarnessChoice,
    SessionService,
    stored_options,
)
from cerver.services.turns import TurnHandle, TurnRequest, TurnService
from cerver.store import FanoutRecord, SessionRecord, Store, StoredEvent
from cerver.store.schema import utcnow
from cerver.telemetry import metrics, tracing
from judges.base import Judge, JudgeContext, JudgeSpec, VariantOutput, Verdict

__all__ = ["FanoutHandle", "FanoutRequest", "FanoutService", "VariantRequest"]

log = logging.getLogger("cerver.fanout")


@dataclass(frozen=True, slots=True)
class VariantRequest:
    """One variant: a harness/model and where its tools run (``None``: the parent's provider)."""

    harness: HarnessChoice
    compute: ComputeChoice | None = None


@dataclass(frozen=True, slots=True)
class FanoutRequest:
    """What to fan out.

    Attributes:
        input: the user message every variant answers.
        variants: 1–32 variants, run in their own child sessions; results keep this order.
        judge: how to pick the winner (``None``: a person picks with :meth:`FanoutService.pick`).
        keep: ``winner`` appends the winner to the parent as its next turn; ``none`` only
            records the fan-out and verdict there.
        max_concurrency: variants running at once.
        variant_timeout_s: how long a variant's turn may run before it is cancelled and
            recorded as ``timeout`` (creating its session and compute is not counted).
    """

    input: str
    variants: list[VariantRequest]
    judge: JudgeSpec | None = None
    keep: Literal["winner", "none"] = "winner"
    max_concurrency: int = 8
    variant_timeout_s: float = 600.0
    system_prompt: str | None = None
    max_steps: int | None = None


@dataclass(slots=True)
class FanoutHandle:
    """A started fan-out: its id, its live events and its eventual record."""

    fanout_id: str
    account_id: str
    parent_session_id: str
    task: asyncio.Task[FanoutRecord] | None = None
    #: Why the fan-out was stopped on purpose (:meth:`cancel`), or ``None``.
    cancel_reason: CancelReason | None = None
    #: Whether the fan-out's task has begun to run.
    started: bool = False
    _events: asyncio.Queue[StoredEvent | None] = field(default_factory=asyncio.Queue)
    _next_event_id: int = 1

    @property
    def session_id(self) -> str:
        return self.parent_session_id

    def cancel(self, reason: CancelReason = "cancelled") -> None:
        """Stop the fan-out and its variants' turns; it is recorded with status ``reason``
        (and :meth:`result` returns the record). Idempotent."""
        if self.cancel_reason is not None or self.task is None or self.task.done():
            return
        self.cancel_reason = reason
        if self.started:
            self.task.cancel()
        # Else the task is not yet running: cancelled now, it would never record its end or
        # end its events. It sees ``cancel_reason`` as it begins and ends the fan-out there.

    async def wait(self) -> None:
        """Return once the fan-out has ended and recorded itself."""
        if self.task is not None:
            await asyncio.wait([self.task])

    def emit(self, event: str, data: Any) -> None:
        self._events.put_nowait(
            StoredEvent(
                session_id=self.parent_session_id,
                id=self._next_event_id,
                event=event,
                data=orjson.dumps(data).decode(),
            )
        )
        self._next_event_id += 1

    async def events(self) -> AsyncIterator[StoredEvent]:
        """``fanout.started``, per variant ``variant.started`` / ``variant.delta`` /
        ``variant.completed``, then ``verdict``; ends when the fan-out is recorded.

        These events are live only: they are not written to the parent session's event log,
        and their ``id`` numbers this stream alone (it is not a session event id, and the SSE
        route sends no ``id:``). A fan-out's progress is read back with ``GET /v2/fanouts/{id}``.
        """
        while (event := await self._events.get()) is not None:
            yield event

    async def result(self) -> FanoutRecord:
        assert self.task is not None
        return await asyncio.shield(self.task)


class FanoutService:
    def __init__(
        self,
        store: Store,
        locks: SessionLocks,
        sessions: SessionService,
        branching: BranchingService,
        turns: TurnService,
        harnesses: HarnessPool,
        computes: ComputePool,
        execs: ExecService,
        *,
        lease_seconds: float = 30.0,
        runs: RunService | None = None,
    ) -> None:
        self._store = store
        self._runs = runs
        self._lease_seconds = lease_seconds
        self._sessions = sessions
        self._branching = branching
        self._turns = turns
        self._harnesses = harnesses
        self._computes = computes
        self._execs = execs
        self._keeper = FanoutKeeper(store, locks, sessions)
        self._budgets = BudgetService(store)
        self._handles: dict[str, FanoutHandle] = {}

    # -- reads -----------------------------------------------------------------------------

    async def get(self, account_id: str, fanout_id: str) -> FanoutRecord:
        return await self._store.fanouts.get(account_id, fanout_id)

    async def pick(
        self, account_id: str, fanout_id: str, variant_id: str, *, reason: str | None = None
    ) -> FanoutRecord:
        """A person picks the winner; see :meth:`FanoutKeeper.pick`."""
        return await self._keeper.pick(account_id, fanout_id, variant_id, reason=reason)

    # -- start -----------------------------------------------------------------------------

    async def start(
        self,
        account_id: str,
        request: FanoutRequest,
        *,
        parent_session_id: str | None = None,
        new_parent: dict[str, Any] | None = None,
    ) -> FanoutHandle:
        """Validate the request, record the fan-out and start it.

        The parent is ``parent_session_id``, or a new session created with ``new_parent``
        (keyword arguments of :meth:`SessionService.create`). Everything that can be refused
        (unknown harness, compute or judge, a judge model that is a contestant, a closed
        parent) is refused before anything is written.
        """
        if self._runs is not None:
            self._runs.ensure_accepting()
        if not request.variants:
            raise InvalidRequest("A fan-out needs at least one variant.")
        endpoints = await self._harnesses.endpoints_for(account_id)  # its own keys first
        plans = [self._plan(v, endpoints) for v in request.variants]
        judge = build_judge(request.judge) if request.judge is not None else None
        if judge is not None:
            judge.check([(p.harness, p.model) for p in plans])
        if parent_session_id is not None:
            parent = await self._sessions.get(account_id, parent_session_id)
            self._sessions.ensure_open(parent)
            await self._budgets.ensure_within_budget(parent, turns=len(plans))
        else:
            first = plans[0]
            parent = await self._sessions.create(
                account_id,
                harness=HarnessChoice(first.harness, first.model),
                **(new_parent or {"compute": ComputeChoice("none")}),
            )
            try:  # a fan-out counts N turns against the end user's budget
                await self._budgets.ensure_within_budget(parent, turns=len(plans))
            except BudgetExceeded:
                await self._sessions.delete(parent)
                raise
        handle = FanoutHandle(new_id("fan"), account_id, parent.id)
        await self._store.fanouts.create(
            {
                "id": handle.fanout_id,
                "account_id": account_id,
                "parent_session_id": parent.id,
                "status": "running",
                "input": request.input,
                "judge": _judge_json(request.judge) if request.judge else None,
                "keep": request.keep,
                "max_concurrency": request.max_concurrency,
                "lease_expires_at": utcnow() + timedelta(seconds=self._lease_seconds),
            },
            [
                {
                    "id": p.variant_id,
                    "fanout_id": handle.fanout_id,
                    "position": i,
                    "harness": p.harness,
                    "model": p.model,
                    "provider": p.provider,
                    "compute": self._compute_name(p.compute, parent),
                    "status": "pending",
                }
                for i, p in enumerate(plans)
            ],
        )
        handle.task = asyncio.create_task(self._traced(handle, request, plans, parent, judge))
        self._handles[handle.fanout_id] = handle
        if self._runs is not None:
            self._runs.track_fanout(handle.fanout_id, handle)
        handle.task.add_done_callback(lambda _: self._forget(handle.fanout_id))
        return handle

    def _forget(self, fanout_id: str) -> None:
        self._handles.pop(fanout_id, None)
        if self._runs is not None:
            self._runs.untrack_fanout(fanout_id)

    async def cancel(self, account_id: str, fanout_id: str) -> FanoutRecord:
        """Cancel a running fan-out (on whichever replica runs it) and its variants' turns;
        returns the fan-out once it ended here (a fan-out that already ended, as it is).

        Raises:
            NotFound: no such fan-out, or another account's.
        """
        record = await self._store.fanouts.get(account_id, fanout_id)
        if record.status == "running" and self._runs is not None:
            await self._runs.cancel_fanout(fanout_id)
            record = await self._store.fanouts.get(account_id, fanout_id)
        return record

    async def aclose(self) -> None:
        """Stop fan-outs still running (gateway shutdown) as ``interrupted``."""
        handles = list(self._handles.values())
        for handle in handles:
            handle.cancel("interrupted")
        await asyncio.gather(*(h.wait() for h in handles))

    def _plan(self, variant: VariantRequest, endpoints: Endpoints) -> VariantPlan:
        name, model = self._sessions.resolve_harness(variant.harness, endpoints=endpoints)
        options = self._sessions.harness_options(name, variant.harness)
        compute = variant.compute
        if compute is not None and compute.mode == "provider" and compute.provider:
            provider = self._computes.canonical(compute.provider)
            self._computes.registry.options(provider, compute.options)  # refuse bad ones now
            compute = ComputeChoice("provider", provider, options=compute.options)
        return VariantPlan(
            variant_id=new_id("var"),
            harness=name,
            model=model,
            provider=self._harnesses.harness_class(name).provider,
            options=stored_options(options),
            compute=compute,
        )

    @staticmethod
    def _compute_name(compute: ComputeChoice | None, parent: SessionRecord) -> str | None:
        if compute is None:
            return parent.provider
        return compute.provider if compute.mode == "provider" else None

    # -- the orchestration loop ------------------------------------------------------------

    async def _traced(
        self,
        handle: FanoutHandle,
        request: FanoutRequest,
        plans: list[VariantPlan],
        parent: SessionRecord,
        judge: Judge | None,
    ) -> FanoutRecord:
        """:meth:`_run` in a ``cerver.fanout`` span, counted in the process's metrics."""
        attributes = {
            "cerver.fanout.id": handle.fanout_id,
            "gen_ai.conversation.id": parent.id,
            "cerver.fanout.variants": len(plans),
        }
        with tracing.span("cerver.fanout", attributes) as span:
            record = await self._run(handle, request, plans, parent, judge)
            span.set_attribute("cerver.fanout.status", record.status)
            if record.status != "completed":
                tracing.mark_error(span, record.status, record.error or "")
        metrics.fanout_finished(record.status, [(v.harness, v.status) for v in record.variants])
        return record

    async def _run(
        self,
        handle: FanoutHandle,
        request: FanoutRequest,
        plans: list[VariantPlan],
        parent: SessionRecord,
        judge: Judge | None,
    ) -> FanoutRecord:
        """The fan-out, in order:

        1. snapshot the parent (transcript, and files when a variant has compute);
        2. run every variant in its own child session, in parallel under the semaphore,
           each persisted as it finishes; results come back in request order;
        3. judge the completed variants (a judge failure is a verdict, not a crash);
        4. record the fan-out and verdict in the parent, keep the winner if asked, charge
           the judge's cost, and mark the fan-out completed (one transaction).
        """
        handle.started = True
        started = time.perf_counter()
        lease = asyncio.create_task(self._renew_lease(handle.fanout_id))
        try:
            if handle.cancel_reason is not None:  # stopped before its task began
                raise asyncio.CancelledError
            wants_files = any(p.compute is None or p.compute.mode != "none" for p in plans)
            snapshot = await self._branching.snapshot(parent, files=wants_files)
            handle.emit(
                "fanout.started",
                {
                    "fanout_id": handle.fanout_id,
                    "parent_session_id": parent.id,
                    "variants": [
                        {"variant_id": p.variant_id, "harness": p.harness, "model": p.model}
                        for p in plans
                    ],
                },
            )
            outcomes = await self._run_variants(handle, request, plans, snapshot)
            verdict, judge_ms = await self._judge(
                request, judge, outcomes, parent.id, parent.account_id
            )
            handle.emit("verdict", verdict_json(verdict) if verdict else None)
            await self._keeper.record(
                handle.fanout_id,
                parent.id,
                input=request.input,
                keep=request.keep,
                outcomes=outcomes,
                verdict=verdict,
                judge_ms=judge_ms,
                wall_ms=(time.perf_counter() - started) * 1000,
            )
        except asyncio.CancelledError:  # record it, whatever else is cancelled
            reason = handle.cancel_reason or "cancelled"
            why = (
                "The fan-out was cancelled before it finished."
                if reason == "cancelled"
                else "The fan-out was interrupted (the gateway stopped) before it finished."
            )
            try:
                await asyncio.shield(
                    self._store.fanouts.finish(
                        handle.fanout_id,
                        reason,
                        why,
                        wall_ms=(time.perf_counter() - started) * 1000,
                    )
                )
            except Exception:
                log.exception("could not record fan-out %s as %s", handle.fanout_id, reason)
            if handle.cancel_reason is None:
                raise
            task = asyncio.current_task()
            if task is not None:  # stopped on purpose: the record is the result
                task.uncancel()
        except Exception as exc:  # a bug or a store failure: the fan-out fails, the gateway lives
            log.exception("fan-out %s failed", handle.fanout_id)
            await self._store.fanouts.update(
                handle.fanout_id,
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                completed_at=utcnow(),
                wall_ms=(time.perf_counter() - started) * 1000,
            )
        finally:
            lease.cancel()
            handle._events.put_nowait(None)
        return await self._store.fanouts.get(handle.account_id, handle.fanout_id)

    async def _renew_lease(self, fanout_id: str) -> None:
        """Keep the fan-out's lease alive while this process runs it (see
        :meth:`FanoutStore.reclaim_expired`)."""
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await self._store.fanouts.renew(fanout_id, self._lease_seconds)
            except Exception:  # a transient store error: the next renewal may succeed
                log.exception("could not renew the lease of fan-out %s", fanout_id)

    async def _run_variants(
        self,
        handle: FanoutHandle,
        request: FanoutRequest,
        plans: list[VariantPlan],
        snapshot: Snapshot,
    ) -> list[VariantOutcome]:
        limit = asyncio.Semaphore(max(1, request.max_concurrency))
        outcomes = [VariantOutcome(plan) for plan in plans]

        async def one(outcome: VariantOutcome) -> None:
            async with limit:
                await self._variant(handle, request, snapshot, outcome)

        async with asyncio.TaskGroup() as group:
            for outcome in outcomes:
                group.create_task(one(outcome))
        return outcomes

    async def _variant(
        self, handle: FanoutHandle, request: FanoutRequest, snapshot: Snapshot, out: VariantOutcome
    ) -> None:
        """Run one variant in a ``cerver.fanout.variant`` span; never raises (except
        cancellation of the whole fan-out)."""
        attributes = {
            "cerver.fanout.id": handle.fanout_id,
            "cerver.variant.id": out.plan.variant_id,
            "gen_ai.agent.name": out.plan.harness,
            "gen_ai.request.model": out.plan.model,
        }
        with tracing.span("cerver.fanout.variant", attributes) as span:
            await self._variant_run(handle, request, snapshot, out)
            span.set_attribute("cerver.variant.status", out.status)
            if out.status != "completed":
                tracing.mark_error(span, out.status, out.error.message if out.error else "")

    async def _variant_run(
        self, handle: FanoutHandle, request: FanoutRequest, snapshot: Snapshot, out: VariantOutcome
    ) -> None:
        plan = out.plan
        started = time.perf_counter()
        started_at = utcnow()
        handle.emit(
            "variant.started",
            {"variant_id": plan.variant_id, "harness": plan.harness, "model": plan.model},
        )
        try:
            out.session = await self._branching.branch(
                handle.account_id,
                snapshot,
                harness=HarnessChoice(plan.harness, plan.model, plan.options),
                compute=plan.compute,
                kind="fanout",
                metadata={"fanout_id": handle.fanout_id, "variant_id": plan.variant_id},
            )
            await self._store.fanouts.update_variant(
                plan.variant_id, status="running", started_at=started_at, session_id=out.session.id
            )
            turn = await self._turns.start(
                handle.account_id,
                out.session.id,
                TurnRequest(
                    input=request.input,
                    system_prompt=request.system_prompt,
                    max_steps=request.max_steps,
                ),
            )
            out.run_id = turn.run_id
            await self._await_turn(handle, turn, out, request.variant_timeout_s)
        except Exception as exc:
            if not isinstance(exc, CerverError):
                log.exception("variant %s failed", plan.variant_id)
            out.status = "failed"
            out.error = Failure.from_exception(exc)
        if not out.latency_ms:
            out.latency_ms = (time.perf_counter() - started) * 1000
        try:
            await self._store.fanouts.update_variant(
                plan.variant_id,
                status=out.status,
                run_id=out.run_id,
                output=out.output or None,
                input_tokens=out.usage.input_tokens,
                output_tokens=out.usage.output_tokens,
                cost_usd=out.usage.cost_usd,
                latency_ms=out.latency_ms,
                error=out.error.to_json() if out.error else None,
                started_at=started_at,
                ended_at=utcnow(),
            )
        except Exception:  # the outcome still reaches the verdict and the parent's record
            log.exception("could not persist variant %s", plan.variant_id)
        handle.emit("variant.completed", out.to_json())

    @staticmethod
    async def _await_turn(
        handle: FanoutHandle, turn: TurnHandle, out: VariantOutcome, timeout_s: float
    ) -> None:
        variant_id = out.plan.variant_id
        try:
            async with asyncio.timeout(timeout_s):
                async for event in turn.events():
                    if event.event == "text_delta":
                        text = orjson.loads(event.data)["text"]
                        handle.emit("variant.delta", {"variant_id": variant_id, "text": text})
                result = await turn.result()
        except asyncio.CancelledError:
            # The fan-out is stopped: so is this variant's turn (it runs as a task of its own).
            turn.cancel(handle.cancel_reason or "cancelled")
            await asyncio.shield(turn.wait())
            raise
        except TimeoutError:
            turn.cancel()  # the turn records itself as cancelled and releases its lock
            await turn.wait()
            out.status = "timeout"
            out.error = Failure.from_error(
                VariantTimeout(
                    f"The variant did not finish within {timeout_s:g} s; it was cancelled.",
                    context={"variant_timeout_s": timeout_s},
                )
            )
            return
        out.status = result.status
        out.usage = result.usage
        out.latency_ms = result.latency_ms
        out.output = result.message.content if result.message else ""
        out.error = result.error
        if out.status == "completed" and result.message is None:
            out.status = "failed"
            out.error = Failure.from_error(NoOutput("The turn produced no assistant text."))

    async def _judge(
        self,
        request: FanoutRequest,
        judge: Judge | None,
        outcomes: list[VariantOutcome],
        parent_id: str,
        account_id: str,
    ) -> tuple[Verdict | None, float]:
        if judge is None:
            return None, 0.0
        with tracing.span(
            "cerver.judge", {"cerver.judge.name": judge.name, "gen_ai.request.model": judge.model}
        ) as span:
            verdict, judge_ms = await self._judge_outcomes(
                request, judge, outcomes, parent_id, account_id
            )
            span.set_attribute("cerver.judge.status", verdict.status)
            if verdict.winner_variant_id:
                span.set_attribute("cerver.judge.winner", verdict.winner_variant_id)
        return verdict, judge_ms

    async def _judge_outcomes(
        self,
        request: FanoutRequest,
        judge: Judge,
        outcomes: list[VariantOutcome],
        parent_id: str,
        account_id: str,
    ) -> tuple[Verdict, float]:
        done = [o for o in outcomes if o.status == "completed"]
        excluded = [o.plan.variant_id for o in outcomes if o.status != "completed"]
        started = time.perf_counter()
        try:
            ctx = JudgeContext(
                input=request.input,
                variants=[await self._variant_output(o) for o in done],
                call_model=HarnessModelCall(
                    self._harnesses,
                    self._sessions,
                    parent_id,
                    endpoints=await self._harnesses.endpoints_for(account_id),
                ),
            )
            if ctx.variants:
                verdict = await judge.judge(ctx)
            else:
                verdict = Verdict(
                    None,
                    [],
                    judge.name,
                    judge.model,
                    status="no_winner",
                    reason="No variant completed, so there was nothing to judge.",
                )
        except Exception as exc:
            verdict = Verdict(
                None,
                [],
                judge.name,
                judge.model,
                status="failed",
                reason=f"The judge failed: {exc}; nothing is kept.",
            )
        verdict = dataclasses.replace(verdict, excluded=excluded)
        return verdict, (time.perf_counter() - started) * 1000

    async def _variant_output(self, out: VariantOutcome) -> VariantOutput:
        sandbox = None
        if out.session is not None and out.session.sandbox_id:
            sandbox = await self._execs.sandbox(out.session)
        return VariantOutput(
            variant_id=out.plan.variant_id,
            harness=out.plan.harness,
            model=out.plan.model,
            status=out.status,
            output=out.output,
            usage=out.usage,
            latency_ms=out.latency_ms,
            sandbox=sandbox,
        )


def _judge_json(spec: JudgeSpec) -> dict[str, Any]:
    """The judge spec as the fan-out record keeps it."""
    return {"type": spec.type, "model": spec.model, "options": dict(spec.options)}
