"""Moving a session's compute: ``/compute``, ``/pause``, ``/resume``."""

from __future__ import annotations

from fastapi import APIRouter

from cerver.api.contract import PLACEMENT, SESSION_WRITE, errors
from cerver.api.deps import GatewayDep, SessionDep
from cerver.api.schemas.computes import ComputeMove, MovePublic, Resume
from cerver.errors import InvalidRequest
from cerver.store import SessionRecord

router = APIRouter(prefix="/v2/sessions", tags=["compute"])


def _public(record: SessionRecord, switch: dict[str, object] | None = None) -> MovePublic:
    return MovePublic(
        session_id=record.id,
        provider=record.provider,
        compute_id=record.compute_id,
        sandbox_id=record.sandbox_id,
        status=record.status,
        routing=record.routing,
        switch=switch,
    )


@router.post("/{session_id}/compute", responses=errors(*SESSION_WRITE, *PLACEMENT))
async def move_compute(body: ComputeMove, session: SessionDep, gateway: GatewayDep) -> MovePublic:
    """Move the session (with its files) to ``provider``, ``compute_id``, or where ``policy``
    routes it; records a ``compute_switched`` entry."""
    if body.provider and body.compute_id:
        raise InvalidRequest('Send "provider" or "compute_id", not both.')
    if not (body.provider or body.compute_id or body.policy):
        raise InvalidRequest(
            'Say where to move: {"provider": "local"}, {"compute_id": "cmp_…"} or '
            '{"policy": {"mode": "fastest"}}.'
        )
    choice = body.choice()
    entry = await gateway.moves.move(
        session,
        choice,
        body.policy.model_dump(exclude_none=True) if body.policy else None,
        reason=body.reason,
    )
    record = await gateway.sessions.get(session.account_id, session.id)
    return _public(record, entry.model_dump(mode="json"))


@router.post("/{session_id}/pause", responses=errors(*SESSION_WRITE, *PLACEMENT))
async def pause(session: SessionDep, gateway: GatewayDep) -> MovePublic:
    """Snapshot the workspace, release the compute; the session keeps its transcript."""
    return _public(await gateway.moves.pause(session))


@router.post("/{session_id}/resume", responses=errors(*SESSION_WRITE, *PLACEMENT))
async def resume(
    session: SessionDep, gateway: GatewayDep, body: Resume | None = None
) -> MovePublic:
    """Restore a paused session's workspace on ``provider`` (default: where it was)."""
    body = body or Resume()
    if body.provider and body.compute_id:
        raise InvalidRequest('Send "provider" or "compute_id", not both.')
    return _public(await gateway.moves.resume(session, body.choice()))
