"""The neutral view shared by the dialects.

Each dialect parses its wire format into a :class:`Conversation` (what the default behaviour
and the request checks read) and renders an :class:`Output` (the resolved reply: text, tool
calls with ids, token counts) back into its wire format. Nothing here knows a provider.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, AnyStr, Literal

import orjson

from cerver.testing.mock_upstream.script import Reply

__all__ = [
    "Api",
    "Conversation",
    "Item",
    "Output",
    "Role",
    "ToolCall",
    "ToolSpec",
    "as_text",
    "build_output",
    "new_id",
    "split_in_two",
    "text_chunks",
]

Api = Literal["anthropic", "responses", "chat", "gemini"]
Role = Literal["user", "assistant", "tool"]

# A text that is one XML-like element from end to end (Claude Code's <system-reminder>,
# Codex's <environment_context>) is context a harness injected, not something a person typed.
_INJECTED = re.compile(r"\s*<([A-Za-z][\w-]*)(?:\s[^>]*)?>.*</\1>\s*", re.DOTALL)
_WORD = re.compile(r"\S+\s*")


@dataclass(frozen=True, slots=True)
class Item:
    """One piece of conversation: a text, a tool call or a tool result.

    ``turn`` is the index of the wire item (message or input item) it came from, so that
    the blocks of one Anthropic message share a turn.
    """

    role: Role
    kind: Literal["text", "tool_call", "tool_result"]
    turn: int
    text: str = ""
    call_id: str = ""
    name: str = ""

    @property
    def injected(self) -> bool:
        return self.kind == "text" and _INJECTED.fullmatch(self.text) is not None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the request declares: its name and JSON schema (``{}`` when it has none)."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Conversation:
    """A parsed model request.

    Attributes:
        api: the dialect that parsed it.
        model: the requested model.
        stream: whether the client asked for SSE.
        items: the conversation, oldest first.
        tools: the declared tools.
        wire_count: user, assistant and tool items in the provider's wire format.
        wire_items: the conversation in wire format (after expanding references such as
            ``previous_response_id``); the input-token estimate counts its characters.
        body: the request body as sent; dialects read their own options from it.
        uid: a random hex id from which the dialect derives its response ids.
    """

    api: Api
    model: str
    stream: bool
    items: list[Item]
    tools: list[ToolSpec]
    wire_count: int
    wire_items: list[Any]
    body: dict[str, Any]
    uid: str = field(default_factory=lambda: secrets.token_hex(12))

    def unanswered_calls(self) -> list[str]:
        """Ids of tool calls that no tool result answers (providers reject these)."""
        answered = {i.call_id for i in self.items if i.kind == "tool_result"}
        calls = [i.call_id for i in self.items if i.kind == "tool_call"]
        return [call_id for call_id in calls if call_id not in answered]

    def orphan_results(self) -> list[str]:
        """Ids of tool results with no earlier tool call of the same id."""
        seen: set[str] = set()
        orphans = []
        for item in self.items:
            if item.kind == "tool_call":
                seen.add(item.call_id)
            elif item.kind == "tool_result" and item.call_id not in seen:
                orphans.append(item.call_id)
        return orphans


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    namespace: str | None = None

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()


@dataclass(frozen=True, slots=True)
class Output:
    """A reply resolved for one request: ids assigned, token counts settled."""

    model: str
    text: str
    tool_calls: tuple[ToolCall, ...]
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def build_output(reply: Reply, conversation: Conversation, call_id_prefix: str) -> Output:
    """Resolve ``reply`` for ``conversation``: call ids and token counts.

    Tokens are estimated as characters // 4 (at least 1): the wire conversation for input,
    the text plus the JSON arguments for output. ``reply.usage`` overrides both.
    """
    calls = tuple(
        ToolCall(spec.id or new_id(call_id_prefix), spec.name, spec.arguments, spec.namespace)
        for spec in reply.tool_calls
    )
    if reply.usage is not None:
        input_tokens, output_tokens = reply.usage.input_tokens, reply.usage.output_tokens
    else:
        input_tokens = max(1, len(orjson.dumps(conversation.wire_items)) // 4)
        output_chars = len(reply.text) + sum(len(c.arguments_json) for c in calls)
        output_tokens = max(1, output_chars // 4)
    return Output(conversation.model, reply.text, calls, input_tokens, output_tokens)


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def as_text(value: Any) -> str:
    """The text of a content value: a string, or a list of parts carrying ``text``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = [p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(texts)
    return ""


def text_chunks(text: str) -> list[str]:
    """Split ``text`` into word-sized stream deltas that join back to exactly ``text``."""
    chunks = _WORD.findall(text)
    if not chunks:
        return [text] if text else []
    lead = text[: len(text) - len(text.lstrip())]
    chunks[0] = lead + chunks[0]
    return chunks


def split_in_two(text: AnyStr) -> list[AnyStr]:
    """Two non-empty halves of ``text`` (one piece when it is too short to split)."""
    middle = len(text) // 2
    return [text[:middle], text[middle:]] if middle else [text]
