"""End to end: the official ``openai`` and ``anthropic`` SDKs against a real `cerver serve`
(its models are the built-in mock upstream, a test double), only ``base_url`` and ``api_key``
changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import bootstrap_key

pytestmark = pytest.mark.e2e

openai = pytest.importorskip("openai", reason="pip install openai")
anthropic = pytest.importorskip("anthropic", reason="pip install anthropic")

SHELL = {
    "type": "function",
    "function": {
        "name": "shell",
        "description": "Run a command on the user's machine.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}


def test_sdks_drive_one_session_through_a_swap_and_a_tool_round_trip(
    server: tuple[str, Path],
) -> None:
    url, data_dir = server
    key = bootstrap_key(data_dir)
    auth = {"Authorization": f"Bearer {key}"}
    sid = httpx.post(f"{url}/v2/sessions", json={"compute": None}, headers=auth, timeout=60).json()[
        "session_id"
    ]
    chat = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key=key,
        max_retries=0,
        default_headers={"X-Cerver-Session-Id": sid},
    )

    # 1. The app's own tool: the model calls it, the turn stops, the app answers.
    messages: list[Any] = [{"role": "user", "content": "run: uptime"}]
    first = chat.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[SHELL]
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert call.function.name == "shell" and call.function.arguments == '{"command":"uptime"}'
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "up 3 days"},
    ]
    second = chat.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[SHELL]
    )
    assert second.choices[0].message.content == "[mock upstream] The tool returned: up 3 days"
    messages.append(second.choices[0].message.model_dump(exclude_none=True))

    # 2. Streaming on another model: a harness switch, the same conversation.
    messages.append({"role": "user", "content": "Thanks"})
    stream = chat.chat.completions.create(
        model="openai/gpt-5",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[mock upstream] (gpt-5)") and chunks[-1].usage.total_tokens > 0
    messages.append({"role": "assistant", "content": text})

    # 3. The anthropic SDK continues the same session, with the history in its own shape.
    claude = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
    tool_use = {"type": "tool_use", "id": call.id, "name": "shell", "input": {"command": "uptime"}}
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "up 3 days"}
    history = [
        {"role": "user", "content": "run: uptime"},
        {"role": "assistant", "content": [tool_use]},
        {"role": "user", "content": [result]},
        {"role": "assistant", "content": second.choices[0].message.content},
        {"role": "user", "content": "Thanks"},
        {"role": "assistant", "content": text},
        {"role": "user", "content": "Hello?"},
    ]
    answer = claude.messages.create(
        model="anthropic/claude-haiku-4-5",
        max_tokens=200,
        messages=history,
        extra_headers={"X-Cerver-Session-Id": sid},
    )
    assert answer.content[0].text.startswith(
        '[mock upstream] (claude-haiku-4-5) You said: "Hello?"'
    )

    # 4. Errors arrive as each SDK's own class.
    with pytest.raises(openai.ConflictError):
        chat.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "A different start"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(
            model="claud-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )

    # 5. Every turn is in the session with its harness, model, usage and cost.
    session = httpx.get(f"{url}/v2/sessions/{sid}?transcript=true", headers=auth, timeout=60).json()
    answers = [e for e in session["transcript"] if e["role"] == "assistant"]
    assert [(e["kind"], e["harness"], e["model"]) for e in answers] == [
        ("tool_call", "anthropic", "claude-sonnet-4-5"),
        ("text", "anthropic", "claude-sonnet-4-5"),
        ("text", "openai", "gpt-5"),
        ("text", "anthropic", "claude-haiku-4-5"),
    ]
    for entry in answers:
        assert entry["usage"]["output_tokens"] > 0
    assert [
        e["metadata"]["reason"] for e in session["transcript"] if e["kind"] == "harness_switched"
    ] == [
        "chat.completions",
        "chat.completions",
        "messages",
    ]
    assert session["metrics"]["interaction_count"] == 4
