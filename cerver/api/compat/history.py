"""Matching the history a stateless client re-sends against the session's transcript.

OpenAI and Anthropic clients send the whole conversation with every request. Cerver keeps
the conversation itself, so a request is read as *the transcript, then what is new*:

* The transcript is shown as the client saw it (:func:`client_view`): user messages; one
  assistant message per stretch of the model's answer (its texts joined by a blank line, as
  they were returned, plus its calls of the app's tools); the app's tool results. Sandbox
  tool calls and results, reasoning, records (harness switches…) and the assistant side of
  failed turns are Cerver's own and not shown.
* The request's messages must start with exactly that view (system messages aside: they are
  the turn's system prompt). The first difference is a 409 naming both sides; Cerver never
  forks a conversation silently. A request that stops short of the view is a 409 too.
* What follows is new: the last message is the turn's input (a user message), or the app's
  tool results that continue the turn; messages before it are history the transcript did
  not hold (a client moving an existing conversation into a new session) and are appended,
  marked ``metadata["source"]``, before the turn runs.
* A request equal to the view whose last message is the user's (or tool results) is a retry
  of a turn that failed: it runs again without appending anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from cerver.errors import Conflict, InvalidRequest
from cerver.services.client_tools import pending_tool_calls, tool_result_entry
from cerver.types import Entry, ToolCallPart, ToolResultPart
from harnesses._loop import text_entry, tool_call_entry
from harnesses.tools import CLIENT_TOOL_KEY

__all__ = ["ClientMessage", "Reconciled", "client_view", "reconcile"]

ASSISTANT_TEXT_SEPARATOR = "\n\n"
"""Between two assistant texts of one answer (text, a sandbox tool call, more text)."""


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One conversation message in a provider-neutral form.

    Attributes:
        role: ``user``, ``assistant`` or ``tool`` (a tool result).
        text: the message's text (an assistant's may be empty when it only calls tools).
        tool_calls: an assistant's calls of the app's tools.
        tool_call_id: a tool result's call.
        is_error: a tool result reporting a failure.
        index: where the message is in the request (``<field>[index]``), for errors.
        field: the request field holding the conversation (``messages``, ``input``).
    """

    role: Literal["user", "assistant", "tool"]
    text: str = ""
    tool_calls: tuple[ToolCallPart, ...] = ()
    tool_call_id: str | None = None
    is_error: bool = False
    index: int = 0
    field: str = "messages"

    @property
    def where(self) -> str:
        """The message's place in the request, as errors name it (``messages[2]``)."""
        return f"{self.field}[{self.index}]"

    def extended(self, text: str = "", calls: tuple[ToolCallPart, ...] = ()) -> ClientMessage:
        """This assistant message with more of the same answer: ``text`` after a blank line,
        ``calls`` after its calls."""
        joined = ASSISTANT_TEXT_SEPARATOR.join(t for t in (self.text, text) if t)
        return replace(self, text=joined, tool_calls=(*self.tool_calls, *calls))


@dataclass(frozen=True, slots=True)
class _Shown:
    message: ClientMessage
    seq: int


@dataclass(slots=True)
class Reconciled:
    """What a request adds to the transcript.

    Attributes:
        input: the new user message, or ``""`` when the turn continues from ``prelude`` (tool
            results) or retries the transcript's last message.
        prelude: entries to append before the input: history the transcript lacked, the
            app's tool results.
        next_seq: the transcript's next ``seq`` the request was matched against.
    """

    input: str
    prelude: list[Entry] = field(default_factory=list)
    next_seq: int = 1


def client_view(entries: Sequence[Entry]) -> list[ClientMessage]:
    """The transcript as a client of the compatibility surfaces saw it (module docstring)."""
    return [shown.message for shown in _view(entries)]


def reconcile(
    entries: Sequence[Entry], messages: Sequence[ClientMessage], *, source: str
) -> Reconciled:
    """Split ``messages`` into what the transcript holds and what the request adds.

    Args:
        entries: the session's transcript.
        messages: the request's conversation, system messages left out.
        source: the surface's name, recorded on appended history (``chat.completions``).

    Raises:
        Conflict: the messages contradict the transcript, or stop before its end (409).
        InvalidRequest: nothing to answer (the last message is the assistant's), or tool
            calls left without results before a new message.
    """
    view = _view(entries)
    next_seq = (entries[-1].seq or 0) + 1 if entries else 1
    param = messages[0].field if messages else "messages"
    for shown, sent in zip(view, messages, strict=False):
        if not _same(shown.message, sent):
            raise Conflict(
                f"{sent.where} contradicts the session's transcript (entry seq "
                f"{shown.seq}): the transcript holds {_describe(shown.message)}, the request "
                f"sent {_describe(sent)}. Send the conversation as stored "
                "(GET /v2/sessions/{id}/messages) or start a new session (omit "
                "X-Cerver-Session-Id).",
                context={"param": param, "index": sent.index, "seq": shown.seq},
            )
    if len(messages) < len(view):
        missing = view[len(messages)]
        raise Conflict(
            f"The request's {len(messages)} messages stop before the end of the session's "
            f"transcript, which continues with {_describe(missing.message)} (entry seq "
            f"{missing.seq}). Send the whole conversation, or start a new session.",
            context={"param": param, "index": len(messages), "seq": missing.seq},
        )
    new = list(messages[len(view) :])
    if not new:
        if view and view[-1].message.role != "assistant":
            return Reconciled("", [], next_seq)  # a retry of the turn that failed
        raise InvalidRequest(
            "Nothing to answer: the transcript already holds every message sent and ends with "
            "the assistant's. Add a user message.",
            context={"param": param},
        )
    last = new[-1]
    if last.role == "assistant":
        raise InvalidRequest(
            f"{last.where}: the last message must be the user's or tool results, "
            "not the assistant's.",
            context={"param": param, "index": last.index},
        )
    user_input = last.text if last.role == "user" else ""
    body = new[:-1] if last.role == "user" else new
    if last.role == "user" and not user_input.strip():
        raise InvalidRequest(
            f"{last.where} is empty.", context={"param": param, "index": last.index}
        )
    prelude = _prelude(entries, body, source, param)
    return Reconciled(user_input, prelude, next_seq)


