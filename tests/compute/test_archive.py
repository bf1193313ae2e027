"""The one tar-member rule every compute restores snapshots with (``compute/_archive.py``)."""

from __future__ import annotations

import pytest

from cerver.errors import InvalidRequest
from cerver.testing.conformance import ESCAPING_ARCHIVES, _tar
from compute._archive import check_archive

WORKSPACES = ["/workspace", "/home/user/workspace"]


@pytest.mark.parametrize("workspace", WORKSPACES)
@pytest.mark.parametrize("name", sorted(ESCAPING_ARCHIVES))
def test_members_that_escape_are_refused_on_every_workspace(workspace: str, name: str) -> None:
    with pytest.raises(InvalidRequest, match="member"):
        check_archive(ESCAPING_ARCHIVES[name], workspace)


@pytest.mark.parametrize("workspace", WORKSPACES)
def test_links_inside_the_workspace_are_kept(workspace: str) -> None:
    archive = _tar(
        ("file", "a/f.txt", "x"),
        ("symlink", "a/rel", "f.txt"),
        ("symlink", "abs", f"{workspace}/a/f.txt"),
        ("hardlink", "b", "a/f.txt"),
    )

    assert check_archive(archive, workspace) == [
        f"{workspace}/a/f.txt",
        f"{workspace}/a/rel",
        f"{workspace}/abs",
        f"{workspace}/b",
    ]


def test_a_hard_link_must_name_a_member_not_an_absolute_path() -> None:
    archive = _tar(("file", "f", "x"), ("hardlink", "g", "/workspace/f"))

    with pytest.raises(InvalidRequest, match="hard link"):
        check_archive(archive, "/workspace")


def test_what_is_not_a_tar_archive_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="tar archive"):
        check_archive(b"not a tar", "/workspace")
