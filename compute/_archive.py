"""The one rule for state archives: which tar members may land in a workspace.

A workspace snapshot (:meth:`~compute.base.Sandbox.get_state`) holds files, directories and
links, named relative to the workspace root. Restoring one must not write outside the
workspace, so every member is checked before a byte is written (:func:`check_member`), on
every compute: the ``local`` one extracts on the host (:mod:`compute._snapshot`), remote ones
upload the archive and extract it in the sandbox (:mod:`compute._remote_paths`). Paths are
judged as the sandbox sees them: ``workspace`` is the workspace's absolute path inside it.
"""

from __future__ import annotations

import io
import posixpath
import tarfile

from cerver.errors import InvalidRequest

__all__ = ["check_archive", "check_member", "inside", "link_target", "refuse"]


def inside(absolute: str, workspace: str) -> bool:
    """Whether the normalised absolute path ``absolute`` is ``workspace`` or under it."""
    return absolute == workspace or absolute.startswith(workspace.rstrip("/") + "/")


def refuse(member: tarfile.TarInfo, rule: str) -> InvalidRequest:
    """The error for a member that breaks ``rule``."""
    return InvalidRequest(
        f"Refusing state archive member {member.name!r}: {rule}.",
        context={"member": member.name, "rule": rule},
    )


def link_target(member: tarfile.TarInfo, workspace: str) -> str:
    """Where a link member points, as an absolute path in the sandbox.

    A hard link names another member (relative to the workspace root); a symbolic link is
    relative to its own directory unless absolute.
    """
    if member.islnk():
        base = workspace
    else:
        base = posixpath.dirname(posixpath.join(workspace, member.name))
    return posixpath.normpath(posixpath.join(base, member.linkname))


def check_member(member: tarfile.TarInfo, workspace: str) -> str:
    """The member's absolute path in the sandbox, if it may be restored there.

    Raises:
        InvalidRequest: the member is absolute, has a ``..`` component, is not a file,
            directory or link, is a hard link with an absolute name, or links outside the
            workspace.
    """
    if member.name.startswith("/"):
        raise refuse(member, "absolute paths are not allowed")
    if ".." in member.name.split("/"):
        raise refuse(member, "'..' components are not allowed")
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise refuse(member, "only files, directories and links are allowed")
    if member.islnk() and member.linkname.startswith("/"):
        raise refuse(member, "a hard link must name another member of the archive")
    if (member.issym() or member.islnk()) and not inside(link_target(member, workspace), workspace):
        raise refuse(member, f"its link target {member.linkname!r} is outside the workspace")
    return posixpath.normpath(posixpath.join(workspace, member.name))


def check_archive(archive: bytes, workspace: str) -> list[str]:
    """Every member's absolute sandbox path, once each member passed :func:`check_member`.

    Raises:
        InvalidRequest: not a tar archive, or a member that may not be restored.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            members = tar.getmembers()
    except tarfile.TarError as exc:
        raise InvalidRequest(
            f"The state archive cannot be read as a tar archive: {exc}.",
            context={"size": len(archive)},
        ) from exc
    return [check_member(member, workspace) for member in members]
