"""Host preparation behind ``cerver setup``: operating-system packages the gateway relies on.

Today that is bubblewrap, which isolates the ``local`` compute's commands; Chromium and its
driver, for the console's browser tests; the Codex CLI (npm ``@openai/codex``) for the
``codex`` harness and Gemini CLI (npm ``@google/gemini-cli``) for the ``gemini-cli`` harness,
both installed into Cerver's own tools prefix (``$CERVER_TOOLS_DIR/npm``, default
``~/.cerver/tools/npm``), never globally; and the Vercel AI SDK (npm ``ai``, ``@ai-sdk/openai``)
into ``$CERVER_TOOLS_DIR/ai-sdk``, for the tests that drive the OpenAI-compatible surface with
it. Each step checks first and changes nothing when the
host is ready; when it cannot act (not root, no apt) it prints the exact command to run
instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.markup import escape

from cerver.cli_programs import tools_dir

__all__ = [
    "AI_SDK_PACKAGES",
    "STEPS",
    "ai_sdk_modules",
    "install_ai_sdk",
    "install_bubblewrap",
    "install_chromium",
    "install_codex",
    "install_gemini_cli",
]

_APT_TIMEOUT_S = 600
# apt-get's words when its package lists are empty or stale (a fresh container, typically).
_MISSING_LISTS = ("Unable to locate package", "has no installation candidate")


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", *args],
        capture_output=True,
        text=True,
        timeout=_APT_TIMEOUT_S,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def install_bubblewrap(console: Console | None = None) -> bool:
    """Make sure ``bwrap`` is on ``PATH``, installing the Debian/Ubuntu package if we can.

    As root with ``apt-get``: runs ``apt-get install -y bubblewrap``, and when that fails for
    lack of package lists, ``apt-get update`` and the install again. Otherwise prints the
    command to run. Never raises for a failed install: the outcome is the return value.

    Args:
        console: where to report; a new stderr console by default.

    Returns:
        Whether ``bwrap`` is available afterwards.
    """
    return _apt_install(
        ("bubblewrap",),
        ("bwrap",),
        "bubblewrap is installed: local sandboxes are confined.",
        console,
    )


def install_chromium(console: Console | None = None) -> bool:
    """Make sure Chromium and its chromedriver are on ``PATH`` (Debian's ``chromium`` and
    ``chromium-driver`` packages), for the console's browser tests.

    Same steps and outcome as :func:`install_bubblewrap`.

    Returns:
        Whether ``chromium`` and ``chromedriver`` are available afterwards.
    """
    return _apt_install(
        ("chromium", "chromium-driver"),
        ("chromium", "chromedriver"),
        "Chromium and chromedriver are installed: the console's browser tests can run.",
        console,
    )


def _apt_install(
    packages: tuple[str, ...], binaries: tuple[str, ...], ready: str, console: Console | None
) -> bool:
    """Install ``packages`` with apt-get unless every one of ``binaries`` is on ``PATH``."""
    console = console or Console(stderr=True)
    names = " ".join(packages)
    if all(shutil.which(b) for b in binaries):
        console.print(ready)
        return True
    if shutil.which("apt-get") is None:
        console.print(
            f"{names} is not installed and apt-get is not available: install the "
            f"[bold]{names}[/] package(s) with your system's package manager."
        )
        return False
    if os.geteuid() != 0:
        console.print(
            f"{names} is not installed. Install it with:\n"
            f"  [bold]sudo apt-get install -y {names}[/]"
        )
        return False

    console.print(f"Installing {names}: apt-get install -y {names}")
    try:
        done = _apt_get("install", "-y", *packages)
        if done.returncode != 0 and any(m in done.stderr for m in _MISSING_LISTS):
            console.print("The package lists are missing or stale: apt-get update")
            updated = _apt_get("update")
            done = _apt_get("install", "-y", *packages) if updated.returncode == 0 else updated
    except (OSError, subprocess.TimeoutExpired) as exc:
        console.print(f"[red]apt-get failed:[/] {escape(str(exc))}", highlight=False)
        return False
    if done.returncode != 0:
        console.print(
            f"[red]apt-get failed (exit code {done.returncode}):[/]\n{escape(done.stderr.strip())}",
            highlight=False,
        )
    installed = all(shutil.which(b) for b in binaries)
    if installed:
        console.print(ready)
    return installed


_NPM_TIMEOUT_S = 900


def install_codex(console: Console | None = None) -> bool:
    """Make sure the Codex CLI is installed in Cerver's tools prefix, with ``npm``.

    Runs ``npm install --prefix <prefix> @openai/codex@<tested version>`` when the launcher
    is missing. Never raises for a failed install: the outcome is the return value.

    Returns:
        Whether Codex is installed afterwards.
    """
    from cerver.cli_programs import CODEX_PACKAGE, codex_entry, codex_prefix

    return _npm_install(
        "Codex CLI", "the codex harness", codex_prefix(), [CODEX_PACKAGE], codex_entry, console
    )


def install_gemini_cli(console: Console | None = None) -> bool:
    """Make sure Gemini CLI is installed in Cerver's tools prefix, with ``npm``.

    Runs ``npm install --prefix <prefix> @google/gemini-cli@<tested version>`` when its entry
    script is missing. Never raises for a failed install: the outcome is the return value.

    Returns:
        Whether Gemini CLI is installed afterwards.
    """
    from cerver.cli_programs import GEMINI_CLI_PACKAGE, codex_prefix, gemini_cli_entry

    return _npm_install(
        "Gemini CLI",
        "the gemini-cli harness",
        codex_prefix(),
        [GEMINI_CLI_PACKAGE],
        gemini_cli_entry,
        console,
    )


AI_SDK_PACKAGES: Final = ("ai@6.0.325", "@ai-sdk/openai@3.0.141")
"""The Vercel AI SDK release the compatibility tests drive Cerver with (the newest that runs on
Node.js 20; ``ai`` 7 needs Node.js 22)."""


def ai_sdk_modules() -> Path | None:
    """The ``node_modules`` holding the Vercel AI SDK for the compatibility tests, if installed
    (``$CERVER_TOOLS_DIR/ai-sdk``; Cerver itself never loads it)."""
    modules = tools_dir() / "ai-sdk" / "node_modules"
    wanted = (modules / "ai" / "package.json", modules / "@ai-sdk" / "openai" / "package.json")
    return modules if all(path.is_file() for path in wanted) else None


def install_ai_sdk(console: Console | None = None) -> bool:
    """Make sure the Vercel AI SDK is installed for the compatibility tests, with ``npm``.

    Returns:
        Whether it is installed afterwards.
    """
    return _npm_install(
        "Vercel AI SDK",
        "the AI SDK compatibility test",
        tools_dir() / "ai-sdk",
        AI_SDK_PACKAGES,
        ai_sdk_modules,
        console,
    )


def _npm_install(
    what: str,
    needed_by: str,
    prefix: Path,
    packages: Sequence[str],
    entry: Callable[[], Path | None],
    console: Console | None,
) -> bool:
    """Install ``packages`` into ``prefix`` unless ``entry()`` already finds them."""
    console = console or Console(stderr=True)
    if entry() is not None:
        console.print(f"{what} is installed under {prefix}.")
        return True
    npm = shutil.which("npm")
    if npm is None:
        console.print(
            f"{needed_by[0].upper()}{needed_by[1:]} needs Node.js and npm: install them (e.g. "
            "[bold]apt-get install -y nodejs npm[/]) and run [bold]cerver setup[/] again."
        )
        return False
    console.print(f"Installing the {what}: npm install --prefix {prefix} {' '.join(packages)}")
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-fund", "--no-audit", *packages],
            capture_output=True,
            text=True,
            timeout=_NPM_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        console.print(f"[red]npm failed:[/] {escape(str(exc))}", highlight=False)
        return False
    if done.returncode != 0:
        console.print(
            f"[red]npm failed (exit code {done.returncode}):[/]\n{escape(done.stderr.strip())}",
            highlight=False,
        )
    installed = entry() is not None
    if installed:
        console.print(f"{what} is installed under {prefix}.")
    return installed


STEPS: dict[str, Callable[[Console | None], bool]] = {
    "bubblewrap": install_bubblewrap,
    "chromium": install_chromium,
    "codex": install_codex,
    "gemini-cli": install_gemini_cli,
    "ai-sdk": install_ai_sdk,
}
"""The steps of ``cerver setup``, by the name ``--only`` takes, in the order they run."""
