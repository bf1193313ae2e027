"""``cerver.cli.setup_tools.install_codex``: the `cerver setup` step behind the codex harness."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from cerver import cli_programs
from cerver.cli import setup_tools


def output(console: Console) -> str:
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_installs_into_the_tools_prefix(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def npm(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        entry = tools / "npm/node_modules/@openai/codex/bin/codex.js"
        entry.parent.mkdir(parents=True)
        entry.write_text("// codex")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(setup_tools.subprocess, "run", npm)
    assert setup_tools.install_codex(console)
    [argv] = calls
    assert argv[:4] == ["/usr/bin/npm", "install", "--prefix", str(tools / "npm")]
    assert argv[-1] == cli_programs.CODEX_PACKAGE
    assert cli_programs.codex_entry() is not None

    calls.clear()
    assert setup_tools.install_codex(console)  # already there: nothing to do
    assert calls == []


def test_without_npm_says_what_to_install(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: None)
    assert not setup_tools.install_codex(console)
    assert "npm" in output(console) and "cerver setup" in output(console)
