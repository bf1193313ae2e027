"""An Anthropic Messages API response built from its raw stream, one JSON event at a time.

The SDK's ``MessageStream`` turns every event into typed models and rebuilds a typed snapshot
as it goes: most of a streamed turn's CPU in the gateway (about 60 % of it at 100 concurrent
streams). :class:`MessageBuilder` folds the decoded JSON into plain dicts instead and hands out
each text delta as it arrives; the finished message is the API's ``Message`` JSON, which the
harness maps to entries. It follows the SDK's accumulation (``anthropic.lib.streaming``):
the usage counts of ``message_delta`` are totals that overwrite, and a tool call's input is
its concatenated ``input_json_delta`` parts, read leniently if the stream stopped inside them.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["MessageBuilder", "StreamOrderError"]


class StreamOrderError(ValueError):
    """The stream broke the protocol's order (a block's delta before ``message_start``)."""


class MessageBuilder:
    """Accumulates one streamed message; :meth:`add` each event, then read :meth:`message`."""

    __slots__ = ("_message", "_streamed")

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        #: The parts streamed into a block's ``text``, ``thinking`` or (JSON) ``input``, by
        #: (block index, field): joined once, when the block stops, not copied at every delta.
        self._streamed: dict[tuple[int, str], list[str]] = {}

    def add(self, event: dict[str, Any]) -> str | None:
        """Fold in one decoded stream event; return the text it adds to the answer, if any.

        Raises:
            StreamOrderError: a content event came before ``message_start``.
        """
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event["delta"]
            index = event["index"]
            block = self._block(index)
            match delta.get("type"):
                case "text_delta":
                    text: str = delta["text"]
                    self._streamed.setdefault((index, "text"), []).append(text)
                    return text
                case "input_json_delta":
                    self._streamed.setdefault((index, "input"), []).append(delta["partial_json"])
                case "thinking_delta":
                    self._streamed.setdefault((index, "thinking"), []).append(delta["thinking"])
                case "signature_delta":
                    block["signature"] = delta["signature"]
                case "citations_delta":
                    block.setdefault("citations", []).append(delta["citation"])
        elif kind == "message_start":
            self._message = dict(event["message"])
            self._message["content"] = [dict(b) for b in self._message.get("content") or ()]
            self._message["usage"] = dict(self._message.get("usage") or {})
        elif kind == "content_block_start":
            self._snapshot()["content"].append(dict(event["content_block"]))
        elif kind == "content_block_stop":
            self._close(event["index"])
        elif kind == "message_delta":
            message = self._snapshot()
            message.update(event.get("delta") or {})
            usage = message["usage"]
            for name, count in (event.get("usage") or {}).items():
                if count is not None:  # omitted counts keep message_start's
                    usage[name] = count
        return None

    def message(self) -> dict[str, Any]:
        """The message as streamed so far, as the API's JSON (``Message``) would have it.

        Raises:
            StreamOrderError: the stream ended before ``message_start``.
        """
        for index in sorted({index for index, _ in self._streamed}):
            self._close(index)
        return self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        if self._message is None:
            raise StreamOrderError("the stream sent content before its message_start event")
        return self._message

    def _block(self, index: int) -> dict[str, Any]:
        return self._snapshot()["content"][index]  # type: ignore[no-any-return]

    def _close(self, index: int) -> None:
        """Join what streamed into block ``index``."""
        for field in ("text", "thinking", "input"):
            parts = self._streamed.pop((index, field), None)
            if parts is None:
                continue
            block = self._block(index)
            if field == "input":
                block["input"] = _tool_input("".join(parts))
            else:
                block[field] = block.get(field, "") + "".join(parts)


def _tool_input(raw: str) -> Any:
    """A tool call's streamed JSON arguments (``{}`` when none streamed)."""
    try:
        return orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        # Cut off inside the JSON (max_tokens, a dropped stream): keep what parses.
        from jiter import from_json  # the SDK's own dependency, as in its accumulator

        return from_json(raw.encode(), partial_mode="trailing-strings")
