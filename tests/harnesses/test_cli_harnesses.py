"""The real Claude Code and Codex CLIs drive sessions inside their local sandbox.

Each CLI runs in the session's workspace under bubblewrap and reaches the mock upstream (a
test double) only through the gateway's model proxy. These tests need the CLIs installed:
``pip install -e '.[test]'`` brings Claude Code, ``cerver setup`` installs Codex. Locally a
missing CLI skips its tests, naming that step; in CI it fails them.
"""

from __future__ import annotations

import json

import pytest

from cerver.cli_programs import (
    CLAUDE_CODE_INSTALL,
    CODEX_INSTALL,
    claude_code_binary,
    codex_entry,
)
from cerver.client import AsyncClient
from cerver.errors import InvalidRequest, MissingDependency, UpstreamError
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from harnesses._cli_preamble import PREAMBLE_START
from tests.harnesses.cli_support import kinds, requests_of, require_cli


@pytest.fixture
def claude_code() -> None:
    require_cli(claude_code_binary(), "The Claude Code CLI", CLAUDE_CODE_INSTALL)


@pytest.fixture
def codex() -> None:
    require_cli(codex_entry(), "The Codex CLI", CODEX_INSTALL)


async def test_claude_code_runs_a_shell_tool_in_the_workspace(
    claude_code: None, client: AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="claude"))["session_id"]
    result = await client.run_llm(sid, "Please run `echo from-claude > cc.txt && cat cc.txt`")

    assert result["status"] == "completed", result
    assert result["harness"] == "claude-code"
    entries = (await client.messages(sid))["messages"]
    assert kinds(entries) == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    call, output, answer = entries[1:]
    assert call["parts"][0]["name"] == "Bash"
    assert output["content"] == "from-claude"
    assert answer["content"].startswith("[mock upstream] The tool returned: from-claude")
    for entry in entries[1:]:
        assert (entry["harness"], entry["provider"]) == ("claude-code", "anthropic")
        assert entry["run_id"] == result["run_id"]
        assert entry["metadata"]["cli_session"]
    # The tool ran in the session's workspace, and the CLI's HOME is the run's own.
    assert (await client.read_file(sid, "cc.txt"))["content"] == "from-claude\n"
    files = await client.list_files(sid, f".cerver/runs/{result['run_id']}/home")
    assert any(f.startswith(".claude/projects/") for f in files)
    # Both model calls went through the proxy, were metered to the run, and the token is gone.
    calls = requests_of(mock_upstream, "anthropic")
    assert len(calls) == 2 and all(r["query"] == "beta=true" for r in calls)
    metrics = await client.metrics(sid)
    [row] = [r for r in metrics["by_harness"] if r["harness"] == "claude-code"]
    assert row["calls"] == 2 and row["input_tokens"] > 0
    assert result["usage"]["input_tokens"] == row["input_tokens"]
    # The proxy priced its calls: the run's only charge (Claude Code's estimate is not).
    assert result["usage"]["cost_usd"] > 0
    assert metrics["llm_cost_usd"] == pytest.approx(result["usage"]["cost_usd"], abs=1e-6)
    assert len(gateway.proxy.grants) == 0


async def test_codex_runs_a_shell_tool_in_the_workspace(
    codex: None, client: AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="codex"))["session_id"]
    result = await client.run_llm(sid, "Please run `echo from-codex > cx.txt && cat cx.txt`")

    assert result["status"] == "completed", result
    entries = (await client.messages(sid))["messages"]
    assert kinds(entries) == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    assert entries[1]["parts"][0]["name"] == "exec_command"
    assert entries[2]["content"] == "from-codex\n"
    assert (entries[3]["harness"], entries[3]["provider"]) == ("codex", "openai")
    assert (await client.read_file(sid, "cx.txt"))["content"] == "from-codex\n"
    calls = requests_of(mock_upstream, "responses")
    assert len(calls) == 2 and calls[0]["body"]["store"] is False
    assert result["usage"]["input_tokens"] > 0  # metered by the proxy
    assert len(gateway.proxy.grants) == 0

    # The next codex turn resumes the thread (`codex exec resume`) rather than a preamble.
    await client.run_llm(sid, "What did it print?")
    body = requests_of(mock_upstream, "responses")[-1]["body"]
    kinds_sent = [item["type"] for item in body["input"]]
    assert "function_call" in kinds_sent and "function_call_output" in kinds_sent
    assert PREAMBLE_START not in json.dumps(body)


