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
    "claude_code_binary",
    "cli_tool_dirs",
    "codex_entry",
    "codex_prefix",
    "gemini_cli_entry",
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
