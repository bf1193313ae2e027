"""What a model call cost: a number from a named price source, or ``None`` and why. Never a guess.

A :class:`Pricer` asks its sources in order and takes the first that knows the model for that
provider. The default order is:

1. ``CERVER_PRICES_FILE``, when set: a JSON :class:`PriceTable` of the operator's own rates
   (negotiated prices, private models). It wins over everything.
2. ``genai-prices`` (a dependency of the gateway, so every install prices known models): its
   data ships inside the wheel and is pinned by ``uv.lock``; nothing is fetched at call time.
3. LiteLLM's bundled price map, when the ``litellm`` extra is installed: about 4,000 models,
   read straight from the JSON file in its wheel (no ~4 s import, no network).

The source that priced a call is recorded as ``Usage.cost_source`` on the transcript entry and
the ledger row, so a bill says where each number came from. A call no source knows gets
``cost_usd=None`` and a ``cost_reason`` naming the sources asked.

Sources are plain objects with a ``name`` and a ``quote()`` method (:class:`PriceSource`);
tests build a :class:`Pricer` over a fixture :class:`PriceTable` and install it with
:func:`use`, so no test depends on price data that changes upstream.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cerver.errors import UnknownPlugin
from cerver.providers import providers
from cerver.types import Usage

__all__ = [
    "PRICES_FILE_ENV",
    "GenaiPrices",
    "LiteLLMPriceMap",
    "PriceSource",
    "PriceTable",
    "Pricer",
    "Quote",
    "default_pricer",
    "price",
    "use",
]

PRICES_FILE_ENV = "CERVER_PRICES_FILE"


@dataclass(frozen=True, slots=True)
class Quote:
    """A source's answer: ``cost_usd`` when it knows the model, else ``reason`` says why not."""

    cost_usd: float | None
    reason: str | None = None


class PriceSource(Protocol):
    """One place prices come from. ``quote`` never raises for an unknown model."""

    name: str

    def quote(self, model: str, provider: str, usage: Usage) -> Quote: ...


@dataclass(frozen=True, slots=True)
class Rates:
    """Dollars per million tokens; ``tiers`` replace both rates above an input-token count."""

    input_per_mtok: float
    output_per_mtok: float
    tiers: tuple[tuple[int, float, float], ...] = ()

    def cost(self, usage: Usage) -> float:
        input_rate, output_rate = self.input_per_mtok, self.output_per_mtok
        for above, tier_input, tier_output in sorted(self.tiers):
            if usage.input_tokens > above:
                input_rate, output_rate = tier_input, tier_output
        return (usage.input_tokens * input_rate + usage.output_tokens * output_rate) / 1e6


class PriceTable:
    """Rates written down by hand: ``{"provider/model": {"input_per_mtok", "output_per_mtok",
    "tiers": [{"above_input_tokens", "input_per_mtok", "output_per_mtok"}]}}``.

    Keys are ``provider/model`` (``anthropic/claude-sonnet-4-6``); a bare model name matches
    any provider. Loaded from the operator's ``CERVER_PRICES_FILE`` or a test fixture.
    """

    def __init__(self, rates: Mapping[str, Rates], *, name: str = "price-table") -> None:
        self.name = name
        self._rates = dict(rates)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, name: str = "price-table") -> PriceTable:
        """Parse the JSON shape above; a malformed entry raises ``ValueError`` naming its key."""
        rates = {}
        for key, raw in data.items():
            try:
                tiers = tuple(
                    (
                        int(t["above_input_tokens"]),
                        float(t["input_per_mtok"]),
                        float(t["output_per_mtok"]),
                    )
                    for t in raw.get("tiers", ())
                )
                rates[key] = Rates(
                    float(raw["input_per_mtok"]), float(raw["output_per_mtok"]), tiers
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(
                    f"Price entry {key!r} needs numeric 'input_per_mtok' and 'output_per_mtok' "
                    f"(and tiers with 'above_input_tokens'): {exc!r}"
                ) from exc
        return cls(rates, name=name)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PriceTable:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"Cannot read the price file {str(path)!r}: {exc}") from exc
        return cls.from_json(data, name=f"file:{path.name}")

    def quote(self, model: str, provider: str, usage: Usage) -> Quote:
        bare = _bare(model, provider)
        rates = self._rates.get(f"{provider}/{bare}") or self._rates.get(bare)
        if rates is None:
            return Quote(None, f"{self.name} has no entry for {provider}/{bare}")
        return Quote(round(rates.cost(usage), 10))


class GenaiPrices:
    """Prices from the ``genai-prices`` package (pydantic's price data, bundled in its wheel)."""

    name = "genai-prices"
    # genai-prices names some providers its own way: a registered model provider declares
    # its id (ModelProvider.pricing_id); pydantic-ai's ``google-gla`` is not a provider of ours.
    _OTHER_IDS = {"google-gla": "google"}

    def quote(self, model: str, provider: str, usage: Usage) -> Quote:
        try:
            from genai_prices import Usage as GenaiUsage
            from genai_prices import calc_price
        except ImportError:  # pragma: no cover - a dependency of the package
            return Quote(None, "genai-prices is not installed")
        provider_id = self._OTHER_IDS.get(provider) or _pricing_id(provider)
        try:
            calculation = calc_price(
                GenaiUsage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens),
                model_ref=_bare(model, provider),
                provider_id=provider_id,
            )
        except LookupError:
            return Quote(None, f"genai-prices has no {provider_id}/{_bare(model, provider)}")
        return Quote(round(float(calculation.total_price), 10))


