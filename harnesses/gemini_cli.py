"""The ``gemini-cli`` harness: Google's Gemini CLI writes the turn inside the session's compute.

Gemini CLI comes from the npm package ``@google/gemini-cli``, installed by ``cerver setup``
into Cerver's tools prefix (see :mod:`cerver.cli_programs`) and run with the system's
``node``::

    gemini -p <input> --output-format stream-json --approval-mode yolo -m <model>  </dev/null

always under the harness's timeout, with ``GOOGLE_GEMINI_BASE_URL`` at the model proxy's
``/v2/proxy/gemini`` (plain http is allowed for loopback), ``GEMINI_API_KEY`` set to the
run's proxy token and ``GEMINI_CLI_TRUST_WORKSPACE=true`` (a headless run cannot answer the
trust prompt). The run's ``HOME/.gemini/settings.json`` selects API-key auth, turns telemetry,
usage statistics and update checks off (no traffic but the model requests), allows one
attempt per model call (``general.maxAttempts``; retry policy belongs to the gateway, and the
CLI otherwise retries a 500 for over a minute) and excludes ``web_fetch`` and
``google_web_search``, which have no network to use.

History: always a preamble, never ``--resume``. Gemini CLI 0.61 can resume a session by id,
but it replays each tool result twice (two ``functionResponse`` parts for one
``functionCall``), which the Gemini API refuses. The ``<cerver-session-history>`` block (and
the turn's system prompt) goes into the run's global context file ``HOME/.gemini/GEMINI.md``,
which the CLI adds to its system instruction, so the user message stays the user's own words.

Permissions: ``--approval-mode yolo``, every tool call approved. A non-interactive run cannot
answer approvals (the default mode refuses the shell and edit tools), and Gemini CLI's own
sandbox (Docker/Podman or macOS Seatbelt) is off: the compute is the boundary; in the local
sandbox only the workspace is writable and the network reaches the model proxy alone. The
output is parsed by :mod:`harnesses.gemini_cli_events`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from cerver.cli_programs import GEMINI_CLI_INSTALL
from harnesses._cli import CliHarness, CliRun
from harnesses.base import TurnContext
from harnesses.gemini_cli_events import GeminiCliParser
from harnesses.options import CliFlag, CliHarnessOptions
from harnesses.tools import APP_TOOLS_MCP_PATH, APP_TOOLS_MCP_SERVER

__all__ = ["GeminiCliHarness"]

SETTINGS: Final[dict[str, Any]] = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "telemetry": {"enabled": False},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {
        "maxAttempts": 1,
        "retryFetchErrors": False,
        "enableAutoUpdate": False,
        "enableAutoUpdateNotification": False,
    },
    "tools": {"exclude": ["web_fetch", "google_web_search"]},
}
"""The run's ``~/.gemini/settings.json`` (Gemini CLI 0.61 keys)."""

_ENV: Final = {"GEMINI_CLI_TRUST_WORKSPACE": "true", "NO_COLOR": "1"}


class GeminiCliHarness(CliHarness):
    """Gemini CLI in the session's compute, reaching the Gemini API through the proxy."""

    name: ClassVar[str] = "gemini-cli"
    provider: ClassVar[str] = "gemini"
    default_model: ClassVar[str] = "gemini-2.5-pro"
    install_step: ClassVar[str] = GEMINI_CLI_INSTALL
    resume_state: ClassVar[str] = ".gemini/tmp"
    native_resume: ClassVar[bool] = False
    app_tool_prefix: ClassVar[str] = f"mcp_{APP_TOOLS_MCP_SERVER}_"

    class Options(CliHarnessOptions):
        """``extra_args`` may pass ``--approval-mode`` (``plan`` for a read-only turn), which
        replaces the harness's ``yolo``; the proxy and output format stay the harness's."""

        allowed: ClassVar[Mapping[str, CliFlag]] = {
            "--approval-mode": CliFlag(("yolo", "auto_edit", "plan"), replaces=True),
        }

    def _parser(self) -> GeminiCliParser:
        return GeminiCliParser()

    async def _script(
        self, turn: TurnContext, run: CliRun, program: str
    ) -> tuple[str, dict[str, str]]:
        assert turn.proxy is not None and turn.sandbox is not None
        options = turn.harness_options
        if not isinstance(options, GeminiCliHarness.Options):
            options = GeminiCliHarness.Options()
        settings = json.dumps(_settings(turn), indent=2).encode()
        await turn.sandbox.write_file(f"{run.home}/.gemini/settings.json", settings)
        context = "\n\n".join(p for p in (turn.options.system_prompt, run.preamble) if p)
        if context:
            await turn.sandbox.write_file(f"{run.home}/.gemini/GEMINI.md", context.encode())
        args = [
            "-p",
            self._prompt(turn),
            "--output-format",
            "stream-json",
            "--approval-mode",
            options.value("--approval-mode") or "yolo",
            "-m",
            turn.model,
            *options.args(),
        ]
        script = "\n".join(
            [
                'export GOOGLE_GEMINI_BASE_URL="$CERVER_PROXY_URL/v2/proxy/gemini"',
                "export CERVER_PROXY_URL",
                f"node {shlex.quote(program)} {shlex.join(args)} </dev/null",
            ]
        )
        return script, {**_ENV, "GEMINI_API_KEY": turn.proxy.token}


def _settings(turn: TurnContext) -> dict[str, Any]:
    """The run's settings: :data:`SETTINGS`, and the app's tools as an MCP server (Gemini CLI
    fills in ``$VAR`` from the environment: the token is never written to a file)."""
    if not turn.client_tools:
        return SETTINGS
    server = {
        "httpUrl": f"${{CERVER_PROXY_URL}}{APP_TOOLS_MCP_PATH}",
        "headers": {"Authorization": "Bearer ${GEMINI_API_KEY}"},
        "trust": True,
        "timeout": 3_600_000,
    }
    return {**SETTINGS, "mcpServers": {APP_TOOLS_MCP_SERVER: server}}
