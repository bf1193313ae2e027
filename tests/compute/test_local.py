"""The ``local`` compute: the conformance suite under both isolations, then what only a local
sandbox promises (no network, an environment allow-list, a read-only system, a dead tree)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cerver.errors import ComputeError, InvalidRequest, NotConfigured, NotFound, SandboxGone
from cerver.registry import compute_registry
from cerver.testing.conformance import SandboxConformance
from cerver.types import SandboxLimits
from compute import _bwrap, local
from compute.base import SandboxSpec
from compute.local import Isolation, LocalCompute, LocalSandbox

BWRAP_MISSING = "bubblewrap is not installed: run `uv run cerver setup --only bubblewrap`"
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason=BWRAP_MISSING)

# What a command may see of its environment: the allow-list plus what bash sets itself.
ALLOWED_ENV = {"PATH", "HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD"}


@needs_bwrap
class TestBwrapSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, tmp_path: Path) -> LocalCompute:
        return LocalCompute(tmp_path / "sandboxes", isolation="bwrap")


class TestUnisolatedSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, tmp_path: Path) -> LocalCompute:
        return LocalCompute(tmp_path / "sandboxes", isolation="none")


@pytest.fixture(params=[pytest.param("bwrap", marks=needs_bwrap), "none"])
def isolation(request: pytest.FixtureRequest) -> Isolation:
    param: Isolation = request.param
    return param


async def new_sandbox(root: Path, isolation: Isolation) -> AsyncIterator[LocalSandbox]:
    sandbox = await LocalCompute(root, isolation=isolation).create(SandboxSpec(session_id="s"))
    try:
        yield sandbox
    finally:
        await sandbox.delete()


@pytest.fixture
async def sandbox(tmp_path: Path, isolation: Isolation) -> AsyncIterator[LocalSandbox]:
    async for sandbox in new_sandbox(tmp_path / "sandboxes", isolation):
        yield sandbox


@pytest.fixture
async def jailed(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    """A sandbox under bubblewrap."""
    if shutil.which("bwrap") is None:
        pytest.skip(BWRAP_MISSING)
    async for sandbox in new_sandbox(tmp_path / "sandboxes", "bwrap"):
        yield sandbox


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on the host's loopback that accepts connections."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def connect_script(port: int) -> str:
    return (
        "python3 -c 'import socket\n"
        "try:\n"
        f'    socket.create_connection(("127.0.0.1", {port}), timeout=2); print("connected")\n'
        "except OSError as exc:\n"
        '    print("blocked", exc)\''
    )


def live_processes(argv: list[str]) -> list[int]:
    """Host pids running exactly ``argv`` (zombies excluded), namespaced sandboxes included."""
    wanted = "\0".join(argv).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "cmdline").read_bytes() != wanted:
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


async def eventually(argv: list[str], *, alive: bool, within: float = 2.0) -> bool:
    """Poll until a process runs ``argv`` (``alive``) or none does; False if time runs out."""
    for _ in range(int(within / 0.02)):
        if bool(live_processes(argv)) == alive:
            return True
        await asyncio.sleep(0.02)
    return False


def unique_sleep() -> list[str]:
    return ["sleep", f"30.{secrets.randbelow(10**6):06d}1"]


# -- the provider ---------------------------------------------------------------------------


def test_the_registry_resolves_local() -> None:
    assert compute_registry.load("local") is LocalCompute


def test_capabilities_and_profile() -> None:
    assert LocalCompute.name == "local"
    assert LocalCompute.capabilities.runtimes == ("shell", "python", "node")
    assert LocalCompute.capabilities.package_install
    assert LocalCompute.capabilities.persistence == "medium"
    assert LocalCompute.profile.cost_per_hour_usd == 0


def test_root_defaults_to_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CERVER_DATA_DIR", str(tmp_path))
    assert LocalCompute(isolation="none").root == tmp_path.resolve() / "sandboxes"

    monkeypatch.delenv("CERVER_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert LocalCompute(isolation="none").root == tmp_path.resolve() / "home/.cerver/sandboxes"


async def test_create_makes_a_private_workspace(tmp_path: Path) -> None:
    root = tmp_path / "sandboxes"
    sandbox = await LocalCompute(root, isolation="none").create(SandboxSpec(session_id="s"))

    assert re.fullmatch("sbx_[0-9a-f]{16}", sandbox.sandbox_id)
    assert sandbox.workspace == root / sandbox.sandbox_id
    assert (await sandbox.exec("stat -c %a .")).stdout == "700\n"


@pytest.mark.parametrize("sandbox_id", ["", "../etc", "sbx_../../tmp", ".etc", "sbx_zz"])
async def test_attach_refuses_what_is_not_a_sandbox(tmp_path: Path, sandbox_id: str) -> None:
    with pytest.raises(NotFound, match="No local sandbox"):
        await LocalCompute(tmp_path, isolation="none").attach(sandbox_id)


@needs_bwrap
async def test_attach_from_another_process_keeps_the_spec(tmp_path: Path) -> None:
    limits = SandboxLimits(processes=64)
    spec = SandboxSpec(session_id="s", env={"FROM_SPEC": "yes"}, limits=limits)
    created = await LocalCompute(tmp_path).create(spec)

    attached = await LocalCompute(tmp_path).attach(created.sandbox_id)

    assert (await attached.exec('printf %s "$FROM_SPEC"')).stdout == "yes"
    assert attached.limits == limits


async def test_network_without_an_egress_allow_list_is_refused(tmp_path: Path) -> None:
    compute = LocalCompute(tmp_path, isolation="none")

    with pytest.raises(InvalidRequest, match="CERVER_SANDBOX_EGRESS"):
        await compute.create(SandboxSpec(session_id="s", network=True))


def without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host as a fresh install sees it: no ``bwrap`` on ``PATH``."""
    monkeypatch.setattr(_bwrap, "find_bwrap", lambda: None)


