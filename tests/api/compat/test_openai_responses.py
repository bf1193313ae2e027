"""``POST /v1/responses`` and ``GET /v1/responses/{id}`` driven by the official ``openai``
SDK, models served by the mock upstream (a test double)."""

from __future__ import annotations

import openai
import pytest

from cerver.client import AsyncClient
from cerver.testing.mock_upstream import MockUpstream, Reply

LOOKUP = {
    "type": "function",
    "name": "lookup_order",
    "description": "Look up an order by id.",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
}


async def test_previous_response_id_continues_the_session(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(compute=None, model="claude-sonnet-4-5"))["session_id"]
    first = await openai_client.responses.create(
        model="claude-sonnet-4-5",
        input="My name is Ada.",
        instructions="Be brief.",
        extra_body={"conversation": sid},
    )
    assert first.status == "completed" and first.output_text.startswith("[mock upstream]")
    assert first.usage.output_tokens > 0
    assert mock_upstream.requests[-1]["body"]["system"] == "Be brief."

    second = await openai_client.responses.create(
        model="gpt-5", input="What is my name?", previous_response_id=first.id
    )
    assert second.model == "openai/gpt-5"
    assert 'the first user message was: "My name is Ada."' in second.output_text
    stored = await openai_client.responses.retrieve(second.id)
    assert stored.output_text == second.output_text and stored.status == "completed"

    # An older response is not the conversation's latest: no silent fork.
    with pytest.raises(openai.ConflictError):
        await openai_client.responses.create(input="Again?", previous_response_id=first.id)
    entries = (await client.messages(sid))["messages"]
    assert [e["role"] for e in entries if e["role"] != "event"] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


async def test_streamed_events_and_a_function_call_round_trip(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(compute=None))["session_id"]
    mock_upstream.script(
        Reply(
            text="Looking.", tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "4"}}]
        )
    )
    stream = await openai_client.responses.create(
        model="claude-sonnet-4-5",
        input="Where is order 4?",
        tools=[LOOKUP],
        stream=True,
        extra_body={"conversation": {"id": sid}},
    )
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Looking."
    final = events[-1].response
    [call] = [item for item in final.output if item.type == "function_call"]
    assert (call.name, call.arguments) == ("lookup_order", '{"order_id":"4"}')

    answer = await openai_client.responses.create(
        previous_response_id=final.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "delivered"}],
        tools=[LOOKUP],
    )
    assert "The tool returned: delivered" in answer.output_text
    with pytest.raises(openai.ConflictError):
        await openai_client.responses.create(
            previous_response_id=answer.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "x"}],
        )


async def test_unsupported_and_unknown(openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        await openai_client.responses.create(model="gpt-5", input="hi", background=True)
    assert exc.value.param == "background"
    with pytest.raises(openai.NotFoundError):
        await openai_client.responses.retrieve("resp_nope")
