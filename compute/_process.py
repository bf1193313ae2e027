"""One command tree on the host: start it, relay its output as it comes, end it on time.

The local sandbox runs every command through :class:`CommandRun`. The command starts in a
session of its own (``setsid``), so its whole tree, a backgrounded ``sleep 30 &`` included,
shares one process group that a single ``SIGKILL`` ends. The group is killed on timeout,
when the consumer stops listening, and also right after the command exits: background jobs
never outlive their ``exec``, which is what bubblewrap's PID namespace does anyway.

Both pipes are read concurrently. Each keeps its first :data:`OUTPUT_LIMIT` bytes, drops the
rest (still reading, so the command never blocks on a full pipe) and ends with a marker
saying how much was dropped. Bytes are decoded as UTF-8 with ``errors="replace"``,
incrementally, so a character split across two reads is kept whole.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final, Literal

from cerver.errors import ComputeError
from compute.base import ExecChunk

__all__ = ["OUTPUT_LIMIT", "TIMEOUT_EXIT_CODE", "CommandRun"]

OUTPUT_LIMIT: Final = 1 << 20
"""Bytes kept per stream (stdout, stderr) of one command."""

TIMEOUT_EXIT_CODE: Final = 124
"""Exit code reported for a command killed at its deadline (as coreutils ``timeout`` does)."""

_READ_SIZE: Final = 1 << 16
# After the tree is killed, how long to wait for the pipes to close. Only a process that
# escaped the group (``setsid`` in an unisolated sandbox) can hold them open that long.
_DRAIN_GRACE_S: Final = 1.0

Stream = Literal["stdout", "stderr"]
# What the pipe readers and the exit watcher tell the relay loop: a piece of text, the end
# of a pipe (text None), or the exit of the command (``("exit", None)``).
_Event = tuple[Literal["stdout", "stderr", "exit"], str | None]
_EXITED: Final[_Event] = ("exit", None)


class _CappedText:
    """Decodes one pipe, keeping its first ``limit`` bytes and counting the rest."""

    __slots__ = ("_decoder", "dropped", "kept", "limit", "name")

    def __init__(self, name: Stream, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.kept = 0
        self.dropped = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        room = self.limit - self.kept
        if len(data) > room:
            self.dropped += len(data) - room
            data = data[:room]
        self.kept += len(data)
        return self._decoder.decode(data) if data else ""

    def finish(self) -> str:
        tail = self._decoder.decode(b"", final=True)
        if self.dropped:
            tail += (
                f"\n[cerver: {self.name} truncated at {self.limit} bytes; "
                f"{self.dropped} more bytes dropped]\n"
            )
        return tail


async def _pump(
    reader: asyncio.StreamReader,
    text: _CappedText,
    queue: asyncio.Queue[_Event],
) -> None:
    try:
        while data := await reader.read(_READ_SIZE):
            if decoded := text.feed(data):
                queue.put_nowait((text.name, decoded))
    finally:
        if tail := text.finish():
            queue.put_nowait((text.name, tail))
        queue.put_nowait((text.name, None))


def _kill_group(pid: int) -> None:
    # The group outlives its leader while any member lives; once empty, ESRCH.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class CommandRun:
    """One run of ``argv``; iterate :meth:`chunks` once to run it.

    After iteration, :attr:`exit_code` and :attr:`timed_out` hold the outcome. The exit code
    of a command killed by a signal is ``128 + signal``, the shell's convention; one killed
    at the deadline reports :data:`TIMEOUT_EXIT_CODE`.

    Args:
        argv: the program and its arguments (no shell is added here).
        env: the complete environment of the child; nothing is inherited.
        cwd: the child's working directory; it must exist.
        timeout: seconds from start to kill.
        limit: bytes kept per stream.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        timeout: float,
        limit: int = OUTPUT_LIMIT,
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.limit = limit
        self.exit_code: int | None = None
        self.timed_out = False

    async def chunks(self) -> AsyncIterator[ExecChunk]:
        """Start the command and yield its output as it arrives; the last chunk is ``exit``.

        Closing the iterator early (``aclose()``, cancellation) kills the process tree.

        Raises:
            ComputeError: the program could not be started (missing binary or directory).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.cwd,
                env=dict(self.env),
                start_new_session=True,
            )
        except OSError as exc:
            raise ComputeError(
                f"Could not start {self.argv[0]!r} in {self.cwd!r}: {exc.strerror or exc}.",
                context={"argv0": self.argv[0], "cwd": self.cwd},
            ) from exc
        assert proc.stdout is not None and proc.stderr is not None

        queue: asyncio.Queue[_Event] = asyncio.Queue()
        pumps = [
            asyncio.create_task(_pump(proc.stdout, _CappedText("stdout", self.limit), queue)),
            asyncio.create_task(_pump(proc.stderr, _CappedText("stderr", self.limit), queue)),
        ]
        waiter = asyncio.create_task(proc.wait())
        waiter.add_done_callback(lambda _: queue.put_nowait(_EXITED))
        open_pipes, exited, killed = 2, False, False
        try:
            # 1. Relay output until the command exits and both pipes close, or time runs out.
            #    Once the tree is killed, the deadline becomes a short grace for the pipes.
            while open_pipes or not exited:
                try:
                    async with asyncio.timeout_at(deadline):
                        stream, text = await queue.get()
                except TimeoutError:
                    if killed:
                        break
                    self.timed_out = True
                    stream, text = _EXITED
                if stream == "exit":
                    exited = waiter.done()
                    if not killed:
                        _kill_group(proc.pid)
                        killed = True
                        deadline = loop.time() + _DRAIN_GRACE_S
                elif text is None:
                    open_pipes -= 1
                else:
                    yield ExecChunk(stream, text)

            # 2. Pipes held open past the grace: stop reading, keep what was decoded.
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            while not queue.empty():
                stream, text = queue.get_nowait()
                if stream != "exit" and text:
                    yield ExecChunk(stream, text)

            # 3. The outcome.
            if self.timed_out or proc.returncode is None:
                self.exit_code = TIMEOUT_EXIT_CODE
            elif proc.returncode < 0:
                self.exit_code = 128 - proc.returncode
            else:
                self.exit_code = proc.returncode
            yield ExecChunk("exit", exit_code=self.exit_code)
        finally:
            if not killed:
                _kill_group(proc.pid)
            for pump in pumps:
                pump.cancel()
            if not waiter.done():
                await asyncio.wait([waiter], timeout=_DRAIN_GRACE_S)
