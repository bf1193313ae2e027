"""The app's own tools on the CLI harnesses, with the real CLIs in the local sandbox.

Each CLI gets the app's tools from the gateway's MCP server (``/v2/proxy/mcp``, through its
sandbox's forwarder, with its run's token); the mock upstream (a test double) plays a model
that calls one. The call stops the turn (``requires_action``); the app's result continues it
in a fresh CLI process that reads the call and the result in the session history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cerver.cli_programs import (
    CLAUDE_CODE_INSTALL,
    CODEX_INSTALL,
    GEMINI_CLI_INSTALL,
    claude_code_binary,
    codex_entry,
    gemini_cli_entry,
)
from cerver.errors import InvalidRequest
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec
from cerver.testing.sandbox import ShellSandbox
from cerver.types import Entry, ToolCallPart, ToolResultPart
from compute.base import CliHosting
from harnesses._cli import CONTINUE_PROMPT, _AppCalls
from harnesses._cli_preamble import PREAMBLE_START
from harnesses.claude_code import ClaudeCodeHarness
from harnesses.tools import CLIENT_TOOL_KEY
from tests.harnesses.cli_support import kinds, requests_of, require_cli

LOOKUP = {
    "name": "lookup_order",
    "description": "Find an order by its id.",
    "parameters": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
}


@dataclass(frozen=True)
class Cli:
    """One CLI: how to find it, and how its model calls the app's ``lookup_order``."""

    harness: str
    api: str
    found: Callable[[], object]
    install: str
    call: ToolCallSpec
    offered_as: str


CLIS = [
    Cli(
        "claude-code",
        "anthropic",
        claude_code_binary,
        CLAUDE_CODE_INSTALL,
        ToolCallSpec(name="mcp__app__lookup_order", arguments={"id": "A-7"}),
        "mcp__app__lookup_order",
    ),
    # Codex offers MCP tools as a namespace (loaded through its tool_search).
    Cli(
        "codex",
        "responses",
        codex_entry,
        CODEX_INSTALL,
        ToolCallSpec(name="lookup_order", namespace="mcp__app", arguments={"id": "A-7"}),
        "mcp__app",
    ),
    Cli(
        "gemini-cli",
        "gemini",
        gemini_cli_entry,
        GEMINI_CLI_INSTALL,
        ToolCallSpec(name="mcp_app_lookup_order", arguments={"id": "A-7"}),
        "mcp_app_lookup_order",
    ),
]


@pytest.fixture(params=CLIS, ids=[cli.harness for cli in CLIS])
def cli(request: pytest.FixtureRequest) -> Cli:
    found: Cli = request.param
    require_cli(found.found(), f"The {found.harness} CLI", found.install)
    return found


@pytest.fixture
def claude_code() -> None:
    require_cli(claude_code_binary(), "The Claude Code CLI", CLAUDE_CODE_INSTALL)


async def _session(http: httpx.AsyncClient, harness: str) -> str:
    body = {"compute": {"provider": "local"}, "harness": harness}
    return (await http.post("/v2/sessions", json=body)).json()["session_id"]


async def test_a_cli_stops_at_the_apps_tool_and_continues_from_its_result(
    cli: Cli, http: httpx.AsyncClient, gateway: Gateway, mock_upstream: MockUpstream
) -> None:
    sid = await _session(http, cli.harness)
    mock_upstream.script(Reply(tool_calls=[cli.call]))
    stopped = (
        await http.post(
            f"/v2/sessions/{sid}/run-llm", json={"input": "Where is order A-7?", "tools": [LOOKUP]}
        )
    ).json()

    assert stopped["status"] == "requires_action", stopped
    [pending] = stopped["pending_tool_calls"]
    assert (pending["name"], pending["arguments"]) == ("lookup_order", {"id": "A-7"})
    entries = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert kinds(entries) == [("user", "text"), ("assistant", "tool_call")]
    call = entries[1]
    assert call["metadata"]["client_tool"] is True
    assert (call["harness"], call["run_id"]) == (cli.harness, stopped["run_id"])
    assert call["content"].startswith("lookup_order ")
    # The CLI was stopped and its run token revoked: no process waits on the app.
    assert len(gateway.proxy.grants) == 0
    assert stopped["usage"]["input_tokens"] > 0  # its model call was metered to the run

    done = await http.post(
        f"/v2/sessions/{sid}/tool-results",
        json={"results": [{"tool_call_id": pending["id"], "output": "shipped on 20 November"}]},
    )

    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["status"] == "completed", answer
    assert answer["run_id"] != stopped["run_id"]
    # A fresh CLI process read the call and its result in the history, then went on.
    body = json.dumps(requests_of(mock_upstream, cli.api)[-1]["body"])
    assert PREAMBLE_START in body and "shipped on 20 November" in body
    assert CONTINUE_PROMPT in body
    entries = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert kinds(entries)[2:] == [("tool", "tool_result"), ("assistant", "text")]
    assert entries[3]["harness"] == cli.harness
    # The app's tools stay offered to the continuing CLI.
    assert cli.offered_as in body
    assert len(gateway.proxy.grants) == 0


