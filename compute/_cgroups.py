"""Control groups for sandbox commands: one group per command, on cgroup v1 or v2.

A process cap, a memory cap and a CPU quota can only be held by the kernel for a whole
process tree through cgroups (``RLIMIT_NPROC`` is per user, and is not enforced in a user
namespace made by root). Hosts differ: some mount the v1 controllers one per directory
(``/sys/fs/cgroup/pids``…) next to an empty v2 hierarchy, others are v2 only. So each
controller is found on its own, in ``/proc/self/mountinfo`` and ``/proc/self/cgroup``:

* v1: groups go under the gateway's own group of that controller, in ``<own>/cerver``.
* v2: a group with processes cannot enable controllers for children (the "no internal
  processes" rule), so groups go in a ``cerver`` sibling of the gateway's own group, which
  gets the controllers the parent hands down. The gateway must be allowed to write there
  (root, or a delegated subtree).

A controller that is missing, or where a probe group cannot be made, is simply absent from
:class:`Cgroups`; :mod:`compute._limits` falls back to rlimits for it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cerver.types import LimitName, SandboxLimits

__all__ = ["CONTROLLERS", "Cgroups", "CommandGroup", "Hierarchy"]

Controller = Literal["pids", "memory", "cpu", "cpuacct"]
CONTROLLERS: Final[tuple[Controller, ...]] = ("pids", "memory", "cpu", "cpuacct")
_GROUP_DIR: Final = "cerver"
_CPU_PERIOD_US: Final = 100_000


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """Where one controller's command groups are made."""

    controller: Controller
    version: Literal[1, 2]
    parent: Path


