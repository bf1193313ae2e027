"""``cerver.cli.setup_tools.install_gemini_cli``: the step of ``cerver setup`` behind gemini-cli."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from cerver import cli_programs
from cerver.cli import setup_tools


def test_installs_the_pinned_release_into_the_tools_prefix(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def npm(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        entry = tools / "npm/node_modules/@google/gemini-cli/bundle/gemini.js"
        entry.parent.mkdir(parents=True)
        entry.write_text("// gemini")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(setup_tools.subprocess, "run", npm)
    assert setup_tools.install_gemini_cli(console)
    [argv] = calls
    assert argv[:4] == ["/usr/bin/npm", "install", "--prefix", str(tools / "npm")]
    assert argv[-1] == cli_programs.GEMINI_CLI_PACKAGE == "@google/gemini-cli@0.61.0"
    assert cli_programs.gemini_cli_entry() is not None

    calls.clear()
    assert setup_tools.install_gemini_cli(console)  # already there: nothing to do
    assert calls == []


def test_a_failed_install_reports_npm_s_error(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def npm(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "E404 not found")

    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(setup_tools.subprocess, "run", npm)
    assert not setup_tools.install_gemini_cli(console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "E404 not found" in out and "gemini-cli" in out


def test_without_npm_names_the_harness(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: None)
    assert not setup_tools.install_gemini_cli(console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "gemini-cli harness needs Node.js and npm" in out and "cerver setup" in out
