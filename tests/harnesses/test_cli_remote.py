"""CLI harnesses in remote sandboxes: installed on first use when the image lacks them (once per
sandbox, timed, recorded), and refused before anything is written when the sandbox has no way
to the model proxy. Vendor sandboxes are the fake E2B (a test double) driven by the real SDK;
the mock upstream (a test double) plays the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cerver.cli_programs import (
    INSTALL_TOOLS_DIR,
    TOOLS_LAYOUT,
    claude_code_binary,
    gemini_cli_entry,
)
from cerver.errors import InvalidRequest, NotConfigured
from cerver.telemetry.metrics import CLI_INSTALL_SECONDS
from cerver.testing.mock_upstream import MockUpstream, Reply, ToolCallSpec
from harnesses._cli import CLI_INSTALL_KEY, CLI_SANDBOX_KEY
from harnesses._cli_preamble import PREAMBLE_START
from tests.harnesses.cli_support import requests_of, require_cli
from tests.matrix.support import CLI_INSTALLS, cli_image, doubles, served_gateway

pytest.importorskip("e2b", reason="pip install 'cerver[e2b]'")

from tests.compute.fake_e2b import FakeE2B, fake_e2b


@pytest.fixture
def bare_e2b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeE2B]:
    """The fake E2B with the base template: no CLI in its image."""
    with fake_e2b(tmp_path / "e2b") as fake:
        monkeypatch.setenv("E2B_API_KEY", "e2b_test_key")
        monkeypatch.setenv("E2B_API_URL", fake.url)
        monkeypatch.setenv("E2B_SANDBOX_URL", fake.url)
        yield fake


@pytest.fixture
def imaged_e2b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeE2B]:
    """The fake E2B with a template carrying the CLIs (this machine's, at /opt/cerver-tools)."""
    with fake_e2b(tmp_path / "e2b", cli_image()) as fake:
        monkeypatch.setenv("E2B_API_KEY", "e2b_test_key")
        monkeypatch.setenv("E2B_API_URL", fake.url)
        monkeypatch.setenv("E2B_SANDBOX_URL", fake.url)
        yield fake


def installs(harness: str) -> float:
    return CLI_INSTALL_SECONDS.labels(harness, "e2b")._sum.get()  # type: ignore[attr-defined]


async def test_a_missing_cli_is_installed_once_per_sandbox(
    bare_e2b: FakeE2B, tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    what, install = CLI_INSTALLS["gemini-cli"]
    require_cli(gemini_cli_entry(), what, install)
    async with served_gateway(tmp_path, mock_upstream) as served:
        client = served.client
        session = await client.create_session(
            user="u1", harness="gemini-cli", compute={"provider": "e2b"}
        )
        sid, before = session["session_id"], installs("gemini-cli")
        first = await client.run_llm(sid, "run: echo one > one.txt && cat one.txt")
        assert first["status"] == "completed", first

        entries = (await client.messages(sid))["messages"]
        [installed] = [
            e["metadata"][CLI_INSTALL_KEY] for e in entries if CLI_INSTALL_KEY in e["metadata"]
        ]
        assert installed["program"] == f"{INSTALL_TOOLS_DIR}/{TOOLS_LAYOUT['gemini-cli']}"
        assert installed["bytes"] > 1_000_000 and installed["seconds"] > 0
        assert installs("gemini-cli") > before
        box = bare_e2b.sandboxes[session["sandbox_id"]]
        assert box.host(installed["program"]).is_file()  # in that sandbox, outside its workspace
        assert not list(box.host("/home/user/workspace/.cerver").glob("install-*"))

        # The next turn finds it there: no second upload.
        timed = installs("gemini-cli")
        second = await client.run_llm(sid, "run: cat one.txt")
        assert second["status"] == "completed", second
        later = (await client.messages(sid, after_seq=len(entries)))["messages"]
        assert not any(CLI_INSTALL_KEY in e["metadata"] for e in later)
        assert installs("gemini-cli") == timed


async def test_a_networked_sandbox_without_a_public_url_is_refused_before_any_write(
    bare_e2b: FakeE2B, tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    async with served_gateway(tmp_path, mock_upstream, announce_public_url=False) as served:
        client = served.client
        for compute, error, fix in (
            ({"provider": "e2b"}, NotConfigured, "set CERVER_PUBLIC_URL"),
            (served.compute("relay"), InvalidRequest, "set CERVER_PUBLIC_URL on the gateway"),
        ):
            session = await client.create_session(user="u1", compute=compute)
            sid = session["session_id"]
            before = (await client.messages(sid))["messages"]
            with pytest.raises(error, match=fix):
                await client.run_llm(sid, "hello", harness="codex")
            assert (await client.messages(sid))["messages"] == before
            assert (await client.get_session(sid))["harness"] == session["harness"]


async def test_a_native_session_is_resumed_only_in_the_sandbox_it_was_made_in(
    imaged_e2b: FakeE2B, tmp_path: Path, mock_upstream: MockUpstream
) -> None:
    what, install = CLI_INSTALLS["claude-code"]
    require_cli(claude_code_binary(), what, install)
    async with served_gateway(tmp_path, mock_upstream) as served:
        client = served.client
        session = await client.create_session(
            user="u1", harness="claude-code", compute={"provider": "local"}
        )
        sid = session["session_id"]
        await client.run_llm(sid, "run: echo on-local > where.txt && cat where.txt")
        moved = await client.move_compute(sid, provider="e2b")
        assert moved["provider"] == "e2b"

        # Same CLI, another sandbox (the workspace, with its session files, moved along):
        # the history goes in as the preamble, not as a native resume.
        await client.run_llm(sid, "What did the command print?")
        after_move = requests_of(mock_upstream, "anthropic")[-1]["body"]
        assert PREAMBLE_START in json.dumps(after_move.get("system"))
        assert "on-local" in json.dumps(after_move.get("system"))

        # Same CLI, same sandbox: native resume (the CLI's session goes on).
        await client.run_llm(sid, "And now?")
        entries = (await client.messages(sid))["messages"]
        answers = [e["metadata"] for e in entries if e["role"] == "assistant"]
        local, moved_fresh, resumed = answers[0], answers[-2], answers[-1]
        assert local[CLI_SANDBOX_KEY] == session["sandbox_id"]
        assert moved_fresh[CLI_SANDBOX_KEY] == resumed[CLI_SANDBOX_KEY] == moved["sandbox_id"]
        assert moved_fresh["cli_session"] != local["cli_session"]  # fresh after the move
        assert resumed["cli_session"] == moved_fresh["cli_session"]  # resumed in that sandbox


@pytest.mark.parametrize("provider", ["e2b", "vercel", "relay"])
async def test_a_remote_cli_reaches_the_apps_tools_and_stops_at_their_call(
    provider: str, tmp_path: Path, mock_upstream: MockUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vendor sandboxes (doubles carrying the CLIs in their image) reach the MCP server at
    the gateway's public URL, a relay through its uplink."""
    what, install = CLI_INSTALLS["claude-code"]
    require_cli(claude_code_binary(), what, install)
    lookup = {"name": "lookup_order", "parameters": {"type": "object"}}
    with doubles(tmp_path / "doubles") as running:
        if provider in running.missing:
            pytest.skip(running.missing[provider])
        for name, value in running.env.items():
            monkeypatch.setenv(name, value)
        async with served_gateway(tmp_path, mock_upstream) as served:
            client = served.client
            session = await client.create_session(
                user="u1", harness="claude-code", compute=served.compute(provider)
            )
            sid = session["session_id"]
            call = ToolCallSpec(name="mcp__app__lookup_order", arguments={"id": "A-7"})
            mock_upstream.script(Reply(tool_calls=[call]))

            stopped = await client.run_llm(sid, "Where is order A-7?", tools=[lookup])

            assert stopped["status"] == "requires_action", stopped
            [pending] = stopped["pending_tool_calls"]
            assert pending["name"] == "lookup_order"
            results = [{"tool_call_id": pending["id"], "output": "in the van"}]
            done = await client.submit_tool_results(sid, results)
            assert done["status"] == "completed", done
            body = json.dumps(requests_of(mock_upstream, "anthropic")[-1]["body"])
            assert "in the van" in body