def _mounts(mountinfo: str) -> list[tuple[str, Path, str, set[str]]]:
    """``(fstype, mount point, root in the hierarchy, super options)`` of cgroup mounts."""
    found = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        found.append((tail[0], Path(fields[4]), fields[3], set(tail[2].split(","))))
    return found


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """``{controller or "": path}`` from ``/proc/self/cgroup`` (``""`` is the v2 entry)."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


def _inside(mount: Path, root: str, path: str) -> Path:
    relative = os.path.relpath(path, root) if path.startswith(root) else path
    return (mount / relative.lstrip("/")).resolve() if relative != "." else mount


def _write(path: Path, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)


def _prepare_v2(own: Path, controller: Controller) -> Path | None:
    """The ``cerver`` sibling of ``own`` with ``controller`` enabled for its children."""
    name = "cpu" if controller == "cpuacct" else controller  # v2 accounts CPU in cpu.stat
    if name not in (own / "cgroup.controllers").read_text().split():
        return None
    parent = own.parent if own != own.parent and (own.parent / "cgroup.procs").exists() else own
    group = parent / _GROUP_DIR
    group.mkdir(exist_ok=True)
    if name not in (group / "cgroup.subtree_control").read_text().split():
        _write(group / "cgroup.subtree_control", f"+{name}")
    return group


def _probe(hierarchy: Hierarchy) -> bool:
    """Make and remove a group: proves we may write there."""
    probe = hierarchy.parent / f"probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


class Cgroups:
    """The controllers this host lets the gateway use, each with its hierarchy."""

    def __init__(self, hierarchies: dict[Controller, Hierarchy]) -> None:
        self.hierarchies = hierarchies

    @staticmethod
    def discover() -> Cgroups:
        """Find the usable controllers (once per process; a few file reads)."""
        return _discover()

    @classmethod
    def from_host(cls, mountinfo: str, own: dict[str, str]) -> Cgroups:
        """As :meth:`discover`, from the text of the two proc files (for tests)."""
        found: dict[Controller, Hierarchy] = {}
        mounts = _mounts(mountinfo)
        for fstype, mount, root, options in mounts:  # v1 first: it is where they live
            if fstype != "cgroup":
                continue
            for controller in CONTROLLERS:
                if controller in options and controller in own and controller not in found:
                    parent = _inside(mount, root, own[controller]) / _GROUP_DIR
                    with contextlib.suppress(OSError):
                        parent.mkdir(exist_ok=True)
                        found[controller] = Hierarchy(controller, 1, parent)
        for fstype, mount, root, _ in mounts:
            if fstype != "cgroup2" or "" not in own:
                continue
            for controller in CONTROLLERS:
                if controller in found:
                    continue
                with contextlib.suppress(OSError):
                    parent = _prepare_v2(_inside(mount, root, own[""]), controller)
                    if parent is not None:
                        found[controller] = Hierarchy(controller, 2, parent)
        return cls({c: h for c, h in found.items() if _probe(h)})

    def sweep(self, older_than_s: float = 60.0) -> None:
        """Remove empty command groups left behind (a command whose processes outlived the
        wait in :meth:`CommandGroup.remove_now`'s caller, a gateway killed mid-command).

        Only groups older than ``older_than_s`` are tried: a newer empty one may belong to a
        command of another gateway process that is about to join it. A busy group refuses.
        """
        deadline = time.time() - older_than_s
        for hierarchy in self.hierarchies.values():
            with contextlib.suppress(OSError):
                for group in hierarchy.parent.iterdir():
                    with contextlib.suppress(OSError):
                        if group.is_dir() and group.stat().st_mtime < deadline:
                            group.rmdir()

    def describe(self) -> dict[str, str]:
        """``{controller: "cgroup v1" | "cgroup v2"}`` for ``GET /v2/providers``."""
        return {c: f"cgroup v{h.version}" for c, h in sorted(self.hierarchies.items())}

    def group(self, name: str) -> CommandGroup:
        """A group for one command, not made yet (see :meth:`CommandGroup.create`)."""
        return CommandGroup(self.hierarchies, name)


@functools.cache
def _discover() -> Cgroups:
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = _own_paths(Path("/proc/self/cgroup").read_text())
    except OSError:
        return Cgroups({})
    cgroups = Cgroups.from_host(mountinfo, own)
    cgroups.sweep()
    return cgroups


class CommandGroup:
    """One command's group in every usable controller.

    :meth:`create` makes the directories and writes the limits; the command joins them by
    writing its pid to :attr:`procs` before it execs; :meth:`exceeded` reads the kernel's
    counters; :meth:`kill` and :meth:`remove` end it.
    """

    def __init__(self, hierarchies: dict[Controller, Hierarchy], name: str) -> None:
        self._dirs: dict[Controller, tuple[int, Path]] = {
            c: (h.version, h.parent / name) for c, h in hierarchies.items()
        }
        self._cpu_limit_ns = 0

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset(self._dirs)

    @property
    def procs(self) -> list[Path]:
        """The ``cgroup.procs`` files to join (one per distinct directory)."""
        return sorted({path / "cgroup.procs" for _, path in self._dirs.values()})

    def create(self, limits: SandboxLimits) -> None:
        """Make the groups and set ``limits``; on failure remove what was made.

        Raises:
            OSError: a directory or limit file could not be written.
        """
        try:
            for controller, (version, path) in self._dirs.items():
                path.mkdir(exist_ok=True)
                self._limit(controller, version, path, limits)
        except OSError:
            self.remove_now()
            raise
        self._cpu_limit_ns = limits.cpu_seconds * 1_000_000_000

    @staticmethod
    def _limit(controller: Controller, version: int, path: Path, limits: SandboxLimits) -> None:
        memory = limits.memory_mb * 1024 * 1024
        quota = max(1000, int(limits.cpus * _CPU_PERIOD_US))
        if controller == "pids":
            _write(path / "pids.max", str(limits.processes))
        elif controller == "memory" and version == 1:
            _write(path / "memory.limit_in_bytes", str(memory))
            if (path / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                with contextlib.suppress(OSError):
                    _write(path / "memory.memsw.limit_in_bytes", str(memory))
        elif controller == "memory":
            _write(path / "memory.max", str(memory))
            if (path / "memory.swap.max").exists():
                _write(path / "memory.swap.max", "0")
        elif controller == "cpu" and version == 1:
            _write(path / "cpu.cfs_period_us", str(_CPU_PERIOD_US))
            _write(path / "cpu.cfs_quota_us", str(quota))
        elif controller == "cpu":
            _write(path / "cpu.max", f"{quota} {_CPU_PERIOD_US}")

    def _read(self, controller: Controller, name: str) -> str:
        _, path = self._dirs[controller]
        try:
            return (path / name).read_text()
        except OSError:
            return ""

    @staticmethod
    def _counter(text: str, key: str) -> int:
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
        return 0

    def cpu_ns(self) -> int | None:
        """CPU time used by the group so far, if a controller accounts it."""
        if "cpuacct" in self._dirs and self._dirs["cpuacct"][0] == 1:
            text = self._read("cpuacct", "cpuacct.usage").strip()
            return int(text) if text.isdigit() else None
        for controller in ("cpu", "cpuacct"):
            if controller in self._dirs and self._dirs[controller][0] == 2:
                return self._counter(self._read(controller, "cpu.stat"), "usage_usec") * 1000
        return None

    def exceeded(self) -> LimitName | None:
        """The limit the kernel has enforced on the group so far, if any.

        ``pids`` is checked first: a fork bomb also fills memory with its copies, but what
        ended it is the process cap it met first (a memory hog never meets the process cap).
        """
        if "pids" in self._dirs and self._counter(self._read("pids", "pids.events"), "max"):
            return "pids"
        if "memory" in self._dirs:
            version, _ = self._dirs["memory"]
            events = "memory.oom_control" if version == 1 else "memory.events"
            if self._counter(self._read("memory", events), "oom_kill"):
                return "memory"
        used = self.cpu_ns()
        if used is not None and self._cpu_limit_ns and used >= self._cpu_limit_ns:
            return "cpu_time"
        return None

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs:
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in procs.read_text().split())
        return found

    def kill(self) -> None:
        """SIGKILL every process in the group (``cgroup.kill`` where v2 has it)."""
        for version, path in self._dirs.values():
            if version == 2 and (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(path / "cgroup.kill", "1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove_now(self) -> bool:
        """Remove the (empty) groups; False if one is still busy."""
        done = True
        for _, path in self._dirs.values():
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done
