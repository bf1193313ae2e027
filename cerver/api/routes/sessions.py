"""Sessions: create, list, read, append input, switch harness, metrics, close, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from cerver.api.contract import PLACEMENT, SESSION_WRITE, errors
from cerver.api.deps import AccountDep, GatewayDep, SessionDep
from cerver.api.params import Timestamp
from cerver.api.schemas.sessions import (
    HarnessSwitch,
    InputCreate,
    MessagesPublic,
    SessionCreate,
    SessionPublic,
    SessionsPublic,
    harness_choice,
)
from cerver.errors import ComputeError, NotConfigured, NotFound, SessionBusy
from cerver.store import SessionFilters, SessionRecord
from cerver.store.schema import MAX_INTEGER
from cerver.types import Entry, SessionStatus

router = APIRouter(prefix="/v2/sessions", tags=["sessions"])


def session_public(record: SessionRecord, **extra: object) -> SessionPublic:
    return SessionPublic(
        session_id=record.id,
        message_count=record.next_seq - 1,
        **record.model_dump(
            include={
                "session_name",
                "user",
                "task",
                "workload",
                "status",
                "harness",
                "model",
                "harness_options",
                "compute_options",
                "system_prompt",
                "provider",
                "compute_id",
                "sandbox_id",
                "parent_session_id",
                "metadata",
                "requirements",
                "policy",
                "routing",
                "max_cost_usd",
                "fallback_models",
                "created_at",
                "updated_at",
                "closed_at",
            }
        ),
        **extra,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(NotFound, *PLACEMENT))
async def create_session(
    body: SessionCreate, gateway: GatewayDep, account: AccountDep
) -> SessionPublic:
    record = await gateway.sessions.create(
        account.id,
        harness=harness_choice(body.harness, body.model),
        compute=body.compute_choice(),
        user=body.user,
        session_name=body.session_name,
        task=body.task,
        workload=body.workload,
        repo=body.repo,
        system_prompt=body.system_prompt,
        requirements=body.requirements.model_dump(exclude_none=True) if body.requirements else None,
        policy=body.policy.model_dump(exclude_none=True) if body.policy else None,
        metadata=body.metadata,
        parent_session_id=body.parent_session_id,
        max_cost_usd=body.max_cost_usd,
        fallback_models=body.fallback_models,
    )
    return session_public(record, metrics=await gateway.metrics.for_session(record))


@router.get("")
async def list_sessions(
    gateway: GatewayDep,
    account: AccountDep,
    user: str | None = None,
    status: SessionStatus | None = None,
    harness: str | None = None,
    model: str | None = None,
    provider: str | None = None,
    parent_session_id: str | None = None,
    created_after: Timestamp | None = None,
    created_before: Timestamp | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> SessionsPublic:
    filters = SessionFilters(
        user=user,
        status=status,
        harness=harness,
        model=model,
        provider=provider,
        parent_session_id=parent_session_id,
        created_after=created_after,
        created_before=created_before,
        q=q,
    )
    records, next_cursor = await gateway.sessions.list(
        account.id, filters, limit=limit, cursor=cursor
    )
    return SessionsPublic(sessions=[session_public(r) for r in records], next_cursor=next_cursor)


@router.get("/{session_id}")
async def get_session(
    session: SessionDep,
    gateway: GatewayDep,
    transcript: bool = False,
    tail: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> SessionPublic:
    entries = None
    if transcript or tail is not None:
        entries = await gateway.sessions.transcript(session.id, tail=tail)
    return session_public(
        session, transcript=entries, metrics=await gateway.metrics.for_session(session)
    )


@router.get("/{session_id}/messages")
async def list_messages(
    session: SessionDep,
    gateway: GatewayDep,
    after_seq: Annotated[int, Query(ge=0, le=MAX_INTEGER)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MessagesPublic:
    entries = await gateway.sessions.transcript(session.id, after_seq=after_seq, limit=limit)
    next_after = entries[-1].seq if len(entries) == limit else None
    return MessagesPublic(session_id=session.id, messages=entries, next_after_seq=next_after)


@router.post(
    "/{session_id}/input", status_code=status.HTTP_201_CREATED, responses=errors(*SESSION_WRITE)
)
async def append_input(body: InputCreate, session: SessionDep, gateway: GatewayDep) -> Entry:
    """Append a turn without calling a model (caller-driven or transcript-only sessions)."""
    return await gateway.sessions.append_input(
        session,
        role=body.role,
        content=body.content,
        model=body.model,
        harness=body.harness,
        usage=body.usage,
        metadata=body.metadata,
        wait=body.multitask == "enqueue",
    )


@router.post("/{session_id}/harness", responses=errors(*SESSION_WRITE, NotConfigured))
# The seed's name for the same operation.
@router.post(
    "/{session_id}/switch-tool", deprecated=True, responses=errors(*SESSION_WRITE, NotConfigured)
)
async def switch_harness(
    body: HarnessSwitch, session: SessionDep, gateway: GatewayDep
) -> SessionPublic:
    """Switch the harness and/or model from the next turn on (records ``harness_switched``)."""
    choice = harness_choice(body.harness or body.tool, body.model)
    await gateway.sessions.switch_harness(session, choice)
    return session_public(await gateway.sessions.get(session.account_id, session.id))


@router.get("/{session_id}/metrics")
async def get_metrics(session: SessionDep, gateway: GatewayDep) -> dict[str, object]:
    return {"session_id": session.id, **await gateway.metrics.for_session(session)}


@router.post("/{session_id}/close", responses=errors(*SESSION_WRITE))
async def close_session(session: SessionDep, gateway: GatewayDep) -> SessionPublic:
    record = await gateway.sessions.close(session)
    return session_public(record, metrics=await gateway.metrics.for_session(record))


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(SessionBusy, ComputeError),
)
async def delete_session(session: SessionDep, gateway: GatewayDep) -> Response:
    await gateway.sessions.delete(session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
