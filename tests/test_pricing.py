"""Prices come from a named source, in order, or are ``None`` with a reason: never guessed.

The pricing logic is tested against the fixture table ``tests/prices.json``; the installed
sources (genai-prices, LiteLLM's map) are only checked to be readable, because their numbers
change with every release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cerver import pricing
from cerver.pricing import GenaiPrices, LiteLLMPriceMap, Pricer, PriceTable, Quote
from cerver.types import Usage


def test_known_model_is_priced_per_token(fixture_prices: PriceTable) -> None:
    priced = pricing.price(
        "claude-haiku-4-5", "anthropic", Usage(input_tokens=1000, output_tokens=100)
    )
    assert priced.cost_usd == pytest.approx(1000 * 1e-6 + 100 * 5e-6)
    assert priced.cost_source == "file:prices.json" and priced.cost_reason is None


def test_provider_prefixed_names_are_found(fixture_prices: PriceTable) -> None:
    assert pricing.price("xai/grok-4", "xai", Usage(input_tokens=1)).cost_usd == pytest.approx(3e-6)
    assert pricing.price("grok-4", "xai", Usage(input_tokens=1)).cost_usd == pytest.approx(3e-6)


def test_long_prompts_use_the_tier_above_their_input_tokens(fixture_prices: PriceTable) -> None:
    below = Usage(input_tokens=200_000, output_tokens=0)
    above = Usage(input_tokens=300_000, output_tokens=1_000)
    assert pricing.price("claude-sonnet-4-5", "anthropic", below).cost_usd == pytest.approx(0.6)
    assert pricing.price("claude-sonnet-4-5", "anthropic", above).cost_usd == pytest.approx(
        300_000 * 6e-6 + 1_000 * 22.5e-6
    )


@pytest.mark.parametrize(
    ("model", "provider"),
    [("no-such-model-xyz", "openai"), ("claude-haiku-4-5", "openai")],
)
def test_unknown_or_mismatched_model_has_null_cost_and_a_reason(model: str, provider: str) -> None:
    priced = pricing.price(model, provider, Usage(input_tokens=10, output_tokens=10))
    assert priced.cost_usd is None and priced.cost_source is None
    assert model in (priced.cost_reason or "")
    assert pricing.PRICES_FILE_ENV in (priced.cost_reason or "")
    assert (priced.input_tokens, priced.output_tokens) == (10, 10)


class _Fixed:
    def __init__(self, name: str, cost: float | None) -> None:
        self.name, self.cost = name, cost

    def quote(self, model: str, provider: str, usage: Usage) -> Quote:
        return Quote(self.cost, None if self.cost is not None else f"{self.name} does not know")


def test_the_first_source_that_knows_the_model_wins() -> None:
    pricer = Pricer([_Fixed("a", None), _Fixed("b", 0.5), _Fixed("c", 9.0)])
    priced = pricer.price("m", "p", Usage(input_tokens=1))
    assert (priced.cost_usd, priced.cost_source) == (0.5, "b")


def test_the_reason_names_every_source_asked() -> None:
    priced = Pricer([_Fixed("a", None), _Fixed("b", None)]).price("m", "p", Usage())
    assert "a does not know" in priced.cost_reason and "b does not know" in priced.cost_reason


def test_operator_price_file_wins_over_the_packaged_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "mine.json"
    prices.write_text(json.dumps({"house-model": {"input_per_mtok": 2, "output_per_mtok": 4}}))
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(prices))
    pricer = pricing.default_pricer()
    assert [source.name for source in pricer.sources] == [
        "file:mine.json",
        "genai-prices",
        "litellm",
    ]
    priced = pricer.price("house-model", "openai", Usage(input_tokens=1_000_000, output_tokens=0))
    assert (priced.cost_usd, priced.cost_source) == (2.0, "file:mine.json")


@pytest.mark.parametrize(
    "body", [{"m": {"input_per_mtok": 1}}, {"m": {"input_per_mtok": "x", "output_per_mtok": 1}}]
)
def test_a_malformed_price_entry_is_refused_with_its_key(body: dict) -> None:
    with pytest.raises(ValueError, match="'m'"):
        PriceTable.from_json(body)


def test_sums_keep_the_source_or_say_mixed() -> None:
    a = Usage(cost_usd=1.0, cost_source="genai-prices")
    b = Usage(cost_usd=2.0, cost_source="litellm")
    assert (a + a).cost_source == "genai-prices"
    assert (a + b).cost_source == "mixed"
    assert (a + Usage()).cost_source == "genai-prices"


def test_installed_genai_prices_is_readable() -> None:
    """Only that the pinned package answers: its numbers belong to its release, not to us."""
    quote = GenaiPrices().quote("claude-sonnet-4-5", "anthropic", Usage(input_tokens=1000))
    assert quote.cost_usd is not None and quote.cost_usd > 0
    assert GenaiPrices().quote("no-such-model-xyz", "openai", Usage()).cost_usd is None


def test_installed_litellm_map_is_readable() -> None:
    pytest.importorskip("litellm", reason="pip install 'cerver[litellm]'")
    entries = LiteLLMPriceMap().entries()
    assert entries and all(isinstance(key, str) for key in entries)


def test_without_litellm_its_reason_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing.importlib.util, "find_spec", lambda name: None)
    quote = LiteLLMPriceMap().quote("claude-haiku-4-5", "anthropic", Usage(input_tokens=1))
    assert quote.cost_usd is None and "cerver[litellm]" in (quote.reason or "")