def test_without_bubblewrap_the_compute_refuses_and_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_bubblewrap(monkeypatch)

    with pytest.raises(NotConfigured, match="bubblewrap is not installed") as caught:
        LocalCompute(tmp_path)
    assert "uv run cerver setup --only bubblewrap" in str(caught.value)
    assert local.SETUP_COMMAND == "uv run cerver setup --only bubblewrap"
    assert caught.value.context["setting"] == "CERVER_LOCAL_ISOLATION"
    assert caught.value.status_code == 503


def test_the_host_report_says_what_is_in_force(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unconfined = LocalCompute.host_report(isolation="none")
    assert unconfined.problem is None
    assert unconfined.details["isolation"].startswith("none")
    assert set(unconfined.details["limits"]) == set(SandboxLimits.model_fields)

    without_bubblewrap(monkeypatch)
    missing = LocalCompute.host_report(isolation="bwrap")
    assert missing.details["isolation"] == "unavailable"
    assert missing.problem is not None and local.SETUP_COMMAND in missing.problem


def test_unknown_isolation_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="'bwrap' \\(the default\\) or 'none'"):
        LocalCompute(tmp_path, isolation="auto")  # type: ignore[arg-type]


def test_none_is_an_explicit_opt_in_that_warns_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(local, "_warned_unisolated", False)
    without_bubblewrap(monkeypatch)

    with caplog.at_level(logging.WARNING, logger="cerver.compute.local"):
        computes = [LocalCompute(tmp_path, isolation="none") for _ in range(3)]

    assert [c.isolation for c in computes] == ["none"] * 3
    [record] = caplog.records
    assert "NOT confined" in record.message
    assert "CERVER_LOCAL_ISOLATION=none" in record.message
    assert "uv run cerver setup --only bubblewrap" in record.message


@needs_bwrap
def test_a_bubblewrap_that_cannot_run_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_bwrap, "probe", lambda bwrap: "No permissions to create a namespace")

    with pytest.raises(NotConfigured, match="No permissions"):
        LocalCompute(tmp_path)
    assert LocalCompute(tmp_path, isolation="none").isolation == "none"


# -- what a command sees ----------------------------------------------------------------------


