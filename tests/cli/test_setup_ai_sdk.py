"""``cerver.cli.setup_tools.install_ai_sdk``: the ``ai-sdk`` step of ``cerver setup`` (the Vercel
AI SDK the compatibility tests drive Cerver with), with ``npm`` replaced by a recorder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from cerver.cli import setup_tools


def test_installs_the_pinned_packages_into_their_own_prefix(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def npm(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        for package in ("ai", "@ai-sdk/openai"):
            manifest = tools / "ai-sdk" / "node_modules" / package / "package.json"
            manifest.parent.mkdir(parents=True)
            manifest.write_text("{}")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(setup_tools.subprocess, "run", npm)
    assert setup_tools.ai_sdk_modules() is None
    assert setup_tools.install_ai_sdk(console)
    [argv] = calls
    assert argv[:4] == ["/usr/bin/npm", "install", "--prefix", str(tools / "ai-sdk")]
    assert argv[-2:] == list(setup_tools.AI_SDK_PACKAGES)
    assert setup_tools.ai_sdk_modules() == tools / "ai-sdk" / "node_modules"
    assert setup_tools.install_ai_sdk(console)  # installed: nothing runs again
    assert len(calls) == 1


def test_without_npm_names_what_needs_it(
    console: Console, tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(setup_tools.shutil, "which", lambda name: None)
    assert not setup_tools.install_ai_sdk(console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "The AI SDK compatibility test needs Node.js and npm" in out
