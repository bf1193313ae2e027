"""CLI harnesses in remote sandboxes: installed on first use when the image lacks them (once per
sandbox, timed, recorded), and refused before anything is written when the sandbox has no way
to the model proxy. Vendor sandboxes are the fake E2B (a test double) driven by the real SDK;
the mock upstream (a test double) plays the model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cerver.cli_programs import INSTALL_TOOLS_DIR, TOOLS_LAYOUT, gemini_cli_entry
from cerver.errors import InvalidRequest, NotConfigured
from cerver.telemetry.metrics import CLI_INSTALL_SECONDS
from cerver.testing.mock_upstream import MockUpstream
from harnesses._cli import CLI_INSTALL_KEY
from tests.harnesses.cli_support import require_cli
from tests.matrix.support import CLI_INSTALLS, served_gateway

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
