"""Workspace path rules for sandboxes reached over a network (``e2b``).

The sandbox's filesystem is not ours to inspect, so a path is checked twice: lexically here
(absolute paths must lie under the workspace; ``..`` may not leave it), then by resolving its
links inside the sandbox (:func:`resolve_script`) before any file call. State archives are
checked member by member before a byte is uploaded (:func:`check_archive`, the rule every
compute shares, from :mod:`compute._archive`).
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterable

from cerver.errors import InvalidRequest
from compute._archive import check_archive, inside

__all__ = ["check_archive", "inside", "lexical", "outside", "resolve_script"]


def outside(path: str, workspace: str) -> InvalidRequest:
    return InvalidRequest(
        f"Path {path!r} is outside the sandbox workspace {workspace!r}: use a path relative "
        "to the workspace.",
        context={"path": path, "workspace": workspace},
    )


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