async def test_claude_code_resumes_its_own_session(
    claude_code: None, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="claude-code"))["session_id"]
    first = await client.run_llm(sid, "Please run `echo first-turn`")
    await client.run_llm(sid, "What did the command print?")

    last = requests_of(mock_upstream, "anthropic")[-1]["body"]
    # Native resume: the CLI replays its own session as messages, and gets no preamble.
    wire = json.dumps(last["messages"])
    assert "echo first-turn" in wire and "tool_use" in wire and "tool_result" in wire
    assert PREAMBLE_START not in json.dumps(last.get("system"))
    entries = (await client.messages(sid))["messages"]
    sessions = {e["metadata"].get("cli_session") for e in entries if e["role"] != "user"}
    assert len(sessions) == 1  # the same Claude Code session went on
    assert first["run_id"] != entries[-1]["run_id"]


async def test_a_session_moves_from_claude_code_to_codex_to_anthropic(
    claude_code: None, codex: None, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="claude-code"))["session_id"]
    await client.run_llm(sid, "Please run `echo handover-marker`")
    mock_upstream.reset()

    second = await client.run_llm(sid, "What has happened so far?", harness="codex")
    assert second["status"] == "completed"
    codex_request = json.dumps(requests_of(mock_upstream, "responses")[-1]["body"])
    # Codex got Claude Code's turn as a delimited preamble: the input, the call, its output.
    assert PREAMBLE_START in codex_request
    assert "Please run `echo handover-marker`" in codex_request
    assert "Bash" in codex_request and "handover-marker" in codex_request
    mock_upstream.reset()

    third = await client.run_llm(sid, "Summarise the session.", harness="anthropic")
    request = requests_of(mock_upstream, "anthropic")[-1]["body"]
    blocks = [b for m in request["messages"] for b in m["content"]]
    # The SDK harness sees both CLIs' turns as text, tool calls and tool results.
    assert {"type": "text", "text": "Please run `echo handover-marker`"} in blocks
    assert any(b["type"] == "tool_use" and b["name"] == "Bash" for b in blocks)
    assert any(b["type"] == "tool_result" and "handover-marker" in json.dumps(b) for b in blocks)
    assert any(b["type"] == "text" and b["text"] == second["message"]["content"] for b in blocks)
    assert "The last tool output I can see" in third["message"]["content"]
    harnesses = [e["harness"] for e in (await client.messages(sid))["messages"]]
    assert {"claude-code", "codex", "anthropic"} <= set(harnesses)


async def test_cli_failures_fail_the_run_and_keep_the_session_usable(
    claude_code: None, client: AsyncClient, mock_upstream: MockUpstream
) -> None:
    sid = (await client.create_session(user="u1", harness="claude-code"))["session_id"]
    mock_upstream.script(Reply(error=UpstreamFailure(status=500, message="refused by test")))
    with pytest.raises(UpstreamError) as caught:
        await client.run_llm(sid, "hello")
    assert "refused by test" in caught.value.message
    assert caught.value.retryable is True  # a 500 is worth retrying
    entries = (await client.messages(sid))["messages"]
    assert kinds(entries)[-1] == ("event", "error")

    ok = await client.run_llm(sid, "hello again")
    assert ok["status"] == "completed"
    assert (await client.get_session(sid))["status"] == "ready"


async def test_a_missing_cli_names_its_install_step(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cerver.cli_programs.codex_entry", lambda: None)
    sid = (await client.create_session(user="u1", harness="codex"))["session_id"]
    before = (await client.messages(sid))["messages"]
    with pytest.raises(MissingDependency) as caught:  # refused before the turn began
        await client.run_llm(sid, "hello")
    assert "Install it with: cerver setup" in caught.value.message
    assert (await client.messages(sid))["messages"] == before  # nothing was written
    ok = await client.run_llm(sid, "hello", harness="anthropic")
    assert ok["status"] == "completed"


async def test_a_cli_turn_without_compute_is_refused_before_anything_is_written(
    client: AsyncClient,
) -> None:
    sid = (await client.create_session(user="u1", harness="anthropic", compute=None))["session_id"]
    await client.run_llm(sid, "hello")
    before = (await client.messages(sid))["messages"]
    with pytest.raises(InvalidRequest, match='"compute": null'):
        await client.run_llm(sid, "hello", harness="claude-code")
    assert (await client.messages(sid))["messages"] == before
    assert (await client.get_session(sid))["harness"] == "anthropic"
