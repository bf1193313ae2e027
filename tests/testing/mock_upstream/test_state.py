"""The script queue and the request log."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pydantic
import pytest

from cerver.providers import fingerprint
from cerver.testing.mock_upstream import MockState, MockUpstream, Reply


def test_replies_are_first_in_first_out() -> None:
    state = MockState()
    state.script(Reply(text="1"), {"text": "2"})
    assert [state.take("m").text, state.take("m").text] == ["1", "2"]
    assert state.take("m") is None


def test_model_restricted_reply_waits_for_its_model() -> None:
    state = MockState()
    state.script(Reply(text="for haiku", model="claude-haiku-*"), Reply(text="any"))
    assert state.take("claude-sonnet-4").text == "any"
    assert state.take("gpt-5") is None
    assert state.take("claude-haiku-4-5").text == "for haiku"


def test_invalid_reply_is_refused() -> None:
    with pytest.raises(pydantic.ValidationError):
        MockState().script({"text": "x", "delay": 5})


async def test_scripted_replies_reach_the_right_model(
    upstream: MockUpstream, oai: openai.AsyncOpenAI
) -> None:
    upstream.script(Reply(text="big", model="gpt-big"), Reply(text="small", model="gpt-small"))
    small = await oai.responses.create(model="gpt-small", input="hi")
    big = await oai.responses.create(model="gpt-big", input="hi")
    assert (small.output_text, big.output_text) == ("small", "big")
    assert upstream.state.pending == []


async def test_request_log_entries(
    upstream: MockUpstream, claude: anthropic.AsyncAnthropic, oai: openai.AsyncOpenAI
) -> None:
    await claude.messages.create(
        model="claude-x", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    stream = await oai.chat.completions.create(
        model="gpt-x", messages=[{"role": "user", "content": "yo"}], stream=True
    )
    async for _ in stream:
        pass
    await oai.responses.create(model="gpt-y", input="hey")
    first, second, third = upstream.requests
    assert [e["id"] for e in upstream.requests] == ["req_1", "req_2", "req_3"]
    assert first["time"] <= second["time"] <= third["time"]
    assert (first["path"], first["api"], first["model"], first["stream"]) == (
        "/v1/messages",
        "anthropic",
        "claude-x",
        False,
    )
    assert (second["path"], second["api"], second["stream"]) == (
        "/v1/chat/completions",
        "chat",
        True,
    )
    assert (third["path"], third["api"], third["model"]) == ("/v1/responses", "responses", "gpt-y")
    assert first["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert third["body"]["input"] == "hey"
    assert first["headers"]["content-type"] == "application/json"
    assert set(first) == {
        "id",
        "time",
        "path",
        "query",
        "api",
        "model",
        "stream",
        "headers",
        "key_fingerprint",
        "body",
    }


async def test_secret_headers_are_redacted_but_visible(upstream: MockUpstream) -> None:
    headers = {
        "Authorization": "Bearer sk-secret",
        "X-Api-Key": "sk-ant-secret",
        "Cookie": "session=secret",
        "X-Custom": "Visible",
    }
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=upstream.openai_base_url, headers=headers) as http:
        await http.post("/chat/completions", json=body)
    (entry,) = upstream.requests
    assert entry["headers"]["authorization"] == "<redacted>"
    assert entry["headers"]["x-api-key"] == "<redacted>"
    assert entry["headers"]["cookie"] == "<redacted>"
    assert entry["headers"]["x-custom"] == "Visible"
    assert "secret" not in repr(upstream.requests)
    # Which key was sent is visible as a fingerprint (x-api-key comes first).
    assert entry["key_fingerprint"] == fingerprint("sk-ant-secret")


async def test_bad_json_is_logged_and_refused(upstream: MockUpstream) -> None:
    async with httpx.AsyncClient(base_url=upstream.url) as http:
        response = await http.post("/v1/messages", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    (entry,) = upstream.requests
    assert (entry["body"], entry["model"], entry["api"]) == ("{not json", None, "anthropic")


async def test_reset_forgets_queue_and_log(upstream: MockUpstream, oai: openai.AsyncOpenAI) -> None:
    upstream.script(Reply(text="a"), Reply(text="b"))
    await oai.responses.create(model="m", input="hi")
    upstream.reset()
    assert (upstream.requests, upstream.state.pending) == ([], [])
    response = await oai.responses.create(model="m", input="hi")
    assert response.output_text.startswith("[mock upstream]")
    assert upstream.requests[0]["id"] == "req_1"


def test_log_keeps_the_newest_entries() -> None:
    state = MockState(max_logged=2)
    for model in ("a", "b", "c"):
        state.record(path="/", query="", api="chat", model=model, stream=False, headers=[], body={})
    assert [(e["id"], e["model"]) for e in state.requests] == [("req_2", "b"), ("req_3", "c")]
