"""The replay cache changes what a replay costs, never what it is: every cached replay equals
the uncached function's on the same conversation, however the conversation grew."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cerver.types import Entry, ReasoningPart, ToolCallPart, ToolResultPart
from harnesses.replay import (
    LEADING_USER_TEXT,
    AnthropicMessages,
    Renderer,
    Replay,
    ResponsesInput,
    to_anthropic_messages,
    to_responses_input,
)
from harnesses.replay_cache import ReplayCache
from tests.harnesses.test_replay_properties import HARNESSES, entries

FORMATS: dict[str, tuple[Callable[[], Renderer], Callable[..., Replay]]] = {
    "anthropic": (AnthropicMessages, to_anthropic_messages),
    "openai": (ResponsesInput, to_responses_input),
}


def user(text: str) -> Entry:
    return Entry(role="user", content=text)


def assistant(text: str) -> Entry:
    return Entry(role="assistant", content=text, harness="anthropic", provider="anthropic")


def system(text: str) -> Entry:
    return Entry(role="system", content=text)


def reasoning(text: str) -> Entry:
    part = ReasoningPart(text=text, provider="anthropic", signature="sig")
    return Entry(role="assistant", kind="reasoning", parts=[part], provider="anthropic")


def call(call_id: str) -> Entry:
    part = ToolCallPart(id=call_id, name="bash", arguments={"command": "ls"})
    return Entry(role="assistant", kind="tool_call", parts=[part], provider="anthropic")


def result(call_id: str, output: str = "ok") -> Entry:
    part = ToolResultPart(tool_call_id=call_id, output=output)
    return Entry(role="tool", kind="tool_result", parts=[part])


@pytest.mark.parametrize("wire", sorted(FORMATS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_conversation_growing_turn_by_turn_replays_as_uncached(
    wire: str, data: st.DataObject
) -> None:
    renderer, uncached = FORMATS[wire]
    cache = ReplayCache(renderer)
    history: list[Entry] = []
    for _ in range(data.draw(st.integers(1, 8), label="calls")):
        author = data.draw(st.sampled_from(HARNESSES), label="author")
        grown = data.draw(st.lists(entries(author), max_size=6), label="grown")
        change = data.draw(st.sampled_from(["append", "append", "copy", "rewind"]))
        if change == "copy":  # the same conversation, read again as new objects
            history = [e.model_copy() for e in history]
        elif change == "rewind" and history:
            history = history[: data.draw(st.integers(0, len(history) - 1))]
        history = [*history, *grown]
        if data.draw(st.booleans(), label="new user message"):
            history.append(user(data.draw(st.sampled_from(["next", " ", "again"]))))
        options = {
            "system_prompt": data.draw(st.sampled_from([None, "sys"]), label="system"),
            "tools_as_text": data.draw(st.booleans(), label="tools_as_text"),
        }
        replay, expected = cache.replay("sess", history, **options), uncached(history, **options)
        assert replay == expected
        # The request's JSON, made from the head encoded by earlier calls, is the same too.
        body = orjson.loads(replay.request_json({"model": "m"}, "messages"))
        assert body == {"model": "m", "messages": expected.messages}


def test_the_next_turn_reuses_the_replayed_prefix() -> None:
    cache = ReplayCache(AnthropicMessages)
    history = [user("hi"), assistant("hello"), user("run ls"), call("c1"), result("c1")]
    history += [assistant("done"), user("thanks")]
    first = cache.replay("sess", history)

    history += [assistant("welcome"), user("bye")]
    second = cache.replay("sess", history)

    assert second == to_anthropic_messages(history)
    # Messages before the last turn's user message were not rendered again.
    assert all(a is b for a, b in zip(first.messages[:4], second.messages[:4], strict=True))
    assert first.messages[-1] is not second.messages[4]  # the user message grew into a new one
    assert first == to_anthropic_messages(history[:7])  # and the first replay is untouched


def test_a_long_conversation_encodes_only_what_is_new(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ReplayCache(AnthropicMessages)
    history = [user("hi")]
    for number in range(200):
        history += [assistant(f"answer {number}"), user(f"question {number}")]
        replay = cache.replay("sess", history)
        body = replay.request_json({"model": "m", "max_tokens": 9}, "messages")

    encoded: list[object] = []
    monkeypatch.setattr(orjson, "dumps", lambda value: encoded.append(value) or b"{}")
    history += [assistant("last answer"), user("last question")]
    cache.replay("sess", history).request_json({"model": "m"}, "messages")

    assert orjson.loads(body)["messages"] == to_anthropic_messages(history[:-2]).messages
    # Of the 404 messages, only the last two turns' (the last checkpoint left its final
    # answer open): the request's own fields and its key besides.
    texts = [m["content"][0]["text"] for m in encoded if isinstance(m, dict) and "role" in m]
    assert texts == ["answer 199", "question 199", "last answer", "last question"]
    assert {"model": "m"} in encoded and len(encoded) == 6


def test_a_replay_that_starts_with_the_assistant_encodes_its_leading_message() -> None:
    cache = ReplayCache(AnthropicMessages)
    history = [assistant("welcome"), user("hi"), assistant("hello"), user("again")]
    cache.replay("sess", history)
    history += [assistant("yes"), user("bye")]

    replay = cache.replay("sess", history)

    assert replay.messages[0]["content"][0]["text"] == LEADING_USER_TEXT
    body = orjson.loads(replay.request_json({}, "messages"))
    assert body == {"messages": to_anthropic_messages(history).messages}


def test_a_conversation_read_again_resumes_unless_an_entry_changed() -> None:
    """Checkpoints compare entries as values: the same transcript read back from the store (new
    objects, say after the gateway's transcript cache dropped it) resumes; an edited one not."""
    cache = ReplayCache(AnthropicMessages)
    history = [user("hi"), assistant("hello"), user("run ls"), assistant("done"), user("ok")]
    first = cache.replay("sess", history)

    read_again = [entry.model_copy() for entry in history] + [assistant("yes"), user("bye")]
    resumed = cache.replay("sess", read_again)
    edited = [*read_again[:1], assistant("HELLO"), *read_again[2:]]
    replayed = cache.replay("sess", edited)

    assert resumed == to_anthropic_messages(read_again)
    assert resumed.messages[1] is first.messages[1]  # rendered once, shared
    assert replayed == to_anthropic_messages(edited)
    assert replayed.messages[1]["content"][0]["text"] == "HELLO"


def test_a_call_still_waiting_for_its_result_is_not_cut_off() -> None:
    """A client tool's call answered after the user wrote again: the checkpoint taken before
    that message would have replayed the call as unanswered."""
    cache = ReplayCache(AnthropicMessages)
    history = [user("hi"), call("c1"), user("what now?")]
    cache.replay("sess", history)
    history += [result("c1", "the app's answer"), assistant("it says so"), user("ok")]

    replay = cache.replay("sess", history)

    assert replay == to_anthropic_messages(history)
    answered = {"type": "tool_result", "tool_use_id": "c1", "content": "the app's answer"}
    assert replay.messages[2]["content"][0] == answered


def test_a_checkpoint_followed_by_the_assistant_is_not_resumed() -> None:
    """The checkpoint settled the assistant's run at the cut; a conversation that goes on with
    the assistant there has not ended that run."""
    cache = ReplayCache(AnthropicMessages)
    head = [user("hi"), reasoning("thinking it over")]
    cache.replay("sess", [*head, user("and?")])  # reasoning with no output after it: dropped
    history = [*head, assistant("here it is"), user("ok")]

    replay = cache.replay("sess", history)

    assert replay == to_anthropic_messages(history)
    assert replay.messages[1]["content"][0]["type"] == "thinking"


def test_a_rewound_conversation_replays_without_what_was_cut_away() -> None:
    cache = ReplayCache(AnthropicMessages)
    head = [user("hi"), assistant("hello")]
    cache.replay("sess", [*head, user("be brief from now on"), system("Answer briefly.")])
    history = [*head, user("tell me more")]

    replay = cache.replay("sess", history)

    assert replay == to_anthropic_messages(history)
    assert replay.system is None


def test_each_key_keeps_its_own_conversation_within_the_bounds() -> None:
    cache = ReplayCache(AnthropicMessages, max_sessions=3, max_entries=5)
    conversations = {
        key: [user(f"{key} 1"), assistant("a"), user(f"{key} 2")] for key in ("s1", "s2", "s3")
    }
    for key, history in conversations.items():
        assert cache.replay(key, history) == to_anthropic_messages(history)

    assert list(cache._checkpoints) == ["s2", "s3"]  # s1 dropped: 6 entries > 5
    assert "s1" not in cache and "s3" in cache
    assert cache._entries == 4
    long = [user("x"), assistant("y")] * 3 + [user("z")]
    cache.replay("s4", long)  # 6 entries before the cut: too long to keep
    assert "s4" not in cache
    cache.forget("s2")
    assert list(cache._checkpoints) == ["s3"] and cache._entries == 2
