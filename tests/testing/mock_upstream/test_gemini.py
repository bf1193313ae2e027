"""The Gemini dialect, driven with raw HTTP as Gemini CLI sends it (no Google SDK here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec, UpstreamFailure

MODEL = "gemini-2.5-flash"
SHELL = {
    "functionDeclarations": [
        {
            "name": "run_shell_command",
            "description": "Runs a shell command.",
            "parametersJsonSchema": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        }
    ]
}


@pytest.fixture
async def http(upstream: MockUpstream) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"x-goog-api-key": "test-gemini-key"}
    async with httpx.AsyncClient(base_url=upstream.gemini_base_url, headers=headers) as client:
        yield client


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


async def generate(http: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await http.post(f"/v1beta/models/{MODEL}:generateContent", json=body)


async def stream(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    response = await http.post(url, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    return [orjson.loads(line[6:]) for line in lines]


async def test_generate_content_text(upstream: MockUpstream, http: httpx.AsyncClient) -> None:
    upstream.script(Reply(text="Hello from the mock."))
    response = await generate(http, {"contents": [user("hi")]})

    assert response.status_code == 200
    body = response.json()
    [candidate] = body["candidates"]
    assert candidate["content"] == {"role": "model", "parts": [{"text": "Hello from the mock."}]}
    assert candidate["finishReason"] == "STOP"
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] > 0 and usage["candidatesTokenCount"] > 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert body["modelVersion"] == MODEL
    [logged] = upstream.requests
    assert (logged["api"], logged["model"], logged["stream"]) == ("gemini", MODEL, False)
    assert logged["headers"]["x-goog-api-key"] == "<redacted>"
    assert logged["body"] == {"contents": [user("hi")]}  # as sent: no fields from the URL


async def test_stream_sends_text_then_usage(
    upstream: MockUpstream, http: httpx.AsyncClient
) -> None:
    upstream.script(Reply(text="one two three"))
    chunks = await stream(http, {"contents": [user("hi")]})

    texts = [p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert "".join(texts) == "one two three" and len(texts) == 3
    assert "usageMetadata" not in chunks[0] and "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] > 0
    assert upstream.requests[0]["stream"] is True and upstream.requests[0]["query"] == "alt=sse"


async def test_default_rules_call_the_shell_tool_and_read_its_result(
    upstream: MockUpstream, http: httpx.AsyncClient
) -> None:
    asked = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "<session_context>\nThis is the Gemini CLI.\n</session_context>"},
                    {"text": "Please run `ls -la`"},
                ],
            }
        ],
        "systemInstruction": {"parts": [{"text": "You are an agent. Use `rm` never."}]},
        "tools": [SHELL],
    }
    chunks = await stream(http, asked)
    parts = [p for c in chunks for p in c["candidates"][0]["content"]["parts"]]
    assert parts == [{"functionCall": {"name": "run_shell_command", "args": {"command": "ls -la"}}}]

    answered = {
        **asked,
        "contents": [
            *asked["contents"],
            {"role": "model", "parts": parts},
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "run_shell_command",
                            "response": {"output": "total 0"},
                        }
                    }
                ],
            },
        ],
    }
    body = (await generate(http, answered)).json()
    [part] = body["candidates"][0]["content"]["parts"]
    assert part == {"text": "[mock upstream] The tool returned: total 0"}


async def test_summary_counts_turns_and_skips_injected_context(
    http: httpx.AsyncClient,
) -> None:
    contents = [
        user("first question"),
        {"role": "model", "parts": [{"text": "an answer"}, {"text": "...", "thought": True}]},
        user("second question"),
    ]
    body = (await generate(http, {"contents": contents})).json()
    text = body["candidates"][0]["content"]["parts"][0]["text"]
    assert text == (
        f'[mock upstream] ({MODEL}) You said: "second question". Earlier in this conversation '
        'I can see 2 messages; the first user message was: "first question".'
    )


async def test_scripted_tool_calls_follow_the_text(
    upstream: MockUpstream, http: httpx.AsyncClient
) -> None:
    call = ToolCallSpec(name="write_file", arguments={"file_path": "a.txt", "content": "x"})
    upstream.script(Reply(text="Writing.", tool_calls=[call]))
    body = (await generate(http, {"contents": [user("go")]})).json()

    assert body["candidates"][0]["content"]["parts"] == [
        {"text": "Writing."},
        {"functionCall": {"name": "write_file", "args": {"file_path": "a.txt", "content": "x"}}},
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, "INVALID_ARGUMENT"), (429, "RESOURCE_EXHAUSTED"), (503, "UNAVAILABLE")],
)
async def test_scripted_errors_in_googles_shape(
    upstream: MockUpstream, http: httpx.AsyncClient, status: int, expected: str
) -> None:
    upstream.script(Reply(error=UpstreamFailure(status=status, message="scripted")))
    response = await generate(http, {"contents": [user("hi")]})

    assert response.status_code == status
    assert response.json() == {"error": {"code": status, "message": "scripted", "status": expected}}


@pytest.mark.parametrize(
    "contents",
    [
        # A call without its response.
        [user("hi"), {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]}],
        # A response without a call.
        [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}],
        # Two responses to one call (what Gemini CLI 0.61's --resume sends).
        [
            user("hi"),
            {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "f", "args": {}}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "c1", "name": "f", "response": {}}},
                    {"functionResponse": {"id": "c1", "name": "f", "response": {}}},
                ],
            },
        ],
        # A role the API does not know.
        [{"role": "assistant", "parts": [{"text": "hi"}]}],
    ],
)
async def test_invalid_conversations_are_refused(
    http: httpx.AsyncClient, contents: list[dict[str, Any]]
) -> None:
    response = await generate(http, {"contents": contents})

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_stream_without_sse_and_unknown_methods_are_refused(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post(
        f"/v1beta/models/{MODEL}:streamGenerateContent", json={"contents": [user("hi")]}
    )
    assert response.status_code == 400
    response = await http.post(f"/v1beta/models/{MODEL}:embedContent", json={})
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


async def test_count_tokens_does_not_take_a_scripted_reply(
    upstream: MockUpstream, http: httpx.AsyncClient
) -> None:
    upstream.script(Reply(text="kept"))
    response = await http.post(
        f"/v1beta/models/{MODEL}:countTokens", json={"contents": [user("count me")]}
    )

    assert response.status_code == 200 and response.json()["totalTokens"] > 0
    assert len(upstream.state.pending) == 1
    assert upstream.requests[-1]["api"] == "gemini"


async def test_mid_stream_error_event(upstream: MockUpstream, http: httpx.AsyncClient) -> None:
    upstream.script(Reply(text="a b c d", fail_after_chunks=2, fail_with="error_event"))
    chunks = await stream(http, {"contents": [user("hi")]})

    assert len(chunks) == 3
    assert chunks[-1]["error"]["code"] == 500