def _prelude(
    entries: Sequence[Entry], body: Sequence[ClientMessage], source: str, param: str
) -> list[Entry]:
    """Entries for the new messages before the input; checks every call gets its result."""
    pending = {call.id: call for call in pending_tool_calls(entries)}
    prelude: list[Entry] = []
    for message in body:
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            if call_id not in pending:
                raise Conflict(
                    f"{message.where} is a result for tool call {call_id!r}, which is not "
                    f"waiting for one (pending: {', '.join(map(repr, pending)) or 'none'}).",
                    context={"param": param, "index": message.index, "tool_call_id": call_id},
                )
            del pending[call_id]
            part = ToolResultPart(
                tool_call_id=call_id, output=message.text, is_error=message.is_error
            )
            prelude.append(tool_result_entry(part, source=source))
            continue
        _ensure_answered(pending, message)
        if message.role == "user":
            prelude.append(Entry(role="user", content=message.text, metadata={"source": source}))
            continue
        if message.text:
            entry = text_entry(message.text)
            prelude.append(entry.model_copy(update={"metadata": {"source": source}}))
        for call in message.tool_calls:
            entry = tool_call_entry(call)
            metadata = {CLIENT_TOOL_KEY: True, "source": source}
            prelude.append(entry.model_copy(update={"metadata": metadata}))
            pending[call.id] = call
    if pending:  # before the new user message, or results missing from the new ones
        ids = ", ".join(map(repr, pending))
        raise InvalidRequest(
            f"Tool call(s) {ids} have no result: send a tool result for each call before "
            "continuing the conversation.",
            context={"param": param, "missing": list(pending)},
        )
    return prelude


def _ensure_answered(pending: dict[str, ToolCallPart], message: ClientMessage) -> None:
    if pending:
        raise InvalidRequest(
            f"{message.where}: tool call(s) {', '.join(map(repr, pending))} have no "
            "result before this message: send a tool result for each call first.",
            context={"param": message.field, "index": message.index, "missing": list(pending)},
        )


def _view(entries: Sequence[Entry]) -> list[_Shown]:
    failed = {e.run_id for e in entries if e.role == "event" and e.kind == "error" and e.run_id}
    view: list[_Shown] = []
    for entry in entries:
        seq = entry.seq or 0
        client_tool = bool(entry.metadata.get(CLIENT_TOOL_KEY))
        if entry.role == "user" and entry.kind == "text":
            view.append(_Shown(ClientMessage("user", entry.content), seq))
        elif entry.role == "tool" and client_tool and (result := entry.tool_result) is not None:
            message = ClientMessage(
                "tool", result.output, tool_call_id=result.tool_call_id, is_error=result.is_error
            )
            view.append(_Shown(message, seq))
        elif entry.role == "assistant" and entry.run_id not in failed:
            if entry.kind == "text":
                _add_to_answer(view, seq, text=entry.content)
            elif entry.kind == "tool_call" and client_tool and (call := entry.tool_call):
                _add_to_answer(view, seq, call=call)
    return view


def _add_to_answer(
    view: list[_Shown], seq: int, *, text: str = "", call: ToolCallPart | None = None
) -> None:
    calls = (call,) if call is not None else ()
    if view and view[-1].message.role == "assistant":
        shown = view[-1]
        view[-1] = _Shown(shown.message.extended(text, calls), shown.seq)
    else:
        view.append(_Shown(ClientMessage("assistant", text, calls), seq))


def _same(stored: ClientMessage, sent: ClientMessage) -> bool:
    if stored.role != sent.role or stored.text.strip() != sent.text.strip():
        return False
    if stored.role == "tool":
        return stored.tool_call_id == sent.tool_call_id
    return [(c.id, c.name, c.arguments) for c in stored.tool_calls] == [
        (c.id, c.name, c.arguments) for c in sent.tool_calls
    ]


def _describe(message: ClientMessage) -> str:
    text = message.text if len(message.text) <= 60 else f"{message.text[:57]}..."
    article = "an" if message.role == "assistant" else "a"
    what = f"{article} {message.role} message {text!r}"
    if message.tool_calls:
        calls = ", ".join(f"{c.name}({json.dumps(c.arguments)[:40]})" for c in message.tool_calls)
        what += f" calling {calls}"
    if message.tool_call_id:
        what += f" for tool call {message.tool_call_id!r}"
    return what