class _WholeOutputSandbox(ShellSandbox):
    """A test double of a vendor sandbox whose commands' output arrives when they end."""

    provider = "vendor-double"

    async def cli_hosting(self) -> CliHosting:
        return CliHosting(programs={"claude-code": "/opt/cerver-tools/claude"}, proxy="url")


async def test_the_apps_tools_are_refused_where_output_does_not_stream(tmp_path: Path) -> None:
    harness = ClaudeCodeHarness()
    sandbox = _WholeOutputSandbox(tmp_path)
    await harness.preflight(sandbox, public_url="https://gw.example")  # no tools: it can run

    with pytest.raises(InvalidRequest, match="output streams while it runs") as refused:
        await harness.preflight(sandbox, public_url="https://gw.example", client_tools=True)
    assert refused.value.context["param"] == "tools"
    assert "local, relay, e2b" in refused.value.message


async def test_a_call_the_cli_got_a_result_for_is_an_ordinary_call(
    claude_code: None,
    http: httpx.AsyncClient,
    gateway: Gateway,
    mock_upstream: MockUpstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI calls the app's tool but its MCP server never listed it (the CLI answers
    the call itself with an error and goes on): the turn does not stop at that call."""

    async def nothing(grant: object) -> tuple[()]:
        return ()

    monkeypatch.setattr(gateway.proxy.app_tools, "_tools_of", nothing)
    sid = await _session(http, "claude-code")
    call = ToolCallSpec(name="mcp__app__lookup_order", arguments={"id": "A-7"})
    mock_upstream.script(Reply(tool_calls=[call]))
    result = (
        await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "Hi", "tools": [LOOKUP]})
    ).json()

    assert result["status"] == "completed", result
    entries = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    assert kinds(entries) == [
        ("user", "text"),
        ("assistant", "tool_call"),
        ("tool", "tool_result"),
        ("assistant", "text"),
    ]
    call, refusal = entries[1:3]
    assert call["parts"][0]["name"] == "lookup_order"
    assert "client_tool" not in call["metadata"]
    assert refusal["parts"][0]["is_error"] is True


async def test_a_call_queued_behind_the_apps_call_is_closed_as_not_run(
    claude_code: None, http: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    """The app's tool and a shell command in one message: the CLI runs them in order, so the
    command waits behind the parked call. The turn still stops at once; the command is
    recorded as not run, and the app's call waits for its result."""
    sid = await _session(http, "claude-code")
    calls = [
        ToolCallSpec(name="mcp__app__lookup_order", arguments={"id": "A-7"}),
        ToolCallSpec(name="Bash", arguments={"command": "echo ran > ran.txt"}),
    ]
    mock_upstream.script(Reply(tool_calls=calls))
    stopped = (
        await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "Go", "tools": [LOOKUP]})
    ).json()

    assert stopped["status"] == "requires_action", stopped
    assert [c["name"] for c in stopped["pending_tool_calls"]] == ["lookup_order"]
    entries = (await http.get(f"/v2/sessions/{sid}/messages")).json()["messages"]
    results = [e for e in entries if e["kind"] == "tool_result"]
    [not_run] = results
    assert not_run["parts"][0]["is_error"] is True
    assert "was not run: the turn stopped at a call of the app's tools" in not_run["content"]
    missing = await http.get(f"/v2/sessions/{sid}/files", params={"path": "ran.txt"})
    assert missing.status_code == 404 and "ran.txt" in missing.json()["detail"]


def test_held_calls_released_as_ordinary_lose_the_client_tool_mark() -> None:
    app_call = Entry(
        role="assistant",
        kind="tool_call",
        content="mcp__app__lookup_order {}",
        parts=[ToolCallPart(id="c1", name="mcp__app__lookup_order", arguments={})],
    )
    calls = _AppCalls("mcp__app__", {"lookup_order"})
    assert calls.see(app_call) == [] and calls

    [held] = calls.take()
    assert held.metadata[CLIENT_TOOL_KEY] is True and held.tool_call.name == "lookup_order"
    calls.see(app_call)
    [plain] = calls.take(plain=True)
    assert CLIENT_TOOL_KEY not in plain.metadata and not calls

    calls.see(app_call)
    result = Entry(
        role="tool",
        kind="tool_result",
        content="refused",
        parts=[ToolResultPart(tool_call_id="c1", output="refused", is_error=True)],
    )
    released, answered = calls.see(result)
    assert CLIENT_TOOL_KEY not in released.metadata and answered is result
