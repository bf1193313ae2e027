"""The provider catalog: every compute the router knows, with what it can do and costs.

Executable providers come from the compute registry (their class attributes are the prior
profile); backends without a Python SDK are catalogued as ``modelled``: the router can advise
on them but never routes execution to them. Learned figures from the store override the prior
ones as soon as this gateway has observed a provider.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cerver.registry import Registry, compute_registry
from cerver.store import LearnedProfile
from compute.base import Capabilities, Profile

__all__ = ["MODELLED", "Catalog", "ProviderEntry", "ProviderStatus"]

ProviderStatus = Literal["live", "needs_credentials", "needs_setup", "missing_sdk", "modelled"]


@dataclass(frozen=True, slots=True)
class _Modelled:
    capabilities: Capabilities
    profile: Profile
    note: str


MODELLED: dict[str, _Modelled] = {
    "cloudflare": _Modelled(
        Capabilities(runtimes=("node", "shell"), public_preview=True, max_timeout_s=1800),
        Profile(startup_ms=350, cost_per_hour_usd=0.05, reliability=0.99),
        "Cloudflare Sandboxes have no Python SDK: advisory only.",
    ),
    "beam": _Modelled(
        Capabilities(runtimes=("shell", "python"), package_install=True, max_timeout_s=24 * 3600),
        Profile(startup_ms=1000, cost_per_hour_usd=0.19, reliability=0.99),
        "Beam Cloud sandboxes: no adapter yet. Its SDK (beam-client, built on beta9) speaks "
        "gRPC to Beam's gateway and can be aimed at a local double (GATEWAY_HOST/GATEWAY_PORT); "
        "until an adapter is proven against one: advisory only.",
    ),
    "replicate": _Modelled(
        Capabilities(runtimes=(), max_timeout_s=3600),
        Profile(startup_ms=5000, cost_per_hour_usd=0.36, reliability=0.98),
        "Replicate runs models, not shells (no command execution, no files): advisory only "
        "as compute; its models go through the litellm harness (replicate/...).",
    ),
}
"""Backends the router can advise on but not execute on (prior figures, not measured)."""


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    name: str
    status: ProviderStatus
    capabilities: Capabilities
    profile: Profile
    observed: LearnedProfile | None = None
    missing: tuple[str, ...] = ()
    note: str = ""
    host: dict[str, Any] = dataclasses.field(default_factory=dict)
    """What the host gives the provider (``Compute.host_report``), e.g. local's isolation."""

    @property
    def executable(self) -> bool:
        return self.status == "live"

    @property
    def startup_ms(self) -> float:
        """Predicted startup: what this gateway observed, else the prior profile."""
        if self.observed is not None and self.observed.startup_ms is not None:
            return self.observed.startup_ms
        return self.profile.startup_ms

    @property
    def reliability(self) -> float:
        if self.observed is not None and self.observed.reliability is not None:
            return self.observed.reliability
        return self.profile.reliability

    def cost_usd(self, minutes: float) -> float:
        return self.profile.cost_per_hour_usd * minutes / 60

    def public(self) -> dict[str, Any]:
        """The entry as ``GET /v2/providers`` shows it."""
        observed = None
        if self.observed is not None:
            observed = self.observed.model_dump(mode="json", exclude={"provider"})
        return {
            "name": self.name,
            "status": self.status,
            "executable": self.executable,
            "capabilities": dataclasses.asdict(self.capabilities),
            "profile": {
                "predicted_startup_ms": round(self.startup_ms, 2),
                "prior_startup_ms": self.profile.startup_ms,
                "cost_per_hour_usd": self.profile.cost_per_hour_usd,
                "reliability": round(self.reliability, 4),
            },
            "observed": observed,
            "missing": list(self.missing),
            "note": self.note,
            "host": self.host,
        }


class Catalog:
    """Builds :class:`ProviderEntry` lists from the registry, the modelled backends and the
    learned profiles. Cheap: loading a provider class never imports its vendor SDK."""

    def __init__(
        self,
        registry: Registry = compute_registry,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.registry = registry
        #: The gateway's constructor arguments per provider, for ``Compute.host_report``.
        self.options = options or {}

    def entries(self, observed: dict[str, LearnedProfile]) -> list[ProviderEntry]:
        entries = [self._entry(name, observed.get(name)) for name in self.registry.names()]
        for name, modelled in MODELLED.items():
            if name not in self.registry.names():
                entries.append(
                    ProviderEntry(
                        name,
                        "modelled",
                        modelled.capabilities,
                        modelled.profile,
                        observed.get(name),
                        note=modelled.note,
                    )
                )
        return sorted(entries, key=lambda e: e.name)

    def _entry(self, name: str, observed: LearnedProfile | None) -> ProviderEntry:
        cls = self.registry.load(name)
        missing = tuple(var for var in cls.credentials if not os.environ.get(var))
        sdk = getattr(cls, "sdk_module", None)
        status: ProviderStatus = "live"
        note = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        if sdk and importlib.util.find_spec(sdk) is None:
            status = "missing_sdk"
            extra = self.registry.extra(name) or name
            note = f"Install the SDK: pip install 'cerver[{extra}]'."
        elif missing:
            status = "needs_credentials"
            note = f"Set {', '.join(missing)} where the gateway runs."
        report = cls.host_report(**self.options.get(name, {}))
        if report.problem and status == "live":
            status, note = "needs_setup", report.problem
        return ProviderEntry(
            name,
            status,
            cls.capabilities,
            cls.profile,
            observed,
            missing,
            note,
            dict(report.details),
        )
