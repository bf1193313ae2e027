"""The ``local`` compute: sandboxes that are directories on the gateway's own machine.

Each sandbox is a workspace directory, ``<root>/sbx_<hex>``, next to a small
``sbx_<hex>.json`` that remembers its spec for :meth:`LocalCompute.attach`. Commands run with
``bash -c`` (never a login shell: it costs ~0.2 s) under bubblewrap (see :mod:`compute._bwrap`
for exactly what a command can see) and within the sandbox's resource limits (see
:mod:`compute._limits`). A command gets a fixed environment, never the gateway's: its provider
keys and ``CERVER_*`` settings stay out.

Confinement is not optional by accident: without a working bubblewrap the compute refuses
to make or run sandboxes, naming :data:`SETUP_COMMAND`. Running commands unconfined, as the
gateway's user, takes the explicit gateway setting ``CERVER_LOCAL_ISOLATION=none``.

File operations, snapshots and deletion work on the workspace directly from the host, which
is much faster than running a command for each; paths are mapped into the workspace and
checked, after following symlinks, so that none escapes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Final, Literal, TypeVar

from pydantic import ValidationError

from cerver.cli_programs import host_programs
from cerver.errors import ComputeError, InvalidRequest, NotConfigured, NotFound, SandboxGone
from cerver.options import PluginSettings, plugin_settings
from cerver.types import ExecResult, SandboxLimits
from compute import _bwrap
from compute._egress import SETTING as EGRESS_SETTING
from compute._egress import EgressProxy, egress_prelude
from compute._limits import CommandLimits, Enforcement
from compute._process import CommandRun
from compute._snapshot import pack_workspace, unpack_workspace
from compute.base import (
    Capabilities,
    CliHosting,
    Compute,
    ExecChunk,
    HostReport,
    Profile,
    Sandbox,
    SandboxSpec,
)

__all__ = [
    "ISOLATION_SETTING",
    "SETUP_COMMAND",
    "Isolation",
    "LocalCompute",
    "LocalSandbox",
    "default_root",
]

logger = logging.getLogger("cerver.compute.local")

Isolation = Literal["bwrap", "none"]
T = TypeVar("T")

SETUP_COMMAND: Final = "uv run cerver setup --only bubblewrap"
"""The one command that makes local sandboxes confinable on a Debian/Ubuntu host."""

ISOLATION_SETTING: Final = "CERVER_LOCAL_ISOLATION"
"""The gateway setting that opts into unconfined commands (``none``)."""

_SANDBOX_ID: Final = re.compile(r"sbx_[0-9a-f]{16}")
_PATH_RULE: Final = (
    "paths must stay inside the workspace (relative, or absolute under "
    f"{_bwrap.WORKSPACE}), also after following symlinks"
)
_warned_unisolated = False


def default_root() -> Path:
    """``$CERVER_DATA_DIR/sandboxes``, the data directory defaulting to ``~/.cerver``."""
    return Path(os.environ.get("CERVER_DATA_DIR") or "~/.cerver").expanduser() / "sandboxes"


def _warn_unisolated() -> None:
    global _warned_unisolated
    if _warned_unisolated:
        return
    _warned_unisolated = True
    logger.warning(
        "Local sandbox commands are NOT confined (%s=none): they run as the gateway's user, "
        "can read its files and environment and reach the network. To confine them, run "
        "`%s` and unset %s.",
        ISOLATION_SETTING,
        SETUP_COMMAND,
        ISOLATION_SETTING,
    )


def _confinement_problem() -> str | None:
    """Why bubblewrap cannot confine commands here, naming the fix; ``None`` if it can."""
    bwrap = _bwrap.find_bwrap()
    if bwrap is None:
        return (
            f"Local sandboxes cannot be confined: bubblewrap is not installed. Run "
            f"`{SETUP_COMMAND}` where the gateway runs (as root it installs it with apt-get; "
            f"otherwise it prints the command), or set {ISOLATION_SETTING}=none to run "
            "sandbox commands unconfined as the gateway's user."
        )
    problem = _bwrap.probe(bwrap)
    if problem is None:
        return None
    return (
        f"Local sandboxes cannot be confined: bubblewrap ({bwrap}) cannot create namespaces "
        f"here: {problem}. Allow user namespaces for the gateway (e.g. run its container with "
        f"a seccomp profile that permits them), or set {ISOLATION_SETTING}=none to run "
        "sandbox commands unconfined as the gateway's user."
    )


class LocalCompute(Compute):
    """Sandboxes in directories on the gateway's machine, confined by bubblewrap.

    Args:
        root: where workspaces live; default :func:`default_root`.
        isolation: ``"bwrap"`` confines every command with bubblewrap and refuses to work
            without it; ``"none"`` runs plain subprocesses as the gateway's user (the
            gateway's explicit opt-in). Default: ``$CERVER_LOCAL_ISOLATION``, else
            ``"bwrap"``.
        shared: host directories every sandbox sees read-only at the same path (when they
            exist at exec time): the model proxy's socket directory and the CLI harnesses'
            installs (see :mod:`compute._proxy_bridge`).
        limits: the limits of sandboxes whose spec has none.
        egress: hosts a sandbox whose spec asks for the network may reach, through the
            gateway's egress proxy (:mod:`compute._egress`); empty: no sandbox may ask.

    Raises:
        NotConfigured: ``isolation="bwrap"`` and bubblewrap is missing or cannot create
            namespaces here; the message names :data:`SETUP_COMMAND` (or bwrap's own error).
        InvalidRequest: an unknown ``isolation``; (on :meth:`create`) a spec asking for the
            network when ``egress`` is empty.

    Construction runs ``bwrap`` once per process (a few ms) to check that it works.

    Limits (:class:`~cerver.types.SandboxLimits`) hold for each command's whole process
    tree, by cgroups where the host has them and rlimits otherwise (:mod:`compute._limits`).
    """

    name: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "python", "node"), package_install=True, persistence="medium"
    )
    profile: ClassVar[Profile] = Profile(startup_ms=5, cost_per_hour_usd=0.0)

    class Settings(PluginSettings):
        """Gateway-wide: ``CERVER_LOCAL_ISOLATION``, ``bwrap`` (the default: confined, or
        refused) or ``none`` (unconfined: the operator's explicit opt-in, never a tenant's)."""

        isolation: str = "bwrap"

    def __init__(
        self,
        root: Path | None = None,
        *,
        isolation: Isolation | None = None,
        shared: Sequence[Path] = (),
        limits: SandboxLimits | None = None,
        egress: Sequence[str] = (),
    ) -> None:
        self.root = Path(os.path.realpath((root or default_root()).expanduser()))
        self._shared = tuple(shared)
        settings = plugin_settings(self.name, self.Settings, isolation=isolation)
        self._bwrap = self._find_bwrap(settings.isolation)  # type: ignore[arg-type]
        self._bwrap_args: dict[tuple[bool, int], list[str]] = {}
        self.limits = limits or SandboxLimits()
        self._enforcement = Enforcement.detect()
        self.egress = tuple(egress)
        self._egress_proxy: EgressProxy | None = None

    async def _egress(self) -> EgressProxy:
        """The egress proxy, started on first use."""
        if self._egress_proxy is None:
            self._egress_proxy = EgressProxy(self.egress)
        await self._egress_proxy.start()
        return self._egress_proxy

    async def aclose(self) -> None:
        if self._egress_proxy is not None:
            await self._egress_proxy.aclose()
            self._egress_proxy = None

    @property
    def isolation(self) -> Isolation:
        """The isolation commands actually get."""
        return "bwrap" if self._bwrap else "none"

    @classmethod
    def host_report(cls, **options: Any) -> HostReport:
        """Whether commands can be confined here, and how limits are held."""
        isolation = plugin_settings(
            cls.name, cls.Settings, isolation=options.get("isolation")
        ).isolation
        problem = None if isolation == "none" else _confinement_problem()
        details: dict[str, Any] = {
            "isolation": "none (unconfined: CERVER_LOCAL_ISOLATION=none)"
            if isolation == "none"
            else ("unavailable" if problem else "bubblewrap"),
            "limits": Enforcement.detect().describe(),
        }
        return HostReport(problem=problem, details=details)

    async def create(self, spec: SandboxSpec) -> LocalSandbox:
        """Make an empty workspace ``<root>/sbx_<hex>``.

        Raises:
            ComputeError: the directory could not be created.
        """
        if spec.network and not self.egress:
            raise InvalidRequest(
                "This local compute allows no network: set the gateway's egress allow-list "
                f"({EGRESS_SETTING}) to let sandboxes reach chosen hosts.",
                context={"setting": EGRESS_SETTING},
            )
        sandbox_id = f"sbx_{secrets.token_hex(8)}"
        workspace = self.root / sandbox_id
        limits = spec.limits or self.limits
        meta = {
            "session_id": spec.session_id,
            "network": spec.network,
            "env": dict(spec.env),
            "limits": limits.model_dump(),
        }
        # A few syscalls: cheaper inline than through a thread on this hot path.
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            workspace.mkdir(mode=0o700)
            self._meta_path(sandbox_id).write_text(json.dumps(meta))
        except OSError as exc:
            raise ComputeError(
                f"Could not create the workspace {str(workspace)!r}: {exc.strerror or exc}.",
                context={"root": str(self.root)},
            ) from exc
        egress = await self._egress() if spec.network else None
        return self._sandbox(sandbox_id, egress=egress, env=spec.env, limits=limits)

    async def attach(self, sandbox_id: str) -> LocalSandbox:
        """Return a handle to the workspace ``sandbox_id``, with the spec it was created with.

        Raises:
            NotFound: no such workspace under ``root`` (or not a sandbox id at all).
        """
        if not _SANDBOX_ID.fullmatch(sandbox_id) or not (self.root / sandbox_id).is_dir():
            raise NotFound(
                f"No local sandbox {sandbox_id!r} under {str(self.root)!r}.",
                context={"sandbox_id": sandbox_id, "root": str(self.root)},
            )
        try:
            meta = json.loads(self._meta_path(sandbox_id).read_text())
        except (OSError, ValueError):
            meta = {}
        try:
            limits = SandboxLimits.model_validate(meta.get("limits") or self.limits.model_dump())
        except ValidationError:
            limits = self.limits
        # A sandbox made with network keeps it only while the gateway still allows egress.
        egress = await self._egress() if meta.get("network") and self.egress else None
        return self._sandbox(sandbox_id, egress=egress, env=meta.get("env") or {}, limits=limits)

    def _meta_path(self, sandbox_id: str) -> Path:
        return self.root / f"{sandbox_id}.json"

    def _sandbox(
        self,
        sandbox_id: str,
        *,
        egress: EgressProxy | None,
        env: Mapping[str, str],
        limits: SandboxLimits,
    ) -> LocalSandbox:
        workspace = self.root / sandbox_id
        prelude = ""
        if self._bwrap is None:
            home, argv = str(workspace), [_bwrap.shell(), "-c"]
        else:
            # /tmp is a private tmpfs, RAM counted by the memory limit, no larger than the
            # workspace may grow. Egress: the proxy's socket, and the bridge to it.
            key = (egress is not None, limits.disk_mb)
            if key not in self._bwrap_args:
                identity = _bwrap.write_identity(self.root / ".etc")
                self._bwrap_args[key] = _bwrap.sandbox_args(
                    self._bwrap,
                    identity=identity,
                    shared=(*self._shared, *([egress.directory] if egress else [])),
                    tmp_bytes=limits.disk_mb * 1024 * 1024,
                )
            if egress is not None:
                prelude = egress_prelude(str(egress.socket_path))
            home = _bwrap.WORKSPACE
            argv = _bwrap.workspace_args(self._bwrap_args[key], workspace)
        base_env = {
            "PATH": _bwrap.SAFE_PATH,
            "HOME": home,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
            "TMPDIR": "/tmp",
            **env,
        }
        return LocalSandbox(
            sandbox_id,
            workspace,
            argv=argv,
            env=base_env,
            meta=self._meta_path(sandbox_id),
            limits=limits,
            enforcement=self._enforcement,
            prelude=prelude,
        )

    @staticmethod
    def _find_bwrap(isolation: Isolation) -> str | None:
        if isolation not in ("bwrap", "none"):
            raise InvalidRequest(
                f"Unknown isolation {isolation!r}; use 'bwrap' (the default) or 'none' "
                f"({ISOLATION_SETTING}=none, commands run unconfined).",
                context={"isolation": isolation},
            )
        if isolation == "none":
            _warn_unisolated()
            return None
        problem = _confinement_problem()
        if problem is not None:
            raise NotConfigured(
                problem,
                context={"fix": SETUP_COMMAND, "setting": ISOLATION_SETTING},
            )
        return _bwrap.find_bwrap()


class LocalSandbox(Sandbox):
    """One workspace directory; get it from :meth:`LocalCompute.create` or ``attach``.

    Inside the sandbox the workspace is the working directory and ``HOME``; it appears at
    ``/workspace`` under bubblewrap and at its host path otherwise. File methods accept
    paths relative to it, or absolute under either of those two places.

    Limits: each command runs within :attr:`limits` (the first one met ends it, and the
    result's ``limit`` names it; its timeout is capped at ``wall_seconds``); output past
    1 MiB per stream is dropped with a marker; background processes are killed when their
    command exits; the sandbox has only a loopback interface, and one whose spec asked for
    the network reaches the egress allow-list through the proxy (bubblewrap only). A
    command that races a host-side file call by swapping a directory for a symlink is not
    defended against: the path check and the open are two steps.
    """

    provider: ClassVar[str] = "local"
    streams_exec: ClassVar[bool] = True

    def __init__(
        self,
        sandbox_id: str,
        workspace: Path,
        *,
        argv: list[str],
        env: Mapping[str, str],
        meta: Path,
        limits: SandboxLimits | None = None,
        enforcement: Enforcement | None = None,
        prelude: str = "",
    ) -> None:
        self.sandbox_id = sandbox_id
        self._prelude = prelude
        self.workspace = workspace
        self.limits = limits or SandboxLimits()
        self._enforcement = enforcement or Enforcement.detect()
        self._argv = argv
        self._env = dict(env)
        self._meta = meta
        self._roots = (PurePosixPath(_bwrap.WORKSPACE), PurePosixPath(workspace))

    def __repr__(self) -> str:
        return f"LocalSandbox({self.sandbox_id!r}, workspace={str(self.workspace)!r})"

    async def cli_hosting(self) -> CliHosting:
        """The CLIs installed on this machine (bound read-only at the same paths), and the
        gateway's model-proxy socket (bound the same way, see :mod:`compute._proxy_bridge`)."""
        return CliHosting(
            programs=host_programs(), proxy="gateway", carried_by="this machine's installs"
        )

    # -- commands -----------------------------------------------------------------------

    def _command(self, command: str, timeout: float, env: Mapping[str, str] | None) -> CommandRun:
        if not timeout > 0:
            raise InvalidRequest(
                f"timeout must be a positive number of seconds, not {timeout!r}.",
                context={"timeout": timeout},
            )
        return CommandRun(
            [*self._argv, self._prelude + command],
            env={**self._env, **env} if env else self._env,
            cwd=str(self.workspace),
            timeout=min(timeout, self.limits.wall_seconds),
            limits=CommandLimits(self.limits, self._enforcement, self.workspace, self.sandbox_id),
        )

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in the workspace; see :meth:`Sandbox.exec`.

        Raises:
            SandboxGone: the workspace was deleted (a command that raced its sandbox's, or its
                session's, deletion).
            ComputeError: the shell could not be started.
            InvalidRequest: ``timeout`` is not positive.
        """
        started = time.perf_counter()
        run = self._command(command, timeout, env)
        stdout: list[str] = []
        stderr: list[str] = []
        async for chunk in self._chunks(run):
            if chunk.stream == "stdout":
                stdout.append(chunk.data)
            elif chunk.stream == "stderr":
                stderr.append(chunk.data)
        assert run.exit_code is not None  # set by the last chunk
        return ExecResult(
            stdout="".join(stdout),
            stderr="".join(stderr),
            exit_code=run.exit_code,
            duration_ms=(time.perf_counter() - started) * 1000,
            timed_out=run.timed_out,
            limit=run.limit_met,
        )

    def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        """Yield output as the command writes it; the last chunk is ``exit`` (with the limit
        that ended the command, if one did).

        On timeout the tree is killed and the exit code is 124. Closing the iterator early
        kills the tree. Raises as :meth:`exec` does.
        """
        return self._chunks(self._command(command, timeout, env))

    async def _chunks(self, run: CommandRun) -> AsyncIterator[ExecChunk]:
        """``run``'s chunks; a command that could not start because the workspace is gone
        fails as :class:`SandboxGone`."""
        try:
            async with contextlib.aclosing(run.chunks()) as chunks:  # closed early: killed
                async for chunk in chunks:
                    yield chunk
        except ComputeError as exc:
            if type(exc) is ComputeError and not self.workspace.is_dir():
                raise self._gone() from exc
            raise

    # -- files --------------------------------------------------------------------------

    def _host_path(self, path: str) -> Path:
        """Map a sandbox path to the host, refusing anything outside the workspace."""
        relative: PurePosixPath | str = path
        if path.startswith("/"):
            absolute = PurePosixPath(path)
            root = next((r for r in self._roots if absolute.is_relative_to(r)), None)
            if root is None:
                raise self._outside(path)
            relative = absolute.relative_to(root)
        try:
            host = Path(os.path.realpath(self.workspace / relative))
        except ValueError as exc:  # an embedded NUL byte
            raise self._outside(path) from exc
        if host != self.workspace and not host.is_relative_to(self.workspace):
            raise self._outside(path)
        return host

    def _outside(self, path: str) -> InvalidRequest:
        return InvalidRequest(
            f"Path {path!r} is outside sandbox {self.sandbox_id}: {_PATH_RULE}.",
            context={"path": path, "sandbox_id": self.sandbox_id, "rule": _PATH_RULE},
        )

    def _missing(self, path: str) -> NotFound | SandboxGone:
        if not self.workspace.is_dir():
            return self._gone()
        return NotFound(
            f"No file {path!r} in sandbox {self.sandbox_id}.",
            context={"path": path, "sandbox_id": self.sandbox_id},
        )

    def _gone(self) -> SandboxGone:
        return SandboxGone(
            f"Sandbox {self.sandbox_id} no longer exists (it was deleted, or its session was); "
            "create a new session or sandbox to run commands and files again.",
            context={"sandbox_id": self.sandbox_id},
        )

    def _existing(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args, workspace)``, or SandboxGone if the workspace was deleted."""
        if not self.workspace.is_dir():
            raise self._gone()
        return work(*args, self.workspace)

    def _not_a(self, kind: str, path: str) -> InvalidRequest:
        return InvalidRequest(
            f"{path!r} in sandbox {self.sandbox_id} is not a {kind}.",
            context={"path": path, "sandbox_id": self.sandbox_id},
        )

    async def read_file(self, path: str) -> bytes:
        """Return the file's bytes.

        Raises:
            NotFound: no such file.
            InvalidRequest: the path escapes the workspace or names a directory.
            ComputeError: the sandbox was deleted, or the host refused the read.
        """
        host = self._host_path(path)
        try:
            return await asyncio.to_thread(host.read_bytes)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise self._missing(path) from exc
        except IsADirectoryError as exc:
            raise self._not_a("file", path) from exc
        except OSError as exc:
            raise ComputeError(f"Could not read {path!r}: {exc.strerror or exc}.") from exc

    async def write_file(self, path: str, data: bytes) -> None:
        """Create or replace the file, creating parent directories.

        Raises:
            InvalidRequest: the path escapes the workspace, or it or a parent is in the way
                (a directory where the file goes, a file where a directory goes), or the file
                is larger than the workspace may be (``limits.disk_mb``).
            ComputeError: the sandbox was deleted, or the host refused the write.
        """
        host = self._host_path(path)
        if len(data) > self.limits.disk_mb * 1024 * 1024:
            raise InvalidRequest(
                f"{path!r} ({len(data)} bytes) is larger than sandbox {self.sandbox_id}'s "
                f"workspace may be ({self.limits.disk_mb} MiB, limits.disk_mb).",
                context={"path": path, "bytes": len(data), "disk_mb": self.limits.disk_mb},
            )

        def write() -> None:
            if not self.workspace.is_dir():
                raise self._missing(path)
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_bytes(data)

        try:
            await asyncio.to_thread(write)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise self._not_a("writable file path", path) from exc
        except OSError as exc:
            raise ComputeError(f"Could not write {path!r}: {exc.strerror or exc}.") from exc

    async def list_files(self, path: str = ".") -> list[str]:
        """Paths of the regular files under ``path``, relative to it and sorted.

        Symlinks are neither listed nor followed.

        Raises:
            NotFound: ``path`` does not exist.
            InvalidRequest: ``path`` escapes the workspace or is not a directory.
        """
        host = self._host_path(path)

        def walk() -> list[str]:
            if not host.exists():
                raise self._missing(path)
            if not host.is_dir():
                raise self._not_a("directory", path)
            return _regular_files(host)

        return await asyncio.to_thread(walk)

    # -- state --------------------------------------------------------------------------

    async def get_state(self) -> bytes:
        """The workspace as a gzipped tar (files, directories, links; modes, not owners).

        Raises:
            ComputeError: the sandbox was deleted.
        """
        return await asyncio.to_thread(self._existing, pack_workspace)

    async def set_state(self, archive: bytes) -> None:
        """Extract a :meth:`get_state` archive over the workspace.

        Every member is checked before anything is written, and again as it is extracted.

        Raises:
            InvalidRequest: not a tar archive, or a member would escape the workspace (an
                absolute or ``..`` path, a link pointing outside, a path through such a
                link) or is a device or FIFO. The message names the member and the rule.
            ComputeError: the sandbox was deleted, or extraction failed on the host.
        """
        await asyncio.to_thread(self._existing, unpack_workspace, archive)

    async def delete(self) -> None:
        """Remove the workspace and its record. Idempotent."""
        await asyncio.to_thread(_remove_tree, self.workspace)
        self._meta.unlink(missing_ok=True)


def _regular_files(base: Path) -> list[str]:
    found: list[str] = []
    pending = [str(base)]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    found.append(os.path.relpath(entry.path, base))
    return sorted(found)


def _remove_tree(path: Path, patience_s: float = 5.0) -> None:
    """Remove a workspace, also while a command still running in it writes files there
    (``rmtree`` then finds a directory it emptied non-empty again: it tries again, for up to
    ``patience_s``)."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except PermissionError:
            # A command made a directory read-only; as a non-root gateway we must undo that.
            for directory, _, _ in os.walk(path):
                os.chmod(directory, 0o700)
            shutil.rmtree(path)
            return
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
