"""``POST /v1/chat/completions`` driven by the official ``openai`` SDK, models served by the
mock upstream (a test double)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from cerver.api import create_app
from cerver.cli_programs import CLAUDE_CODE_INSTALL, claude_code_binary
from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from tests.conftest import ADMIN_KEY, make_settings
from tests.harnesses.cli_support import require_cli

SESSION = "X-Cerver-Session-Id"
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}


def _lookup(order_id: str) -> dict[str, Any]:
    return {"name": "lookup_order", "arguments": {"order_id": order_id}}


async def _new_session(client: AsyncClient, model: str = "claude-sonnet-4-5") -> str:
    session = await client.create_session(user="u1", compute=None, model=model)
    return session["session_id"]


async def test_two_turns_swapping_the_model_land_in_one_session(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    raw = await openai_client.chat.completions.with_raw_response.create(
        model="anthropic/claude-sonnet-4-5",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        user="end-user-7",
    )
    first = raw.parse()
    sid = raw.headers[SESSION]
    assert raw.headers["x-cerver-harness"] == "anthropic"
    assert first.object == "chat.completion"
    assert first.model == "anthropic/claude-sonnet-4-5"
    assert first.choices[0].finish_reason == "stop"
    assert first.choices[0].message.content.startswith("[mock upstream] (claude-sonnet-4-5)")
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert mock_upstream.requests[-1]["body"]["system"] == "Be brief."

    history: list[Any] = [
        {"role": "user", "content": "Hi"},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "user", "content": "And now?"},
    ]
    second = await openai_client.chat.completions.create(
        model="gpt-5", messages=history, extra_headers={SESSION: sid}
    )
    assert second.model == "openai/gpt-5"
    # The swapped-in model saw the whole conversation, not a second copy of it.
    assert "I can see 2 messages" in second.choices[0].message.content
    assert mock_upstream.requests[-1]["path"] == "/v1/responses"

    session = await client.get_session(sid, transcript=True)
    assert session["user"] == "end-user-7"
    assert (session["harness"], session["model"]) == ("openai", "gpt-5")
    entries = session["transcript"]
    assert [(e["role"], e["kind"]) for e in entries] == [
        ("user", "text"),
        ("assistant", "text"),
        ("event", "harness_switched"),
        ("user", "text"),
        ("assistant", "text"),
    ]
    assert entries[2]["metadata"]["reason"] == "chat.completions"
    answers = [e for e in entries if e["role"] == "assistant"]
    assert [(e["harness"], e["model"]) for e in answers] == [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-5"),
    ]
    for answer in answers:
        assert answer["usage"]["output_tokens"] > 0
        assert answer["usage"]["cost_usd"] > 0


async def test_streaming_sends_chunks_usage_and_done(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = await _new_session(client)
    mock_upstream.script(Reply(text="Hello there, streamed."))
    stream = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={SESSION: sid},
    )
    chunks = [chunk async for chunk in stream]
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, streamed."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0

    # The streamed answer, re-sent, is recognised as the transcript's.
    second = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": "Again"},
        ],
        extra_headers={SESSION: sid},
    )
    assert second.choices[0].message.content
    roles = [e["role"] for e in (await client.messages(sid))["messages"] if e["role"] != "event"]
    assert roles == ["user", "assistant", "user", "assistant"]


async def test_client_tool_round_trip(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = await _new_session(client)
    mock_upstream.script(Reply(text="Checking.", tool_calls=[_lookup("42")]))
    messages: list[Any] = [{"role": "user", "content": "Where is order 42?"}]
    first = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[LOOKUP], extra_headers={SESSION: sid}
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "lookup_order" and call.function.arguments == '{"order_id":"42"}'
    offered = [t["name"] for t in mock_upstream.requests[-1]["body"]["tools"]]
    assert offered == ["lookup_order"]
    run = await client.get_session(sid)
    assert run["status"] == "ready"

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "shipped on Monday"},
    ]
    second = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[LOOKUP], extra_headers={SESSION: sid}
    )
    assert second.choices[0].finish_reason == "stop"
    assert "shipped on Monday" in second.choices[0].message.content
    entries = (await client.messages(sid))["messages"]
    assert [(e["role"], e["kind"]) for e in entries] == [
        ("user", "text"),
        ("assistant", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    assert entries[2]["metadata"]["client_tool"] is True
    assert entries[3]["metadata"]["source"] == "chat.completions"
    assert entries[3]["metadata"]["client_tools"][0]["name"] == "lookup_order"  # reoffered
    assert entries[3]["run_id"] == entries[4]["run_id"] != entries[2]["run_id"]

    # The same result again is for a call no longer pending: 409, nothing written.
    messages.append(second.choices[0].message.model_dump(exclude_none=True))
    with pytest.raises(openai.ConflictError) as exc:
        await openai_client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[*messages, {"role": "tool", "tool_call_id": call.id, "content": "again"}],
            tools=[LOOKUP],
            extra_headers={SESSION: sid},
        )
    assert f"tool call {call.id!r}, which is not waiting for one" in exc.value.message
    assert len((await client.messages(sid))["messages"]) == 5


async def test_client_tool_round_trip_through_claude_code(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    """The same round trip when the model is a CLI harness's: Claude Code reaches the app's
    tool through the gateway's MCP server, and the SDK sees an ordinary tool call."""
    require_cli(claude_code_binary(), "The Claude Code CLI", CLAUDE_CODE_INSTALL)
    sid = (await client.create_session(user="u1", harness="claude-code"))["session_id"]
    mcp_call = {"name": "mcp__app__lookup_order", "arguments": {"order_id": "42"}}
    mock_upstream.script(Reply(tool_calls=[mcp_call]))
    model = "claude-code/claude-sonnet-4-6"
    messages: list[Any] = [{"role": "user", "content": "Where is order 42?"}]
    first = await openai_client.chat.completions.create(
        model=model, messages=messages, tools=[LOOKUP], extra_headers={SESSION: sid}
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "lookup_order" and call.function.arguments == '{"order_id":"42"}'

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "shipped on Monday"},
    ]
    second = await openai_client.chat.completions.create(
        model=model, messages=messages, tools=[LOOKUP], extra_headers={SESSION: sid}
    )
    assert second.choices[0].finish_reason == "stop"
    entries = (await client.messages(sid))["messages"]
    assert [(e["role"], e["kind"], e["harness"]) for e in entries] == [
        ("user", "text", None),
        ("assistant", "tool_call", "claude-code"),
        ("tool", "tool_result", None),
        ("assistant", "text", "claude-code"),
    ]
    assert "shipped on Monday" in json.dumps(mock_upstream.requests[-1]["body"])


