"""Shared by the tests that run the real coding CLIs."""

from __future__ import annotations

import os
from typing import Any

import pytest

from cerver.testing.mock_upstream import MockUpstream


def require_cli(found: object, what: str, install: str) -> None:
    """Skip (locally) or fail (in CI, which installs every CLI) when a CLI is missing."""
    if found is None:
        message = f"{what} is not installed: run `{install}`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def requests_of(upstream: MockUpstream, api: str) -> list[dict[str, Any]]:
    """The mock upstream's logged requests to one API (``anthropic``, ``responses``…)."""
    return [r for r in upstream.requests if r["api"] == api]


def kinds(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["role"], e["kind"]) for e in entries]
