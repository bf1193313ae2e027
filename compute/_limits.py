"""Resource limits of one local sandbox command, and which one ended it.

Each limit of :class:`~cerver.types.SandboxLimits` is held by the strongest means the host
offers (:class:`Enforcement` says which, for ``GET /v2/providers``):

============  ==========================================  =====================================
limit         with cgroups (:mod:`compute._cgroups`)      without
============  ==========================================  =====================================
processes     ``pids.max`` of the command's group         none (see below)
memory        ``memory.max`` / ``limit_in_bytes``, no     ``RLIMIT_DATA`` per process
              swap; tmpfs pages count
cpu_seconds   the group's CPU time, checked every         ``RLIMIT_CPU`` per process
              :data:`POLL_S`, plus ``RLIMIT_CPU``
cpus          ``cpu.max`` / ``cfs_quota_us``              none
disk_mb       the workspace's size, checked every         same
              :data:`POLL_S` or slower on big trees, and
              ``RLIMIT_FSIZE`` (no single file larger)
open_files    ``RLIMIT_NOFILE``                           same
wall_seconds  the command's timeout is capped at it       same
============  ==========================================  =====================================

``RLIMIT_NPROC`` is no substitute for the ``pids`` controller: a user namespace made by root
does not enforce it, and for any other gateway it counts every process and thread of the
gateway's user (the sandbox runs as that user), so a cap tight enough to stop a fork bomb
would stop a desktop session's sandboxes from forking at all. Without ``pids`` there is no
process cap; ``GET /v2/providers`` says so.

The command joins its groups and takes its rlimits in a small ``sh`` prelude on the host
(``echo $$ > cgroup.procs``, then ``exec prlimit … -- bwrap …``): nothing it runs exists
before it is inside them, so a fork bomb cannot start outside the cap.

The workspace check is not a quota: a command can write for up to one poll past the limit
before it is killed (one file never passes it: ``RLIMIT_FSIZE``). A workspace already over
its limit is not punished for shrinking: only growth past the limit ends a command.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cerver.types import LimitName, SandboxLimits
from compute._cgroups import Cgroups, CommandGroup

__all__ = ["POLL_S", "CommandLimits", "Enforcement", "limit_message", "workspace_bytes"]

POLL_S: Final = 0.1
"""How often a running command's counters are read."""

_MIB: Final = 1024 * 1024
_JOIN: Final = (
    'while [ "$1" != -- ]; do echo $$ > "$1" || '
    '{ echo "cerver: could not join the sandbox cgroup $1" >&2; exit 125; }; shift; done; '
    'shift; exec "$@"'
)
# What the C library prints for ENOSPC, EMFILE and ENOMEM (and Python for the last): a
# command that fails on one of them is reported as having met that limit. Only rlimits make
# a command see them (cgroups kill instead), so this is how those limits get named.
_STRERROR: Final[dict[str, LimitName]] = {
    "No space left on device": "disk",
    "Too many open files": "open_files",
    "Cannot allocate memory": "memory",
    "MemoryError": "memory",
}
_SIGNALS: Final[dict[int, LimitName]] = {
    128 + signal.SIGXCPU: "cpu_time",
    128 + signal.SIGXFSZ: "disk",
}

_DESCRIBE: Final[dict[LimitName, str]] = {
    "pids": "the process limit ({processes} processes)",
    "memory": "the memory limit ({memory_mb} MiB)",
    "cpu_time": "the CPU time limit ({cpu_seconds} s)",
    "disk": "the workspace size limit ({disk_mb} MiB)",
    "open_files": "the open files limit ({open_files})",
    "wall_time": "the time limit",
}


def limit_message(limit: LimitName, limits: SandboxLimits) -> str:
    """The line added to a command's stderr when ``limit`` ended it."""
    what = _DESCRIBE[limit].format(**limits.model_dump())
    return f"\n[cerver: the command was ended by {what}: limit {limit!r}]\n"


def workspace_bytes(root: Path) -> int:
    """Bytes the files under ``root`` occupy (allocated blocks; links not followed)."""
    total = 0
    pending = [str(root)]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
    return total


