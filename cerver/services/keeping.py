"""Keeping a fan-out's outcome in its parent session.

The parent's transcript gets a ``fanout`` record (the variants and how each ended) and a
``verdict`` record (scores, reasons, the judge's audit); with ``keep: winner`` the input and
the winning output follow as the parent's next user and assistant turns, the assistant entry
carrying its provenance (fan-out, variant, harness, model, provider, judge). A person's pick
is recorded the same way, as ``picked_by: human``. The fan-out row is updated in the same
lock hold as these entries, so a pick never races the judge's record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cerver.errors import Conflict, InvalidRequest
from cerver.failures import Failure
from cerver.ids import new_id
from cerver.services.locks import SessionLocks
from cerver.services.sessions import ComputeChoice, SessionService
from cerver.store import FanoutRecord, SessionRecord, SessionWriter, Store
from cerver.store.fanouts import complete_fanout, record_pick
from cerver.types import Entry, Usage
from judges.base import Verdict

__all__ = ["FanoutKeeper", "VariantOutcome", "VariantPlan", "verdict_json"]


@dataclass(frozen=True, slots=True)
class VariantPlan:
    """A validated variant: canonical harness and model, its model provider, its compute."""

    variant_id: str
    harness: str
    model: str
    provider: str
    options: dict[str, Any] = field(default_factory=dict)
    compute: ComputeChoice | None = None


@dataclass(slots=True)
class VariantOutcome:
    """How one variant ended (``completed``, ``failed`` or ``timeout``) and what it produced."""

    plan: VariantPlan
    status: str = "failed"
    session: SessionRecord | None = None
    run_id: str | None = None
    output: str = ""
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    error: Failure | None = None

    def to_json(self, *, output: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "variant_id": self.plan.variant_id,
            "session_id": self.session.id if self.session else None,
            "harness": self.plan.harness,
            "model": self.plan.model,
            "provider": self.plan.provider,
            "status": self.status,
            "usage": self.usage.model_dump(),
            "latency_ms": round(self.latency_ms, 2),
            "error": self.error.to_json() if self.error else None,
        }
        if output:
            data["output"] = self.output
        return data


class FanoutKeeper:
    def __init__(self, store: Store, locks: SessionLocks, sessions: SessionService) -> None:
        self._store = store
        self._locks = locks
        self._sessions = sessions

    async def record(
        self,
        fanout_id: str,
        parent_id: str,
        *,
        input: str,
        keep: str,
        outcomes: list[VariantOutcome],
        verdict: Verdict | None,
        judge_ms: float,
        wall_ms: float,
    ) -> None:
        """Write the fan-out's records (and the kept winner) to the parent, charge the judge's
        cost to the parent's ledger, and mark the fan-out completed."""
        winner = next(
            (o for o in outcomes if verdict and o.plan.variant_id == verdict.winner_variant_id),
            None,
        )
        entries = [
            Entry(
                role="event",
                kind="fanout",
                content=f"fan-out {fanout_id}: {len(outcomes)} variants",
                metadata={
                    "fanout_id": fanout_id,
                    "input": input,
                    "variants": [o.to_json(output=False) for o in outcomes],
                },
            )
        ]
        if verdict is not None:
            entries.append(_verdict_entry(fanout_id, verdict, "judge"))
            if keep == "winner" and winner is not None:
                entries += _kept_entries(fanout_id, input, winner, verdict.judge)
        usage = verdict.usage if verdict else None
        async with self._locks.hold(parent_id, new_id("run")) as writer:
            stored = await writer.append_many(entries)
            kept = stored[-1] if stored[-1].role == "assistant" else None
            if kept is not None:
                writer.emit("message", kept.model_dump(mode="json"))
            if usage is not None and verdict is not None:
                writer.charge(kind="judge", usage=usage, run_id=None, model=verdict.judge_model)
            writer.defer(
                complete_fanout(
                    fanout_id,
                    verdict=verdict_json(verdict) if verdict else None,
                    winner_variant_id=verdict.winner_variant_id if verdict else None,
                    picked_by="judge" if verdict and verdict.winner_variant_id else None,
                    kept_message_seq=kept.seq if kept else None,
                    judge_input_tokens=usage.input_tokens if usage else None,
                    judge_output_tokens=usage.output_tokens if usage else None,
                    judge_cost_usd=usage.cost_usd if usage else None,
                    judge_latency_ms=judge_ms if verdict else None,
                    wall_ms=wall_ms,
                )
            )

    async def pick(
        self, account_id: str, fanout_id: str, variant_id: str, *, reason: str | None = None
    ) -> FanoutRecord:
        """Make ``variant_id`` the winner, chosen by a person (overruling the judge if any).

        Records a ``verdict`` entry with ``picked_by: human`` in the parent. If nothing was
        kept yet, the input and the picked output become the parent's next turns; if another
        variant was kept, the pick is appended as a new assistant entry whose metadata names
        the entry it supersedes (the transcript is append-only).

        Raises:
            NotFound: no such fan-out or variant.
            Conflict: the fan-out is still running.
            InvalidRequest: the variant did not complete (it has no output to keep).
            SessionClosed: the parent session is closed.
        """
        record = await self._store.fanouts.get(account_id, fanout_id)
        if record.status == "running":
            raise Conflict(
                f"Fan-out {fanout_id!r} is still running; pick once it has completed.",
                context={"fanout_id": fanout_id},
                retryable=True,
            )
        variant = record.variant(variant_id)
        if variant.status != "completed":
            raise InvalidRequest(
                f"Variant {variant_id!r} did not complete (status {variant.status!r}); pick "
                "one that did.",
                context={"fanout_id": fanout_id, "variant_id": variant_id},
            )
        parent = await self._sessions.get(account_id, record.parent_session_id)
        self._sessions.ensure_open(parent)
        async with self._locks.hold(parent.id, new_id("run")) as writer:
            record = await self._store.fanouts.get(account_id, fanout_id)  # under the lock
            await self._record_pick(writer, record, variant_id, reason)
        return await self._store.fanouts.get(account_id, fanout_id)

    @staticmethod
    async def _record_pick(
        writer: SessionWriter, record: FanoutRecord, variant_id: str, reason: str | None
    ) -> None:
        variant = record.variant(variant_id)
        human = Verdict(variant_id, [], "human", reason=reason)
        entries = [_verdict_entry(record.id, human, "human", overrules=record.winner_variant_id)]
        picked = VariantOutcome(
            VariantPlan(variant.id, variant.harness, variant.model, variant.provider or ""),
            status=variant.status,
            output=variant.output or "",
            usage=Usage(
                input_tokens=variant.input_tokens or 0,
                output_tokens=variant.output_tokens or 0,
                cost_usd=variant.cost_usd,
            ),
            latency_ms=variant.latency_ms or 0.0,
        )
        picked_session = variant.session_id
        kept_seq = record.kept_message_seq
        if kept_seq is None:
            entries += _kept_entries(record.id, record.input, picked, "human", picked_session)
        elif record.winner_variant_id != variant_id:
            turn = _kept_entries(record.id, record.input, picked, "human", picked_session)[1]
            turn.metadata["supersedes_seq"] = kept_seq
            entries.append(turn)
        stored = await writer.append_many(entries)
        if stored[-1].role == "assistant":
            kept_seq = stored[-1].seq
            writer.emit("message", stored[-1].model_dump(mode="json"))
        writer.defer(record_pick(record.id, variant_id, kept_seq))


