"""OpenAI Chat Completions, driven by the real ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure

MODEL = "gpt-chat-mock"
SHELL = {
    "type": "function",
    "function": {
        "name": "shell",
        "description": "Run a command.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "array", "items": {"type": "string"}}},
        },
    },
}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_json_text(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="Hello there."))
    completion = await oai.chat.completions.create(model=MODEL, messages=user("hi"))
    (choice,) = completion.choices
    assert choice.message.content == "Hello there."
    assert choice.finish_reason == "stop"
    assert completion.object == "chat.completion"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len("Hello there.") // 4
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


@pytest.mark.parametrize("include_usage", [False, True])
async def test_stream_chunks_and_usage(
    upstream: MockUpstream, oai: openai.AsyncOpenAI, include_usage: bool
) -> None:
    upstream.script(Reply(text="one two three", usage={"input_tokens": 5, "output_tokens": 6}))
    stream = await oai.chat.completions.create(
        model=MODEL,
        messages=user("hi"),
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["one ", "two ", "three"]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    usages = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert chunks[-1].choices == []
        assert [(u.prompt_tokens, u.completion_tokens, u.total_tokens) for u in usages] == [
            (5, 6, 11)
        ]
    else:
        assert usages == []


async def test_stream_ends_with_done(upstream: MockUpstream) -> None:
    async with httpx.AsyncClient(base_url=upstream.openai_base_url) as http:
        body = {"model": MODEL, "messages": user("hi"), "stream": True}
        response = await http.post("/chat/completions", json=body)
    assert response.text.endswith("data: [DONE]\n\n")
    assert "event:" not in response.text


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_round_trip(
    upstream: MockUpstream, oai: openai.AsyncOpenAI, stream: bool
) -> None:
    messages: list[Any] = user("run: git status")
    if stream:
        chunks = await oai.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=[SHELL],
            stream=True,
        )
        deltas = [c.choices[0].delta for c in [c async for c in chunks] if c.choices]
        parts = [d.tool_calls[0] for d in deltas if d.tool_calls]
        call_id, name = parts[0].id, parts[0].function.name
        arguments = "".join(p.function.arguments or "" for p in parts)
    else:
        completion = await oai.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=[SHELL],
        )
        assert completion.choices[0].finish_reason == "tool_calls"
        (call,) = completion.choices[0].message.tool_calls or []
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
    assert name == "shell"
    # An array-typed argument gets an argv.
    assert json.loads(arguments) == {"command": ["bash", "-lc", "git status"]}

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "On branch main"},
    ]
    second = await oai.chat.completions.create(model=MODEL, messages=messages, tools=[SHELL])
    assert second.choices[0].message.content == "[mock upstream] The tool returned: On branch main"


async def test_scripted_tool_calls_and_text(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    calls = [ToolCallSpec(name="a", arguments={"n": 1}), ToolCallSpec(name="b")]
    upstream.script(Reply(text="Calling two tools.", tool_calls=calls))
    completion = await oai.chat.completions.create(model=MODEL, messages=user("x"))
    message = completion.choices[0].message
    assert message.content == "Calling two tools."
    assert [(c.function.name, c.function.arguments) for c in message.tool_calls or []] == [
        ("a", '{"n":1}'),
        ("b", "{}"),
    ]


async def test_scripted_429_raises_rate_limit_error(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=429, message="slow", retry_after=1)))
    with pytest.raises(openai.RateLimitError) as caught:
        await oai.chat.completions.create(model=MODEL, messages=user("hi"))
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"


async def test_tool_message_without_call_is_rejected(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    messages = [*user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "?"}]
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.chat.completions.create(model=MODEL, messages=messages)
    assert "call_x" in caught.value.message


async def test_mid_stream_error_event(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="one two three", fail_after_chunks=2, fail_with="error_event"))
    stream = await oai.chat.completions.create(model=MODEL, messages=user("hi"), stream=True)
    seen = []
    with pytest.raises(openai.APIError, match="scripted stream failure"):
        async for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 2


async def test_mid_stream_disconnect(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="one two three", fail_after_chunks=2))
    stream = await oai.chat.completions.create(model=MODEL, messages=user("hi"), stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for _ in stream:
            pass