async def test_the_environment_is_an_allow_list(
    monkeypatch: pytest.MonkeyPatch, sandbox: LocalSandbox
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake-gateway-key")
    monkeypatch.setenv("CERVER_ADMIN_KEY", "ck_fake_admin")

    result = await sandbox.exec("env", env={"EXTRA": "1"})

    names = {line.split("=", 1)[0] for line in result.stdout.splitlines()}
    assert names <= ALLOWED_ENV | {"EXTRA"}
    assert "sk-ant-fake" not in result.stdout
    assert "ck_fake" not in result.stdout


async def test_python3_works_inside(sandbox: LocalSandbox) -> None:
    result = await sandbox.exec(
        "python3 -c 'import json, sqlite3, ssl, sys; print(*sys.version_info[:2])'"
        " && python3 -m pip --version"
    )

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"{sys.version_info[0]} {sys.version_info[1]}"


async def test_home_is_the_workspace(sandbox: LocalSandbox, isolation: Isolation) -> None:
    result = await sandbox.exec('printf "%s %s" "$HOME" "$(pwd)"')

    expected = "/workspace" if isolation == "bwrap" else str(sandbox.workspace)
    assert result.stdout.split() == [expected, expected]


async def test_absolute_workspace_paths_map_into_it(jailed: LocalSandbox) -> None:
    await jailed.write_file("/workspace/x/y.txt", b"y")

    assert (jailed.workspace / "x/y.txt").read_bytes() == b"y"
    assert (await jailed.exec("cat /workspace/x/y.txt")).stdout == "y"
    with pytest.raises(InvalidRequest):
        await jailed.read_file("/workspace/../etc/passwd")


async def test_no_network_inside_bubblewrap(jailed: LocalSandbox, listener: int) -> None:
    with socket.create_connection(("127.0.0.1", listener), timeout=2):
        pass  # the host itself can connect

    for port in (listener, 5432):  # ours, and PostgreSQL's on this host
        result = await jailed.exec(connect_script(port))
        assert result.stdout.startswith("blocked"), result.stdout + result.stderr
    resolve = await jailed.exec("python3 -c 'import socket; socket.getaddrinfo(\"pypi.org\", 443)'")
    assert resolve.exit_code != 0


async def test_only_the_workspace_is_writable(jailed: LocalSandbox) -> None:
    for target in ("/usr/cerver-x", "/root/cerver-x", "/etc/cerver-x", "/cerver-x"):
        result = await jailed.exec(f"touch {target}")
        assert result.exit_code != 0, target

    private_tmp = f"/tmp/cerver-probe-{secrets.token_hex(4)}"
    assert (await jailed.exec(f"touch {private_tmp} && touch here")).exit_code == 0
    assert not await asyncio.to_thread(os.path.exists, private_tmp)
    assert await jailed.read_file("here") == b""


async def test_the_gateway_is_invisible_from_bubblewrap(jailed: LocalSandbox) -> None:
    for path in (jailed.workspace.parent, Path.home() / ".cerver", "/etc/shadow", "/work"):
        assert (await jailed.exec(f"test -e {path}")).exit_code == 1, path


async def test_secrets_of_the_host_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """/etc/shadow is absent, and PID 1's environment is masked (bubblewrap's own init)."""
    if shutil.which("bwrap") is None:
        pytest.skip(BWRAP_MISSING)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-gateway-key")
    async for jailed in new_sandbox(tmp_path / "sandboxes", "bwrap"):
        shadow = await jailed.exec("cat /etc/shadow")
        environ = await jailed.exec("cat /proc/1/environ")
        everything = await jailed.exec("cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'")

    assert shadow.exit_code != 0
    assert environ.exit_code != 0 and "Permission denied" in environ.stderr
    assert "sk-ant-canary" not in everything.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root gateway maps the sandbox to uid 1000")
async def test_root_gateway_runs_commands_unprivileged(jailed: LocalSandbox) -> None:
    result = await jailed.exec("id -u; whoami; grep CapEff /proc/self/status")

    assert result.stdout.split() == ["1000", "sandbox", "CapEff:", "0000000000000000"]


# -- process trees --------------------------------------------------------------------------


async def test_timeout_kills_a_backgrounded_grandchild(sandbox: LocalSandbox) -> None:
    argv = unique_sleep()
    stream = sandbox.exec_stream(f"{' '.join(argv)} & echo started; sleep 60", timeout=2)

    chunks = [await anext(stream)]
    assert chunks[0].data == "started\n"
    assert await eventually(argv, alive=True), "the grandchild runs before the timeout"
    chunks += [chunk async for chunk in stream]

    assert chunks[-1].exit_code == 124
    assert await eventually(argv, alive=False)


async def test_background_jobs_end_with_their_command(sandbox: LocalSandbox) -> None:
    argv = unique_sleep()
    result = await asyncio.wait_for(sandbox.exec(f"{' '.join(argv)} & echo bye"), timeout=5)

    assert (result.stdout, result.exit_code, result.timed_out) == ("bye\n", 0, False)
    assert await eventually(argv, alive=False)


async def test_cancelling_exec_kills_the_tree(sandbox: LocalSandbox) -> None:
    argv = unique_sleep()
    task = asyncio.create_task(sandbox.exec(" ".join(argv)))
    assert await eventually(argv, alive=True)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await eventually(argv, alive=False)


async def test_closing_a_stream_kills_the_tree(sandbox: LocalSandbox) -> None:
    argv = unique_sleep()
    stream = sandbox.exec_stream(f"echo started; {' '.join(argv)}")
    assert (await anext(stream)).data == "started\n"

    await stream.aclose()  # type: ignore[attr-defined]
    assert await eventually(argv, alive=False)


async def test_streamed_output_is_capped_too(sandbox: LocalSandbox) -> None:
    chunks = [c async for c in sandbox.exec_stream("head -c 3000000 /dev/zero | tr '\\0' b")]

    stdout = "".join(c.data for c in chunks if c.stream == "stdout")
    assert stdout.startswith("b" * (1 << 20))
    assert "truncated at 1048576 bytes; 1951424 more bytes dropped" in stdout


async def test_a_non_positive_timeout_is_refused(sandbox: LocalSandbox) -> None:
    with pytest.raises(InvalidRequest, match="timeout"):
        await sandbox.exec("true", timeout=0)


# -- files and state ------------------------------------------------------------------------


async def test_list_files_of_a_missing_or_file_path(sandbox: LocalSandbox) -> None:
    await sandbox.write_file("f.txt", b"x")

    with pytest.raises(NotFound):
        await sandbox.list_files("nope")
    with pytest.raises(InvalidRequest, match="not a directory"):
        await sandbox.list_files("f.txt")


async def test_write_file_where_a_directory_is_in_the_way(sandbox: LocalSandbox) -> None:
    await sandbox.write_file("d/f.txt", b"x")

    with pytest.raises(InvalidRequest):
        await sandbox.write_file("d", b"x")
    with pytest.raises(InvalidRequest):
        await sandbox.write_file("d/f.txt/g.txt", b"x")


async def test_file_calls_after_delete_fail_without_recreating(sandbox: LocalSandbox) -> None:
    await sandbox.delete()

    with pytest.raises(SandboxGone, match="no longer exists"):
        await sandbox.read_file("f.txt")
    with pytest.raises(SandboxGone, match="no longer exists"):
        await sandbox.write_file("f.txt", b"x")
    with pytest.raises(ComputeError):
        await sandbox.get_state()
    assert not sandbox.workspace.exists()


async def test_a_command_after_delete_says_the_sandbox_is_gone(sandbox: LocalSandbox) -> None:
    """Also what a command that raced its session's deletion gets: 410, not a failed start."""
    await sandbox.delete()

    with pytest.raises(SandboxGone, match="no longer exists") as raised:
        await sandbox.exec("echo hi")
    with pytest.raises(SandboxGone):
        async for _ in sandbox.exec_stream("echo hi"):
            pass
    assert raised.value.status_code == 410
    assert not sandbox.workspace.exists()


async def test_set_state_refuses_what_is_not_an_archive(sandbox: LocalSandbox) -> None:
    with pytest.raises(InvalidRequest, match="tar archive"):
        await sandbox.set_state(b"not a tar")


async def test_snapshots_keep_absolute_links_inside_the_workspace(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip(BWRAP_MISSING)
    compute = LocalCompute(tmp_path, isolation="bwrap")
    async with await compute.create(SandboxSpec(session_id="s")) as source:
        await source.exec("echo data > data.txt && ln -s /workspace/data.txt alias")
        archive = await source.get_state()
    async with await compute.create(SandboxSpec(session_id="s")) as target:
        await target.set_state(archive)

        assert (await target.exec("cat alias")).stdout == "data\n"