@dataclass(frozen=True, slots=True)
class Enforcement:
    """How this host holds each limit (what ``GET /v2/providers`` shows)."""

    cgroups: Cgroups
    prlimit: str | None

    @classmethod
    def detect(cls) -> Enforcement:
        return cls(Cgroups.discover(), shutil.which("prlimit"))

    def describe(self) -> dict[str, str]:
        has = self.cgroups.describe()
        rlimit = "rlimit" if self.prlimit else "none (prlimit is missing)"
        cpu_total = has.get("cpuacct") or has.get("cpu")
        return {
            "processes": f"{has['pids']} pids" if "pids" in has else "none (no pids cgroup)",
            "memory_mb": f"{has['memory']} memory" if "memory" in has else f"{rlimit} (data)",
            "cpu_seconds": f"{cpu_total} + {rlimit}" if cpu_total else f"{rlimit} per process",
            "cpus": f"{has['cpu']} cpu" if "cpu" in has else "none",
            "disk_mb": "workspace size polled + RLIMIT_FSIZE",
            "open_files": rlimit,
            "wall_seconds": "timeout",
        }


class CommandLimits:
    """The limits of one command run: its prelude, its watch, and the verdict.

    :meth:`open` makes the cgroups and returns the argv prefix; :meth:`watch` returns the
    first limit met while the command runs; :meth:`verdict` classifies the end;
    :meth:`close` kills what is left in the groups and removes them.
    """

    def __init__(
        self, limits: SandboxLimits, enforcement: Enforcement, workspace: Path, name: str
    ) -> None:
        self.limits = limits
        self._enforcement = enforcement
        self._workspace = workspace
        self._group: CommandGroup | None = None
        self._name = f"{name}-{secrets.token_hex(4)}"
        self._disk_start = 0

    def open(self) -> list[str]:
        """Create the cgroups and return the prelude to put before the command's argv.

        Raises:
            OSError: the cgroups could not be made.
        """
        limits, enforcement = self.limits, self._enforcement
        prefix: list[str] = []
        group = enforcement.cgroups.group(self._name)
        if group.controllers:
            group.create(limits)
            self._group = group
            prefix = ["/bin/sh", "-c", _JOIN, "cerver-limits", *map(str, group.procs), "--"]
        if enforcement.prlimit:
            cpu = limits.cpu_seconds
            prefix += [
                enforcement.prlimit,
                f"--nofile={limits.open_files}",
                f"--cpu={cpu}:{cpu + 1}",
                f"--fsize={limits.disk_mb * _MIB}",
                "--core=0",
            ]
            if "memory" not in group.controllers:
                prefix.append(f"--data={limits.memory_mb * _MIB}")
            prefix.append("--")
        return prefix

    async def watch(self) -> LimitName:
        """Return once the running command meets a limit (cancel it otherwise)."""
        disk_limit = self.limits.disk_mb * _MIB
        self._disk_start = await asyncio.to_thread(workspace_bytes, self._workspace)
        next_disk, disk_every = 0.0, POLL_S
        while True:
            await asyncio.sleep(POLL_S)
            if self._group is not None and (hit := self._group.exceeded()):
                return hit
            now = time.monotonic()
            if now >= next_disk:
                used = await asyncio.to_thread(workspace_bytes, self._workspace)
                spent = time.monotonic() - now
                # A big tree is walked less often: at most ~1/4 of a core on it.
                disk_every = max(POLL_S, 4 * spent)
                next_disk = time.monotonic() + disk_every
                if used > disk_limit and used > self._disk_start:
                    return "disk"

    def kill(self) -> None:
        if self._group is not None:
            self._group.kill()

    def verdict(self, exit_code: int, stderr_tail: str) -> LimitName | None:
        """The limit that ended a command that finished on its own, if one did."""
        if self._group is not None and (hit := self._group.exceeded()):
            return hit
        if exit_code in _SIGNALS:
            return _SIGNALS[exit_code]
        if exit_code != 0:
            for message, limit in _STRERROR.items():
                if message in stderr_tail:
                    return limit
        return None

    async def close(self) -> None:
        """Kill what is left in the groups and remove them (waits up to ~1 s)."""
        if self._group is None:
            return
        delay = 0.002  # killed processes take a few ms to leave; then the rmdir succeeds
        for _ in range(12):
            self._group.kill()
            if self._group.remove_now():
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        # Still busy after ~0.7 s (a loaded host reaping a fork bomb): sweep older leftovers
        # now, and leave this one to a later sweep.
        self._enforcement.cgroups.sweep()