async def test_streamed_tool_calls(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = await _new_session(client)
    mock_upstream.script(Reply(tool_calls=[_lookup("7")]))
    stream = await openai_client.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "user", "content": "Order 7?"}],
        tools=[LOOKUP],
        stream=True,
        extra_headers={SESSION: sid},
    )
    chunks = [chunk async for chunk in stream]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(tc.index, tc.function.name, tc.function.arguments) for tc in calls] == [
        (0, "lookup_order", '{"order_id":"7"}')
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_history_that_contradicts_the_transcript_is_a_409(
    openai_client: openai.AsyncOpenAI, client: AsyncClient
) -> None:
    sid = await _new_session(client)
    await openai_client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers={SESSION: sid},
    )
    with pytest.raises(openai.ConflictError) as exc:
        await openai_client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Something I never said"},
                {"role": "user", "content": "Next"},
            ],
            extra_headers={SESSION: sid},
        )
    assert "messages[1] contradicts the session's transcript (entry seq 2)" in exc.value.message
    assert exc.value.body["param"] == "messages"
    assert len((await client.messages(sid))["messages"]) == 2


async def test_history_sent_to_a_new_session_is_kept_before_the_turn(
    openai_client: openai.AsyncOpenAI, client: AsyncClient
) -> None:
    raw = await openai_client.chat.completions.with_raw_response.create(
        model="claude-haiku-4-5",
        messages=[
            {"role": "user", "content": "My name is Ada."},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "What is my name?"},
        ],
    )
    entries = (await client.messages(raw.headers[SESSION]))["messages"]
    assert [(e["role"], e["metadata"].get("source")) for e in entries] == [
        ("user", "chat.completions"),
        ("assistant", "chat.completions"),
        ("user", None),
        ("assistant", None),
    ]
    assert "I can see 2 messages" in raw.parse().choices[0].message.content


async def test_unknown_model_is_an_openai_404_with_a_suggestion(
    openai_client: openai.AsyncOpenAI,
) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        await openai_client.chat.completions.create(
            model="claud-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}]
        )
    assert exc.value.code == "model_not_found"
    assert exc.value.param == "model"
    assert "Did you mean 'claude-sonnet-4-5'?" in exc.value.message
    with pytest.raises(openai.NotFoundError) as exc:
        await openai_client.chat.completions.create(
            model="anthropc/claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}]
        )
    assert "Unknown harness 'anthropc'" in exc.value.message
    assert "Did you mean 'anthropic'?" in exc.value.message


async def test_unsupported_parameters_are_named(openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        await openai_client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "Hi"}], top_p=0.5
        )
    assert exc.value.param == "top_p" and "Unsupported parameter 'top_p'" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        await openai_client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "Hi"}], n=2
        )
    assert exc.value.param == "n"


