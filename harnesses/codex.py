"""The ``codex`` harness: the Codex CLI writes the turn inside the session's compute.

Codex comes from the npm package ``@openai/codex``, installed by ``cerver setup`` into
Cerver's tools prefix (see :mod:`cerver.cli_programs`) and run with the system's ``node``.
Each run gets ``CODEX_HOME=<run>/home/.codex`` holding a ``config.toml`` written for it: a
model provider ``cerver`` at the model proxy (``wire_api = "responses"``, the key read from
``CERVER_PROXY_TOKEN``, the run's token), no retries of its own, analytics and plugins off
(both are needed for zero outside traffic), and the history preamble as
``developer_instructions`` when the turn takes over a conversation. Then::

    codex exec [resume <thread>] --json --skip-git-repo-check
        --dangerously-bypass-approvals-and-sandbox <input>  </dev/null

always under the harness's timeout (Codex waits for the network forever when its endpoint
refuses connections).

Permissions: ``--dangerously-bypass-approvals-and-sandbox``. A non-interactive run cannot
answer approvals, and Codex's own sandbox (Landlock/seccomp or bubblewrap) would have to nest
inside the compute's; the compute is the boundary instead: in the local sandbox only the
workspace is writable and the network reaches the model proxy alone. The output is parsed by
:mod:`harnesses.codex_events`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import ClassVar, Final

from cerver.cli_programs import CODEX_INSTALL
from harnesses._cli import CliHarness, CliRun
from harnesses.base import TurnContext
from harnesses.codex_events import CodexParser
from harnesses.options import CliFlag, CliHarnessOptions
from harnesses.tools import APP_TOOLS_MCP_PATH, APP_TOOLS_MCP_SERVER

__all__ = ["CodexHarness"]

_PROXY_URL = "@CERVER_PROXY_URL@"


_CONFIG_OVERRIDES: Final = (
    r"model_reasoning_effort=(minimal|low|medium|high|xhigh)"
    r"|model_reasoning_summary=(auto|concise|detailed|none)"
    r"|model_verbosity=(low|medium|high)"
)
"""The ``-c key=value`` overrides ``extra_args`` may pass to codex."""


class CodexHarness(CliHarness):
    """Codex CLI in the session's compute, reaching the Responses API through the proxy."""

    name: ClassVar[str] = "codex"
    provider: ClassVar[str] = "openai"
    default_model: ClassVar[str] = "gpt-5.5"
    install_step: ClassVar[str] = CODEX_INSTALL
    resume_state: ClassVar[str] = ".codex/sessions"

    class Options(CliHarnessOptions):
        """``extra_args`` may pass ``-c``/``--config`` for the reasoning and verbosity keys
        only (a ``model_provider`` or ``base_url`` override would leave the model proxy)."""

        allowed: ClassVar[Mapping[str, CliFlag]] = {
            flag: CliFlag(_CONFIG_OVERRIDES) for flag in ("-c", "--config")
        }

    def _parser(self) -> CodexParser:
        return CodexParser()

    async def _script(
        self, turn: TurnContext, run: CliRun, program: str
    ) -> tuple[str, dict[str, str]]:
        assert turn.proxy is not None and turn.sandbox is not None
        codex_home = f"{run.home}/.codex"
        template = f"{run.directory}/config.toml.in"
        await turn.sandbox.write_file(template, _config(turn, run).encode())
        exec_args = ["exec"]
        if run.resume:
            exec_args += ["resume", run.resume]
        exec_args += [
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
        ]
        if isinstance(turn.harness_options, CliHarnessOptions):
            exec_args += turn.harness_options.args()
        exec_args.append(self._prompt(turn))
        script = "\n".join(
            [
                f'export CODEX_HOME="$PWD/{codex_home}"',
                'mkdir -p "$CODEX_HOME"',
                f'sed "s|{_PROXY_URL}|$CERVER_PROXY_URL|" {shlex.quote(template)} '
                '> "$CODEX_HOME/config.toml" || exit 1',
                f"node {shlex.quote(program)} {shlex.join(exec_args)} </dev/null",
            ]
        )
        return script, {"CERVER_PROXY_TOKEN": turn.proxy.token}


def _config(turn: TurnContext, run: CliRun) -> str:
    """The run's ``config.toml`` (the proxy URL is filled in inside the sandbox)."""
    lines = [
        f"model = {json.dumps(turn.model)}",
        'model_provider = "cerver"',
    ]
    instructions = "\n\n".join(p for p in (turn.options.system_prompt, run.preamble) if p)
    if instructions:
        # A JSON string is a valid TOML basic string.
        lines.append(f"developer_instructions = {json.dumps(instructions, ensure_ascii=False)}")
    lines += [
        "",
        "[model_providers.cerver]",
        'name = "Cerver model proxy"',
        f'base_url = "{_PROXY_URL}/v2/proxy/openai"',
        'env_key = "CERVER_PROXY_TOKEN"',
        'wire_api = "responses"',
        "supports_websockets = false",
        "request_max_retries = 0",
        "stream_max_retries = 0",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[features]",
        "plugins = false",
        # The app's tools are offered to the model up front, not behind a tool_search step.
        *(["incremental_tools = false"] if turn.client_tools else []),
        "",
    ]
    if turn.client_tools:
        # The app's tools: the gateway's MCP server, with the run's token. Its calls are
        # parked until the turn stops the CLI, so no tool timeout should end them first.
        lines += [
            f"[mcp_servers.{APP_TOOLS_MCP_SERVER}]",
            f'url = "{_PROXY_URL}{APP_TOOLS_MCP_PATH}"',
            'bearer_token_env_var = "CERVER_PROXY_TOKEN"',
            "tool_timeout_sec = 3600",
            "",
        ]
    return "\n".join(lines)
