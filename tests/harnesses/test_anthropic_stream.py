"""The Anthropic harness's own reading of a Messages stream, checked against the SDK's."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import orjson
import pytest

from cerver.retry import RetryPolicy
from harnesses._anthropic_stream import MessageBuilder, StreamOrderError
from harnesses.anthropic import AnthropicHarness
from harnesses.base import Error, TextDelta, TurnContext, TurnOptions

MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 5},
    },
}


def _delta(index: int, **delta: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _block(index: int, **block: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


EVENTS: list[dict[str, Any]] = [
    MESSAGE_START,
    {"type": "ping"},
    _block(0, type="thinking", thinking="", signature=""),
    _delta(0, type="thinking_delta", thinking="Let me "),
    _delta(0, type="thinking_delta", thinking="look."),
    _delta(0, type="signature_delta", signature="sig=="),
    _stop(0),
    _block(1, type="text", text=""),
    _delta(1, type="text_delta", text="Reading "),
    _delta(1, type="text_delta", text="the file."),
    _stop(1),
    _block(2, type="tool_use", id="toolu_1", name="read_file", input={}),
    _delta(2, type="input_json_delta", partial_json=""),
    _delta(2, type="input_json_delta", partial_json='{"path": "/wor'),
    _delta(2, type="input_json_delta", partial_json='k/a.txt", "lines": [1, 2]}'),
    _stop(2),
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 41, "input_tokens": None, "cache_read_input_tokens": 7},
    },
    {"type": "message_stop"},
]


def _built(events: list[dict[str, Any]]) -> tuple[MessageBuilder, list[str]]:
    builder = MessageBuilder()
    texts = [t for e in events if (t := builder.add(orjson.loads(orjson.dumps(e))))]
    return builder, texts


def _client_answering(body: str) -> anthropic.AsyncAnthropic:
    """An SDK client whose every call is answered with ``body`` as an event stream (a test
    double of the API, in process)."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=body.encode()
        )

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    return anthropic.AsyncAnthropic(
        api_key="test", base_url="http://fake", http_client=http, max_retries=0
    )


def _stream(events: list[dict[str, Any]]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


async def _sdk_message(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The final message the SDK's own ``MessageStream`` builds from the same stream."""
    client = _client_answering(_stream(events))
    async with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        message = await stream.get_final_message()
    await client.close()
    return message.model_dump()


async def test_the_built_message_is_the_one_the_sdk_builds_from_the_same_stream() -> None:
    builder, texts = _built(EVENTS)
    ours = anthropic.types.Message.construct(**builder.message()).model_dump()
    assert ours == await _sdk_message(EVENTS)
    assert texts == ["Reading ", "the file."]
    assert ours["content"][2]["input"] == {"path": "/work/a.txt", "lines": [1, 2]}
    # message_delta's counts are totals: they overwrite, and an omitted one keeps its value.
    assert ours["usage"]["input_tokens"] == 12
    assert ours["usage"]["output_tokens"] == 41
    assert ours["usage"]["cache_read_input_tokens"] == 7


async def test_a_tool_input_cut_off_mid_json_keeps_what_parses() -> None:
    cut = [
        MESSAGE_START,
        _block(0, type="tool_use", id="toolu_1", name="write_file", input={}),
        _delta(0, type="input_json_delta", partial_json='{"path": "a.txt", "content": "hel'),
    ]
    builder, _ = _built(cut)
    assert builder.message()["content"][0]["input"] == {"path": "a.txt", "content": "hel"}


def test_content_before_message_start_breaks_the_protocol() -> None:
    with pytest.raises(StreamOrderError, match="message_start"):
        MessageBuilder().add(_block(0, type="text", text=""))
    with pytest.raises(StreamOrderError):
        MessageBuilder().message()


def test_unknown_events_and_delta_kinds_are_ignored() -> None:
    builder, texts = _built(
        [
            MESSAGE_START,
            {"type": "some_future_event", "x": 1},
            _block(0, type="text", text=""),
            _delta(0, type="some_future_delta", value=2),
            _delta(0, type="text_delta", text="ok"),
        ]
    )
    assert texts == ["ok"]
    assert builder.message()["content"] == [{"type": "text", "text": "ok"}]


@pytest.mark.parametrize(
    ("body", "streamed"),
    [
        pytest.param(_stream(EVENTS[4:]), "", id="content-before-message-start"),
        pytest.param(
            _stream(EVENTS[:9]) + "event: content_block_delta\ndata: {not json\n\n",
            "Reading ",
            id="data-not-json",
        ),
    ],
)
async def test_a_stream_that_cannot_be_read_fails_the_call_as_retryable(
    body: str, streamed: str
) -> None:
    harness = AnthropicHarness(client=_client_answering(body))
    harness.retry = RetryPolicy(max_attempts=1)
    turn = TurnContext(
        session_id="sess_test",
        run_id="run_test",
        history=[],
        input="go",
        model=harness.default_model,
        options=TurnOptions(),
    )
    events = [event async for event in harness.run(turn)]
    error = events[-1]
    assert isinstance(error, Error) and error.code == "upstream_error" and error.retryable
    assert "could not be read" in error.message
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == streamed
