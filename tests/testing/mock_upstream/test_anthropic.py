"""The Anthropic Messages API, driven by the real ``anthropic`` SDK."""

from __future__ import annotations

import anthropic
import httpx
import httpx2
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure

MODEL = "claude-mock-1"
BASH = {
    "name": "Bash",
    "description": "Run a shell command.",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
        "required": ["command"],
    },
}


def user(text: str) -> list[dict[str, object]]:
    return [{"role": "user", "content": text}]


async def test_json_text(upstream: MockUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script(Reply(text="Hello there."))
    message = await claude.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello there."
    assert message.stop_reason == "end_turn"
    assert message.model == MODEL
    assert message.usage.input_tokens >= 1
    assert message.usage.output_tokens == len("Hello there.") // 4


async def test_stream_text_arrives_as_deltas(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    upstream.script(Reply(text="one two three four", usage={"input_tokens": 7, "output_tokens": 9}))
    async with claude.messages.stream(model=MODEL, max_tokens=64, messages=user("hi")) as stream:
        deltas = [text async for text in stream.text_stream]
        message = await stream.get_final_message()
    assert deltas == ["one ", "two ", "three ", "four"]
    assert message.content[0].text == "one two three four"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 9)


async def test_raw_stream_events_in_order(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    upstream.script(
        Reply(text="hi", tool_calls=[ToolCallSpec(name="Bash", arguments={"command": "ls"})])
    )
    stream = await claude.messages.create(
        model=MODEL, max_tokens=64, messages=user("go"), tools=[BASH], stream=True
    )
    kinds = [event.type async for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_use_round_trip(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic, stream: bool
) -> None:
    messages = user("please run `ls -la /tmp`")
    if stream:
        async with claude.messages.stream(
            model=MODEL, max_tokens=64, messages=messages, tools=[BASH]
        ) as events:
            first = await events.get_final_message()
    else:
        first = await claude.messages.create(
            model=MODEL, max_tokens=64, messages=messages, tools=[BASH]
        )
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use"
    assert call.name == "Bash"
    assert call.input == {"command": "ls -la /tmp"}
    assert call.id.startswith("toolu_")

    result = {"type": "tool_result", "tool_use_id": call.id, "content": "  total 0\nfile.txt  "}
    messages += [first.to_param(), {"role": "user", "content": [result]}]
    second = await claude.messages.create(
        model=MODEL, max_tokens=64, messages=messages, tools=[BASH]
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == "[mock upstream] The tool returned: total 0\nfile.txt"
    assert upstream.requests[1]["body"]["messages"][2]["content"][0]["tool_use_id"] == call.id


async def test_scripted_tool_call_keeps_its_id(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    spec = ToolCallSpec(name="read_file", arguments={"path": "a.txt"}, id="toolu_fixed")
    upstream.script(Reply(tool_calls=[spec]))
    message = await claude.messages.create(model=MODEL, max_tokens=64, messages=user("read"))
    assert [(b.type, b.id, b.input) for b in message.content] == [
        ("tool_use", "toolu_fixed", {"path": "a.txt"})
    ]


async def test_scripted_429_raises_rate_limit_error(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=429, message="slow down", retry_after=1.5)))
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }


async def test_overloaded_529(upstream: MockUpstream, claude: anthropic.AsyncAnthropic) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=529, message="busy")))
    with pytest.raises(anthropic.APIStatusError) as caught:
        await claude.messages.create(model=MODEL, max_tokens=64, messages=user("hi"))
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"


async def test_mid_stream_disconnect(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    upstream.script(Reply(text="one two three four five", fail_after_chunks=4))
    seen = []
    # The SDK lets the transport error through unwrapped when a stream breaks.
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        async with claude.messages.stream(model=MODEL, max_tokens=64, messages=user("x")) as stream:
            async for text in stream.text_stream:
                seen.append(text)
    assert seen == ["one "]  # message_start, ping, content_block_start, one delta


async def test_mid_stream_error_event(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    upstream.script(Reply(text="one two three", fail_after_chunks=3, fail_with="error_event"))
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with claude.messages.stream(model=MODEL, max_tokens=64, messages=user("x")) as stream:
            await stream.until_done()
    assert caught.value.body["error"]["type"] == "api_error"


async def test_invalid_request_is_a_400(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}],
        },
        {"role": "user", "content": "no tool result here"},
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        await claude.messages.create(model=MODEL, max_tokens=64, messages=messages)
    assert "toolu_1" in caught.value.message
    assert upstream.state.pending == []


async def test_beta_query_and_count_tokens(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic
) -> None:
    async with httpx.AsyncClient(base_url=upstream.url) as http:
        response = await http.post(
            "/v1/messages?beta=true",
            json={"model": MODEL, "max_tokens": 5, "messages": user("hi"), "stream": True},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: message_start\ndata: ")
    (entry,) = upstream.requests
    assert (entry["path"], entry["query"], entry["stream"]) == ("/v1/messages", "beta=true", True)

    counted = await claude.messages.count_tokens(model=MODEL, messages=user("hi"))
    assert counted.input_tokens >= 1