class LiteLLMPriceMap:
    """LiteLLM's bundled map, read from the JSON file in its wheel when ``litellm`` is installed."""

    name = "litellm"
    FILE = "model_prices_and_context_window_backup.json"
    _TIER_TOKENS = 200_000
    _TIER_SUFFIX = "_above_200k_tokens"

    def __init__(self) -> None:
        self._map: dict[str, Any] | None = None
        self._loaded = False

    def entries(self) -> dict[str, Any] | None:
        """The whole map, read once; ``None`` when ``litellm`` is not installed."""
        if not self._loaded:
            self._loaded = True
            spec = importlib.util.find_spec("litellm")
            if spec is not None and spec.origin is not None:
                path = Path(spec.origin).parent / self.FILE
                if path.is_file():
                    self._map = json.loads(path.read_text(encoding="utf-8"))
        return self._map

    def quote(self, model: str, provider: str, usage: Usage) -> Quote:
        prices = self.entries()
        if prices is None:
            return Quote(None, "LiteLLM's map is not installed (pip install 'cerver[litellm]')")
        bare = _bare(model, provider)
        for key in (model, f"{provider}/{bare}", bare):
            entry = prices.get(key)
            if isinstance(entry, dict) and entry.get("litellm_provider") in (provider, None):
                return self._quote_entry(entry, key, usage)
        return Quote(None, f"LiteLLM's map has no {provider}/{bare}")

    def _quote_entry(self, entry: dict[str, Any], key: str, usage: Usage) -> Quote:
        tier = usage.input_tokens > self._TIER_TOKENS
        rates = []
        for name in ("input_cost_per_token", "output_cost_per_token"):
            rate = entry.get(name + self._TIER_SUFFIX) if tier else None
            rate = entry.get(name) if rate is None else rate
            if not isinstance(rate, int | float):
                return Quote(None, f"LiteLLM's map has no {name} for {key!r}")
            rates.append(float(rate))
        return Quote(round(usage.input_tokens * rates[0] + usage.output_tokens * rates[1], 10))


class Pricer:
    """Asks ``sources`` in order; the first that knows the model prices the call."""

    def __init__(self, sources: Sequence[PriceSource]) -> None:
        self.sources = tuple(sources)

    def price(self, model: str, provider: str, usage: Usage) -> Usage:
        """``usage`` with ``cost_usd`` and ``cost_source`` set, or ``None`` and ``cost_reason``.

        Args:
            model: the model as the harness called it (``claude-sonnet-4-6``, ``xai/grok-4``).
            provider: the model provider that served it (``anthropic``, ``openai``, ``xai``…).
            usage: the call's token counts.
        """
        reasons = []
        for source in self.sources:
            quote = source.quote(model, provider, usage)
            if quote.cost_usd is not None:
                return usage.model_copy(
                    update={
                        "cost_usd": quote.cost_usd,
                        "cost_source": source.name,
                        "cost_reason": None,
                    }
                )
            reasons.append(quote.reason or source.name)
        why = "; ".join(reasons) if reasons else "no price source is configured"
        return usage.model_copy(
            update={
                "cost_usd": None,
                "cost_source": None,
                "cost_reason": f"Model {model!r} (provider {provider!r}) has no known price "
                f"({why}); its tokens are still recorded. Add it to {PRICES_FILE_ENV}.",
            }
        )


_active: Pricer | None = None


def default_pricer() -> Pricer:
    """The gateway's pricer: ``CERVER_PRICES_FILE``, then genai-prices, then LiteLLM's map."""
    sources: list[PriceSource] = []
    if path := os.environ.get(PRICES_FILE_ENV):
        sources.append(PriceTable.from_file(path))
    sources += [GenaiPrices(), LiteLLMPriceMap()]
    return Pricer(sources)


def price(model: str, provider: str, usage: Usage) -> Usage:
    """Price one call with the active pricer (:func:`default_pricer` unless :func:`use` set one)."""
    global _active
    if _active is None:
        _active = default_pricer()
    return _active.price(model, provider, usage)


@contextmanager
def use(pricer: Pricer | None) -> Iterator[None]:
    """Make ``pricer`` the active one inside the block (``None``: rebuild the default)."""
    global _active
    previous, _active = _active, pricer
    try:
        yield
    finally:
        _active = previous


def _bare(model: str, provider: str) -> str:
    return model.split("/", 1)[1] if model.startswith(f"{provider}/") else model


def _pricing_id(provider: str) -> str:
    """The price sources' id of ``provider`` (its registry entry's), else the name itself."""
    try:
        return providers.model(provider).price_source_id
    except UnknownPlugin:  # LiteLLM's and pydantic-ai's other providers (groq, mistral…)
        return provider
