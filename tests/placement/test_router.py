"""The router over hand-built catalog entries (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cerver.errors import InvalidRequest
from cerver.placement import NoProviderQualifies, ProviderEntry, route
from cerver.store import LearnedProfile
from compute.base import Capabilities, Profile

FAST = ProviderEntry(
    "fast",
    "live",
    Capabilities(runtimes=("shell", "node"), package_install=True),
    Profile(startup_ms=100, cost_per_hour_usd=0.5, reliability=0.95),
)
CHEAP = ProviderEntry(
    "cheap",
    "live",
    Capabilities(runtimes=("shell", "python"), persistence="high"),
    Profile(startup_ms=2000, cost_per_hour_usd=0.0, reliability=0.999),
)
PREVIEW = ProviderEntry(
    "preview",
    "modelled",
    Capabilities(runtimes=("node",), public_preview=True),
    Profile(startup_ms=300, cost_per_hour_usd=0.1),
)
ENTRIES = [FAST, CHEAP, PREVIEW]


def test_report_has_the_seed_fields() -> None:
    report = route(ENTRIES, None, None, workload="general")

    assert set(report) >= {
        "recommended_provider",
        "confidence",
        "primary_reason",
        "secondary_reasons",
        "fallback_order",
        "canary_run",
    }
    assert report["canary_run"] is False
    assert report["recommended_provider"] not in report["fallback_order"]
    assert "preview" not in report["fallback_order"]  # modelled: advisory only


@pytest.mark.parametrize(
    ("mode", "winner"), [("fastest", "fast"), ("cheapest", "cheap"), ("resilient", "cheap")]
)
def test_modes_rank_differently(mode: str, winner: str) -> None:
    report = route(ENTRIES, None, {"mode": mode})

    assert report["recommended_provider"] == winner
    assert report["fallback_order"] == [n for n in ("fast", "cheap") if n != winner]


def test_requirements_filter_and_are_explained() -> None:
    report = route(ENTRIES, {"runtime": "python", "persistence_level": "high"}, None)

    assert report["recommended_provider"] == "cheap"
    excluded = {c["provider"]: c["excluded_reason"] for c in report["candidates"]}
    assert "runtime 'python'" in excluded["fast"]


def test_policy_limits_apply() -> None:
    assert route(ENTRIES, None, {"max_startup_ms": 500})["recommended_provider"] == "fast"
    report = route(ENTRIES, {"timeout_minutes": 60}, {"max_cost_usd": 0.1})
    assert report["recommended_provider"] == "cheap"


def test_nothing_executable_qualifies_is_a_409_with_the_report() -> None:
    with pytest.raises(NoProviderQualifies) as info:
        route(ENTRIES, {"public_preview": True}, None)

    assert info.value.status_code == 409
    report = info.value.context["routing"]
    assert report["recommended_provider"] is None
    preview = next(c for c in report["candidates"] if c["provider"] == "preview")
    assert "not executable" in preview["excluded_reason"]


def test_pinned_needs_a_known_provider() -> None:
    with pytest.raises(InvalidRequest, match="pinned_provider"):
        route(ENTRIES, None, {"mode": "pinned"})
    with pytest.raises(InvalidRequest, match="Did you mean 'fast'"):
        route(ENTRIES, None, {"mode": "pinned", "pinned_provider": "fats"})
    report = route(ENTRIES, None, {"mode": "pinned", "pinned_provider": "cheap"})
    assert report["recommended_provider"] == "cheap"
    assert report["confidence"] == "high"


def test_learned_startup_overrides_the_prior() -> None:
    observed = LearnedProfile(
        provider="cheap",
        startup_ms=20,
        exec_ms=3,
        reliability=1.0,
        provisions=5,
        execs=5,
        failures=0,
        updated_at=datetime.now(UTC),
    )
    learned = ProviderEntry("cheap", "live", CHEAP.capabilities, CHEAP.profile, observed)

    report = route([FAST, learned], None, {"mode": "fastest"})

    assert report["recommended_provider"] == "cheap"
    assert "5 observed provisions" in " ".join(report["secondary_reasons"])
