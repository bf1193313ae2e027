"""Workspace snapshots for the ``local`` compute: how a session's files travel.

:func:`pack_workspace` makes the archive :meth:`Sandbox.get_state` returns;
:func:`unpack_workspace` restores one, checking every member before anything is written (with
:func:`compute._archive.check_member`, the rule every compute shares) and again as it is
extracted, so that no absolute or ``..`` path, link pointing outside, path
through such a link, device or FIFO lands in (or escapes) the workspace.
"""

from __future__ import annotations

import io
import os
import posixpath
import tarfile
from pathlib import Path

from cerver.errors import ComputeError, InvalidRequest
from compute import _bwrap
from compute._archive import check_member, link_target, refuse

__all__ = ["pack_workspace", "unpack_workspace"]


def pack_workspace(workspace: Path) -> bytes:
    """The workspace as a gzipped tar: files, directories and links, modes but not owners."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        tar.add(workspace, arcname=".", filter=_portable)
    return buffer.getvalue()


def _portable(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Keep files, directories and links; drop devices and FIFOs, and host owners."""
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return None
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _restore_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """The ``tarfile`` extraction filter: resolve against what is already on disk."""
    dest = os.path.realpath(dest)

    def inside(relative: str) -> bool:
        resolved = os.path.realpath(os.path.join(dest, relative))
        return resolved == dest or resolved.startswith(dest + os.sep)

    if not inside(member.name):
        raise refuse(member, "it would be written through a link that leaves the workspace")
    if member.issym() or member.islnk():
        target = posixpath.relpath(link_target(member, _bwrap.WORKSPACE), _bwrap.WORKSPACE)
        if not inside(target):
            raise refuse(member, f"its link target {member.linkname!r} resolves outside")
    # Like tarfile's "data" filter: no set-id bits, no group/other write, owner access; and
    # owned by the gateway's user, never by whoever the archive names.
    mode = member.mode  # symlinks: unused
    if member.isreg() or member.islnk():
        mode = (member.mode & 0o755) | 0o600
    elif member.isdir():
        mode = (member.mode & 0o755) | 0o700
    return member.replace(
        mode=mode, uid=os.getuid(), gid=os.getgid(), uname="", gname="", deep=False
    )


def unpack_workspace(archive: bytes, workspace: Path) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                check_member(member, _bwrap.WORKSPACE)
            tar.extractall(workspace, members=members, filter=_restore_filter)
    except tarfile.TarError as exc:
        raise InvalidRequest(
            f"The state archive cannot be read as a tar archive: {exc}.",
            context={"size": len(archive)},
        ) from exc
    except OSError as exc:
        raise ComputeError(f"Could not restore the workspace: {exc}.") from exc