def _kept_entries(
    fanout_id: str,
    input: str,
    winner: VariantOutcome,
    judge: str,
    session_id: str | None = None,
) -> list[Entry]:
    """The parent's next turn: the input, then the winner's output with its provenance."""
    plan = winner.plan
    provenance = {
        "fanout_id": fanout_id,
        "variant_id": plan.variant_id,
        "variant_session_id": session_id or (winner.session.id if winner.session else None),
        "harness": plan.harness,
        "model": plan.model,
        "provider": plan.provider,
        "judge": judge,
    }
    return [
        Entry(role="user", content=input, metadata={"fanout_id": fanout_id}),
        Entry(
            role="assistant",
            content=winner.output,
            harness=plan.harness,
            model=plan.model,
            provider=plan.provider,
            usage=winner.usage,
            latency_ms=winner.latency_ms,
            metadata={"provenance": provenance},
        ),
    ]


def _verdict_entry(
    fanout_id: str, verdict: Verdict, picked_by: str, *, overrules: str | None = None
) -> Entry:
    winner = verdict.winner_variant_id
    content = f"{picked_by} picked {winner}" if winner else f"{verdict.judge}: {verdict.status}"
    metadata: dict[str, Any] = {
        "fanout_id": fanout_id,
        "picked_by": picked_by,
        "verdict": verdict_json(verdict),
    }
    if overrules and overrules != winner:
        metadata["overrules"] = overrules
    return Entry(role="event", kind="verdict", content=content, metadata=metadata)


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """A verdict as stored and served (JSON-ready)."""
    data = dataclasses.asdict(verdict)
    data["usage"] = verdict.usage.model_dump() if verdict.usage else None
    return data
