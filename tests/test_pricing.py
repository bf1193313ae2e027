"""Prices come from LiteLLM's bundled map, or are ``None`` with a reason: never guessed."""

from __future__ import annotations

import pytest

from cerver.types import Usage
from harnesses import pricing

pytest.importorskip("litellm")


def test_known_model_is_priced_per_token() -> None:
    priced = pricing.price(
        "claude-haiku-4-5", "anthropic", Usage(input_tokens=1000, output_tokens=100)
    )
    assert priced.cost_usd == pytest.approx(1000 * 1e-6 + 100 * 5e-6)
    assert priced.cost_reason is None


def test_provider_prefixed_names_are_found() -> None:
    assert pricing.price("xai/grok-4", "xai", Usage(input_tokens=1)).cost_usd == pytest.approx(3e-6)
    assert pricing.lookup("grok-4", "xai")[0] is not None


def test_long_prompts_use_the_tiered_rate_when_the_map_has_one() -> None:
    usage = Usage(input_tokens=300_000, output_tokens=0)
    assert pricing.price("claude-sonnet-4-5", "anthropic", usage).cost_usd == pytest.approx(1.8)


@pytest.mark.parametrize(
    ("model", "provider"),
    [("no-such-model-xyz", "openai"), ("claude-haiku-4-5", "openai")],
)
def test_unknown_or_mismatched_model_has_null_cost_and_a_reason(model: str, provider: str) -> None:
    priced = pricing.price(model, provider, Usage(input_tokens=10, output_tokens=10))
    assert priced.cost_usd is None
    assert model in (priced.cost_reason or "")
    assert (priced.input_tokens, priced.output_tokens) == (10, 10)


def test_without_litellm_the_reason_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing.importlib.util, "find_spec", lambda name: None)
    pricing.reset()
    try:
        priced = pricing.price("claude-haiku-4-5", "anthropic", Usage(input_tokens=1))
    finally:
        monkeypatch.undo()
        pricing.reset()
    assert priced.cost_usd is None and "cerver[litellm]" in (priced.cost_reason or "")
