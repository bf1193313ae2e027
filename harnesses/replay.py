"""Replaying the provider-neutral transcript to a model provider's wire format.

A session's transcript may hold turns written by any harness and provider. Before each model
call an SDK harness converts it, oldest first, into the request its provider expects. Both
conversions are pure functions and share one normalisation pass that enforces what every
provider requires of a conversation:

1. ``event`` entries are skipped; ``system`` entries are collected into the system prompt.
2. Every tool call gets exactly one result, placed right after the assistant items that made
   the call. A call without result gets a synthesised error result (the turn that made it was
   interrupted); a result without a matching earlier call is dropped, since the model could
   not relate it to anything.
3. Tool call ids and names are made safe for every provider (``[A-Za-z0-9_-]``, names at most
   64 characters) and unique within the conversation (ids a provider reused across turns get
   a suffix).
4. Reasoning is provider-specific: it is replayed only to the provider that produced it, in
   that provider's own shape (an Anthropic ``thinking`` block with its signature, an OpenAI
   ``reasoning`` item with its encrypted content), and dropped otherwise, never leaked as text.
   Reasoning that no assistant text or tool call follows in its run is dropped for everyone
   (an OpenAI reasoning item needs its following item; Anthropic wants more than thinking).
5. With ``tools_as_text`` (a request that offers no tools, which some providers refuse to
   combine with tool items), tool calls and results are rendered as plain text instead.

Then :func:`to_anthropic_messages` builds Messages API ``messages`` (alternating roles, user
first) and :func:`to_responses_input` builds Responses API ``input`` items.

Both passes work incrementally (:class:`Normalisation` takes entries in order, a
:class:`Renderer` takes items in order, and both can be forked), so that
:class:`~harnesses.replay_cache.ReplayCache` can resume a conversation's replay where the last
model call left it instead of converting the whole transcript again.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

import orjson

from cerver.types import Entry, ReasoningPart, TextPart, ToolCallPart, ToolResultPart
from harnesses.tools import INVALID_JSON_KEY

__all__ = [
    "LEADING_USER_TEXT",
    "MISSING_RESULT",
    "REASONING_ITEM_ID_KEY",
    "AnthropicMessages",
    "EncodedHead",
    "Normalisation",
    "Renderer",
    "Replay",
    "ResponsesInput",
    "pair_results",
    "to_anthropic_messages",
    "to_responses_input",
]

MISSING_RESULT = "tool result missing: the turn was interrupted"
"""Output of the error result synthesised for a tool call that never got one."""

REASONING_ITEM_ID_KEY = "item_id"
"""``Entry.metadata`` key holding the provider's id for a reasoning item (OpenAI ``rs_…``)."""

