"""Every script under examples/ runs against a real gateway; `cerver demo` runs as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import bootstrap_key

pytestmark = pytest.mark.e2e

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.py"))
NEEDS_MORE = {"walk_the_table.py": "E2B and a relay: run by test_walk_the_table.py"}
"""Examples that need more than a plain gateway, each run by its own test."""
PLAIN = [p for p in EXAMPLES if p.name not in NEEDS_MORE]


def test_every_example_is_run() -> None:
    tests = Path(__file__).parent
    for name in NEEDS_MORE:
        own = tests / f"test_{name.removesuffix('.py')}.py"
        assert own.is_file() and name in own.read_text()


@pytest.mark.parametrize("script", PLAIN, ids=lambda p: p.name)
def test_example_runs(script: Path, server: tuple[str, Path]) -> None:
    url, data_dir = server
    api_key = bootstrap_key(data_dir)
    env = {**os.environ, "CERVER_URL": url, "CERVER_API_KEY": api_key}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_demo_runs_on_the_embedded_defaults(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "GEMINI_", "CERVER_"))
    }
    env.update(CERVER_DATA_DIR=str(tmp_path), COLUMNS="160")
    done = subprocess.run(
        [sys.executable, "-m", "cerver", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "MOCK UPSTREAM (test double)" in out
    assert "'[mock upstream]'" in out  # rich markup must not swallow the label
    assert "hello from the sandbox" in out  # the tool ran in the sandbox
    assert "harness_switched" in out
    assert "openai · gpt-5" in out
    assert "The last tool output I can see" in out  # the swapped-in model saw the history
