"""Where the CLI harnesses' programs are installed on the gateway's host (no imports of them).

* Claude Code ships as a native binary inside the ``claude-agent-sdk`` wheel
  (``claude_agent_sdk/_bundled/claude``); ``pip install 'cerver[claude-code]'`` installs it.
* Codex comes from the npm package ``@openai/codex``, which ``cerver setup`` installs into
  Cerver's own tools prefix, :func:`codex_prefix` (``$CERVER_TOOLS_DIR/npm``, by default
  ``~/.cerver/tools/npm``), never globally.
* Gemini CLI comes from the npm package ``@google/gemini-cli``, installed by ``cerver setup``
  into the same prefix.

Local sandboxes bind :func:`cli_tool_dirs` read-only at the same paths, so a binary found
here runs unchanged inside them. Finding them costs a few ``stat`` calls: the SDK package is
located with :func:`importlib.util.find_spec`, never imported.

A kernel module: the CLI harnesses find their programs here, ``cerver setup`` installs them
here and the gateway shares these directories with local sandboxes, none reaching into the
others.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Final

__all__ = [
    "CLAUDE_CODE_INSTALL",
    "CODEX_INSTALL",
    "CODEX_PACKAGE",
    "GEMINI_CLI_INSTALL",
    "GEMINI_CLI_PACKAGE",
    "IMAGE_TOOLS_DIR",
    "INSTALL_TOOLS_DIR",
    "TOOLS_LAYOUT",
    "claude_code_binary",
    "cli_tool_dirs",
    "codex_entry",
    "codex_prefix",
    "gemini_cli_entry",
    "host_programs",
    "install_sources",
    "layout_programs",
    "tools_dir",
]

CODEX_PACKAGE: Final = "@openai/codex@0.169.0"
"""The Codex release Cerver is tested with (its JSON events and config keys)."""
CLAUDE_CODE_INSTALL: Final = "pip install 'cerver[claude-code]'"
CODEX_INSTALL: Final = "cerver setup"
GEMINI_CLI_PACKAGE: Final = "@google/gemini-cli@0.61.0"
"""The Gemini CLI release Cerver is tested with (its stream-json events and settings keys)."""
GEMINI_CLI_INSTALL: Final = "cerver setup"


def tools_dir() -> Path:
    """``$CERVER_TOOLS_DIR``, default ``~/.cerver/tools``: programs Cerver installs itself."""
    return Path(os.environ.get("CERVER_TOOLS_DIR") or "~/.cerver/tools").expanduser()


def codex_prefix() -> Path:
    """The npm ``--prefix`` Codex (and Gemini CLI) is installed into."""
    return tools_dir() / "npm"


def codex_entry() -> Path | None:
    """Codex's launcher script (run with ``node``), if installed."""
    entry = codex_prefix() / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"
    return entry if entry.is_file() else None


def gemini_cli_entry() -> Path | None:
    """Gemini CLI's bundled entry script (run with ``node``), if installed."""
    entry = codex_prefix() / "node_modules" / "@google" / "gemini-cli" / "bundle" / "gemini.js"
    return entry if entry.is_file() else None


def claude_code_binary() -> Path | None:
    """The Claude Code binary bundled in ``claude-agent-sdk``, if that package is installed."""
    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        binary = Path(location) / "_bundled" / "claude"
        if binary.is_file():
            return binary
    return None


def cli_tool_dirs() -> list[Path]:
    """Host directories a sandbox needs to see for the CLI harnesses (existing or not)."""
    dirs = [codex_prefix()]
    if (binary := claude_code_binary()) is not None:
        dirs.append(binary.parent)
    return dirs


TOOLS_LAYOUT: Final = {
    "claude-code": "claude-code/claude",
    "codex": "npm/node_modules/@openai/codex/bin/codex.js",
    "gemini-cli": "npm/node_modules/@google/gemini-cli/bundle/gemini.js",
}
"""Cerver's tools layout: where each CLI harness's program lies under a tools directory of
a sandbox (an image made for Cerver, or what Cerver installed on first use)."""

IMAGE_TOOLS_DIR: Final = "/opt/cerver-tools"
"""Where a sandbox image made for the CLI harnesses carries them, in :data:`TOOLS_LAYOUT`
(e.g. ``COPY`` of ``claude_agent_sdk/_bundled`` to ``/opt/cerver-tools/claude-code`` and
``CERVER_TOOLS_DIR=/opt/cerver-tools cerver setup --only codex --only gemini-cli``)."""

INSTALL_TOOLS_DIR: Final = "/tmp/cerver-tools"
"""Where Cerver installs a missing CLI on first use in a sandbox (outside the workspace, so
a move does not carry it)."""


def host_programs() -> dict[str, str]:
    """The CLI programs installed on this host, by harness name (the paths local sandboxes
    see unchanged through :func:`cli_tool_dirs`)."""
    found = {
        "claude-code": claude_code_binary(),
        "codex": codex_entry(),
        "gemini-cli": gemini_cli_entry(),
    }
    return {name: str(path) for name, path in found.items() if path is not None}


def layout_programs(directory: str) -> dict[str, str]:
    """Every CLI's program under a tools directory in :data:`TOOLS_LAYOUT`."""
    return {name: f"{directory.rstrip('/')}/{relative}" for name, relative in TOOLS_LAYOUT.items()}


def install_sources(harness: str) -> list[tuple[Path, str]]:
    """What installing ``harness``'s CLI in a sandbox copies: ``(host directory, its place
    in the tools layout)`` pairs; empty when the CLI is not installed on this host."""
    if harness == "claude-code":
        binary = claude_code_binary()
        return [(binary.parent, "claude-code")] if binary else []
    modules = codex_prefix() / "node_modules"
    if harness == "codex" and codex_entry() is not None:
        return [(modules / "@openai", "npm/node_modules/@openai")]
    if harness == "gemini-cli" and gemini_cli_entry() is not None:
        return [(modules / "@google" / "gemini-cli", "npm/node_modules/@google/gemini-cli")]
    return []
