"""Child sessions: ``POST /v2/sessions/{id}/spawn`` and ``/fork``."""

from __future__ import annotations

from fastapi import APIRouter, status

from cerver.api.contract import PLACEMENT, SESSION_WRITE, errors
from cerver.api.deps import AccountDep, GatewayDep, SessionDep
from cerver.api.routes.sessions import session_public
from cerver.api.schemas.fanouts import ForkCreate, SpawnCreate, compute_choice
from cerver.api.schemas.sessions import SessionPublic, harness_choice

router = APIRouter(prefix="/v2/sessions", tags=["sessions"])


@router.post(
    "/{session_id}/spawn",
    status_code=status.HTTP_201_CREATED,
    responses=errors(*SESSION_WRITE, *PLACEMENT),
)
async def spawn_session(
    body: SpawnCreate, session: SessionDep, gateway: GatewayDep, account: AccountDep
) -> SessionPublic:
    """Start a child session (same user, ``parent_session_id`` set) that inherits the
    transcript and the workspace files, on its own compute (the parent's provider unless
    ``compute`` says otherwise; ``null`` for none)."""
    harness = None
    if body.harness is not None or body.model is not None:
        harness = harness_choice(body.harness, body.model)
    child = await gateway.branching.spawn(
        account.id, session, harness=harness, compute=compute_choice(body, body.compute)
    )
    return session_public(child, metrics=await gateway.metrics.for_session(child))


@router.post(
    "/{session_id}/fork",
    status_code=status.HTTP_201_CREATED,
    responses=errors(*SESSION_WRITE, *PLACEMENT),
)
async def fork_session(
    body: ForkCreate, session: SessionDep, gateway: GatewayDep, account: AccountDep
) -> SessionPublic:
    """Branch the session at ``at_seq`` (default: its last entry) into a child session with
    the same harness, model and compute provider."""
    child = await gateway.branching.fork(account.id, session, at_seq=body.at_seq)
    return session_public(child, metrics=await gateway.metrics.for_session(child))
