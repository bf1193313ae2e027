"""``POST /v1/messages`` driven by the official ``anthropic`` SDK, models served by the mock
upstream (a test double)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from cerver.client import AsyncClient
from cerver.testing.mock_upstream import MockUpstream, Reply

SESSION = "X-Cerver-Session-Id"
LOOKUP = {
    "name": "lookup_order",
    "description": "Look up an order by id.",
    "input_schema": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}


async def test_two_turns_swapping_the_model(
    anthropic_client: anthropic.AsyncAnthropic, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    raw = await anthropic_client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hi"}],
        metadata={"user_id": "end-user-9"},
    )
    first = await raw.parse()
    sid = raw.headers[SESSION]
    assert first.type == "message" and first.stop_reason == "end_turn"
    assert first.model == "anthropic/claude-sonnet-4-5"
    assert first.content[0].text.startswith("[mock upstream] (claude-sonnet-4-5)")
    assert first.usage.output_tokens > 0

    stream_text = ""
    async with anthropic_client.messages.stream(
        model="openai/gpt-5",
        max_tokens=256,
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": first.content[0].text}]},
            {"role": "user", "content": "And now?"},
        ],
        extra_headers={SESSION: sid},
    ) as stream:
        kinds = []
        async for event in stream:
            kinds.append(event.type)
            if event.type == "text":
                stream_text += event.text
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop"} <= set(kinds)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert final.content[0].text == stream_text
    assert "I can see 2 messages" in stream_text

    session = await client.get_session(sid, transcript=True)
    assert session["user"] == "end-user-9"
    answers = [e for e in session["transcript"] if e["role"] == "assistant"]
    assert [(e["harness"], e["model"]) for e in answers] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-5"),
    ]
    switches = [e for e in session["transcript"] if e["kind"] == "harness_switched"]
    assert switches[-1]["metadata"]["reason"] == "messages"


async def test_client_tool_round_trip_streamed(
    anthropic_client: anthropic.AsyncAnthropic, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(compute=None, model="claude-sonnet-4-5"))["session_id"]
    mock_upstream.script(
        Reply(
            text="Let me look.",
            tool_calls=[{"name": "lookup_order", "arguments": {"order_id": "42"}}],
        )
    )
    messages: list[Any] = [{"role": "user", "content": "Where is order 42?"}]
    async with anthropic_client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=256,
        messages=messages,
        tools=[LOOKUP],
        extra_headers={SESSION: sid},
    ) as stream:
        first = await stream.get_final_message()
    assert first.stop_reason == "tool_use"
    assert [block.type for block in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert (call.name, call.input) == ("lookup_order", {"order_id": "42"})

    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "shipped"}],
        },
    ]
    second = await anthropic_client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=256,
        messages=messages,
        tools=[LOOKUP],
        extra_headers={SESSION: sid},
    )
    assert second.stop_reason == "end_turn"
    assert "The tool returned: shipped" in second.content[0].text
    kinds = [(e["role"], e["kind"]) for e in (await client.messages(sid))["messages"]]
    assert kinds == [
        ("user", "text"),
        ("assistant", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]


async def test_errors_are_anthropic_errors(
    anthropic_client: anthropic.AsyncAnthropic, client: AsyncClient
) -> None:
    with pytest.raises(anthropic.NotFoundError) as exc:
        await anthropic_client.messages.create(
            model="claud-opus-4-1", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert exc.value.body["error"]["type"] == "not_found_error"
    assert "Did you mean 'claude-opus-4-1'?" in exc.value.message
    with pytest.raises(anthropic.BadRequestError) as exc:
        await anthropic_client.messages.create(
            model="claude-opus-4-1",
            max_tokens=10,
            extra_body={"top_k": 5},
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert "Unsupported parameter 'top_k'" in exc.value.message
    bad = anthropic.AsyncAnthropic(
        base_url=str(anthropic_client.base_url),
        api_key="ck_wrong",
        http_client=anthropic_client._client,
        max_retries=0,
    )
    with pytest.raises(anthropic.AuthenticationError):
        await bad.messages.create(
            model="claude-opus-4-1", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )


async def test_idempotency_key_runs_the_turn_once(
    anthropic_client: anthropic.AsyncAnthropic, client: AsyncClient
) -> None:
    sid = (await client.create_session(compute=None))["session_id"]
    headers = {SESSION: sid, "Idempotency-Key": "order-42-question"}
    request: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
        "extra_headers": headers,
    }
    first = await anthropic_client.messages.create(**request)
    again = await anthropic_client.messages.create(**request)
    assert again.id == first.id
    roles = [e["role"] for e in (await client.messages(sid))["messages"] if e["role"] != "event"]
    assert roles == ["user", "assistant"]
