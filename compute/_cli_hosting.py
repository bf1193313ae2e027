"""CLI hosting of the sandboxes of remote vendors (E2B, Daytona, Vercel, Modal).

A vendor sandbox carries a CLI when its image holds it in Cerver's tools layout at
:data:`~cerver.cli_programs.IMAGE_TOOLS_DIR` (a template, snapshot or image made for it), or
when Cerver installed it on first use at :data:`~cerver.cli_programs.INSTALL_TOOLS_DIR`; one
``test -e`` command per check finds which. Its commands reach the model proxy over the
network, at the gateway's public URL. Installing needs a native file upload (a CLI is a few
hundred MB): vendors whose files go through commands (base64 chunks) cannot install.
"""

from __future__ import annotations

import shlex

from cerver.cli_programs import IMAGE_TOOLS_DIR, INSTALL_TOOLS_DIR, layout_programs
from compute.base import CliHosting, Sandbox

__all__ = ["remote_hosting"]


async def remote_hosting(sandbox: Sandbox, *, vendor: str, can_install: bool) -> CliHosting:
    """The CLIs ``sandbox`` carries (image first, then Cerver's own installs) and how its
    commands reach the model proxy (``url``).

    Raises:
        ComputeError: the probe command could not run.
    """
    candidates = [
        (name, path)
        for directory in (IMAGE_TOOLS_DIR, INSTALL_TOOLS_DIR)
        for name, path in layout_programs(directory).items()
    ]
    probe = "; ".join(
        f"test -e {shlex.quote(path)} && echo {shlex.quote(f'{name}={path}')}"
        for name, path in candidates
    )
    result = await sandbox.exec(f"{probe}; true", timeout=30)
    programs: dict[str, str] = {}
    for line in result.stdout.splitlines():
        name, sep, path = line.partition("=")
        if sep and name not in programs:
            programs[name] = path
    return CliHosting(
        programs=programs,
        proxy="url",
        install_dir=INSTALL_TOOLS_DIR if can_install else None,
        carried_by=f"the {vendor} image ({IMAGE_TOOLS_DIR}) or Cerver's install "
        f"({INSTALL_TOOLS_DIR})",
    )
