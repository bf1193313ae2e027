"""Scripted replies: what a test asks the mock upstream to answer next.

A :class:`Reply` describes one model response in provider-neutral terms: text, tool calls, or
an HTTP error, plus its timing and failure behaviour. The same reply renders as an Anthropic
message, an OpenAI response or a chat completion, depending on the endpoint that takes the
request. Scripted text is sent exactly as written (only the default replies carry the
``[mock upstream]`` prefix).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cerver.types import Usage

__all__ = ["Reply", "ToolCallSpec", "UpstreamFailure"]


class ToolCallSpec(BaseModel):
    """One tool call made by the mock model.

    Attributes:
        name: the tool's name, as declared in the request (``Bash``, ``exec_command``…).
        arguments: the tool input; sent as an object (Anthropic) or a JSON string (OpenAI).
        id: the provider's call id (``toolu_…`` / ``call_…``); generated when ``None``.
        namespace: the OpenAI Responses tool namespace the called tool belongs to (Codex
            offers MCP tools as namespace ``mcp__<server>``); other APIs have none.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None
    namespace: str | None = None


class UpstreamFailure(BaseModel):
    """An HTTP error answered instead of a completion, in the provider's own error shape.

    Attributes:
        status: the HTTP status (400-599).
        message: the error message.
        type: the provider's error type (Anthropic ``rate_limit_error``, OpenAI
            ``invalid_request_error``…); derived from ``status`` when ``None``.
        code: OpenAI's ``error.code``; derived from ``status`` when ``None``.
        param: OpenAI's ``error.param``.
        retry_after: seconds, sent as the ``retry-after`` header when set.
    """

    model_config = ConfigDict(extra="forbid")

    status: int = Field(default=500, ge=400, le=599)
    message: str = "[mock upstream] scripted failure"
    type: str | None = None
    code: str | None = None
    param: str | None = None
    retry_after: float | None = Field(default=None, ge=0)


class Reply(BaseModel):
    """One scripted answer. Replies are consumed first in, first out.

    Timing, in the order it happens: wait ``delay_ms`` → send the status and headers → hang
    ``stall_ms`` → send the body chunk by chunk, ``chunk_delay_ms`` apart. With
    ``stall_after_chunks=N`` the ``stall_ms`` hang comes after the first N chunks instead
    (a stream that goes silent mid-body). A chunk is one SSE
    event when streaming; a JSON body is one chunk, or two halves when ``fail_after_chunks``
    is set. After ``fail_after_chunks`` chunks the response fails: ``fail_with="disconnect"``
    drops the connection (the client sees an incomplete body); ``"error_event"`` sends the
    provider's in-stream error event and ends the stream cleanly (streaming only; a JSON body
    is dropped instead). A client that disconnects cancels every wait.

    Attributes:
        text: the assistant text (may be empty when there are tool calls).
        tool_calls: tool calls made after the text; the stop reason becomes ``tool_use`` /
            ``tool_calls``.
        error: answer with this HTTP error instead of a completion.
        usage: token counts to report instead of the estimate (``cost_usd`` is ignored).
        model: only requests whose ``model`` matches this glob pattern take this reply;
            others skip it and it stays queued.
    """

    model_config = ConfigDict(extra="forbid")

    text: str = ""
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    error: UpstreamFailure | None = None
    delay_ms: float = Field(default=0, ge=0)
    chunk_delay_ms: float = Field(default=0, ge=0)
    stall_ms: float | None = Field(default=None, ge=0)
    stall_after_chunks: int = Field(default=0, ge=0)
    fail_after_chunks: int | None = Field(default=None, ge=0)
    fail_with: Literal["disconnect", "error_event"] = "disconnect"
    usage: Usage | None = None
    model: str | None = None

    @property
    def paced(self) -> bool:
        """True when delivery needs waits or a failure (the fast path sends at once)."""
        return bool(
            self.delay_ms
            or self.chunk_delay_ms
            or self.stall_ms is not None
            or self.fail_after_chunks is not None
        )
