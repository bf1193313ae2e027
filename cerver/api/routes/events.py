"""``GET /v2/sessions/{id}/events``: the live tail of a session, resumable with Last-Event-ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import StreamingResponse

from cerver.api.contract import SSE
from cerver.api.deps import GatewayDep, SessionDep
from cerver.api.sse import encode_event, sse_response
from cerver.gateway import Gateway
from cerver.services import event_log
from cerver.store.schema import MAX_INTEGER

router = APIRouter(prefix="/v2/sessions", tags=["events"])

_POLL_SECONDS = 1.0  # how often an idle tail re-reads the log (events from other processes)
_KEEPALIVE = b": keep-alive\n\n"


@router.get("/{session_id}/events", response_class=StreamingResponse, responses=SSE)
async def tail_events(
    session: SessionDep,
    gateway: GatewayDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_INTEGER)] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INTEGER, description="Same as Last-Event-ID.")
    ] = None,
    follow: bool = True,
) -> StreamingResponse:
    """Replay the session's events after ``Last-Event-ID`` (or ``?after=``), then follow live.

    With ``follow=false`` the stream ends after the replay.
    """
    start = last_event_id if last_event_id is not None else (after or 0)
    return sse_response(
        _tail(gateway, session.id, start, follow), {"X-Cerver-Session-Id": session.id}
    )


async def _tail(
    gateway: Gateway, session_id: str, after: int, follow: bool
) -> AsyncIterator[bytes]:
    async for event in event_log.tail(
        gateway.store,
        gateway.hub,
        session_id,
        after=after,
        follow=follow,
        idle_seconds=_POLL_SECONDS,
    ):
        yield _KEEPALIVE if event is event_log.IDLE else encode_event(event)
