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

With :class:`~compute._limits.CommandLimits` the command starts inside its cgroups and
rlimits; the first limit it meets ends it like a timeout does, and the last chunk names it.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final, Literal, cast

from cerver.errors import ComputeError
from cerver.types import LimitName
from compute._limits import CommandLimits, limit_message
from compute.base import ExecChunk

__all__ = ["OUTPUT_LIMIT", "TIMEOUT_EXIT_CODE", "CommandRun"]

OUTPUT_LIMIT: Final = 1 << 20
"""Bytes kept per stream (stdout, stderr) of one command."""

TIMEOUT_EXIT_CODE: Final = 124
"""Exit code reported for a command killed at its deadline (as coreutils ``timeout`` does)."""

# After the tree is killed, how long to wait for the pipes to close. Only a process that
# escaped the group (``setsid`` in an unisolated sandbox) can hold them open that long.
_DRAIN_GRACE_S: Final = 1.0

Stream = Literal["stdout", "stderr"]
# Characters of stderr kept to recognise a limit in the command's own error message.
_STDERR_TAIL: Final = 4096

# What :class:`_Relay` tells the loop in :meth:`CommandRun.chunks`: a piece of text, the end
# of a pipe (text None), the exit of the command (``("exit", None)``), or a limit met
# (``("limit", name)``).
_Event = tuple[Literal["stdout", "stderr", "exit", "limit"], str | None]
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


class _Relay(asyncio.SubprocessProtocol):
    """Turns the child's pipe and exit callbacks into events on :attr:`queue`."""

    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[_Event] = asyncio.Queue()
        self.exited = asyncio.Event()
        self._open = {1: _CappedText("stdout", limit), 2: _CappedText("stderr", limit)}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if (text := self._open.get(fd)) and (decoded := text.feed(data)):
            self.queue.put_nowait((text.name, decoded))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if text := self._open.pop(fd, None):
            if tail := text.finish():
                self.queue.put_nowait((text.name, tail))
            self.queue.put_nowait((text.name, None))

    def process_exited(self) -> None:
        self.exited.set()
        self.queue.put_nowait(_EXITED)

    def abandon(self) -> list[tuple[Stream, str]]:
        """Stop listening to pipes still open; return what their decoders held."""
        tails = [(text.name, text.finish()) for text in self._open.values()]
        self._open.clear()
        return [(name, tail) for name, tail in tails if tail]


def _kill_group(pid: int) -> None:
    # The group outlives its leader while any member lives; once empty, ESRCH.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class CommandRun:
    """One run of ``argv``; iterate :meth:`chunks` once to run it.

    After iteration, :attr:`exit_code`, :attr:`timed_out` and :attr:`limit` hold the outcome.
    The exit code of a command killed by a signal is ``128 + signal``, the shell's
    convention; one killed at the deadline reports :data:`TIMEOUT_EXIT_CODE` (and the limit
    ``wall_time``).

    Args:
        argv: the program and its arguments (no shell is added here).
        env: the complete environment of the child; nothing is inherited.
        cwd: the child's working directory; it must exist.
        timeout: seconds from start to kill.
        limit: bytes kept per stream.
        limits: the command's resource limits, if any.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        timeout: float,
        limit: int = OUTPUT_LIMIT,
        limits: CommandLimits | None = None,
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.timeout = timeout
        self.output_limit = limit
        self.limits = limits
        self.exit_code: int | None = None
        self.timed_out = False
        self.limit_met: LimitName | None = None

    async def chunks(self) -> AsyncIterator[ExecChunk]:
        """Start the command and yield its output as it arrives; the last chunk is ``exit``.

        Closing the iterator early (``aclose()``, cancellation) kills the process tree.

        Raises:
            ComputeError: the program could not be started (missing binary or directory),
                or its cgroups could not be made.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            prefix = self.limits.open() if self.limits else []
        except OSError as exc:
            raise ComputeError(
                f"Could not set up the command's resource limits: {exc.strerror or exc}.",
                context={"path": getattr(exc, "filename", None)},
            ) from exc
        try:
            transport, relay = await loop.subprocess_exec(
                lambda: _Relay(self.output_limit),
                *prefix,
                *self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=dict(self.env),
                start_new_session=True,
            )
        except OSError as exc:
            if self.limits:
                await self.limits.close()
            raise ComputeError(
                f"Could not start {self.argv[0]!r} in {self.cwd!r}: {exc.strerror or exc}.",
                context={"argv0": self.argv[0], "cwd": self.cwd},
            ) from exc
        pid = transport.get_pid()
        open_pipes, exited, killed = 2, False, False
        stderr_tail = ""
        watch = asyncio.create_task(self._watch(relay.queue)) if self.limits else None

        def kill() -> None:
            _kill_group(pid)
            if self.limits:  # also what left the process group (setsid without bubblewrap)
                self.limits.kill()

        try:
            # 1. Relay output until the command exits and both pipes close, or time runs out.
            #    Once the tree is killed, the deadline becomes a short grace for the pipes.
            while open_pipes or not exited:
                try:
                    async with asyncio.timeout_at(deadline):
                        stream, text = await relay.queue.get()
                except TimeoutError:
                    if killed:
                        break  # a process that left the group holds the pipes: stop reading
                    self.timed_out = killed = True
                    kill()
                    deadline = loop.time() + _DRAIN_GRACE_S
                    continue
                if stream == "exit":
                    exited = True
                    if not killed:  # background jobs end with their command
                        killed = True
                        kill()
                        deadline = loop.time() + _DRAIN_GRACE_S
                elif stream == "limit":
                    if not killed:
                        self.limit_met = cast(LimitName, text)
                        killed = True
                        kill()
                        deadline = loop.time() + _DRAIN_GRACE_S
                elif text is None:
                    open_pipes -= 1
                else:
                    if stream == "stderr":
                        stderr_tail = (stderr_tail + text)[-_STDERR_TAIL:]
                    yield ExecChunk(stream, text)
            for stream, text in relay.abandon():
                yield ExecChunk(stream, text)

            # 2. The outcome, and the limit that ended the command if one did.
            returncode = transport.get_returncode()
            if self.timed_out or returncode is None:
                self.exit_code = TIMEOUT_EXIT_CODE
            elif returncode < 0:
                self.exit_code = 128 - returncode
            else:
                self.exit_code = returncode
            if self.timed_out:
                self.limit_met = "wall_time"
            elif self.limit_met is None and self.limits:
                self.limit_met = self.limits.verdict(self.exit_code, stderr_tail)
            if self.limits and self.limit_met is not None and self.limit_met != "wall_time":
                yield ExecChunk("stderr", limit_message(self.limit_met, self.limits.limits))
            yield ExecChunk("exit", exit_code=self.exit_code, limit=self.limit_met)
        finally:
            if watch is not None:
                watch.cancel()
            if not killed:
                kill()
            if not relay.exited.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_DRAIN_GRACE_S):
                        await relay.exited.wait()
            transport.close()
            if self.limits:
                await self.limits.close()

    async def _watch(self, queue: asyncio.Queue[_Event]) -> None:
        assert self.limits is not None
        queue.put_nowait(("limit", await self.limits.watch()))
