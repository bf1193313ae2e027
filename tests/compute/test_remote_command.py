"""The shared code of run-a-command providers (vercel, daytona, modal) against a loopback
test double, through the full conformance suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cerver.testing.conformance import SandboxConformance
from tests.compute.loopback_command import LoopbackCommandCompute

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


class TestCommandSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, tmp_path: Path) -> LoopbackCommandCompute:
        return LoopbackCommandCompute(tmp_path / "remote")
