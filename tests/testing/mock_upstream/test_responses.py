"""The OpenAI Responses API, driven by the real ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure

MODEL = "gpt-mock-1"
EXEC_COMMAND = {
    "type": "function",
    "name": "exec_command",
    "description": "Run a command.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"],
    },
}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def test_json_text(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="Hello there.", usage={"input_tokens": 11, "output_tokens": 3}))
    response = await oai.responses.create(model=MODEL, input="hi")
    assert response.output_text == "Hello there."
    assert response.status == "completed"
    assert response.model == MODEL
    assert response.usage is not None
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 3, 14)


async def test_stream_events_and_text(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="one two three"))
    stream = await oai.responses.create(model=MODEL, input="hi", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == (
        "one two three"
    )
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "one two three"
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens == len("one two three") // 4


async def test_stream_helper_final_response(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    upstream.script(Reply(text="a b", tool_calls=[ToolCallSpec(name="f", arguments={"x": 1})]))
    async with oai.responses.stream(model=MODEL, input="hi") as stream:
        final = await stream.get_final_response()
    assert final.output_text == "a b"
    call = final.output[1]
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("f", {"x": 1})


@pytest.mark.parametrize("stream", [False, True])
async def test_function_call_round_trip_with_full_replay(
    upstream: MockUpstream, oai: openai.AsyncOpenAI, stream: bool
) -> None:
    history: list[Any] = [user("please run `ls -la`")]
    if stream:
        events = await oai.responses.create(
            model=MODEL, input=history, tools=[EXEC_COMMAND], store=False, stream=True
        )
        seen = [event async for event in events]
        deltas = [e.delta for e in seen if e.type == "response.function_call_arguments.delta"]
        (call,) = [e.item for e in seen if e.type == "response.output_item.done"]
        assert "".join(deltas) == call.arguments
    else:
        first = await oai.responses.create(
            model=MODEL, input=history, tools=[EXEC_COMMAND], store=False
        )
        (call,) = first.output
    assert call.type == "function_call"
    assert call.name == "exec_command"
    assert json.loads(call.arguments) == {"cmd": "ls -la"}
    assert call.call_id.startswith("call_")

    history += [
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": "a.txt\nb.txt\n"},
    ]
    second = await oai.responses.create(
        model=MODEL, input=history, tools=[EXEC_COMMAND], store=False
    )
    assert second.output_text == "[mock upstream] The tool returned: a.txt\nb.txt"


async def test_previous_response_id_chains_stored_responses(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    first = await oai.responses.create(model=MODEL, input="remember the word tangerine")
    second = await oai.responses.create(
        model=MODEL, input="what was it?", previous_response_id=first.id
    )
    # user, assistant, user: two messages came before the new one.
    assert "I can see 2 messages" in second.output_text
    assert 'first user message was: "remember the word tangerine"' in second.output_text


async def test_unstored_response_cannot_be_continued(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    first = await oai.responses.create(model=MODEL, input="hi", store=False)
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model=MODEL, input="again", previous_response_id=first.id)
    assert caught.value.code == "previous_response_not_found"


async def test_function_call_without_output_is_rejected(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    history = [
        user("hi"),
        {"type": "function_call", "call_id": "call_9", "name": "exec_command", "arguments": "{}"},
        user("and?"),
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.responses.create(model=MODEL, input=history)
    assert "call_9" in caught.value.message


async def test_scripted_429_raises_rate_limit_error(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=429, message="slow down", retry_after=2)))
    with pytest.raises(openai.RateLimitError) as caught:
        await oai.responses.create(model=MODEL, input="hi")
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.body == {
        "message": "slow down",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }


async def test_mid_stream_disconnect(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="one two three", fail_after_chunks=5))
    seen = []
    stream = await oai.responses.create(model=MODEL, input="hi", stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            seen.append(event.type)
    assert seen[-1] == "response.output_text.delta"
    assert len(seen) == 5


async def test_mid_stream_failed_event(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="one two three", fail_after_chunks=4, fail_with="error_event"))
    stream = await oai.responses.create(model=MODEL, input="hi", stream=True)
    events = [event async for event in stream]
    last = events[-1]
    assert len(events) == 5
    assert last.type == "response.failed"
    assert last.sequence_number == 4
    assert last.response.status == "failed"
    assert last.response.error is not None
    assert last.response.error.code == "server_error"
