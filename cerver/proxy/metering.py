"""Token counts from provider responses as they stream through the proxy (pure, no I/O).

:class:`UsageMeter` is fed the response body in whatever chunks the network delivers and
reads usage from whichever wire format it sees: Anthropic Messages (``message_start`` and
``message_delta`` events, or the JSON body), OpenAI Responses (``response.completed`` or the
JSON body), Chat Completions (a chunk or body with ``usage``) and Gemini (a chunk or body
with ``usageMetadata``). It never holds more than
one incomplete SSE line.
"""

from __future__ import annotations

from typing import Any

import orjson

from cerver.types import Usage

__all__ = ["UsageMeter", "usage_from_payload"]


class UsageMeter:
    """Accumulates the model and token counts of one proxied response."""

    def __init__(self, *, streaming: bool) -> None:
        self.streaming = streaming
        self.model: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.seen = False
        self._pending = b""
        self._body: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the body."""
        if not self.streaming:
            self._body.append(chunk)
            return
        data = self._pending + chunk
        *lines, self._pending = data.split(b"\n")
        for line in lines:
            self._line(line.rstrip(b"\r"))

    def result(self) -> Usage | None:
        """The usage read so far (call after the body ends), or ``None`` if none was seen."""
        if self.streaming:
            if self._pending:
                self._line(self._pending)
                self._pending = b""
        elif self._body:
            self._payload(b"".join(self._body))
            self._body = []
        if not self.seen:
            return None
        return Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)

    def _line(self, line: bytes) -> None:
        if line.startswith(b"data:"):
            self._payload(line[5:].strip())

    def _payload(self, raw: bytes) -> None:
        if not raw or raw == b"[DONE]":
            return
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            self._apply(payload)

    def _apply(self, payload: dict[str, Any]) -> None:
        found = usage_from_payload(payload)
        if found is None:
            return
        model, input_tokens, output_tokens = found
        self.seen = True
        self.model = model or self.model
        # Anthropic streams input in message_start and output in message_delta: keep maxima.
        self.input_tokens = max(self.input_tokens, input_tokens)
        self.output_tokens = max(self.output_tokens, output_tokens)


def usage_from_payload(payload: dict[str, Any]) -> tuple[str | None, int, int] | None:
    """``(model, input_tokens, output_tokens)`` from one JSON body or SSE event, if any.

    Anthropic cache writes and reads count as input tokens, as the SDK harnesses count them.
    Gemini's thinking tokens (``thoughtsTokenCount``) count as output, as Google bills them.
    """
    if isinstance(metadata := payload.get("usageMetadata"), dict):
        model = payload.get("modelVersion")
        output_tokens = _int(metadata, "candidatesTokenCount") + _int(
            metadata, "thoughtsTokenCount"
        )
        model = model if isinstance(model, str) else None
        return model, _int(metadata, "promptTokenCount"), output_tokens
    holder: dict[str, Any] = payload
    for key in ("message", "response"):  # message_start, response.completed
        inner = payload.get(key)
        if isinstance(inner, dict):
            holder = inner
    usage = holder.get("usage") if isinstance(holder.get("usage"), dict) else payload.get("usage")
    if not isinstance(usage, dict):
        return None
    model = holder.get("model") if isinstance(holder.get("model"), str) else None
    input_tokens = _int(usage, "input_tokens", "prompt_tokens")
    input_tokens += _int(usage, "cache_creation_input_tokens") + _int(
        usage, "cache_read_input_tokens"
    )
    return model, input_tokens, _int(usage, "output_tokens", "completion_tokens")


def _int(usage: dict[str, Any], *keys: str) -> int:
    for key in keys:
        value = usage.get(key)
        if isinstance(value, int):
            return value
    return 0