async def test_errors_keep_openai_shape_and_v2_keeps_its_own(
    gateway: Any, http: httpx.AsyncClient
) -> None:
    bad_key = await http.post(
        "/v1/chat/completions",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": "Bearer ck_nope"},
    )
    assert bad_key.status_code == 401
    assert bad_key.json()["error"]["type"] == "authentication_error"
    missing = await http.post("/v1/chat/completions", json={"model": "gpt-5"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    unknown = await http.post(
        "/v1/chat/completions",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]},
        headers={SESSION: "sess_missing"},
    )
    assert unknown.status_code == 404 and "error" in unknown.json()
    v2 = await http.get("/v2/sessions/sess_missing")
    assert v2.status_code == 404 and v2.json()["code"] == "not_found"


async def test_models_lists_the_grammar(openai_client: openai.AsyncOpenAI) -> None:
    ids = [model.id async for model in openai_client.models.list()]
    assert "claude-sonnet-4-5" in ids and "codex/gpt-5.5" in ids
    assert (await openai_client.models.retrieve("xai/grok-4")).id == "xai/grok-4"
    with pytest.raises(openai.NotFoundError):
        await openai_client.models.retrieve("gtp-5")


async def test_an_answer_around_a_sandbox_tool_is_one_message_both_ways(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    session = await client.create_session(compute={"provider": "local"}, model="claude-sonnet-4-5")
    sid = session["session_id"]
    mock_upstream.script(
        Reply(
            text="Let me run it.",
            tool_calls=[{"name": "bash", "arguments": {"command": "echo hi"}}],
        )
    )
    stream = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Say hi from the shell"}],
        stream=True,
        extra_headers={SESSION: sid},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Let me run it.\n\n[mock upstream] The tool returned: hi"
    # The sandbox call is Cerver's own: the client's history holds the answer as it was sent.
    again = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "user", "content": "Say hi from the shell"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": "Thanks"},
        ],
        extra_headers={SESSION: sid},
    )
    assert again.choices[0].finish_reason == "stop"


async def test_a_failed_turn_is_an_sdk_error_and_resending_retries_it(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = await _new_session(client)
    mock_upstream.script(Reply(error=UpstreamFailure(status=400, message="bad request upstream")))
    messages: list[Any] = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.APIStatusError) as exc:
        await openai_client.chat.completions.create(
            model="claude-sonnet-4-5", messages=messages, extra_headers={SESSION: sid}
        )
    assert exc.value.status_code == 502 and exc.value.code == "upstream_error"
    assert "bad request upstream" in exc.value.message
    retried = await openai_client.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, extra_headers={SESSION: sid}
    )
    assert retried.choices[0].message.content.startswith("[mock upstream]")
    kinds = [(e["role"], e["kind"]) for e in (await client.messages(sid))["messages"]]
    assert kinds == [("user", "text"), ("event", "error"), ("assistant", "text")]


async def test_idempotency_key_replays_the_answer_with_its_cerver_headers(
    openai_client: openai.AsyncOpenAI, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    request = {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "Once only."}],
        "extra_headers": {"Idempotency-Key": "chat-once"},
    }
    first = await openai_client.chat.completions.with_raw_response.create(**request)
    again = await openai_client.chat.completions.with_raw_response.create(**request)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    for name in (SESSION, "X-Cerver-Run-Id", "X-Cerver-Harness", "X-Cerver-Model"):
        assert again.headers[name] == first.headers[name], name
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(mock_upstream.requests) == 1  # the retry ran nothing
    entries = (await client.messages(first.headers[SESSION]))["messages"]
    assert [e["role"] for e in entries if e["role"] != "event"] == ["user", "assistant"]

    with pytest.raises(openai.UnprocessableEntityError) as exc:
        await openai_client.chat.completions.create(
            **{**request, "messages": [{"role": "user", "content": "Something else."}]}
        )
    assert exc.value.code == "idempotency_key_reused"  # OpenAI's error shape, Cerver's code


async def test_a_model_refused_at_start_leaves_no_new_session_behind(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    """A CLI harness on a gateway whose sessions get no compute: refused before the turn, and
    the session the request would have created is not left behind."""
    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream, default_compute=None))
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://cerver.test") as http:
            sdk = openai.AsyncOpenAI(
                base_url="http://cerver.test/v1", api_key=ADMIN_KEY, http_client=http
            )
            with pytest.raises(openai.BadRequestError) as refused:
                await sdk.chat.completions.create(
                    model="codex/gpt-5", messages=[{"role": "user", "content": "hi"}]
                )
            assert "compute" in refused.value.message
            listed = await http.get(
                "/v2/sessions", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            )
            assert listed.json()["sessions"] == []
    finally:
        await gateway.stop()
