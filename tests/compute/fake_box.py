"""TEST DOUBLE support: one fake vendor sandbox, a directory whose commands run in a jail.

The vendor doubles (``fake_daytona``…) keep each sandbox's files in a host directory and run
its commands as real asyncio subprocesses under bubblewrap, with that directory mounted at the
vendor's own paths (``/home/daytona``, ``/tmp``), so paths in the sandbox look like the
vendor's. The host's ``/usr`` and ``/etc`` are read-only; nothing here models the vendor's
isolation, only its paths and its wire protocol.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

__all__ = ["FakeBox", "Finished", "serve"]


@dataclass(frozen=True, slots=True)
class Finished:
    stdout: bytes
    stderr: bytes
    exit_code: int
    timed_out: bool = False


@dataclass
class FakeBox:
    """One sandbox: ``root`` on the host holds the writable ``mounts`` (absolute sandbox
    paths such as ``/home/daytona`` and ``/tmp``)."""

    sandbox_id: str
    root: Path
    mounts: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    image: Mapping[str, Path] = field(default_factory=dict)
    """Read-only directories the sandbox's image carries: sandbox path → host directory
    (how a test gives a double's image the CLI harnesses, see ``tests/matrix``)."""
    processes: set[asyncio.subprocess.Process] = field(default_factory=set)

    def __post_init__(self) -> None:
        for mount in self.mounts:
            self.host(mount).mkdir(parents=True, exist_ok=True)

    def host(self, path: str) -> Path:
        """The host path of an absolute sandbox path (under one of ``mounts``)."""
        return self.root / path.lstrip("/")

    def jail(self, cwd: str) -> list[str]:
        argv = ["bwrap", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for link in ("bin", "sbin", "lib", "lib64"):
            if os.path.islink(f"/{link}"):
                argv += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        for mount in self.mounts:
            argv += ["--bind", str(self.host(mount)), mount]
        for target, source in self.image.items():
            argv += ["--ro-bind", str(source), target]
        argv += ["--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent"]
        return [*argv, "--chdir", cwd, "--"]

    async def start(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", **self.env, **(env or {})}
        process = await asyncio.create_subprocess_exec(
            *self.jail(cwd),
            *argv,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self.processes.add(process)
        return process

    async def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Finished:
        """Run to completion; on ``timeout`` the process group is killed (exit -9)."""
        process = await self.start(argv, cwd=cwd, env=env)
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
            timed_out = False
        except TimeoutError:
            _kill(process)
            stdout, stderr = await process.communicate()
            timed_out = True
        finally:
            _kill(process)
            self.processes.discard(process)
        return Finished(stdout, stderr, process.returncode or 0, timed_out)

    def kill(self, process: asyncio.subprocess.Process) -> None:
        """Kill a started process's whole group."""
        _kill(process)

    def destroy(self) -> None:
        for process in list(self.processes):
            _kill(process)
        shutil.rmtree(self.root, ignore_errors=True)


async def output_of(process: asyncio.subprocess.Process) -> AsyncIterator[tuple[str, bytes]]:
    """``(stream, chunk)`` of the process's stdout and stderr as they come, until both close.

    A reader that stops early stops the pumps too.
    """
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

    async def pump(stream: asyncio.StreamReader, name: str) -> None:
        while chunk := await stream.read(65536):
            await queue.put((name, chunk))
        await queue.put(None)

    assert process.stdout is not None and process.stderr is not None
    pumps = [
        asyncio.create_task(pump(process.stdout, "stdout")),
        asyncio.create_task(pump(process.stderr, "stderr")),
    ]
    try:
        open_streams = 2
        while open_streams:
            item = await queue.get()
            if item is None:
                open_streams -= 1
                continue
            yield item
    finally:
        for task in pumps:
            task.cancel()


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def serve(app: Any, name: str) -> Iterator[str]:
    """Serve an ASGI double on a free localhost port in a background thread; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
