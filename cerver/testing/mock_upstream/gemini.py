"""The Gemini API (``POST /v1beta/models/<model>:<action>``), as Gemini CLI and the
``google-genai`` SDK read it.

Actions: ``generateContent`` (one ``GenerateContentResponse`` as JSON),
``streamGenerateContent?alt=sse`` (``data:`` lines, each a ``GenerateContentResponse``
carrying the next parts; the last one adds ``finishReason`` and ``usageMetadata``) and
``countTokens`` (``{"totalTokens": n}``, the same estimate a completion reports; it never
consumes a scripted reply). The model and the action come from the URL, not the body;
:func:`route_fields` hands them to the shared endpoint. A stream without ``alt=sse`` (the
JSON-array form) is refused: no client of interest uses it.

Requests: ``contents`` of ``role`` ``user`` / ``model`` with ``parts``: ``text``,
``functionCall {name, args}`` and ``functionResponse {name, response}``; ``thought`` parts
are not conversation; ``systemInstruction`` is read but is not a turn; tools are
``tools[].functionDeclarations`` (``parameters`` or ``parametersJsonSchema``). The Gemini
API pairs a call and its response by name and order (``id`` is optional), so calls without an
``id`` get ``<name>#<n>`` ids here, and a ``functionResponse`` answers the oldest open call of
its name; unpaired calls, or a second response to one call, are refused with a 400, as the
real API does. Replies
carry no call ids (Gemini CLI makes its own). Errors use Google's shape,
``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from cerver.testing.mock_upstream.dialect import (
    BadRequest,
    Dialect,
    check_tool_pairs,
    encode_sse,
    require,
)
from cerver.testing.mock_upstream.neutral import (
    Conversation,
    Item,
    Output,
    Role,
    ToolSpec,
    text_chunks,
)
from cerver.testing.mock_upstream.script import UpstreamFailure
from cerver.testing.mock_upstream.state import MockState

__all__ = ["GEMINI", "count_tokens", "route_fields", "split_target"]

_COUNT_MISMATCH: Final = (
    "Please ensure that the number of function response parts is equal to the number of "
    "function call parts of the function call turn."
)
_STATUS: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def split_target(target: str) -> tuple[str, str]:
    """``"gemini-2.5-pro:generateContent"`` → ``("gemini-2.5-pro", "generateContent")``."""
    model, _, action = target.rpartition(":")
    return model, action


def route_fields(path: str, query: str) -> dict[str, Any]:
    """The request fields the URL carries: ``model``; ``stream`` and ``alt`` when streaming."""
    model, action = split_target(path.rsplit("/", 1)[-1])
    fields: dict[str, Any] = {"model": model}
    if action == "streamGenerateContent":
        fields["stream"] = True
        fields["alt"] = parse_qs(query).get("alt", [""])[-1]
    return fields


def parse(body: dict[str, Any], state: MockState) -> Conversation:
    """Read a ``generateContent`` request (``model`` and ``stream`` from :func:`route_fields`)."""
    if body.get("stream") and body.get("alt") != "sse":
        raise BadRequest("The mock upstream streams only with ?alt=sse.", param="alt")
    return check_tool_pairs(_conversation(body))


def count_tokens(body: dict[str, Any]) -> dict[str, Any]:
    """The ``countTokens`` answer for ``{contents}`` or ``{generateContentRequest}``."""
    inner = body.get("generateContentRequest")
    request = inner if isinstance(inner, dict) else body
    contents = request.get("contents") or []
    return {"totalTokens": max(1, len(orjson.dumps(contents)) // 4)}


def _conversation(body: dict[str, Any]) -> Conversation:
    model = require(body, "model", str)
    contents = require(body, "contents", list)
    items: list[Item] = []
    open_calls: defaultdict[str, deque[str]] = defaultdict(deque)
    answered: set[str] = set()
    calls_made = 0
    for turn, content in enumerate(contents):
        role = content.get("role", "user") if isinstance(content, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if role not in ("user", "model") or not isinstance(parts, list):
            raise BadRequest(
                f"* GenerateContentRequest.contents[{turn}]: a content needs role 'user' or "
                "'model' and a list of parts"
            )
        for part in parts:
            if not isinstance(part, dict) or part.get("thought"):
                continue
            if isinstance(call := part.get("functionCall"), dict):
                name = str(call.get("name", ""))
                calls_made += 1
                call_id = str(call.get("id") or f"{name}#{calls_made}")
                open_calls[name].append(call_id)
                items.append(Item("assistant", "tool_call", turn, call_id=call_id, name=name))
            elif isinstance(result := part.get("functionResponse"), dict):
                name = str(result.get("name", ""))
                waiting = open_calls[name]
                call_id = str(result.get("id") or (waiting[0] if waiting else f"{name}#?"))
                if call_id in answered:
                    raise BadRequest(_COUNT_MISMATCH)
                answered.add(call_id)
                if call_id in waiting:
                    waiting.remove(call_id)
                text = _response_text(result.get("response"))
                items.append(Item("tool", "tool_result", turn, text=text, call_id=call_id))
            elif isinstance(part.get("text"), str):
                speaker: Role = "assistant" if role == "model" else "user"
                items.append(Item(speaker, "text", turn, text=part["text"]))
    tools = [
        ToolSpec(decl["name"], decl.get("parameters") or decl.get("parametersJsonSchema") or {})
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        for decl in tool.get("functionDeclarations") or []
        if isinstance(decl, dict) and isinstance(decl.get("name"), str)
    ]
    stream = bool(body.get("stream"))
    return Conversation("gemini", model, stream, items, tools, len(contents), contents, body)


def _response_text(response: Any) -> str:
    """A ``functionResponse.response`` as text: its ``output`` (or ``result``) string, else JSON."""
    if isinstance(response, dict):
        for key in ("output", "result"):
            if isinstance(response.get(key), str):
                return str(response[key])
    return orjson.dumps(response).decode()


def _usage(output: Output) -> dict[str, int]:
    return {
        "promptTokenCount": output.input_tokens,
        "candidatesTokenCount": output.output_tokens,
        "totalTokenCount": output.total_tokens,
    }


def _chunk(
    conversation: Conversation,
    output: Output,
    parts: list[dict[str, Any]],
    *,
    last: bool,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    chunk: dict[str, Any] = {"candidates": [candidate]}
    if last:
        candidate["finishReason"] = "STOP"
        chunk["usageMetadata"] = _usage(output)
    chunk["modelVersion"] = output.model
    chunk["responseId"] = conversation.uid
    return chunk


def _call_parts(output: Output) -> list[dict[str, Any]]:
    return [{"functionCall": {"name": c.name, "args": c.arguments}} for c in output.tool_calls]


def render_json(conversation: Conversation, output: Output) -> dict[str, Any]:
    parts = [{"text": output.text}] if output.text or not output.tool_calls else []
    return _chunk(conversation, output, parts + _call_parts(output), last=True)


def render_events(conversation: Conversation, output: Output) -> list[bytes]:
    pieces: list[list[dict[str, Any]]] = [[{"text": t}] for t in text_chunks(output.text)]
    if output.tool_calls:
        pieces.append(_call_parts(output))
    if not pieces:
        pieces.append([{"text": ""}])
    return [
        encode_sse(_chunk(conversation, output, parts, last=index == len(pieces) - 1))
        for index, parts in enumerate(pieces)
    ]


def render_error(failure: UpstreamFailure) -> dict[str, Any]:
    """Google's error body: ``{"error": {"code", "message", "status"}}``.

    ``status`` is the failure's ``type`` when that is a Google status (``RESOURCE_EXHAUSTED``;
    upper case), else derived from the HTTP status (other dialects' types do not apply).
    """
    default = "INVALID_ARGUMENT" if failure.status < 500 else "INTERNAL"
    given = failure.type if failure.type and failure.type.isupper() else None
    status = given or _STATUS.get(failure.status, default)
    return {"error": {"code": failure.status, "message": failure.message, "status": status}}


def render_stream_error(conversation: Conversation, failure: UpstreamFailure, sent: int) -> bytes:
    """The error body as one more ``data:`` line (what the API sends when a stream fails)."""
    return encode_sse(render_error(failure))


GEMINI = Dialect(
    api="gemini",
    call_id_prefix="gemini_call_",
    parse=parse,
    render_json=render_json,
    render_events=render_events,
    render_error=render_error,
    render_stream_error=render_stream_error,
    request_id_header="x-goog-request-id",
    route_fields=route_fields,
)
