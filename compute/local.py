"""The ``local`` compute: sandboxes that are directories on the gateway's own machine.

Each sandbox is a workspace directory, ``<root>/sbx_<hex>``, next to a small
``sbx_<hex>.json`` that remembers its spec for :meth:`LocalCompute.attach`. Commands run with
``bash -c`` (never a login shell: it costs ~0.2 s) under bubblewrap when it is available (see
:mod:`compute._bwrap` for exactly what a command can see), or as plain subprocesses with one
warning per process when it is not. Either way a command gets a fixed environment, never the
gateway's: its provider keys and ``CERVER_*`` settings stay out.

File operations, snapshots and deletion work on the workspace directly from the host, which
is much faster than running a command for each; paths are mapped into the workspace and
checked, after following symlinks, so that none escapes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import ClassVar, Final, Literal, TypeVar

from cerver.errors import ComputeError, InvalidRequest, NotFound
from cerver.options import PluginSettings, plugin_settings
from cerver.types import ExecResult
from compute import _bwrap
from compute._process import CommandRun
from compute._snapshot import pack_workspace, unpack_workspace
from compute.base import Capabilities, Compute, ExecChunk, Profile, Sandbox, SandboxSpec

__all__ = ["Isolation", "LocalCompute", "LocalSandbox", "default_root"]

logger = logging.getLogger("cerver.compute.local")

Isolation = Literal["auto", "bwrap", "none"]
T = TypeVar("T")

_SANDBOX_ID: Final = re.compile(r"sbx_[0-9a-f]{16}")
_PATH_RULE: Final = (
    "paths must stay inside the workspace (relative, or absolute under "
    f"{_bwrap.WORKSPACE}), also after following symlinks"
)
_warned_unisolated = False


def default_root() -> Path:
    """``$CERVER_DATA_DIR/sandboxes``, the data directory defaulting to ``~/.cerver``."""
    return Path(os.environ.get("CERVER_DATA_DIR") or "~/.cerver").expanduser() / "sandboxes"


def _warn_unisolated(reason: str) -> None:
    global _warned_unisolated
    if _warned_unisolated:
        return
    _warned_unisolated = True
    logger.warning(
        "Local sandbox commands are NOT isolated (%s): they run as the gateway's user, can "
        "read and write its files and reach the network. To isolate them, install bubblewrap "
        "(%s) and use isolation='auto'.",
        reason,
        _bwrap.INSTALL_HINT,
    )


class LocalCompute(Compute):
    """Sandboxes in directories under ``root``, isolated with bubblewrap.

    Args:
        root: where workspaces live; default :func:`default_root`.
        isolation: ``"bwrap"`` requires bubblewrap; ``"none"`` runs plain subprocesses;
            ``"auto"`` uses bubblewrap when it is installed and works, and otherwise warns
            once and runs plain subprocesses. Default: ``$CERVER_LOCAL_ISOLATION``, else
            ``"auto"``.
        shared: host directories every sandbox sees read-only at the same path (when they
            exist at exec time): the model proxy's socket directory and the CLI harnesses'
            installs (see :mod:`compute._proxy_bridge`).

    Raises:
        ComputeError: ``isolation="bwrap"`` and bubblewrap is missing or cannot create
            namespaces here (the message names the install step or bwrap's own error).
        InvalidRequest: an unknown ``isolation``.

    Construction runs ``bwrap`` once per process (a few ms) to check that it works.
    """

    name: ClassVar[str] = "local"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "python", "node"), package_install=True, persistence="medium"
    )
    profile: ClassVar[Profile] = Profile(startup_ms=5, cost_per_hour_usd=0.0)

    class Settings(PluginSettings):
        """Gateway-wide: ``CERVER_LOCAL_ISOLATION`` (``auto``, ``bwrap`` to require
        bubblewrap, ``none``)."""

        isolation: str = "auto"

    def __init__(
        self,
        root: Path | None = None,
        *,
        isolation: Isolation | None = None,
        shared: Sequence[Path] = (),
    ) -> None:
        self.root = Path(os.path.realpath((root or default_root()).expanduser()))
        self._shared = tuple(shared)
        settings = plugin_settings(self.name, self.Settings, isolation=isolation)
        self._bwrap = self._find_bwrap(settings.isolation)  # type: ignore[arg-type]
        self._bwrap_args: dict[bool, list[str]] = {}

    @property
    def isolation(self) -> Literal["bwrap", "none"]:
        """The isolation commands actually get."""
        return "bwrap" if self._bwrap else "none"

    async def create(self, spec: SandboxSpec) -> LocalSandbox:
        """Make an empty workspace ``<root>/sbx_<hex>``.

        Raises:
            ComputeError: the directory could not be created.
        """
        sandbox_id = f"sbx_{secrets.token_hex(8)}"
        workspace = self.root / sandbox_id
        meta = {"session_id": spec.session_id, "network": spec.network, "env": dict(spec.env)}
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
        return self._sandbox(sandbox_id, network=spec.network, env=spec.env)

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
        return self._sandbox(
            sandbox_id, network=bool(meta.get("network")), env=meta.get("env") or {}
        )

    def _meta_path(self, sandbox_id: str) -> Path:
        return self.root / f"{sandbox_id}.json"

    def _sandbox(self, sandbox_id: str, *, network: bool, env: Mapping[str, str]) -> LocalSandbox:
        workspace = self.root / sandbox_id
        if self._bwrap is None:
            home, argv = str(workspace), [_bwrap.shell(), "-c"]
        else:
            if network not in self._bwrap_args:
                identity = _bwrap.write_identity(self.root / ".etc")
                args = _bwrap.sandbox_args(
                    self._bwrap, network=network, identity=identity, shared=self._shared
                )
                self._bwrap_args[network] = args
            home = _bwrap.WORKSPACE
            argv = _bwrap.workspace_args(self._bwrap_args[network], workspace)
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
            sandbox_id, workspace, argv=argv, env=base_env, meta=self._meta_path(sandbox_id)
        )

    @staticmethod
    def _find_bwrap(isolation: Isolation) -> str | None:
        if isolation not in ("auto", "bwrap", "none"):
            raise InvalidRequest(
                f"Unknown isolation {isolation!r}; use 'auto', 'bwrap' or 'none'.",
                context={"isolation": isolation},
            )
        if isolation == "none":
            _warn_unisolated("isolation='none' was asked for")
            return None
        bwrap = _bwrap.find_bwrap()
        problem = "bubblewrap is not installed" if bwrap is None else _bwrap.probe(bwrap)
        if problem is None:
            return bwrap
        if isolation == "bwrap":
            hint = _bwrap.INSTALL_HINT if bwrap is None else "check that namespaces are allowed"
            raise ComputeError(
                f"isolation='bwrap' cannot be used: {problem}. To fix it, {hint}.",
                context={"isolation": isolation, "bwrap": bwrap},
            )
        _warn_unisolated(problem if bwrap is None else f"bubblewrap failed: {problem}")
        return None


class LocalSandbox(Sandbox):
    """One workspace directory; get it from :meth:`LocalCompute.create` or ``attach``.

    Inside the sandbox the workspace is the working directory and ``HOME``; it appears at
    ``/workspace`` under bubblewrap and at its host path otherwise. File methods accept
    paths relative to it, or absolute under either of those two places.

    Limits: output past 1 MiB per stream is dropped with a marker; background processes are
    killed when their command exits; the sandbox has no network unless its spec asked for it
    (bubblewrap only). A command that races a host-side file call by swapping a directory for
    a symlink is not defended against: the path check and the open are two steps.
    """

    provider: ClassVar[str] = "local"

    def __init__(
        self,
        sandbox_id: str,
        workspace: Path,
        *,
        argv: list[str],
        env: Mapping[str, str],
        meta: Path,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.workspace = workspace
        self._argv = argv
        self._env = dict(env)
        self._meta = meta
        self._roots = (PurePosixPath(_bwrap.WORKSPACE), PurePosixPath(workspace))

    def __repr__(self) -> str:
        return f"LocalSandbox({self.sandbox_id!r}, workspace={str(self.workspace)!r})"

    # -- commands -----------------------------------------------------------------------

    def _command(self, command: str, timeout: float, env: Mapping[str, str] | None) -> CommandRun:
        if not timeout > 0:
            raise InvalidRequest(
                f"timeout must be a positive number of seconds, not {timeout!r}.",
                context={"timeout": timeout},
            )
        return CommandRun(
            [*self._argv, command],
            env={**self._env, **env} if env else self._env,
            cwd=str(self.workspace),
            timeout=timeout,
        )

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in the workspace; see :meth:`Sandbox.exec`.

        Raises:
            ComputeError: the workspace is gone or the shell could not be started.
            InvalidRequest: ``timeout`` is not positive.
        """
        started = time.perf_counter()
        run = self._command(command, timeout, env)
        stdout: list[str] = []
        stderr: list[str] = []
        async for chunk in run.chunks():
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
        )

    def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        """Yield output as the command writes it; the last chunk is ``exit``.

        On timeout the tree is killed and the exit code is 124. Closing the iterator early
        kills the tree. Raises as :meth:`exec` does.
        """
        return self._command(command, timeout, env).chunks()

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

    def _missing(self, path: str) -> NotFound | ComputeError:
        if not self.workspace.is_dir():
            return ComputeError(
                f"Sandbox {self.sandbox_id} no longer exists (it was deleted).",
                context={"sandbox_id": self.sandbox_id},
            )
        return NotFound(
            f"No file {path!r} in sandbox {self.sandbox_id}.",
            context={"path": path, "sandbox_id": self.sandbox_id},
        )

    def _existing(self, work: Callable[..., T], *args: object) -> T:
        """``work(*args, workspace)``, or ComputeError if the workspace was deleted."""
        if not self.workspace.is_dir():
            raise self._missing(".")
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
                (a directory where the file goes, a file where a directory goes).
            ComputeError: the sandbox was deleted, or the host refused the write.
        """
        host = self._host_path(path)

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


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except PermissionError:
        # A command made a directory read-only; as a non-root gateway we must undo that.
        for directory, _, _ in os.walk(path):
            os.chmod(directory, 0o700)
        shutil.rmtree(path)
