"""Fan-outs: run variants of one input in parallel, judge them, keep the winner."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, status

from cerver.api.contract import FANOUT, SESSION_WRITE, errors
from cerver.api.deps import AccountDep, GatewayDep, SessionDep
from cerver.api.schemas.fanouts import (
    FanoutCreate,
    FanoutPublic,
    FanoutSessionCreate,
    PickCreate,
    fanout_public,
)
from cerver.api.sse import sse_response, wants_stream
from cerver.gateway import Gateway
from cerver.services.fanout import FanoutHandle

router = APIRouter(tags=["fanouts"])

_STREAM: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"},
    **errors(*FANOUT),
}


@router.post("/v2/sessions/{session_id}/fanout", responses=_STREAM)
async def fanout_session(
    session: SessionDep,
    body: FanoutCreate,
    gateway: GatewayDep,
    account: AccountDep,
    accept: Annotated[str | None, Header()] = None,
) -> FanoutPublic:
    """Run every variant in its own child session of this session, judge them, and (with
    ``keep: winner``) append the winner as this session's next turn.

    SSE events: ``fanout.started``, ``variant.started``, ``variant.delta``,
    ``variant.completed`` (per variant, as each finishes), ``verdict``, ``fanout.completed``
    (the whole fan-out, as the JSON answer). They carry no ``id:``: they are not part of the
    session's event log (``GET /v2/sessions/{id}/events``, whose ids they would collide with),
    so a dropped stream is not resumed; read the fan-out's progress back with
    ``GET /v2/fanouts/{id}`` (``X-Cerver-Fanout-Id``).
    """
    started = time.perf_counter()
    handle = await gateway.fanouts.start(account.id, body.request(), parent_session_id=session.id)
    return await _answer(gateway, handle, wants_stream(accept, body.stream), started)


@router.post("/v2/fanouts", responses=_STREAM, status_code=status.HTTP_201_CREATED)
async def fanout_new_session(
    body: FanoutSessionCreate,
    gateway: GatewayDep,
    account: AccountDep,
    accept: Annotated[str | None, Header()] = None,
) -> FanoutPublic:
    """Like ``POST /v2/sessions/{id}/fanout``, on a new parent session."""
    started = time.perf_counter()
    handle = await gateway.fanouts.start(account.id, body.request(), new_parent=body.parent())
    return await _answer(gateway, handle, wants_stream(accept, body.stream), started)


@router.get("/v2/fanouts/{fanout_id}")
async def get_fanout(fanout_id: str, gateway: GatewayDep, account: AccountDep) -> FanoutPublic:
    """The fan-out as it is now: variants show ``pending``/``running`` until they finish."""
    return fanout_public(await gateway.fanouts.get(account.id, fanout_id))


@router.post("/v2/fanouts/{fanout_id}/cancel")
async def cancel_fanout(fanout_id: str, gateway: GatewayDep, account: AccountDep) -> FanoutPublic:
    """Cancel a running fan-out and its variants' turns (on whichever replica runs it).

    The fan-out and its unfinished variants end ``cancelled``; nothing is judged or kept.
    Answers once it ended when this replica runs it, at once otherwise (read it back with
    ``GET /v2/fanouts/{id}``). A fan-out that already ended is returned unchanged.
    """
    return fanout_public(await gateway.fanouts.cancel(account.id, fanout_id))


@router.post("/v2/fanouts/{fanout_id}/pick", responses=errors(*SESSION_WRITE))
async def pick_winner(
    fanout_id: str, body: PickCreate, gateway: GatewayDep, account: AccountDep
) -> FanoutPublic:
    """A person picks the winner (or overrules the judge); recorded as ``picked_by: human``."""
    record = await gateway.fanouts.pick(account.id, fanout_id, body.variant_id, reason=body.reason)
    return fanout_public(record)


async def _answer(
    gateway: Gateway, handle: FanoutHandle, stream: bool, started: float
) -> FanoutPublic:
    if stream:
        headers = {
            "X-Cerver-Session-Id": handle.parent_session_id,
            "X-Cerver-Fanout-Id": handle.fanout_id,
            "X-Cerver-Stream-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.2f}",
        }
        return sse_response(_sse(handle), headers)  # type: ignore[return-value]
    return fanout_public(await handle.result())


async def _sse(handle: FanoutHandle) -> AsyncIterator[bytes]:
    async for event in handle.events():
        yield _encode(event.event, event.data)
    record = fanout_public(await handle.result())
    yield _encode("fanout.completed", orjson.dumps(record.model_dump(mode="json")).decode())


def _encode(event: str, data: str) -> bytes:
    """An SSE event without ``id:``: a fan-out's events are not in the session's log, so an
    id would look like (and, as ``Last-Event-ID``, be mistaken for) a session event id."""
    return f"event: {event}\ndata: {data}\n\n".encode()
