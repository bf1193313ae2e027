"""The bubblewrap command line that isolates a local sandbox's commands.

Each command runs in fresh namespaces (``--unshare-all``: user, PID, IPC, UTS, cgroup and
network, which leaves only a loopback interface). The view of the file system is built from
nothing: ``/usr`` and the few ``/etc`` files a shell, Python and TLS need, read-only; a
private ``/proc`` and ``/dev``; the workspace read-write at :data:`WORKSPACE`; everything
else read-only. ``/tmp`` and ``/dev/shm`` are writable but private to one command (tmpfs):
what must outlive a command goes in the workspace. The gateway's home directory, its data
directory, other sandboxes and ``/etc/ssl/private`` are simply absent. As root, the command
runs as uid/gid 1000 with every capability dropped.

Python: the gateway's own interpreter (``sys.base_prefix``, e.g. ``/root/.pyenv/versions/
3.11.7``) is bound read-only at the same path and its ``bin`` leads :data:`SAFE_PATH`, so
``python3`` in a sandbox is the gateway's version (with its base ``site-packages``, but never
a virtualenv's). An interpreter under ``/usr`` needs no extra bind.

The argument list is built once per :class:`~compute.local.LocalCompute` and sandbox
shape (egress, ``/tmp`` size); an exec only appends the workspace bind and the command.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = [
    "SAFE_PATH",
    "WORKSPACE",
    "find_bwrap",
    "probe",
    "sandbox_args",
    "shell",
    "workspace_args",
    "write_identity",
]

WORKSPACE: Final = "/workspace"
"""Where the workspace appears inside the sandbox; also its ``HOME``."""

SANDBOX_UID: Final = 1000
"""The uid and gid commands run as when the gateway runs as root."""

_INTERPRETER: Final = os.path.realpath(sys.base_prefix)
_NEEDS_INTERPRETER_BIND: Final = not Path(_INTERPRETER).is_relative_to("/usr")

SAFE_PATH: Final = ":".join(
    [
        *([f"{_INTERPRETER}/bin"] if _NEEDS_INTERPRETER_BIND else []),
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
)
"""The fixed ``PATH`` of every sandbox command, isolated or not."""

# Top-level directories that are symlinks into /usr on merged-/usr systems, real ones elsewhere.
_ROOT_DIRS: Final = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# What a shell, Python, Node and TLS clients need from /etc; every bind costs ~0.15 ms per
# exec, so nothing more (no localtime: sandboxes run in UTC unless given TZ).
_ETC: Final = ("alternatives", "hosts", "ld.so.cache", "nsswitch.conf", "ssl/certs")


def find_bwrap() -> str | None:
    """The ``bwrap`` executable on the gateway's ``PATH``, if any."""
    return shutil.which("bwrap")


@functools.cache
def shell() -> str:
    """The absolute path of ``bash`` (found once; it lives under ``/usr`` or ``/bin``)."""
    return shutil.which("bash", path=SAFE_PATH) or "/bin/bash"


def _identity() -> tuple[int, int]:
    if os.geteuid() == 0:
        return SANDBOX_UID, SANDBOX_UID
    return os.getuid(), os.getgid()


def write_identity(directory: Path) -> Path:
    """Write the sandbox's minimal ``passwd`` and ``group`` into ``directory``.

    They name only the sandbox user (home :data:`WORKSPACE`) and ``nobody``, so ``whoami``,
    ``getpass`` and Node's ``os.userInfo()`` work without exposing the host's accounts.
    Also ``masked``, an empty file nobody may read, bound over ``/proc/1/environ``.
    """
    uid, gid = _identity()
    files = {
        "passwd": f"sandbox:x:{uid}:{gid}:Cerver sandbox:{WORKSPACE}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"sandbox:x:{gid}:\nnogroup:x:65534:\n",
    }
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if not path.is_file() or path.read_text() != content:
            # Atomically: another gateway process may be binding the file right now.
            staging = directory / f".{name}.{os.getpid()}"
            staging.write_text(content)
            staging.replace(path)
    masked = directory / "masked"
    if not masked.is_file():
        staging = directory / f".masked.{os.getpid()}"
        staging.write_text("")
        staging.chmod(0)
        staging.replace(masked)
    return directory


def sandbox_args(
    bwrap: str,
    *,
    identity: Path | None,
    shared: Sequence[Path] = (),
    tmp_bytes: int | None = None,
) -> list[str]:
    """The ``bwrap`` options shared by every sandbox (see :func:`workspace_args` for the rest).

    Args:
        bwrap: the ``bwrap`` executable.
        identity: a directory from :func:`write_identity`, bound as ``/etc/passwd`` and
            ``/etc/group``; ``None`` leaves the sandbox without them.
        shared: host directories bound read-only at the same path, skipped when missing
            (``--ro-bind-try``, checked at each exec).
        tmp_bytes: the size of the private ``/tmp`` tmpfs; unlimited (half the RAM) if
            ``None``.
    """
    # Never --share-net: a sandbox that may use the network reaches it through the egress
    # proxy (compute._egress), so the host's own services stay out of reach.
    args = [bwrap, "--unshare-all"]
    # --die-with-parent: the sandbox dies with the gateway. --new-session: no TIOCSTI
    # injection into a terminal the gateway might hold.
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if os.geteuid() == 0:
        uid = str(SANDBOX_UID)
        args += ["--unshare-user", "--uid", uid, "--gid", uid, "--cap-drop", "ALL"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in _ROOT_DIRS:
        host = Path("/", name)
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    if _NEEDS_INTERPRETER_BIND:
        args += ["--ro-bind", _INTERPRETER, _INTERPRETER]
    for entry in _ETC:
        host = Path("/etc", entry)
        if host.exists():
            args += ["--ro-bind", str(host), str(host)]
    if identity is not None:
        args += ["--ro-bind", str(identity / "passwd"), "/etc/passwd"]
        args += ["--ro-bind", str(identity / "group"), "/etc/group"]
    args += ["--proc", "/proc"]
    if identity is not None:
        # PID 1 is bubblewrap's own init: what it was started with is nobody's business.
        args += ["--ro-bind", str(identity / "masked"), "/proc/1/environ"]
    args += ["--dev", "/dev"]
    if tmp_bytes is not None:
        args += ["--size", str(tmp_bytes)]
    args += ["--tmpfs", "/tmp"]
    for directory in shared:  # after the /tmp tmpfs, which would hide binds below it
        args += ["--ro-bind-try", str(directory), str(directory)]
    return args


def workspace_args(shared: list[str], workspace: Path) -> list[str]:
    """Complete :func:`sandbox_args` for one workspace, up to ``bash -c`` (add the command).

    The root of the sandbox, a tmpfs holding the mount points, is made read-only last, so
    that only the workspace, ``/tmp`` and ``/dev/shm`` (both private) can be written.
    """
    return [
        *shared,
        *("--bind", str(workspace), WORKSPACE, "--chdir", WORKSPACE, "--remount-ro", "/"),
        *("--", shell(), "-c"),
    ]


@functools.cache
def probe(bwrap: str) -> str | None:
    """Run ``true`` under ``bwrap`` once per process; return why it failed, or ``None``.

    A ``bwrap`` that is installed can still be unusable, e.g. in a container whose seccomp
    profile forbids new namespaces.
    """
    argv = [*sandbox_args(bwrap, identity=None), "--remount-ro", "/"]
    argv += ["--", shell(), "-c", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=10, check=False, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
    return None
