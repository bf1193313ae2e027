"""Harness options reach the harness: the mock upstream's request log shows them, and the CLI
harnesses put their allow-listed flags on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cerver.errors import InvalidRequest
from cerver.options import PluginOptions, validate_options
from cerver.proxy.grants import ProxyGrant
from cerver.registry import harness_registry
from cerver.testing.mock_upstream import MockUpstream, Reply
from cerver.testing.sandbox import ShellSandbox
from harnesses._cli import CliRun
from harnesses._loop import ToolLoopHarness
from harnesses.anthropic import THINKING_BUDGETS
from harnesses.base import Error, TurnContext, TurnOptions
from harnesses.claude_code import ClaudeCodeHarness
from harnesses.codex import CodexHarness
from harnesses.gemini_cli import GeminiCliHarness


def _turn(
    harness: type[Any] | Any,
    options: dict[str, Any],
    *,
    model: str | None = None,
    turn: TurnOptions | None = None,
    **extra: Any,
) -> TurnContext:
    cls = harness if isinstance(harness, type) else type(harness)
    return TurnContext(
        session_id="sess_opt",
        run_id="run_opt",
        history=[],
        input="hi",
        model=model or cls.default_model,
        options=turn or TurnOptions(),
        harness_options=validate_options("harness", cls.name, cls, options),
        **extra,
    )


async def _run(harness: Any, turn: TurnContext, upstream: MockUpstream) -> dict[str, Any]:
    """Run ``turn`` (one model call) and return the body the upstream received."""
    events = [e async for e in harness.run(turn)]
    assert not [e for e in events if isinstance(e, Error)], events
    (request,) = upstream.requests
    return request["body"]


@pytest.fixture
def sdk(harness: ToolLoopHarness, upstream: MockUpstream) -> ToolLoopHarness:
    upstream.script(Reply(text="ok"))
    return harness


async def test_session_options_reach_the_upstream(
    sdk: ToolLoopHarness, upstream: MockUpstream
) -> None:
    body = await _run(sdk, _turn(sdk, {"temperature": 0.3, "max_tokens": 321}), upstream)

    assert body["temperature"] == 0.3
    tokens = body["max_tokens"] if sdk.provider == "anthropic" else body["max_output_tokens"]
    assert tokens == 321


async def test_the_turn_s_own_values_win_over_the_session_s(
    sdk: ToolLoopHarness, upstream: MockUpstream
) -> None:
    turn = _turn(
        sdk,
        {"temperature": 0.3, "max_tokens": 321},
        turn=TurnOptions(temperature=0.9, max_tokens=77),
    )
    body = await _run(sdk, turn, upstream)

    assert body["temperature"] == 0.9
    assert body.get("max_tokens", body.get("max_output_tokens")) == 77


async def test_reasoning_effort_reaches_the_upstream(
    sdk: ToolLoopHarness, upstream: MockUpstream
) -> None:
    body = await _run(sdk, _turn(sdk, {"reasoning": "low", "max_tokens": 1000}), upstream)

    if sdk.provider == "anthropic":
        budget = THINKING_BUDGETS["low"]
        assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert body["max_tokens"] == 1000 + budget  # the answer keeps its own allowance
    else:
        assert body["reasoning"] == {"effort": "low"}
        assert body["max_output_tokens"] == 1000


async def test_without_options_the_harness_default_applies(
    sdk: ToolLoopHarness, upstream: MockUpstream
) -> None:
    body = await _run(sdk, _turn(sdk, {}), upstream)

    assert "temperature" not in body and "thinking" not in body and "reasoning" not in body
    assert body.get("max_tokens", body.get("max_output_tokens")) == 4096


async def test_litellm_passes_sampling_options(upstream: MockUpstream) -> None:
    pytest.importorskip("litellm")
    from harnesses.litellm import LiteLLMHarness

    harness = LiteLLMHarness(base_url=upstream.openai_base_url, api_key="test-key")
    upstream.script(Reply(text="ok"))
    turn = _turn(harness, {"temperature": 0.2, "max_tokens": 55}, model="openai/gpt-4o")
    body = await _run(harness, turn, upstream)

    assert (body["temperature"], body["max_tokens"]) == (0.2, 55)


async def test_pydantic_ai_passes_sampling_options(upstream: MockUpstream) -> None:
    pytest.importorskip("pydantic_ai")
    from harnesses.pydantic_ai import PydanticAIHarness

    harness = PydanticAIHarness(base_url=upstream.openai_base_url, api_key="test-key")
    upstream.script(Reply(text="ok"))
    turn = _turn(harness, {"temperature": 0.4, "max_tokens": 66}, model="openai:gpt-4o")
    try:
        body = await _run(harness, turn, upstream)
    finally:
        await harness.aclose()

    assert body["temperature"] == 0.4
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 66


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"temprature": 0.2}, "temprature"),
        ({"temperature": 5}, "temperature"),
        ({"reasoning": "extreme"}, "reasoning"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_a_bad_sdk_option_names_the_field_and_the_harness(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        harness_registry.options("openai", options)

    assert caught.value.context["field"] == field
    assert caught.value.context["plugin"] == "openai"
    assert f"'{field}'" in caught.value.message and "'openai'" in caught.value.message


def test_anthropic_refuses_thinking_with_a_temperature() -> None:
    with pytest.raises(InvalidRequest, match="extended thinking"):
        harness_registry.options("anthropic", {"reasoning": "high", "temperature": 0.2})


def test_a_harness_without_options_takes_none() -> None:
    class Bare:
        name = "bare"

    assert validate_options("harness", "bare", Bare, {}) == PluginOptions()
    with pytest.raises(InvalidRequest, match="takes no options"):
        validate_options("harness", "bare", Bare, {"temperature": 1})


# -- CLI harnesses ---------------------------------------------------------------------------


async def _script(cls: type[Any], options: dict[str, Any], root: Path) -> str:
    sandbox = ShellSandbox(root)
    grant = ProxyGrant(
        token="tok", run_id="run_opt", session_id="sess_opt", harness=cls.name, expires_at=0
    )
    turn = _turn(cls, options, sandbox=sandbox, proxy=grant)
    run = CliRun(directory=".cerver/runs/run_opt", home=".cerver/runs/run_opt/home")
    script, _ = await cls()._script(turn, run, "/opt/cli")
    return script


async def test_claude_code_passes_allowed_flags(tmp_path: Path) -> None:
    script = await _script(
        ClaudeCodeHarness, {"extra_args": ["--effort", "high", "--max-budget-usd=2"]}, tmp_path
    )

    assert "--effort high --max-budget-usd 2" in script


async def test_codex_passes_reasoning_overrides_before_the_prompt(tmp_path: Path) -> None:
    script = await _script(
        CodexHarness, {"extra_args": ["-c", "model_reasoning_effort=high"]}, tmp_path
    )

    assert "-c model_reasoning_effort=high hi" in script


async def test_gemini_cli_replaces_its_approval_mode(tmp_path: Path) -> None:
    script = await _script(GeminiCliHarness, {"extra_args": ["--approval-mode=plan"]}, tmp_path)

    assert "--approval-mode plan" in script and "yolo" not in script


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("claude-code", ["--dangerously-skip-permissions"]),
        ("claude-code", ["--settings", "{}"]),
        ("claude-code", ["--effort", "huge"]),
        ("codex", ["-c", 'model_providers.x.base_url="http://evil"']),
        ("codex", ["--dangerously-bypass-approvals-and-sandbox"]),
        ("gemini-cli", ["--approval-mode", "default"]),
        ("gemini-cli", ["plan"]),
    ],
)
def test_cli_flags_outside_the_allow_list_are_refused(name: str, args: list[str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        harness_registry.options(name, {"extra_args": args})

    assert caught.value.context["field"] == "extra_args"
    assert caught.value.context["plugin"] == name
