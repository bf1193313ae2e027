"""What the CLI and the demo print for a session's costs: unknown is never shown as 0."""

from __future__ import annotations

from rich.console import Console

from cerver.cli.render import render_metrics


def _printed(metrics: dict) -> str:
    console = Console(record=True, width=200)
    render_metrics(console, metrics)
    return console.export_text()


def test_a_cost_nothing_could_price_is_unknown() -> None:
    text = _printed(
        {
            "cost_estimate_usd": None,
            "llm_cost_usd": None,
            "llm_calls_unpriced": 3,
            "cost_note": "3 call(s) have no known price. Add rates to CERVER_PRICES_FILE.",
            "by_harness": [
                {
                    "harness": "anthropic",
                    "model": "house-model",
                    "calls": 3,
                    "input_tokens": 30,
                    "output_tokens": 9,
                    "cost_usd": None,
                    "unpriced_calls": 3,
                }
            ],
        }
    )
    assert "0.0" not in text
    assert text.count("unknown") == 3  # both totals and the model's row
    assert "CERVER_PRICES_FILE" in text


def test_a_partial_cost_says_what_it_leaves_out() -> None:
    text = _printed({"cost_estimate_usd": 0.0021, "llm_cost_usd": 0.002, "llm_calls_unpriced": 1})
    assert "$0.002100 + 1 unpriced call(s)" in text
    assert "$0.002000 + 1 unpriced call(s)" in text


def test_a_fully_priced_cost_is_a_number() -> None:
    text = _printed({"cost_estimate_usd": 0.5, "llm_cost_usd": 0.5, "llm_calls_unpriced": 0})
    assert "$0.500000" in text and "unpriced call" not in text and "unknown" not in text
