"""``POST /v2/sessions/{id}/tool-results``: the app answers its tools' calls; the turn goes on.

A ``run-llm`` turn offered the app's own ``tools`` and stopped at a call of one (status
``requires_action``). This route appends the app's results as ``tool`` entries and continues
the turn with the same harness and model, as JSON or as server-sent events like ``run-llm``.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header

from cerver.api.contract import TURN, errors
from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.turns import ToolResultsCreate, TurnPublic
from cerver.api.sse import wants_stream
from cerver.api.turn_answer import answer_turn
from cerver.errors import Conflict
from cerver.services.client_tools import offered_tools, pending_tool_calls, result_entries
from cerver.services.turns import TurnRequest

__all__ = ["router"]

router = APIRouter(prefix="/v2/sessions", tags=["turns"])

ORIGIN = "tool-results"


@router.post(
    "/{session_id}/tool-results",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"},
        **errors(*TURN),
    },
)
async def submit_tool_results(
    session_id: str,
    body: ToolResultsCreate,
    gateway: GatewayDep,
    account: AccountDep,
    accept: Annotated[str | None, Header()] = None,
) -> TurnPublic:
    """Send one result per pending call of the app's tools; the turn continues.

    A result for a call that is not pending is a 409 that changes nothing; pending calls left
    without a result are a 400. The app's tools stay offered (``tools`` replaces them).
    """
    started = time.perf_counter()
    session = await gateway.sessions.get(account.id, session_id)
    entries = await gateway.sessions.transcript(session.id)
    pending = pending_tool_calls(entries)
    if not pending:
        raise Conflict(
            f"Session {session_id!r} has no tool calls waiting for results: a turn run with "
            "`tools` must first stop at a call of one (status requires_action).",
            context={"session_id": session_id},
        )
    prelude = result_entries(pending, body.results, source=ORIGIN)
    if body.tools is not None:
        tools = tuple(tool.spec() for tool in body.tools)
    else:
        stopped_at = next(
            e.run_id for e in entries if e.tool_call and e.tool_call.id == pending[0].id
        )
        tools = offered_tools(entries, stopped_at or "")
    request = TurnRequest(
        input="",
        max_steps=body.max_steps,
        wait=body.multitask == "enqueue",
        prelude=tuple(prelude),
        client_tools=tools,
        expected_next_seq=(entries[-1].seq or 0) + 1,
        origin=ORIGIN,
    )
    handle = await gateway.turns.start(account.id, session_id, request)
    return await answer_turn(  # type: ignore[return-value]
        gateway, handle, stream=wants_stream(accept, body.stream), started=started
    )
