"""``POST /v1/responses`` and ``GET /v1/responses/{id}`` driven by the official ``openai``
SDK, models served by the mock upstream (a test double)."""

from __future__ import annotations

import asyncio

import openai
import pytest
from openai.types.responses import Response

from cerver.api.compat.openai_responses import parse_response_id
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
        await openai_client.responses.create(model="gpt-5", input="hi", include=["x"])
    assert exc.value.param == "include"
    with pytest.raises(openai.NotFoundError):
        await openai_client.responses.retrieve("resp_nope")
    first = await openai_client.responses.create(model="gpt-5", input="hi")
    with pytest.raises(openai.BadRequestError) as exc:
        await openai_client.responses.retrieve(first.id, starting_after=2)
    assert exc.value.param == "starting_after"


async def _types(stream: object) -> list[str]:
    return [event.type async for event in stream]  # type: ignore[attr-defined]


async def _until(openai_client: openai.AsyncOpenAI, rid: str, status: str) -> Response:
    for _ in range(200):
        response = await openai_client.responses.retrieve(rid)
        if response.status == status:
            return response
        await asyncio.sleep(0.05)
    raise AssertionError(f"{rid} never became {status!r}: last {response.status!r}")


async def test_background_response_runs_on_and_is_retrieved(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="one two three four", chunk_delay_ms=40))
    queued = await openai_client.responses.create(
        model="claude-sonnet-4-5", input="Count.", background=True
    )
    assert queued.status == "queued" and queued.output == []
    running = await _until(openai_client, queued.id, "in_progress")
    assert running.id == queued.id
    done = await _until(openai_client, queued.id, "completed")
    assert done.output_text == "one two three four"
    assert done.usage is not None and done.usage.output_tokens > 0
    sid = done.conversation.id  # type: ignore[union-attr]
    [run] = (await client.list_runs(sid))["runs"]
    assert run["status"] == "completed" and queued.id.endswith(run["run_id"].removeprefix("run_"))


async def test_a_stream_resumes_after_the_last_sequence_number_seen(
    openai_client: openai.AsyncOpenAI, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="alpha beta gamma delta epsilon", chunk_delay_ms=30))
    stream = await openai_client.responses.create(
        model="claude-sonnet-4-5", input="Greek.", background=True, stream=True
    )
    seen = []
    async for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta":
            break  # the client drops mid-answer; the background turn runs on
    await stream.close()
    rid = seen[0].response.id
    rest = [
        event
        async for event in await openai_client.responses.retrieve(
            rid, stream=True, starting_after=seen[-1].sequence_number
        )
    ]
    whole = [event async for event in await openai_client.responses.retrieve(rid, stream=True)]
    resumed = seen + rest
    assert [e.sequence_number for e in resumed] == list(range(len(whole)))
    assert [e.type for e in resumed] == [e.type for e in whole]
    deltas = [e.delta for e in resumed if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "alpha beta gamma delta epsilon"
    assert whole[-1].type == "response.completed"
    assert whole[-1].response.output_text == "alpha beta gamma delta epsilon"


async def test_cancel_a_background_response(
    openai_client: openai.AsyncOpenAI, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="never finished", stall_ms=30_000))
    queued = await openai_client.responses.create(
        model="claude-sonnet-4-5", input="Wait.", background=True
    )
    await _until(openai_client, queued.id, "in_progress")
    cancelled = await openai_client.responses.cancel(queued.id)
    assert cancelled.status == "cancelled"
    assert (await openai_client.responses.retrieve(queued.id)).status == "cancelled"


async def test_a_client_that_resends_the_whole_conversation_as_input_items(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    """The Vercel AI SDK's way: no previous_response_id, the history in ``input``."""
    sid = (await client.create_session(compute=None))["session_id"]
    same = {"extra_headers": {"X-Cerver-Session-Id": sid}, "tools": [LOOKUP]}
    mock_upstream.script(
        Reply(
            text="Looking.", tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "4"}}]
        )
    )
    question = {"role": "user", "content": [{"type": "input_text", "text": "Where is 4?"}]}
    first = await openai_client.responses.create(model="gpt-5", input=[question], **same)
    [call] = [item for item in first.output if item.type == "function_call"]
    history = [
        question,
        {"role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": "delivered"},
    ]
    second = await openai_client.responses.create(model="gpt-5", input=history, **same)
    assert second.output_text == "[mock upstream] The tool returned: delivered"
    history += [
        {"role": "assistant", "content": [{"type": "output_text", "text": second.output_text}]},
        {"role": "user", "content": "Thanks"},
    ]
    third = await openai_client.responses.create(model="claude-sonnet-4-5", input=history, **same)
    assert third.output_text.startswith('[mock upstream] (claude-sonnet-4-5) You said: "Thanks"')

    # Re-sent history that contradicts the transcript: a 409, nothing written.
    wrong = [{**question, "content": "Where is 5?"}, *history[1:]]
    with pytest.raises(openai.ConflictError) as exc:
        await openai_client.responses.create(model="gpt-5", input=wrong, **same)
    assert exc.value.param == "input" and "input[0] contradicts" in exc.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        await openai_client.responses.create(
            input=history, previous_response_id=third.id, tools=[LOOKUP]
        )
    assert bad.value.param == "previous_response_id"
    entries = (await client.messages(sid))["messages"]
    assert [e["role"] for e in entries if e["role"] != "event"] == [
        "user",
        "assistant",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
    ]


async def test_cancel_a_background_response_still_queued_behind_another(
    openai_client: openai.AsyncOpenAI, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="slow first", stall_ms=30_000))
    first = await openai_client.responses.create(
        model="claude-sonnet-4-5", input="First.", background=True
    )
    await _until(openai_client, first.id, "in_progress")
    sid = first.conversation.id  # type: ignore[union-attr]
    queued = await openai_client.responses.create(
        input="Second.", background=True, extra_body={"conversation": sid}
    )
    assert (await openai_client.responses.retrieve(queued.id)).status == "queued"
    cancelled = await openai_client.responses.cancel(queued.id)
    assert cancelled.status == "cancelled" and cancelled.id == queued.id
    await openai_client.responses.cancel(first.id)


async def test_a_background_response_refused_before_it_began_reads_back_as_failed(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    mock_upstream.script(Reply(text="slow first", chunk_delay_ms=200))
    first = await openai_client.responses.create(
        model="claude-sonnet-4-5", input="First.", background=True
    )
    sid = first.conversation.id  # type: ignore[union-attr]
    # Planned against the transcript as it is now; by the time it gets the session the first
    # turn has written to it, so it is refused (409) without writing to the session. Its run
    # is recorded as failed with the reason: the id the client holds reads back.
    second = await openai_client.responses.create(
        input="Second.", background=True, extra_body={"conversation": sid}
    )
    await _until(openai_client, first.id, "completed")
    refused = await asyncio.wait_for(_until(openai_client, second.id, "failed"), 10)
    assert refused.error is not None and "changed while this request waited" in (
        refused.error.message
    )
    replayed = await openai_client.responses.retrieve(second.id, stream=True)
    events = await asyncio.wait_for(_types(replayed), 10)
    assert events[-1] == "response.failed", events
    entries = (await client.messages(sid))["messages"]
    assert [e["run_id"] for e in entries] == [parse_response_id(first.id)[1]] * 2
