"""``GET /v2/sessions/{id}/events``: the live tail of a session, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import StreamingResponse

from cerver.api.contract import SSE
from cerver.api.deps import GatewayDep, SessionDep
from cerver.api.sse import encode_event, sse_response
from cerver.gateway import Gateway
from cerver.store.schema import MAX_INTEGER

router = APIRouter(prefix="/v2/sessions", tags=["events"])

_POLL_SECONDS = 1.0  # how often an idle tail re-reads the log (events from other processes)
_KEEPALIVE = b": keep-alive\n\n"
_PAGE = 1000


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
    last = after
    with gateway.hub.subscribe(session_id) as live:
        while True:
            # Replay from the log whatever is newer than what this client has, page by page.
            while page := await gateway.store.transcript.events(
                session_id, after_id=last, limit=_PAGE
            ):
                for event in page:
                    last = event.id
                    yield encode_event(event)
                if len(page) < _PAGE:
                    break
            if not follow:
                return
            try:
                event = await asyncio.wait_for(live.get(), _POLL_SECONDS)
            except TimeoutError:
                yield _KEEPALIVE
                continue
            # Live events may be ahead of the log (written in batches): deliver them in order,
            # and fall back to the log on any gap.
            while event is not None:
                if event.id == last + 1:
                    last = event.id
                    yield encode_event(event)
                elif event.id > last + 1:
                    break
                event = live.get_nowait() if not live.empty() else None
