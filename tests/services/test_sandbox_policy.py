"""The gateway's sandbox policy: limits within maxima, network only with an egress list."""

from __future__ import annotations

import pytest

from cerver.errors import InvalidRequest, NotConfigured
from cerver.services.sandbox_policy import SandboxPolicy
from cerver.settings import Settings
from cerver.types import SandboxLimits


def test_requested_limits_replace_the_defaults_field_by_field() -> None:
    policy = SandboxPolicy(SandboxLimits(), SandboxLimits(memory_mb=4096))

    limits = policy.limits({"limits": {"memory_mb": 2048}})

    assert limits == SandboxLimits(memory_mb=2048)
    assert policy.limits({}) == SandboxLimits()


@pytest.mark.parametrize(
    ("asked", "message"),
    [
        ({"memory_mb": 8192}, "memory_mb at most 4096"),
        ({"swap_mb": 1}, "Invalid requirements.limits"),
        ({"processes": 0}, "Invalid requirements.limits"),
    ],
)
def test_limits_beyond_the_policy_are_refused(asked: dict[str, int], message: str) -> None:
    policy = SandboxPolicy(SandboxLimits(), SandboxLimits(memory_mb=4096))

    with pytest.raises(InvalidRequest, match=message):
        policy.limits({"limits": asked})


def test_defaults_over_the_maxima_are_a_configuration_error() -> None:
    with pytest.raises(NotConfigured, match="CERVER_SANDBOX_LIMITS_MAX"):
        SandboxPolicy(SandboxLimits(memory_mb=8192), SandboxLimits(memory_mb=4096))


def test_network_needs_the_egress_setting() -> None:
    assert SandboxPolicy().network({}) is False
    with pytest.raises(InvalidRequest, match="CERVER_SANDBOX_EGRESS"):
        SandboxPolicy().network({"network": True})
    assert SandboxPolicy(egress=["pypi.org"]).network({"network": True}) is True


def test_settings_read_partial_json_and_a_comma_separated_allow_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CERVER_SANDBOX_LIMITS", '{"memory_mb": 2048}')
    monkeypatch.setenv("CERVER_SANDBOX_LIMITS_MAX", '{"memory_mb": 4096}')
    monkeypatch.setenv("CERVER_SANDBOX_EGRESS", "pypi.org, *.pythonhosted.org")

    settings = Settings()

    assert settings.sandbox_limits == SandboxLimits(memory_mb=2048)
    assert settings.sandbox_limits_max.memory_mb == 4096
    assert settings.sandbox_limits_max.processes == 4096  # the other default maxima stay
    assert settings.sandbox_egress == ["pypi.org", "*.pythonhosted.org"]
