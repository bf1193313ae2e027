"""Reasoning kept from a provider's stream and replayed to that provider within the turn.

The mock upstream does not produce reasoning, so these tests answer the real SDKs with
hand-written SSE through an ``httpx2.MockTransport``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2
import openai

from cerver.types import ReasoningPart
from harnesses._loop import ToolLoopHarness
from harnesses.anthropic import AnthropicHarness
from harnesses.base import Error, Message, TurnContext
from harnesses.openai import OpenAIHarness
from harnesses.replay import REASONING_ITEM_ID_KEY

if TYPE_CHECKING:
    from cerver.testing.sandbox import ShellSandbox

Event = tuple[str, dict[str, Any]]
Block = tuple[dict[str, Any], list[dict[str, Any]]]


def sse(events: list[Event]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


class Upstream:
    """Answers each request with the next scripted SSE body and keeps the request bodies."""

    def __init__(self, *bodies: list[Event]) -> None:
        self.bodies = list(bodies)
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(json.loads(request.content))
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=sse(self.bodies.pop(0))
        )

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self))


async def run(harness: ToolLoopHarness, sandbox: ShellSandbox) -> list[Any]:
    turn = TurnContext(
        session_id="s", run_id="r", history=[], input="go", model="m", sandbox=sandbox
    )
    return [event async for event in harness.run(turn)]


# -- Anthropic ---------------------------------------------------------------------------------


def anthropic_message(blocks: list[Block]) -> list[Event]:
    usage = {"input_tokens": 10, "output_tokens": 0}
    start = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": {**start, "usage": usage}})
    ]
    for index, (block, deltas) in enumerate(blocks):
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = "tool_use" if any(b["type"] == "tool_use" for b, _ in blocks) else "end_turn"
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


THINKING: Block = (
    {"type": "thinking", "thinking": "", "signature": ""},
    [
        {"type": "thinking_delta", "thinking": "I will list."},
        {"type": "signature_delta", "signature": "sig-xyz"},
    ],
)
REDACTED: Block = ({"type": "redacted_thinking", "data": "opaque"}, [])
TOOL_USE: Block = (
    {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {}},
    [{"type": "input_json_delta", "partial_json": '{"command": "echo hi"}'}],
)
TEXT: Block = ({"type": "text", "text": ""}, [{"type": "text_delta", "text": "Done."}])


async def test_anthropic_thinking_is_kept_and_replayed(sandbox: ShellSandbox) -> None:
    upstream = Upstream(
        anthropic_message([THINKING, REDACTED, TOOL_USE]), anthropic_message([TEXT])
    )
    client = anthropic.AsyncAnthropic(
        api_key="k", base_url="http://upstream.test", http_client=upstream.client()
    )
    events = await run(AnthropicHarness(client=client), sandbox)

    assert not any(isinstance(e, Error) for e in events)
    entries = [e.entry for e in events if isinstance(e, Message)]
    assert [e.kind for e in entries] == [
        "reasoning",
        "reasoning",
        "tool_call",
        "tool_result",
        "text",
    ]
    assert entries[0].reasoning == ReasoningPart(
        text="I will list.", provider="anthropic", signature="sig-xyz"
    )
    assert entries[0].content == "I will list."
    assert entries[1].reasoning == ReasoningPart(provider="anthropic", encrypted="opaque")
    assert entries[2].usage is not None  # no text in that step: the call carries its usage
    assert entries[0].usage is None
    assert entries[3].content == "hi"

    replayed = upstream.requests[1]["messages"][1]
    assert replayed == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "I will list.", "signature": "sig-xyz"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "echo hi"}},
        ],
    }
    await client.close()


# -- OpenAI ------------------------------------------------------------------------------------


REASONING_ITEM = {
    "id": "rs_1",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "Plan: list."}],
    "encrypted_content": "enc-abc",
}
CALL_ITEM = {
    "id": "fc_1",
    "type": "function_call",
    "call_id": "call_1",
    "name": "bash",
    "arguments": '{"command": "echo hi"}',
    "status": "completed",
}
MESSAGE_ITEM = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Done.", "annotations": []}],
}


def openai_response(items: list[dict[str, Any]], status: str = "completed") -> list[Event]:
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": "m",
        "status": status,
        "output": items,
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
    }
    events: list[Event] = [("response.created", {"type": "response.created", "response": response})]
    for index, item in enumerate(items):
        if item["type"] == "message":
            delta = {"type": "response.output_text.delta", "delta": "Done.", "output_index": index}
            events.append(("response.output_text.delta", delta))
        done = {"type": "response.output_item.done", "output_index": index, "item": item}
        events.append(("response.output_item.done", done))
    final = "response.completed" if status == "completed" else "response.incomplete"
    events.append((final, {"type": final, "response": response}))
    return events


def openai_harness(upstream: Upstream) -> tuple[OpenAIHarness, openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        api_key="k", base_url="http://upstream.test/v1", http_client=upstream.client()
    )
    return OpenAIHarness(client=client), client


async def test_openai_reasoning_is_kept_and_replayed(sandbox: ShellSandbox) -> None:
    upstream = Upstream(
        openai_response([REASONING_ITEM, CALL_ITEM]), openai_response([MESSAGE_ITEM])
    )
    harness, client = openai_harness(upstream)
    events = await run(harness, sandbox)

    entries = [e.entry for e in events if isinstance(e, Message)]
    assert [e.kind for e in entries] == ["reasoning", "tool_call", "tool_result", "text"]
    assert entries[0].reasoning == ReasoningPart(
        text="Plan: list.", provider="openai", encrypted="enc-abc"
    )
    assert entries[0].metadata == {REASONING_ITEM_ID_KEY: "rs_1"}

    second = upstream.requests[1]
    assert second["input"][1:4] == [
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Plan: list."}],
            "id": "rs_1",
            "encrypted_content": "enc-abc",
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "bash",
            "arguments": '{"command": "echo hi"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "hi"},
    ]
    await client.close()


async def test_openai_include_only_for_reasoning_models() -> None:
    requests: list[dict[str, Any]] = []
    for model in ("gpt-5.5", "o3-mini", "gpt-4.1"):
        upstream = Upstream(openai_response([MESSAGE_ITEM]))
        harness, client = openai_harness(upstream)
        turn = TurnContext(session_id="s", run_id="r", history=[], input="hi", model=model)
        [event async for event in harness.run(turn)]
        requests += upstream.requests
        await client.close()
    assert [r.get("include") for r in requests] == [
        ["reasoning.encrypted_content"],
        ["reasoning.encrypted_content"],
        None,
    ]


async def test_openai_incomplete_response_marks_the_text(sandbox: ShellSandbox) -> None:
    upstream = Upstream(openai_response([MESSAGE_ITEM], status="incomplete"))
    harness, client = openai_harness(upstream)
    events = await run(harness, sandbox)
    (entry,) = [e.entry for e in events if isinstance(e, Message)]
    assert (entry.content, entry.status) == ("Done.", "incomplete")
    await client.close()


async def test_openai_malformed_arguments_get_an_error_result(sandbox: ShellSandbox) -> None:
    bad_call = {**CALL_ITEM, "arguments": '{"command": '}
    upstream = Upstream(openai_response([bad_call]), openai_response([MESSAGE_ITEM]))
    harness, client = openai_harness(upstream)
    events = await run(harness, sandbox)
    result = next(
        e.entry.tool_result for e in events if isinstance(e, Message) and e.entry.tool_result
    )
    assert result is not None and result.is_error and "not a JSON object" in result.output
    # The call is replayed exactly as the model sent it.
    assert upstream.requests[1]["input"][1]["arguments"] == '{"command": '
    await client.close()
