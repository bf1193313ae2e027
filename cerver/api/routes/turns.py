"""Model turns: ``POST /v2/sessions/{id}/run-llm``, as JSON or as server-sent events."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header

from cerver.api.contract import TURN, errors
from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.sessions import harness_choice
from cerver.api.schemas.turns import TurnCreate, TurnPublic
from cerver.api.sse import wants_stream
from cerver.api.turn_answer import answer_turn
from cerver.services.turns import TurnRequest

router = APIRouter(prefix="/v2/sessions", tags=["turns"])


@router.post(
    "/{session_id}/run-llm",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON or SSE"},
        **errors(*TURN),
    },
)
async def run_llm(
    session_id: str,
    body: TurnCreate,
    gateway: GatewayDep,
    account: AccountDep,
    accept: Annotated[str | None, Header()] = None,
) -> TurnPublic:
    """Run one model turn.

    With ``tools``, a call of one of the app's tools stops the turn with status
    ``requires_action`` and the ``pending_tool_calls``; ``POST …/tool-results`` continues it.

    SSE events: ``turn.started``, ``text_delta``, ``tool_call``, ``tool_result``, ``message``,
    ``usage``, ``turn.completed`` (the final message) and ``error``. Streaming responses carry
    ``X-Cerver-Session-Id``, ``X-Cerver-Provider`` (the model provider), ``X-Cerver-Harness``,
    ``X-Cerver-Model`` and ``X-Cerver-Stream-Latency-Ms``. A failed turn answers with its
    failure's error body and status (502 for an upstream or harness failure, 504 for a time
    limit, …; see ``cerver/errors.py``), the same code, message and ``retryable`` as its SSE
    ``error`` event; the failure is also recorded in the transcript.
    """
    started = time.perf_counter()
    choice = None
    if body.harness is not None or body.model is not None:
        choice = harness_choice(body.harness, body.model)
    request = TurnRequest(
        input=body.input,
        harness=choice,
        system_prompt=body.system_prompt,
        max_steps=body.max_steps,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        wait=body.multitask == "enqueue",
        client_tools=tuple(tool.spec() for tool in body.tools),
    )
    handle = await gateway.turns.start(account.id, session_id, request)
    return await answer_turn(  # type: ignore[return-value]
        gateway, handle, stream=wants_stream(accept, body.stream), started=started
    )
