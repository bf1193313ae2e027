"""What a model call cost, from LiteLLM's price map: a number when it is known, never a guess.

The price map is the JSON file shipped inside the ``litellm`` wheel
(``model_prices_and_context_window_backup.json``, the map LiteLLM itself uses with
``LITELLM_LOCAL_MODEL_COST_MAP=True``). It is read directly, once, on the first call: pricing a
call must not pay LiteLLM's ~4 s import, and must not reach the internet.

A model is priced when the map has an entry for it *for that provider* with both per-token
rates. Anything else (no ``litellm`` installed, a model the map does not list, an entry for
another provider, a missing rate) gives ``cost_usd=None`` and a ``cost_reason`` saying why, so
a bill never carries an invented number. Rates for prompts above 200k tokens are applied when
the map lists them.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from cerver.types import Usage

__all__ = ["PRICE_MAP_FILE", "lookup", "price", "reset"]

PRICE_MAP_FILE = "model_prices_and_context_window_backup.json"
_TIER_TOKENS = 200_000
_TIER_SUFFIX = "_above_200k_tokens"


def price(model: str, provider: str, usage: Usage) -> Usage:
    """``usage`` with ``cost_usd`` set from the price map, or ``None`` and ``cost_reason``.

    Args:
        model: the model as the harness called it (``claude-sonnet-4-6``, ``xai/grok-4``).
        provider: the provider that served it (LiteLLM's provider names: ``anthropic``,
            ``openai``, ``xai``…).
        usage: the call's token counts.
    """
    entry, reason = lookup(model, provider)
    if entry is None:
        return usage.model_copy(update={"cost_usd": None, "cost_reason": reason})
    tier = usage.input_tokens > _TIER_TOKENS
    rates = []
    for key in ("input_cost_per_token", "output_cost_per_token"):
        rate = entry.get(key + _TIER_SUFFIX) if tier else None
        rate = entry.get(key) if rate is None else rate
        if not isinstance(rate, int | float):
            return usage.model_copy(
                update={
                    "cost_usd": None,
                    "cost_reason": f"LiteLLM's price map has no {key} for {model!r}.",
                }
            )
        rates.append(float(rate))
    cost = usage.input_tokens * rates[0] + usage.output_tokens * rates[1]
    return usage.model_copy(update={"cost_usd": round(cost, 10), "cost_reason": None})


def lookup(model: str, provider: str) -> tuple[dict[str, Any] | None, str | None]:
    """The price map entry for ``model`` served by ``provider``, or ``None`` and why not."""
    prices = _price_map()
    if prices is None:
        return None, (
            "No price map: the 'litellm' package (which ships it) is not installed. "
            "Install it with: pip install 'cerver[litellm]'"
        )
    bare = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
    for key in (model, f"{provider}/{bare}", bare):
        entry = prices.get(key)
        if isinstance(entry, dict) and entry.get("litellm_provider") in (provider, None):
            return entry, None
    return None, (
        f"Model {model!r} (provider {provider!r}) is not in LiteLLM's price map, so its cost is "
        "unknown; tokens are still recorded."
    )


def reset() -> None:
    """Forget the loaded price map (for tests)."""
    _price_map.cache_clear()


@cache
def _price_map() -> dict[str, Any] | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / PRICE_MAP_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
