"""The ``claude-code`` harness: the Claude Code CLI writes the turn inside the session's compute.

The CLI is the native binary bundled in the ``claude-agent-sdk`` wheel
(``pip install 'cerver[claude-code]'``), run non-interactively::

    claude -p <input> --output-format stream-json --verbose --include-partial-messages
        --model <model>
        --permission-mode bypassPermissions [--resume <id>]
        [--append-system-prompt-file <run>/system.md]

with ``ANTHROPIC_BASE_URL`` at the model proxy (through the sandbox's forwarder),
``ANTHROPIC_API_KEY`` set to the run's proxy token and
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` (no telemetry, update checks or feature-flag
calls: the CLI sends only its model requests) and ``CLAUDE_CODE_MAX_RETRIES=0`` (as for the
SDK harnesses, retry policy belongs to the gateway: a failed call fails the run).

Permissions: ``bypassPermissions`` (with ``IS_SANDBOX=1``, which the CLI asks for before it
accepts that mode). A non-interactive run cannot answer approval prompts, and the boundary is
the compute's: in the local sandbox only the workspace is writable and the network reaches
the model proxy alone. ``WebFetch`` and ``WebSearch`` are disallowed, having no network to
use. The output is parsed by :mod:`harnesses.claude_code_events`.

Cost: one source only. The model proxy meters every request the CLI makes and prices it from
the price map (:func:`cerver.pricing.price`), one ``llm`` ledger row per call, and those
rows are what budgets and bills see. Claude Code's own ``total_cost_usd`` estimate is not
charged (it would count the same calls twice): the parser keeps it as
``cost_estimate_usd``, for information only.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import ClassVar, Final

from cerver.cli_programs import CLAUDE_CODE_INSTALL
from harnesses._cli import CliHarness, CliRun
from harnesses.base import TurnContext
from harnesses.claude_code_events import ClaudeCodeParser
from harnesses.options import CliFlag, CliHarnessOptions
from harnesses.tools import APP_TOOLS_MCP_PATH, APP_TOOLS_MCP_SERVER

__all__ = ["ClaudeCodeHarness"]

_ENV: Final = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "IS_SANDBOX": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}


_MCP_CONFIG: Final = json.dumps(
    {
        "mcpServers": {
            APP_TOOLS_MCP_SERVER: {
                "type": "http",
                "url": "%s%s",
                "headers": {"Authorization": "Bearer %s"},
            }
        }
    }
)
"""``--mcp-config`` for the app's tools, a ``printf`` format of the proxy URL, the MCP path
and the run's token."""


class ClaudeCodeHarness(CliHarness):
    """Claude Code in the session's compute, reaching Claude through the model proxy."""

    name: ClassVar[str] = "claude-code"
    provider: ClassVar[str] = "anthropic"
    default_model: ClassVar[str] = "claude-sonnet-4-6"
    install_step: ClassVar[str] = CLAUDE_CODE_INSTALL
    resume_state: ClassVar[str] = ".claude/projects"

    class Options(CliHarnessOptions):
        """``extra_args`` may pass ``--effort``, ``--max-budget-usd``, ``--fallback-model``
        and ``--disallowedTools`` (the proxy, permissions and output stay the harness's)."""

        allowed: ClassVar[Mapping[str, CliFlag]] = {
            "--effort": CliFlag(("low", "medium", "high", "xhigh", "max")),
            "--max-budget-usd": CliFlag(r"\d{1,6}(\.\d{1,4})?"),
            "--fallback-model": CliFlag(r"[A-Za-z0-9._:\-]{1,100}"),
            "--disallowedTools": CliFlag(r"[A-Za-z0-9_,() *:\-]{1,500}"),
        }

    def _parser(self) -> ClaudeCodeParser:
        return ClaudeCodeParser()

    async def _script(
        self, turn: TurnContext, run: CliRun, program: str
    ) -> tuple[str, dict[str, str]]:
        assert turn.proxy is not None and turn.sandbox is not None
        args = [
            program,
            "-p",
            self._prompt(turn),
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--model",
            turn.model,
            "--permission-mode",
            "bypassPermissions",
            "--disallowedTools",
            "WebFetch,WebSearch",
        ]
        if run.resume:
            args += ["--resume", run.resume]
        if isinstance(turn.harness_options, CliHarnessOptions):
            args += turn.harness_options.args()
        system = "\n\n".join(p for p in (turn.options.system_prompt, run.preamble) if p)
        if system:
            path = f"{run.directory}/system.md"
            await turn.sandbox.write_file(path, system.encode())
            args += ["--append-system-prompt-file", path]
        command = shlex.join(args)
        lines = ['export ANTHROPIC_BASE_URL="$CERVER_PROXY_URL/v2/proxy/anthropic"']
        if turn.client_tools:
            # The app's tools: the gateway's MCP server, with the run's token (from the
            # environment, never written to a file).
            lines.append(
                "CERVER_MCP_CONFIG=$(printf "
                + shlex.quote(_MCP_CONFIG)
                + f' "$CERVER_PROXY_URL" {APP_TOOLS_MCP_PATH} "$ANTHROPIC_API_KEY")'
            )
            command += ' --mcp-config "$CERVER_MCP_CONFIG"'
        script = "\n".join([*lines, command])
        env = {**_ENV, "ANTHROPIC_API_KEY": turn.proxy.token}
        if turn.client_tools:  # offered to the model up front, not behind a ToolSearch step
            env["ENABLE_TOOL_SEARCH"] = "false"
        return script, env
