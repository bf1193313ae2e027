"""TEST DOUBLE: a :class:`compute._remote.CommandSandbox` whose "remote" is this machine.

It runs each command under bubblewrap with the sandbox's directory at
``/home/cerver/workspace`` and its own ``/tmp``, which is what a remote provider's
run-a-command call gives the shared code in ``compute/_remote.py``. It checks that shared code
(timeouts, caps, path and archive rules), not any vendor's SDK.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
from pathlib import Path
from typing import ClassVar

from cerver.errors import ComputeError, NotFound
from compute._remote import CommandSandbox, RawResult
from compute.base import Compute, SandboxSpec

__all__ = ["LoopbackCommandCompute"]


class _LoopbackSandbox(CommandSandbox):
    provider: ClassVar[str] = "loopback-command"
    workspace: ClassVar[str] = "/home/cerver/workspace"

    def __init__(self, sandbox_id: str, root: Path, env: dict[str, str]) -> None:
        self.sandbox_id = sandbox_id
        self._root = root
        self._env = env

    async def _run(self, command: str, *, timeout: float) -> RawResult:
        if not self._root.exists():
            raise ComputeError(f"sandbox {self.sandbox_id} is gone")
        jail = ["bwrap", "--ro-bind", "/", "/", "--tmpfs", "/home"]
        jail += ["--bind", str(self._root / "workspace"), self.workspace]
        jail += ["--bind", str(self._root / "tmp"), "/tmp", "--dev", "/dev"]
        jail += ["--proc", "/proc", "--die-with-parent", "--", "bash", "-c", command]
        env = {"PATH": os.environ["PATH"], "HOME": self.workspace, **self._env}
        process = await asyncio.create_subprocess_exec(
            *jail,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            raise ComputeError("loopback command outlived its transport timeout") from None
        assert process.returncode is not None
        code = process.returncode if process.returncode >= 0 else 128 - process.returncode
        return RawResult(out.decode(errors="replace"), err.decode(errors="replace"), code)

    async def delete(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


class LoopbackCommandCompute(Compute):
    name: ClassVar[str] = "loopback-command"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._envs: dict[str, dict[str, str]] = {}

    async def create(self, spec: SandboxSpec) -> _LoopbackSandbox:
        sandbox_id = f"lb_{secrets.token_hex(6)}"
        for sub in ("workspace", "tmp"):
            (self.root / sandbox_id / sub).mkdir(parents=True)
        self._envs[sandbox_id] = dict(spec.env)
        return _LoopbackSandbox(sandbox_id, self.root / sandbox_id, self._envs[sandbox_id])

    async def attach(self, sandbox_id: str) -> _LoopbackSandbox:
        if sandbox_id not in self._envs or not (self.root / sandbox_id).exists():
            raise NotFound(f"No loopback sandbox {sandbox_id!r}.")
        return _LoopbackSandbox(sandbox_id, self.root / sandbox_id, self._envs[sandbox_id])
