"""The one registry of providers: model providers and compute providers' credentials.

Built-ins are declared below; a third-party package adds one with an entry point in the
``cerver.providers`` group whose value names a :class:`ModelProvider` (or a
:class:`ComputeCredentials`) object, e.g. ``acme = "acme_provider:PROVIDER"``; a gateway's
operator names OpenAI-compatible endpoints in ``CERVER_OPENAI_COMPATIBLE`` (see
:mod:`cerver.settings`). Every reader of provider facts (settings, harness upstreams, the model
proxy, the mock upstream, pricing, ``GET /v2/providers``, account credentials) asks this
registry, so a name it does not know fails the same way everywhere, naming the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Final

from cerver.errors import UnknownPlugin, did_you_mean
from cerver.providers.compute import ComputeCredentials
from cerver.providers.model import ModelProvider

__all__ = [
    "BUILTIN_COMPUTE_CREDENTIALS",
    "BUILTIN_MODEL_PROVIDERS",
    "ENTRY_POINT_GROUP",
    "ProviderEntry",
    "ProviderRegistry",
    "openai_compatible",
    "providers",
]

ProviderEntry = ModelProvider | ComputeCredentials
ENTRY_POINT_GROUP: Final = "cerver.providers"

BUILTIN_MODEL_PROVIDERS: Final = (
    ModelProvider(
        name="anthropic",
        key_env="ANTHROPIC_API_KEY",
        base_url_env="ANTHROPIC_BASE_URL",
        default_base_url="https://api.anthropic.com",
        key_header="x-api-key",
        key_scheme=None,
        wire_formats=("anthropic-messages",),
        mock_dialect="anthropic",
        default_harness="anthropic",
        description="Anthropic's Messages API (harnesses anthropic, claude-code, pydantic-ai).",
    ),
    ModelProvider(
        name="openai",
        key_env="OPENAI_API_KEY",
        base_url_env="OPENAI_BASE_URL",
        default_base_url="https://api.openai.com/v1",
        wire_formats=("openai-responses", "openai-chat"),
        mock_dialect="openai",
        default_harness="openai",
        description="OpenAI's Responses and Chat Completions APIs (openai, codex, litellm…).",
    ),
    ModelProvider(
        name="gemini",
        key_env="GEMINI_API_KEY",
        base_url_env="GEMINI_BASE_URL",
        default_base_url="https://generativelanguage.googleapis.com",
        key_header="x-goog-api-key",
        key_scheme=None,
        wire_formats=("gemini",),
        mock_dialect="gemini",
        pricing_id="google",
        description="Google's Gemini API (harness gemini-cli).",
    ),
    ModelProvider(
        name="xai",
        key_env="XAI_API_KEY",
        base_url_env="XAI_BASE_URL",
        default_base_url="https://api.x.ai/v1",
        wire_formats=("openai-chat", "openai-responses"),
        mock_dialect="openai",
        pricing_id="x-ai",
        description="xAI's Grok models, OpenAI-compatible (harness litellm, alias grok).",
    ),
)

BUILTIN_COMPUTE_CREDENTIALS: Final = (
    ComputeCredentials("e2b", ("E2B_API_KEY",), base_url_env="E2B_API_URL"),
    ComputeCredentials("daytona", ("DAYTONA_API_KEY",), base_url_env="DAYTONA_API_URL"),
    ComputeCredentials("modal", ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"), key_argument=None),
    ComputeCredentials(
        "vercel", ("VERCEL_TOKEN", "VERCEL_TEAM_ID", "VERCEL_PROJECT_ID"), key_argument=None
    ),
)


def openai_compatible(
    name: str,
    base_url: str,
    *,
    key_env: str | None = None,
    pricing_id: str | None = None,
    account_base_url: bool = False,
    description: str = "",
) -> ModelProvider:
    """A provider for an endpoint that speaks OpenAI's API (vLLM, LM Studio, a company proxy…).

    Sessions reach it with ``{"harness": name}``: the ``openai`` harness's client pointed at
    ``base_url`` with the provider's key (``key_env``, default ``<NAME>_API_KEY``).
    """
    upper = name.upper().replace("-", "_")
    return ModelProvider(
        name=name,
        key_env=key_env or f"{upper}_API_KEY",
        base_url_env=f"{upper}_BASE_URL",
        default_base_url=base_url,
        wire_formats=("openai-responses", "openai-chat"),
        mock_dialect="openai",
        pricing_id=pricing_id,
        sdk_harness="openai",
        default_harness=name,
        account_base_url=account_base_url,
        description=description or f"OpenAI-compatible endpoint {base_url}.",
    )


class ProviderRegistry:
    """Model providers and compute credentials by name, in registration order.

    Args:
        builtins: the entries shipped with Cerver.
        group: the entry-point group scanned (once, on the first lookup that needs it) for
            third-party entries.
    """

    def __init__(self, builtins: Iterable[ProviderEntry], *, group: str = ENTRY_POINT_GROUP):
        self._builtins = tuple(builtins)
        self._group = group
        self.reset()

    def reset(self) -> None:
        """Forget run-time registrations and entry points already read (for tests)."""
        self._entries: dict[str, ProviderEntry] = {e.name: e for e in self._builtins}
        self._entry_points_scanned = False

    def register(self, entry: ProviderEntry) -> None:
        """Add or replace a provider."""
        self._entries[entry.name] = entry

    def get(self, name: str) -> ProviderEntry:
        """The model provider or compute credentials named ``name``.

        Raises:
            UnknownPlugin: no provider of that name; the message suggests the closest.
        """
        if name not in self._entries:
            self._scan_entry_points()
        entry = self._entries.get(name)
        if entry is None:
            raise self._unknown("provider", name, self._entries)
        return entry

    def model(self, name: str) -> ModelProvider:
        """The model provider ``name``. Raises UnknownPlugin naming the known ones."""
        if name not in self._entries:
            self._scan_entry_points()
        entry = self._entries.get(name)
        if not isinstance(entry, ModelProvider):
            raise self._unknown("model provider", name, {m.name: m for m in self.models()})
        return entry

    def compute(self, name: str) -> ComputeCredentials | None:
        """The credentials declared for compute provider ``name``, if any (a compute with
        no credentials, like ``local``, has none)."""
        self._scan_entry_points()
        entry = self._entries.get(name)
        return entry if isinstance(entry, ComputeCredentials) else None

    def models(self) -> list[ModelProvider]:
        self._scan_entry_points()
        return [e for e in self._entries.values() if isinstance(e, ModelProvider)]

    def computes(self) -> list[ComputeCredentials]:
        self._scan_entry_points()
        return [e for e in self._entries.values() if isinstance(e, ComputeCredentials)]

    def names(self) -> list[str]:
        self._scan_entry_points()
        return list(self._entries)

    def bound_harness(self, name: str) -> ModelProvider | None:
        """The provider named ``name`` if sessions use it as a harness (``sdk_harness``)."""
        if name not in self._entries:
            self._scan_entry_points()
        entry = self._entries.get(name)
        return entry if isinstance(entry, ModelProvider) and entry.sdk_harness else None

    def _unknown(self, kind: str, name: str, known: Iterable[str]) -> UnknownPlugin:
        names = sorted(known)
        return UnknownPlugin(
            f"Unknown {kind} {name!r}.{did_you_mean(name, names)} Known: {', '.join(names)}.",
            context={"kind": kind, "name": name, "known": names},
        )

    def _scan_entry_points(self) -> None:
        if self._entry_points_scanned:
            return
        self._entry_points_scanned = True
        for ep in entry_points(group=self._group):
            if ep.name in self._entries:
                continue  # a built-in or a run-time registration wins over a package
            module_name, _, attr = ep.value.partition(":")
            entry = getattr(importlib.import_module(module_name), attr)
            if not isinstance(entry, ModelProvider | ComputeCredentials):
                raise TypeError(
                    f"Entry point {ep.name!r} of {self._group!r} names {type(entry).__name__}; "
                    "it must name a cerver.providers.ModelProvider or ComputeCredentials."
                )
            self._entries[ep.name] = entry


providers: Final = ProviderRegistry([*BUILTIN_MODEL_PROVIDERS, *BUILTIN_COMPUTE_CREDENTIALS])
"""The process's provider registry."""
