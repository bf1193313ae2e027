"""The install story holds: CI runs the README's command, from the lock, with every extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md must start with a bash block holding the two commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_the_two_locked_commands() -> None:
    run_demo, run_tests = _readme_commands()
    for command in (run_demo, run_tests):
        assert "uv sync --locked" in command, command
    assert run_demo.endswith("cerver demo")
    assert run_tests.endswith("uv run pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()
    assert "export CI=true" in ci


def test_the_all_extra_brings_every_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"]) - {"all", "test"}
    (spec,) = project["optional-dependencies"]["all"]
    assert set(re.search(r"\[(.*)\]", spec).group(1).split(",")) == extras


def test_the_lock_pins_every_vendor_sdk_ci_tests() -> None:
    lock = (ROOT / "uv.lock").read_text()
    for package in ("e2b", "modal", "daytona", "vercel", "genai-prices", "litellm"):
        assert re.search(rf'^name = "{package}"$', lock, re.M), package