LEADING_USER_TEXT = "(The conversation so far follows.)"
"""Sent as the first user message when a replayed conversation starts with the assistant."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64


def _json_list_items(messages: Sequence[dict[str, Any]]) -> bytes:
    """``messages`` as the items of a JSON array: each encoded, comma-separated."""
    return b",".join(map(orjson.dumps, messages))


@dataclass(frozen=True, slots=True)
class EncodedHead:
    """The JSON of a message list's first ``count`` messages, comma-separated (no brackets).

    Messages a renderer has closed never change again, so their JSON, once made, holds for
    every later replay of the conversation: a request on a long one encodes what is new and
    copies the rest (at 20,000 entries, 9 ms of a turn's CPU to encode, 0.3 ms to copy).
    """

    count: int = 0
    json: bytes = b""

    def extended(self, messages: Sequence[dict[str, Any]], until: int) -> EncodedHead:
        """This head grown to cover ``messages[:until]`` (whose first ``count`` it encodes)."""
        if until <= self.count:
            return self
        added = _json_list_items(messages[self.count : until])
        return EncodedHead(until, b"%s,%s" % (self.json, added) if self.count else added)

    def after(self, message: dict[str, Any]) -> EncodedHead:
        """The head of the list that has ``message`` in front of this one's."""
        first = orjson.dumps(message)
        return EncodedHead(self.count + 1, b"%s,%s" % (first, self.json) if self.count else first)


@dataclass(frozen=True, slots=True)
class Replay:
    """A transcript in a provider's wire format.

    Attributes:
        system: the system prompt (Anthropic ``system``, OpenAI ``instructions``), or ``None``.
        messages: Anthropic ``messages`` or OpenAI Responses ``input`` items, as plain dicts.
        head: the JSON of the first ``head.count`` of ``messages``, which the renderer kept
            from an earlier replay (see :meth:`request_json`).
    """

    system: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    head: EncodedHead = field(default=EncodedHead(), compare=False, repr=False)

    def request_json(self, request: Mapping[str, Any], key: str) -> bytes:
        """The JSON body of ``request`` (a dict without ``key``) with :attr:`messages` added
        under ``key``, as ``orjson.dumps({**request, key: self.messages})`` would make it but
        for the order of the keys. Only the messages past :attr:`head` are encoded."""
        head, rest = self.head, _json_list_items(self.messages[self.head.count :])
        fields = orjson.dumps(request)
        pieces = [fields[:-1], b"," if len(fields) > 2 else b"", orjson.dumps(key), b":["]
        pieces += [head.json, b"," if head.count and rest else b"", rest, b"]}"]
        return b"".join(pieces)  # the head is copied once


def to_anthropic_messages(
    history: Sequence[Entry],
    new_input: str | None = None,
    *,
    system_prompt: str | None = None,
    tools_as_text: bool = False,
) -> Replay:
    """Convert a transcript to Anthropic Messages API ``system`` and ``messages``.

    Consecutive items of one side are merged into one message, so roles alternate: assistant
    text, ``tool_use`` and ``thinking`` blocks form one assistant message; ``tool_result``
    blocks (first) and user text form one user message. The first message is a user message
    (a short placeholder is inserted when the transcript starts with the assistant).
    ``thinking`` / ``redacted_thinking`` blocks are kept only for reasoning written by
    Anthropic with its signature (or redacted data); whitespace-only text is skipped, since the
    API refuses it.

    Args:
        history: the transcript, oldest first; may hold other providers' entries and events.
        new_input: the new user message, appended last (``None`` when it is already the last
            entry of ``history``).
        system_prompt: placed before the transcript's own ``system`` entries.
        tools_as_text: render tool calls and results as text (for a request without tools).

    Returns:
        The system prompt and the ``messages`` list.
    """
    return _replay(AnthropicMessages(), history, new_input, system_prompt, tools_as_text)


def to_responses_input(
    history: Sequence[Entry],
    new_input: str | None = None,
    *,
    system_prompt: str | None = None,
    tools_as_text: bool = False,
) -> Replay:
    """Convert a transcript to OpenAI Responses API ``instructions`` and ``input`` items.

    User and assistant text become ``message`` items (``input_text`` / ``output_text``
    content), tool calls ``function_call`` items (``arguments`` a JSON string) and tool results
    ``function_call_output`` items (an error result's output is prefixed ``[tool error]``, the
    API having no error flag). ``reasoning`` items are kept only for reasoning written by
    OpenAI with its ``encrypted_content`` (what a ``store=False`` request needs).

    Args:
        history: the transcript, oldest first; may hold other providers' entries and events.
        new_input: the new user message, appended last (``None`` when it is already the last
            entry of ``history``).
        system_prompt: placed before the transcript's own ``system`` entries.
        tools_as_text: render tool calls and results as text (for a request without tools).

    Returns:
        The instructions and the ``input`` list.
    """
    return _replay(ResponsesInput(), history, new_input, system_prompt, tools_as_text)


def _replay(
    renderer: Renderer,
    history: Sequence[Entry],
    new_input: str | None,
    system_prompt: str | None,
    tools_as_text: bool,
) -> Replay:
    system, items = _normalise(history, new_input, system_prompt, tools_as_text)
    renderer.add(items)
    return renderer.replay(system)


# -- renderers: normalised items to a provider's wire format ----------------------------------


class Renderer(Protocol):
    """Builds a provider's wire format from normalised items, added in order.

    A renderer can be forked: the fork holds what was added so far and is extended and read
    without changing the original (which is how :class:`~harnesses.replay_cache.ReplayCache`
    resumes a conversation). Dicts added before a fork are shared, never mutated afterwards.
    """

    def add(self, items: Iterable[_Item]) -> None: ...

    def fork(self) -> Self: ...

    def replay(self, system: str | None) -> Replay:
        """The wire format of everything added, with ``system`` as its system prompt."""
        ...


class AnthropicMessages:
    """Messages API ``messages``; see :func:`to_anthropic_messages`."""

    __slots__ = ("_head", "_messages", "_open_from")

    def __init__(self, messages: list[dict[str, Any]] | None = None) -> None:
        self._messages = messages if messages is not None else []
        # Messages before this index are closed: no block is added to them again, and their
        # tool results were moved to the front.
        self._open_from = 0
        # The JSON of closed messages, encoded when a fork was taken (shared with the fork).
        self._head = EncodedHead()

    def add(self, items: Iterable[_Item]) -> None:
        messages = self._messages
        for item in items:
            match item:
                case _Text(role=role, text=text):
                    role, block = role, {"type": "text", "text": text}
                case _Call(part=call):
                    role = "assistant"
                    block = {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": call.arguments,
                    }
                case _Result(part=result):
                    role = "user"
                    block = {"type": "tool_result", "tool_use_id": result.tool_call_id}
                    if result.output:
                        block["content"] = result.output
                    if result.is_error:
                        block["is_error"] = True
                case _Reasoning(part=reasoning) if reasoning.provider == "anthropic":
                    role = "assistant"
                    if reasoning.signature:
                        block = {
                            "type": "thinking",
                            "thinking": reasoning.text,
                            "signature": reasoning.signature,
                        }
                    elif reasoning.encrypted:
                        block = {"type": "redacted_thinking", "data": reasoning.encrypted}
                    else:
                        continue
                case _:
                    continue
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": role, "content": [block]})

    def fork(self) -> AnthropicMessages:
        if not self._messages:
            return AnthropicMessages()
        closed = len(self._messages) - 1
        self._close(closed)  # the last message may still grow
        # A fork is taken to be resumed: what it shares is encoded once, for all its replays.
        self._head = self._head.extended(self._messages, closed)
        twin = AnthropicMessages(self._messages[:closed])
        last = self._messages[closed]
        twin._messages.append({"role": last["role"], "content": [*last["content"]]})
        twin._open_from, twin._head = closed, self._head
        return twin

    def replay(self, system: str | None) -> Replay:
        self._close(len(self._messages))
        messages, head = self._messages, self._head
        if messages and messages[0]["role"] != "user":
            leading = {"role": "user", "content": [{"type": "text", "text": LEADING_USER_TEXT}]}
            messages, head = [leading, *messages], head.after(leading)
        return Replay(system, messages, head)

    def _close(self, until: int) -> None:
        """Close the open messages before ``until``: user tool results must lead their
        message, so they move before any text merged in (a stable sort)."""
        for message in self._messages[self._open_from : until]:
            if message["role"] == "user":
                message["content"].sort(key=_after_results)
        self._open_from = max(until, self._open_from)


def _after_results(block: dict[str, Any]) -> bool:
    return block["type"] != "tool_result"


class ResponsesInput:
    """Responses API ``input`` items; see :func:`to_responses_input`."""

    __slots__ = ("_items",)

    def __init__(self, items: list[dict[str, Any]] | None = None) -> None:
        self._items = items if items is not None else []

    def add(self, items: Iterable[_Item]) -> None:
        out = self._items
        for item in items:
            match item:
                case _Text(role="user", text=text):
                    out.append(_message("user", "input_text", text))
                case _Text(role="assistant", text=text):
                    out.append(_message("assistant", "output_text", text))
                case _Call(part=call):
                    out.append(
                        {
                            "type": "function_call",
                            "call_id": call.id,
                            "name": call.name,
                            "arguments": _arguments_json(call.arguments),
                        }
                    )
                case _Result(part=result):
                    output = f"[tool error] {result.output}" if result.is_error else result.output
                    out.append(
                        {
                            "type": "function_call_output",
                            "call_id": result.tool_call_id,
                            "output": output,
                        }
                    )
                case _Reasoning(part=reasoning, item_id=item_id):
                    if reasoning.provider == "openai" and reasoning.encrypted:
                        out.append(_reasoning_item(reasoning, item_id))

    def fork(self) -> ResponsesInput:
        return ResponsesInput([*self._items])

    def replay(self, system: str | None) -> Replay:
        return Replay(system, self._items)


# -- normalisation shared by both providers ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class _Call:
    part: ToolCallPart


@dataclass(frozen=True, slots=True)
class _Result:
    part: ToolResultPart


@dataclass(frozen=True, slots=True)
class _Reasoning:
    part: ReasoningPart
    item_id: str | None


_Item = _Text | _Call | _Result | _Reasoning


def _normalise(
    history: Sequence[Entry],
    new_input: str | None,
    system_prompt: str | None,
    tools_as_text: bool,
) -> tuple[str | None, list[_Item]]:
    """The module docstring's rules, except the provider's choice of reasoning (step 4's
    first half), which the renderers make: the conversation as neutral items."""
    entries = (
        [*history, Entry(role="user", content=new_input)] if new_input is not None else history
    )
    run = Normalisation(system_prompt, tools_as_text)
    run.feed(entries, 0, len(entries), pair_results(entries, 0))
    run.settle()
    return run.system, run.take_items()


class Normalisation:
    """The module docstring's rules applied to a conversation fed in order, in one go or in
    parts, and resumable from a fork.

    Items become final when :meth:`settle` ran where the assistant's run ended: then its
    tool results are placed and reasoning that led to nothing is dropped. :meth:`take_items`
    hands the items over; a fork taken then continues the same conversation.
    """

    __slots__ = ("_ids", "_items", "_pending", "_results_before", "_system", "_tools_as_text")

    def __init__(self, system_prompt: str | None, tools_as_text: bool) -> None:
        self._tools_as_text = tools_as_text
        self._system: list[str] = []
        self._ids = _UniqueIds()
        self._items: list[_Item] = []
        self._pending: list[tuple[ToolCallPart, ToolResultPart]] = []
        # One past the index of the entry holding the latest result given to a call so far
        # (a call that found none counts as unbounded).
        self._results_before = 0
        self._add_system(system_prompt)

    @property
    def system(self) -> str | None:
        """The system prompt: the one given first, then the ``system`` entries' texts."""
        return "\n\n".join(self._system) or None

    def feed(
        self,
        entries: Sequence[Entry],
        start: int,
        stop: int,
        results: Mapping[int, tuple[ToolResultPart, int]],
    ) -> None:
        """Take ``entries[start:stop]``; ``results`` pairs calls with results (see
        :func:`pair_results`), computed over at least every entry from ``start`` on."""
        for index in range(start, stop):
            entry = entries[index]
            role = entry.role
            if role == "event":
                continue  # not part of the conversation a model sees
            if role != "assistant":
                self.settle()  # the assistant's run ended: its calls' results go here
            if role == "system":
                self._add_system(_text_of(entry))
                continue
            kind = entry.kind
            if role == "tool" or kind == "tool_result":
                continue  # results were placed by settle(); orphans are dropped
            if kind == "tool_call" and (call := entry.tool_call) is not None:
                self._call(call, results.get(index))
            elif kind == "reasoning" and (reasoning := entry.reasoning) is not None:
                item_id = entry.metadata.get(REASONING_ITEM_ID_KEY)
                self._items.append(_Reasoning(reasoning, item_id))
            elif kind == "text" and role in ("user", "assistant"):
                text = _text_of(entry)
                if text.strip():
                    self._items.append(_Text(role, text))

    def settle(self) -> None:
        """End the assistant's run: drop the reasoning that led to no output (providers refuse
        it on its own) and place its calls' results."""
        items = self._items
        while items and isinstance(items[-1], _Reasoning):
            items.pop()
        for call, result in self._pending:
            if self._tools_as_text:
                items.append(_Text("user", _result_text(call, result)))
            else:
                items.append(_Result(result))
        self._pending.clear()

    def results_within(self, stop: int) -> bool:
        """Whether every call fed so far got its result from an entry before ``stop``."""
        return self._results_before <= stop

    def take_items(self) -> list[_Item]:
        """The items made since the last call (final only if :meth:`settle` ran last)."""
        items, self._items = self._items, []
        return items

    def fork(self) -> Normalisation:
        """A copy to continue the conversation with, leaving this one as it is."""
        twin = Normalisation(None, self._tools_as_text)
        twin._system = [*self._system]
        twin._ids = self._ids.fork()
        twin._items = [*self._items]
        twin._pending = [*self._pending]
        twin._results_before = self._results_before
        return twin

    def _call(self, call: ToolCallPart, found: tuple[ToolResultPart, int] | None) -> None:
        safe = ToolCallPart(
            id=self._ids.new(call.id), name=_safe_name(call.name), arguments=call.arguments
        )
        if found is None:
            result = ToolResultPart(tool_call_id=safe.id, output=MISSING_RESULT, is_error=True)
            self._results_before = sys.maxsize  # a later result may yet answer it
        else:
            part, index = found
            result = ToolResultPart(
                tool_call_id=safe.id, output=part.output, is_error=part.is_error
            )
            self._results_before = max(self._results_before, index + 1)
        self._items.append(
            _Text("assistant", _call_text(safe)) if self._tools_as_text else _Call(safe)
        )
        self._pending.append((safe, result))

    def _add_system(self, text: str | None) -> None:
        if text and text.strip() and text not in self._system:
            self._system.append(text)


def pair_results(entries: Sequence[Entry], start: int) -> dict[int, tuple[ToolResultPart, int]]:
    """Map the index of each tool call entry from ``start`` on to the first unclaimed later
    result for its id, and that result's index."""
    waiting: dict[str, deque[int]] = defaultdict(deque)
    paired: dict[int, tuple[ToolResultPart, int]] = {}
    for index in range(start, len(entries)):
        entry = entries[index]
        if entry.role == "event":
            continue
        if entry.kind == "tool_call" and (call := entry.tool_call) is not None:
            waiting[call.id].append(index)
        elif entry.kind == "tool_result" and (result := entry.tool_result) is not None:
            calls = waiting.get(result.tool_call_id)
            if calls:
                paired[calls.popleft()] = (result, index)
    return paired


class _UniqueIds:
    """Safe, conversation-unique tool call ids (a reused id gets ``_2``, ``_3``…)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def new(self, raw: str) -> str:
        base = _UNSAFE.sub("_", raw) or "call"
        candidate, n = base, 1
        while candidate in self._seen:
            n += 1
            candidate = f"{base}_{n}"
        self._seen.add(candidate)
        return candidate

    def fork(self) -> _UniqueIds:
        twin = _UniqueIds()
        twin._seen = set(self._seen)
        return twin


def _safe_name(name: str) -> str:
    return (_UNSAFE.sub("_", name) or "tool")[:_MAX_NAME]


def _text_of(entry: Entry) -> str:
    if entry.content:
        return entry.content
    return "".join(p.text for p in entry.parts if isinstance(p, TextPart))


def _arguments_json(arguments: dict[str, Any]) -> str:
    if set(arguments) == {INVALID_JSON_KEY}:
        return str(arguments[INVALID_JSON_KEY])  # replay what the model sent, as it sent it
    return json.dumps(arguments, ensure_ascii=False)


def _call_text(call: ToolCallPart) -> str:
    return f"[tool call {call.id}: {call.name} {_arguments_json(call.arguments)}]"


def _result_text(call: ToolCallPart, result: ToolResultPart) -> str:
    status = "error" if result.is_error else "result"
    return f"[tool {status} {call.id} ({call.name})]\n{result.output}"


# -- OpenAI item shapes -------------------------------------------------------------------------


def _message(role: str, content_type: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": content_type, "text": text}]}


def _reasoning_item(reasoning: ReasoningPart, item_id: str | None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": reasoning.text}] if reasoning.text else []
    item: dict[str, Any] = {"type": "reasoning", "summary": summary}
    if item_id:
        item["id"] = item_id
    item["encrypted_content"] = reasoning.encrypted
    return item
