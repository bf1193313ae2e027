"""A sandbox double for harness and judge authors: the host's ``bash`` in a directory.

:class:`ShellSandbox` is a **test double**, not a compute: it runs commands unconfined as the
current user. It lets a harness's tool loop be tested against real shell behaviour (exit
codes, stdout/stderr, timeouts, files) without any compute backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

from cerver.errors import InvalidRequest, NotFound
from cerver.types import ExecResult
from compute.base import Sandbox

__all__ = ["ShellSandbox"]


class ShellSandbox(Sandbox):
    """A test double: runs commands with the host's ``bash`` in a temporary directory.

    No isolation at all; it exists so harness tests do not depend on a compute backend.
    ``fail_with`` makes every call raise that exception (a broken backend); ``calls`` records
    ``(method, argument)`` pairs.
    """

    provider = "shell-double"

    def __init__(self, root: Path) -> None:
        self.sandbox_id = "sbx_shell_double"
        self.root = root
        self.fail_with: BaseException | None = None
        self.calls: list[tuple[str, str]] = []

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        self._record("exec", command)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=self.root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env else None,
        )
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await process.communicate()
        except BaseException as exc:
            # Timed out or cancelled: never leave the child (or its transport) behind.
            process.kill()
            await asyncio.shield(process.wait())
            if not isinstance(exc, TimeoutError):
                raise
            return ExecResult(
                exit_code=124,
                duration_ms=(time.perf_counter() - started) * 1000,
                timed_out=True,
            )
        return ExecResult(
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
            exit_code=process.returncode or 0,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    async def read_file(self, path: str) -> bytes:
        self._record("read_file", path)
        target = self._resolve(path)
        if not target.is_file():
            raise NotFound(f"No such file: {path!r}", context={"path": path})
        return target.read_bytes()

    async def write_file(self, path: str, data: bytes) -> None:
        self._record("write_file", path)
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def _record(self, method: str, argument: str) -> None:
        self.calls.append((method, argument))
        if self.fail_with is not None:
            raise self.fail_with

    def _resolve(self, path: str) -> Path:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise InvalidRequest(f"Path {path!r} escapes the workspace.", context={"path": path})
        return target
