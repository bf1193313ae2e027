"""Fixtures of the command-line tests: a console that records, and a private tools prefix."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console


@pytest.fixture
def console() -> Console:
    """A wide console writing to a string (read it with ``console.file.getvalue()``)."""
    return Console(file=io.StringIO(), width=200)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$CERVER_TOOLS_DIR`` pointed at an empty directory of this test."""
    monkeypatch.setenv("CERVER_TOOLS_DIR", str(tmp_path / "tools"))
    return tmp_path / "tools"
