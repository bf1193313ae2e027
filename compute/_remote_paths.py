"""Workspace path rules for sandboxes reached over a network (``e2b``).

The sandbox's filesystem is not ours to inspect, so a path is checked twice: lexically here
(absolute paths must lie under the workspace; ``..`` may not leave it), then by resolving its
links inside the sandbox (:func:`resolve_script`) before any file call. State archives are
checked member by member before a byte is uploaded (:func:`check_archive`).
"""

from __future__ import annotations

import io
import posixpath
import shlex
import tarfile
from collections.abc import Iterable

from cerver.errors import InvalidRequest

__all__ = ["check_archive", "inside", "lexical", "outside", "resolve_script"]


def outside(path: str, workspace: str) -> InvalidRequest:
    return InvalidRequest(
        f"Path {path!r} is outside the sandbox workspace {workspace!r}: use a path relative "
        "to the workspace.",
        context={"path": path, "workspace": workspace},
    )


def inside(absolute: str, workspace: str) -> bool:
    return absolute == workspace or absolute.startswith(workspace.rstrip("/") + "/")


def lexical(path: str, workspace: str) -> str:
    """The absolute sandbox path for ``path``. Raises InvalidRequest ("outside")."""
    joined = path if path.startswith("/") else posixpath.join(workspace, path)
    absolute = posixpath.normpath(joined)
    if not inside(absolute, workspace):
        raise outside(path, workspace)
    return absolute


def resolve_script(paths: Iterable[str]) -> str:
    """A shell command printing ``realpath -m`` of each path, one per line."""
    return "realpath -m -- " + " ".join(shlex.quote(p) for p in paths)


def _refuse(member: tarfile.TarInfo, rule: str) -> InvalidRequest:
    return InvalidRequest(
        f"Refusing state archive member {member.name!r}: {rule}.",
        context={"member": member.name, "rule": rule},
    )


def check_archive(archive: bytes, workspace: str) -> list[str]:
    """Refuse archives whose members would land outside ``workspace``.

    Returns the members' absolute sandbox paths, for the caller to resolve against links
    already in the sandbox.

    Raises:
        InvalidRequest: not a tar archive, or a member is absolute, has ``..``, is not a
            file/directory/link, or links outside the workspace.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            members = tar.getmembers()
    except tarfile.TarError as exc:
        raise InvalidRequest(f"The state archive cannot be read as a tar archive: {exc}.") from exc
    paths = []
    for member in members:
        if member.name.startswith("/"):
            raise _refuse(member, "absolute paths are not allowed")
        if ".." in member.name.split("/"):
            raise _refuse(member, "'..' components are not allowed")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise _refuse(member, "only files, directories and links are allowed")
        absolute = posixpath.normpath(posixpath.join(workspace, member.name))
        if member.issym() or member.islnk():
            base = workspace if member.islnk() else posixpath.dirname(absolute)
            target = posixpath.normpath(posixpath.join(base, member.linkname))
            if not inside(target, workspace):
                raise _refuse(member, f"its link target {member.linkname!r} is outside")
        paths.append(absolute)
    return paths
