"""Limits of local sandbox commands: each one met ends only its own command, named.

A fork bomb, a memory hog and a disk fill each run in one sandbox while a plain command runs
in another sandbox of the same compute; the hog ends with its limit in ``ExecResult.limit``
and the other command completes.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cerver.types import ExecResult, SandboxLimits
from compute._cgroups import Cgroups, _mounts, _own_paths
from compute._limits import CommandLimits, Enforcement
from compute.base import SandboxSpec
from compute.local import LocalCompute, LocalSandbox

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed: run `uv run cerver setup --only bubblewrap`",
)

LIMITS = SandboxLimits(processes=64, memory_mb=128, cpu_seconds=2, disk_mb=64, open_files=64)


def needs_cgroup(controller: str) -> None:
    if controller not in Cgroups.discover().hierarchies:
        pytest.skip(f"no writable {controller} cgroup on this host (run the gateway as root)")


@pytest.fixture
async def compute(tmp_path: Path) -> LocalCompute:
    return LocalCompute(tmp_path / "sandboxes", limits=LIMITS)


@pytest.fixture
async def hog(compute: LocalCompute) -> AsyncIterator[LocalSandbox]:
    async with await compute.create(SandboxSpec(session_id="hog")) as sandbox:
        yield sandbox


@pytest.fixture
async def neighbour(compute: LocalCompute) -> AsyncIterator[LocalSandbox]:
    async with await compute.create(SandboxSpec(session_id="neighbour")) as sandbox:
        yield sandbox


async def beside(hog: LocalSandbox, command: str, neighbour: LocalSandbox) -> ExecResult:
    """Run ``command`` in ``hog`` while ``neighbour`` works; the neighbour must be unharmed."""
    other = "for i in 1 2 3 4 5; do echo $i > n.txt; sleep 0.2; done; cat n.txt"
    result, calm = await asyncio.gather(
        hog.exec(command, timeout=60), neighbour.exec(other, timeout=60)
    )
    assert (calm.exit_code, calm.stdout, calm.limit) == (0, "5\n", None)
    return result


async def test_a_fork_bomb_meets_the_process_limit(
    hog: LocalSandbox, neighbour: LocalSandbox
) -> None:
    needs_cgroup("pids")

    # The classic bomb returns at once and leaves its copies in the background, which end
    # with their command: the command stays to let them multiply.
    result = await beside(hog, ":(){ :|:& };:; sleep 30", neighbour)

    assert result.limit == "pids"
    assert not result.timed_out
    assert "limit 'pids'" in result.stderr
    assert (await hog.exec("echo still usable")).stdout == "still usable\n"


async def test_a_memory_hog_meets_the_memory_limit(
    hog: LocalSandbox, neighbour: LocalSandbox
) -> None:
    needs_cgroup("memory")

    result = await beside(hog, "python3 -c 'x = bytearray(1 << 30)'", neighbour)

    assert result.limit == "memory"
    assert result.exit_code != 0
    assert "memory limit (128 MiB)" in result.stderr


async def test_a_disk_fill_meets_the_workspace_limit(
    hog: LocalSandbox, neighbour: LocalSandbox
) -> None:
    # Many small files: no single one reaches the size limit, the workspace does.
    fill = "for i in $(seq 1000); do head -c 1048576 /dev/zero > f$i; done"

    result = await beside(hog, fill, neighbour)

    assert result.limit == "disk"
    assert len(await hog.list_files()) < 1000
    # Shrinking a workspace over its limit is allowed.
    assert (await hog.exec("rm -f f*")).limit is None


async def test_one_file_larger_than_the_workspace_is_cut_short(hog: LocalSandbox) -> None:
    result = await hog.exec("head -c 100000000 /dev/zero > big")

    assert result.limit == "disk"
    assert (hog.workspace / "big").stat().st_size <= LIMITS.disk_mb * 1024 * 1024


async def test_cpu_time_is_limited(hog: LocalSandbox) -> None:
    result = await hog.exec("python3 -c 'while True: pass'", timeout=120)

    assert result.limit == "cpu_time"
    assert not result.timed_out


async def test_open_files_are_limited(hog: LocalSandbox) -> None:
    result = await hog.exec("python3 -c 'fs = [open(\"/dev/null\") for _ in range(500)]'")

    assert result.limit == "open_files"
    assert "Too many open files" in result.stderr


async def test_a_timeout_is_the_wall_time_limit(hog: LocalSandbox) -> None:
    result = await hog.exec("sleep 30", timeout=0.3)

    assert (result.timed_out, result.limit, result.exit_code) == (True, "wall_time", 124)


async def test_the_timeout_is_capped_by_wall_seconds(tmp_path: Path) -> None:
    compute = LocalCompute(tmp_path, limits=SandboxLimits(wall_seconds=1))
    async with await compute.create(SandboxSpec(session_id="s")) as sandbox:
        result = await sandbox.exec("sleep 30", timeout=600)

    assert (result.timed_out, result.limit) == (True, "wall_time")


async def test_commands_within_limits_report_none(hog: LocalSandbox) -> None:
    result = await hog.exec("echo fine; exit 3")

    assert (result.stdout, result.exit_code, result.limit) == ("fine\n", 3, None)


async def test_the_groups_are_removed_after_each_command(hog: LocalSandbox) -> None:
    needs_cgroup("pids")
    parent = Cgroups.discover().hierarchies["pids"].parent

    await hog.exec("sleep 0.1 & echo hi")

    assert not [p for p in parent.iterdir() if p.name.startswith(hog.sandbox_id)]


def test_cgroup_files_are_read_per_controller() -> None:
    mountinfo = (
        "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    )

    assert [(m[0], str(m[1]), m[2]) for m in _mounts(mountinfo)] == [
        ("cgroup", "/sys/fs/cgroup/pids", "/"),
        ("cgroup2", "/sys/fs/cgroup/unified", "/"),
    ]
    assert _own_paths("8:pids:/a\n1:cpu,cpuacct:/b\n0::/c\n") == {
        "pids": "/a",
        "cpu": "/b",
        "cpuacct": "/b",
        "": "/c",
    }


# -- hosts without cgroups: rlimits only --------------------------------------------------------


@pytest.fixture
async def rlimits_only(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    """A sandbox as on a host where the gateway may not create cgroups."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit is missing: apt-get install -y util-linux")
    compute = LocalCompute(tmp_path, limits=LIMITS)
    compute._enforcement = Enforcement(Cgroups({}), shutil.which("prlimit"))
    async with await compute.create(SandboxSpec(session_id="s")) as sandbox:
        yield sandbox


