"""What a provider's wire format must provide: one :class:`Dialect` per API.

A dialect turns a request body into a :class:`~cerver.testing.mock_upstream.neutral.Conversation`
and an :class:`~cerver.testing.mock_upstream.neutral.Output` into the provider's JSON body, its
SSE events (pre-encoded, one ``bytes`` per event) and its error shapes. Dialects are pure:
only ``parse`` may read, and ``commit`` write, the :class:`MockState`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cerver.testing.mock_upstream.neutral import Api, Conversation, Output
from cerver.testing.mock_upstream.script import UpstreamFailure
from cerver.testing.mock_upstream.state import MockState

__all__ = ["BadRequest", "Dialect", "check_tool_pairs", "encode_sse", "require"]


class BadRequest(Exception):
    """A request the real provider would reject; answered in the provider's error shape."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.failure = UpstreamFailure(
            status=400, message=message, type="invalid_request_error", param=param, code=code
        )


def _no_commit(conversation: Conversation, output: Output, state: MockState) -> None:
    return None


def _no_route_fields(path: str, query: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Dialect:
    """The functions that speak one provider API.

    Attributes:
        api: the name recorded in the request log.
        call_id_prefix: prefix of generated tool call ids.
        parse: request body → conversation; raises :class:`BadRequest`.
        render_json: the non-streaming response body.
        render_events: the SSE events of a streaming response, in order.
        render_error: the error body of an HTTP error.
        render_stream_error: the in-stream error event of a stream failing mid-way, given
            the number of events already sent.
        request_id_header: the response header that carries a request id.
        commit: record what later requests may refer to (stored responses).
        route_fields: request fields the URL carries (Gemini's model and action), given the
            path and the query; merged over the body before ``parse`` (not into the log).
    """

    api: Api
    call_id_prefix: str
    parse: Callable[[dict[str, Any], MockState], Conversation]
    render_json: Callable[[Conversation, Output], dict[str, Any]]
    render_events: Callable[[Conversation, Output], list[bytes]]
    render_error: Callable[[UpstreamFailure], dict[str, Any]]
    render_stream_error: Callable[[Conversation, UpstreamFailure, int], bytes]
    request_id_header: str
    commit: Callable[[Conversation, Output, MockState], None] = _no_commit
    route_fields: Callable[[str, str], dict[str, Any]] = _no_route_fields


def encode_sse(data: Any, event: str | None = None) -> bytes:
    """One SSE event: an optional ``event:`` line, one ``data:`` line, a blank line."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


def require(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """``body[name]`` if present with the right type, else :class:`BadRequest`."""
    value = body.get(name)
    if not isinstance(value, kind):
        problem = "is required" if value is None else "has the wrong type"
        raise BadRequest(f"{name}: Field {problem}", param=name)
    return value


def check_tool_pairs(conversation: Conversation) -> Conversation:
    """Reject a conversation whose tool calls and tool results do not pair up."""
    if unanswered := conversation.unanswered_calls():
        raise BadRequest(
            "Every tool call needs a tool result after it; no result for: " + ", ".join(unanswered)
        )
    if orphans := conversation.orphan_results():
        raise BadRequest(
            "Every tool result must answer an earlier tool call; unknown ids: " + ", ".join(orphans)
        )
    return conversation
