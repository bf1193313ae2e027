"""Runs: a session's turns as a resource, and cancelling one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cerver.api.deps import GatewayDep, SessionDep
from cerver.api.schemas.runs import RunPublic, RunsPublic, run_public
from cerver.types import RunStatus

router = APIRouter(prefix="/v2/sessions", tags=["runs"])


@router.get("/{session_id}/runs")
async def list_runs(
    session: SessionDep,
    gateway: GatewayDep,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RunsPublic:
    """The session's runs, newest first (``?status=running`` finds the one to cancel)."""
    records = await gateway.runs.list(session.id, status=status, limit=limit)
    return RunsPublic(runs=[run_public(r) for r in records])


@router.get("/{session_id}/runs/{run_id}")
async def get_run(run_id: str, session: SessionDep, gateway: GatewayDep) -> RunPublic:
    """One run of the session."""
    return run_public(await gateway.runs.get(session.id, run_id))


@router.post("/{session_id}/runs/{run_id}/cancel")
async def cancel_run(run_id: str, session: SessionDep, gateway: GatewayDep) -> RunPublic:
    """Cancel a running turn, on whichever gateway replica runs it.

    The model call and any sandbox command (a CLI harness's whole process tree) are stopped;
    streamed text is kept as an entry with status ``cancelled``; tool calls left without a
    result get an error result; the run ends ``cancelled`` and the session is free for the
    next turn at once. Answers once the run has ended (within ``cancel_poll_seconds`` when
    another replica runs it; after 10 s it answers with the run still ``running`` and
    ``cancel_requested_at`` set). A run that already ended is returned unchanged.
    """
    return run_public(await gateway.runs.cancel(session.id, run_id))
