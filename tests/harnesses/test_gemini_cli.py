"""The real Gemini CLI drives sessions inside its local sandbox.

The CLI runs in the session's workspace under bubblewrap and reaches the mock upstream's
Gemini API (a test double) only through the gateway's model proxy. It needs the CLI:
``cerver setup`` installs it. Locally a missing CLI skips these tests, naming that step; in
CI it fails them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cerver.cli_programs import GEMINI_CLI_INSTALL, gemini_cli_entry
from cerver.client import AsyncClient
from cerver.errors import MissingDependency, UpstreamError
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from harnesses._cli_preamble import PREAMBLE_START
from tests.harnesses.cli_support import kinds, requests_of, require_cli


@pytest.fixture
def gemini_cli() -> None:
    require_cli(gemini_cli_entry(), "Gemini CLI", GEMINI_CLI_INSTALL)


def gemini_requests(upstream: MockUpstream) -> list[dict[str, Any]]:
    return requests_of(upstream, "gemini")


async def test_gemini_cli_runs_a_shell_tool_in_the_workspace(
    gemini_cli: None, client: AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="gemini-cli"))["session_id"]
    result = await client.run_llm(sid, "Please run `echo from-gemini > gm.txt && cat gm.txt`")

    assert result["status"] == "completed", result
    assert result["harness"] == "gemini-cli"
    entries = (await client.messages(sid))["messages"]
    assert kinds(entries) == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    call, output, answer = entries[1:]
    assert call["parts"][0]["name"] == "run_shell_command"
    assert call["parts"][0]["arguments"]["command"] == "echo from-gemini > gm.txt && cat gm.txt"
    assert output["content"] == "from-gemini"
    assert output["parts"][0]["tool_call_id"] == call["parts"][0]["id"]
    assert answer["content"].startswith("[mock upstream] The tool returned:")
    assert "from-gemini" in answer["content"]
    for entry in entries[1:]:
        assert (entry["harness"], entry["provider"]) == ("gemini-cli", "gemini")
        assert entry["run_id"] == result["run_id"]
        assert entry["metadata"]["cli_session"]
    # The tool ran in the session's workspace; the CLI's HOME is the run's own.
    assert (await client.read_file(sid, "gm.txt"))["content"] == "from-gemini\n"
    files = await client.list_files(sid, f".cerver/runs/{result['run_id']}/home")
    assert ".gemini/settings.json" in files
    # Both model calls went through the proxy with the run token (never the real key),
    # streamed, and were metered to the run; the token is gone afterwards.
    calls = gemini_requests(mock_upstream)
    assert [c["path"] for c in calls] == ["/v1beta/models/gemini-2.5-pro:streamGenerateContent"] * 2
    assert all(c["query"] == "alt=sse" and c["stream"] for c in calls)
    assert all(c["headers"]["x-goog-api-key"] == "<redacted>" for c in calls)
    metrics = await client.metrics(sid)
    [row] = [r for r in metrics["by_harness"] if r["harness"] == "gemini-cli"]
    assert row["calls"] == 2 and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert result["usage"]["input_tokens"] == row["input_tokens"]
    assert len(gateway.proxy.grants) == 0


async def test_a_session_moves_from_gemini_cli_to_anthropic(
    gemini_cli: None, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="gemini-cli"))["session_id"]
    first = await client.run_llm(sid, "Please run `echo gemini-handover`")
    assert first["status"] == "completed", first
    mock_upstream.reset()

    second = await client.run_llm(sid, "Summarise the session.", harness="anthropic")
    request = [r for r in mock_upstream.requests if r["api"] == "anthropic"][-1]["body"]
    blocks = [b for m in request["messages"] for b in m["content"]]
    # The SDK harness sees the Gemini turn as text, a tool call and its result.
    assert {"type": "text", "text": "Please run `echo gemini-handover`"} in blocks
    [use] = [b for b in blocks if b["type"] == "tool_use"]
    assert use["name"] == "run_shell_command"
    assert use["input"] == {"command": "echo gemini-handover"}
    [result] = [b for b in blocks if b["type"] == "tool_result"]
    assert result["tool_use_id"] == use["id"] and "gemini-handover" in json.dumps(result)
    assert any(b["type"] == "text" and "The tool returned" in b["text"] for b in blocks)
    assert "The last tool output I can see" in second["message"]["content"]


async def test_gemini_cli_takes_over_with_a_preamble(
    gemini_cli: None, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="anthropic"))["session_id"]
    await client.run_llm(sid, "Remember the word preamble-marker.")
    await client.run_llm(sid, "What was the word?", harness="gemini-cli")
    await client.run_llm(sid, "And now?", harness="gemini-cli")

    first, second = (json.dumps(r["body"]) for r in gemini_requests(mock_upstream))
    # The history goes in the system instruction (the run's GEMINI.md), not the user turn.
    for body in (first, second):
        assert PREAMBLE_START in body and "preamble-marker" in body
    last = gemini_requests(mock_upstream)[-1]["body"]
    assert PREAMBLE_START in json.dumps(last["systemInstruction"])
    assert PREAMBLE_START not in json.dumps(last["contents"])
    # The second gemini-cli turn gets the first one in its preamble (no native resume).
    assert "What was the word?" in json.dumps(last["systemInstruction"])
    assert last["contents"][-1]["parts"][-1] == {"text": "And now?"}


async def test_an_upstream_error_fails_the_run_and_keeps_the_session_usable(
    gemini_cli: None, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="gemini-cli"))["session_id"]
    mock_upstream.script(Reply(error=UpstreamFailure(status=500, message="refused by test")))
    with pytest.raises(UpstreamError) as caught:
        await client.run_llm(sid, "hello")
    assert "refused by test" in caught.value.message
    assert caught.value.retryable is True
    assert len(gemini_requests(mock_upstream)) == 1  # the CLI does not retry on its own
    entries = (await client.messages(sid))["messages"]
    assert kinds(entries)[-1] == ("event", "error")

    ok = await client.run_llm(sid, "hello again")
    assert ok["status"] == "completed"
    assert (await client.get_session(sid))["status"] == "ready"


async def test_a_missing_gemini_cli_names_its_install_step(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cerver.cli_programs.gemini_cli_entry", lambda: None)
    sid = (await client.create_session(user="u1", harness="gemini-cli"))["session_id"]
    before = (await client.messages(sid))["messages"]
    with pytest.raises(MissingDependency) as caught:  # refused before the turn began
        await client.run_llm(sid, "hello")
    assert "Install it with: cerver setup" in caught.value.message
    assert (await client.messages(sid))["messages"] == before
