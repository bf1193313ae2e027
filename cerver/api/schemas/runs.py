"""Bodies of the run routes: ``GET /v2/sessions/{id}/runs``, ``…/runs/{run_id}``, ``…/cancel``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cerver.store import RunRecord
from cerver.types import RunStatus

__all__ = ["RunPublic", "RunsPublic", "run_public"]


class RunPublic(BaseModel):
    """One turn of a session, as recorded: who ran it, how it ended, and why."""

    run_id: str
    session_id: str
    kind: str = Field(description="`turn` (a model turn).")
    status: RunStatus = Field(
        description="`running`, then `completed`, `failed`, `cancelled` (someone asked) or "
        "`interrupted` (the gateway process stopped: a shutdown, or a crash noticed when its "
        "lease ran out)."
    )
    harness: str | None
    model: str | None
    provider: str | None
    answered_model: str | None = Field(
        default=None, description="The model that answered (a fallback when `model` was down)."
    )
    error: str | None = Field(description="Why the run did not complete, if it did not.")
    latency_ms: float | None
    started_at: datetime
    ended_at: datetime | None
    lease_expires_at: datetime | None = Field(
        description="While running: when the run counts as dead unless its process renews it."
    )
    cancel_requested_at: datetime | None = Field(
        description="When a cancel was asked for (a run still `running` with this set is "
        "being stopped by the replica running it)."
    )


class RunsPublic(BaseModel):
    runs: list[RunPublic]


def run_public(record: RunRecord) -> RunPublic:
    return RunPublic(
        run_id=record.id,
        session_id=record.session_id,
        kind=record.kind,
        status=record.status,
        harness=record.harness,
        model=record.model,
        provider=record.provider,
        answered_model=record.answered_model,
        error=record.error,
        latency_ms=record.latency_ms,
        started_at=record.started_at,
        ended_at=record.ended_at,
        lease_expires_at=record.lease_expires_at,
        cancel_requested_at=record.cancel_requested_at,
    )