async def test_without_cgroups_memory_is_an_rlimit(rlimits_only: LocalSandbox) -> None:
    result = await rlimits_only.exec("python3 -c 'x = bytearray(1 << 30)'")

    assert result.limit == "memory"
    assert "MemoryError" in result.stderr


async def test_without_cgroups_there_is_no_process_cap_and_it_is_said(
    rlimits_only: LocalSandbox,
) -> None:
    limits = CommandLimits(LIMITS, rlimits_only._enforcement, rlimits_only.workspace, "x")

    prefix = limits.open()

    assert prefix[0].endswith("prlimit")
    assert not any(arg.startswith("--nproc") for arg in prefix)
    assert "--data=134217728" in prefix
    described = rlimits_only._enforcement.describe()
    assert described["processes"] == "none (no pids cgroup)"
    assert described["memory_mb"] == "rlimit (data)"
    assert (await rlimits_only.exec("echo ok")).stdout == "ok\n"


def test_cgroup_v2_groups_go_in_a_sibling_with_the_limits_written(tmp_path: Path) -> None:
    """cgroup v2 on a fake cgroupfs: the kernel's files are made by hand, the layout checked."""
    root = tmp_path / "unified"
    own = root / "gateway.service"
    own.mkdir(parents=True)
    for directory in (root, own):
        (directory / "cgroup.procs").write_text("")
        (directory / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cerver").mkdir()
    (root / "cerver" / "cgroup.subtree_control").write_text("")
    mountinfo = f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n"

    cgroups = Cgroups.from_host(mountinfo, {"": "/gateway.service"})

    assert cgroups.describe() == {
        "cpu": "cgroup v2",
        "cpuacct": "cgroup v2",
        "memory": "cgroup v2",
        "pids": "cgroup v2",
    }
    assert {h.parent for h in cgroups.hierarchies.values()} == {root / "cerver"}
    group = cgroups.group("sbx-1")
    group.create(SandboxLimits(processes=64, memory_mb=128, cpus=0.5))
    made = root / "cerver" / "sbx-1"
    assert (made / "pids.max").read_text() == "64"
    assert (made / "memory.max").read_text() == str(128 * 1024 * 1024)
    assert (made / "cpu.max").read_text() == "50000 100000"
    assert group.procs == [made / "cgroup.procs"]
    (made / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.exceeded() == "memory"


async def test_a_file_written_from_the_host_is_held_to_the_workspace_size(
    hog: LocalSandbox,
) -> None:
    from cerver.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match=r"limits\.disk_mb"):
        await hog.write_file("big", b"\0" * (LIMITS.disk_mb * 1024 * 1024 + 1))
    assert not (hog.workspace / "big").exists()


def test_a_sweep_removes_only_old_leftover_groups(tmp_path: Path) -> None:
    import os

    from compute._cgroups import Hierarchy

    old, fresh = tmp_path / "sbx_old-1", tmp_path / "sbx_new-1"
    old.mkdir(), fresh.mkdir()
    os.utime(old, (0, 0))

    Cgroups({"pids": Hierarchy("pids", 1, tmp_path)}).sweep(older_than_s=60)

    assert not old.exists()
    assert fresh.exists()  # may be a command of another gateway about to join it
