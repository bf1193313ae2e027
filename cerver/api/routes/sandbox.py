"""The lower-level compute API under ``/sandbox`` (the seed's URLs), on the session services.

A sandbox here is a session used only for its compute: ``POST /sandbox`` creates one (routed
by ``requirements`` + ``policy``, or on an explicit ``provider`` / ``compute_id``), and its id
is the session id, so everything ``/v2/sessions/{id}`` offers (metrics, moves, the transcript
of moves) works on it too. ``DELETE /sandbox/{id}`` releases the compute and deletes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from cerver.api.contract import PLACEMENT, SANDBOX, SSE, errors
from cerver.api.deps import AccountDep, GatewayDep, SessionDep
from cerver.api.routes import execs
from cerver.api.schemas.execs import ExecResultPublic
from cerver.api.schemas.sessions import Policy, Requirements
from cerver.errors import ComputeError, InvalidRequest, SessionBusy
from cerver.services.sessions import ComputeChoice, HarnessChoice
from cerver.store import SessionFilters, SessionRecord

router = APIRouter(prefix="/sandbox", tags=["sandbox"])


class SandboxCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str | None = None
    compute_id: str | None = None
    requirements: Requirements | None = None
    policy: Policy | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SandboxPublic(BaseModel):
    id: str
    provider: str | None
    compute_id: str | None
    sandbox_id: str | None
    status: str
    routing: dict[str, Any] | None
    created_at: datetime


class SandboxesPublic(BaseModel):
    sandboxes: list[SandboxPublic]
    next_cursor: str | None


class InstallCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    packages: list[str] = Field(min_length=1, max_length=100)
    manager: str = "pip"


def _public(record: SessionRecord) -> SandboxPublic:
    return SandboxPublic(
        id=record.id, **record.model_dump(include=set(SandboxPublic.model_fields) - {"id"})
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(*PLACEMENT))
async def create_sandbox(
    body: SandboxCreate, gateway: GatewayDep, account: AccountDep
) -> SandboxPublic:
    """Provision compute; ``provider``/``compute_id`` pin it, else it is routed."""
    if body.provider or body.compute_id:
        choice = ComputeChoice("provider", body.provider, body.compute_id)
    else:
        choice = ComputeChoice("routed")
    record = await gateway.sessions.create(
        account.id,
        harness=HarnessChoice(),
        compute=choice,
        workload="sandbox",
        requirements=body.requirements.model_dump(exclude_none=True) if body.requirements else None,
        policy=body.policy.model_dump(exclude_none=True) if body.policy else None,
        metadata=body.metadata,
    )
    if record.sandbox_id is None:
        await gateway.sessions.delete(record)
        raise InvalidRequest(
            'This gateway has no default compute: pass "provider" (e.g. "local") or '
            '"requirements"/"policy" to route one.'
        )
    return _public(record)


@router.get("")
async def list_sandboxes(
    gateway: GatewayDep,
    account: AccountDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> SandboxesPublic:
    """Sandboxes created through ``POST /sandbox`` (newest first)."""
    records, next_cursor = await gateway.sessions.list(
        account.id, SessionFilters(q=None), limit=limit, cursor=cursor
    )
    return SandboxesPublic(
        sandboxes=[_public(r) for r in records if r.workload == "sandbox"],
        next_cursor=next_cursor,
    )


@router.get("/{session_id}")
async def get_sandbox(session: SessionDep) -> SandboxPublic:
    return _public(session)


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(SessionBusy, ComputeError),
)
async def delete_sandbox(session: SessionDep, gateway: GatewayDep) -> Response:
    await gateway.sessions.delete(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{session_id}/install", responses=errors(*SANDBOX))
async def install(
    body: InstallCreate, session: SessionDep, gateway: GatewayDep
) -> ExecResultPublic:
    """Install packages with ``pip`` or ``npm`` in the sandbox; a failed install is a result."""
    if body.manager not in ("pip", "npm"):
        raise InvalidRequest(f"Unknown package manager {body.manager!r}; use 'pip' or 'npm'.")
    sandbox = await gateway.execs.sandbox(session)
    result = await sandbox.install_package(body.packages, manager=body.manager)
    return ExecResultPublic(
        **result.model_dump(include={"stdout", "stderr", "exit_code", "timed_out", "limit"})
    )


_SANDBOX = errors(*SANDBOX)
router.add_api_route("/{session_id}/run", execs.run_code, methods=["POST"], responses=_SANDBOX)
router.add_api_route(
    "/{session_id}/run/stream",
    execs.run_code_stream,
    methods=["POST"],
    response_class=StreamingResponse,
    responses={**SSE, **_SANDBOX},
)
router.add_api_route("/{session_id}/files", execs.write_file, methods=["PUT"], responses=_SANDBOX)
router.add_api_route(
    "/{session_id}/files", execs.write_file, methods=["POST"], deprecated=True, responses=_SANDBOX
)
router.add_api_route(
    "/{session_id}/files", execs.read_or_list_files, methods=["GET"], responses=_SANDBOX
)
