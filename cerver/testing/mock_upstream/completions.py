"""The model endpoints: one request handler shared by the dialects.

Each request goes through the same steps:

1. Read the body and log the request (before any delay, so a test sees requests that time
   out too).
2. Parse it with the endpoint's dialect; a request the provider would reject gets a 400 in
   the provider's error shape.
3. Take the oldest scripted reply for the request's model, else the default reply.
4. Answer: the scripted HTTP error, or the reply rendered as JSON or SSE, paced as scripted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cerver.testing.mock_upstream import anthropic, gemini
from cerver.testing.mock_upstream.default import default_reply
from cerver.testing.mock_upstream.dialect import BadRequest, Dialect
from cerver.testing.mock_upstream.neutral import build_output, new_id, split_in_two
from cerver.testing.mock_upstream.pacing import PacedResponse
from cerver.testing.mock_upstream.script import Reply, UpstreamFailure
from cerver.testing.mock_upstream.state import MockState

__all__ = ["count_tokens_endpoint", "endpoint", "gemini_endpoint"]

Endpoint = Callable[[Request], Awaitable[Response]]
_SSE = "text/event-stream; charset=utf-8"
_STREAM_FAILURE = "[mock upstream] scripted stream failure"


def endpoint(dialect: Dialect, state: MockState) -> Endpoint:
    """The handler of ``dialect``'s completion route, reading and writing ``state``."""

    async def complete(request: Request) -> Response:
        body = await _read(request, dialect, state)
        headers = {dialect.request_id_header: new_id("req_mock_")}
        if not isinstance(body, dict):
            failure = BadRequest("The request body is not a valid JSON object.").failure
            return _error(dialect, failure, headers)
        try:
            conversation = dialect.parse(body, state)
        except BadRequest as exc:
            return _error(dialect, exc.failure, headers)
        reply = state.take(conversation.model) or default_reply(conversation)
        if reply.error is not None:
            return _error(dialect, reply.error, headers, reply)
        output = build_output(reply, conversation, dialect.call_id_prefix)
        dialect.commit(conversation, output, state)
        if conversation.stream:
            failure_chunk = None
            if reply.fail_after_chunks is not None and reply.fail_with == "error_event":
                failure = UpstreamFailure(message=_STREAM_FAILURE)
                sent = reply.fail_after_chunks
                failure_chunk = dialect.render_stream_error(conversation, failure, sent)
            return PacedResponse(
                dialect.render_events(conversation, output),
                headers={**headers, "cache-control": "no-cache"},
                media_type=_SSE,
                reply=reply,
                failure_chunk=failure_chunk,
            )
        payload = orjson.dumps(dialect.render_json(conversation, output))
        if not reply.paced:
            return Response(payload, headers=headers, media_type="application/json")
        chunks = split_in_two(payload) if reply.fail_after_chunks is not None else [payload]
        return PacedResponse(chunks, headers=headers, reply=reply)

    return complete


def count_tokens_endpoint(
    state: MockState,
    dialect: Dialect = anthropic.ANTHROPIC,
    count: Callable[[dict[str, Any]], dict[str, Any]] = anthropic.count_tokens,
) -> Endpoint:
    """A token-counting route (Anthropic's ``/v1/messages/count_tokens`` by default): logged,
    never consumes a scripted reply."""

    async def count_tokens(request: Request) -> Response:
        body = await _read(request, dialect, state)
        try:
            if not isinstance(body, dict):
                raise BadRequest("The request body is not a valid JSON object.")
            payload = orjson.dumps(count(body))
        except BadRequest as exc:
            return _error(dialect, exc.failure, {})
        return Response(payload, media_type="application/json")

    return count_tokens


def gemini_endpoint(state: MockState) -> Endpoint:
    """``POST /v1beta/models/<model>:<action>``: Gemini's actions share one route."""
    complete = endpoint(gemini.GEMINI, state)
    count = count_tokens_endpoint(state, gemini.GEMINI, gemini.count_tokens)

    async def route(request: Request) -> Response:
        action = gemini.split_target(request.path_params["target"])[1]
        if action in ("generateContent", "streamGenerateContent"):
            return await complete(request)
        if action == "countTokens":
            return await count(request)
        failure = UpstreamFailure(
            status=404, message=f"Method {action!r} is not served by the mock upstream."
        )
        return _error(gemini.GEMINI, failure, {})

    return route


async def _read(request: Request, dialect: Dialect, state: MockState) -> Any:
    """The JSON body (``None`` when it is not JSON), logged in the state's request log.

    The dialect's ``route_fields`` (from the URL) are merged over a JSON object body in what
    is returned, and read for the log's ``model`` and ``stream``; the log keeps the body as
    sent.
    """
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    fields = body if isinstance(body, dict) else {}
    extra = dialect.route_fields(request.url.path, request.url.query)
    fields = {**fields, **extra}
    model = fields.get("model")
    state.record(
        path=request.url.path,
        query=request.url.query,
        api=dialect.api,
        model=model if isinstance(model, str) else None,
        stream=fields.get("stream") is True,
        headers=request.headers.items(),
        body=body if body is not None else raw.decode(errors="replace"),
    )
    return fields if isinstance(body, dict) else body


def _error(
    dialect: Dialect,
    failure: UpstreamFailure,
    headers: dict[str, str],
    reply: Reply | None = None,
) -> PacedResponse:
    if failure.retry_after is not None:
        headers = {**headers, "retry-after": f"{failure.retry_after:g}"}
    body = orjson.dumps(dialect.render_error(failure))
    return PacedResponse([body], status_code=failure.status, headers=headers, reply=reply)
