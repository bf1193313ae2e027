"""Fixtures for the harness tests: a real-shell sandbox over a temporary directory, the mock
upstream, and each SDK harness pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cerver.retry import RetryPolicy
from cerver.testing.mock_upstream import MockUpstream
from cerver.testing.sandbox import ShellSandbox
from harnesses._loop import ToolLoopHarness
from harnesses.anthropic import AnthropicHarness
from harnesses.openai import OpenAIHarness

NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
def sandbox(tmp_path: Path) -> ShellSandbox:
    return ShellSandbox(tmp_path)


@pytest.fixture
def upstream(mock_upstream: MockUpstream) -> MockUpstream:
    """The test session's mock upstream (``tests/conftest.py``), emptied for this test."""
    mock_upstream.reset()
    return mock_upstream


HARNESSES: dict[str, type[AnthropicHarness] | type[OpenAIHarness]] = {
    "anthropic": AnthropicHarness,
    "openai": OpenAIHarness,
}


def build_harness(name: str, upstream: MockUpstream) -> ToolLoopHarness:
    """A harness of ``name`` pointed at ``upstream``, making one call per step (no retries:
    the retry layer has its own tests in ``test_retry.py``)."""
    base_url = upstream.openai_base_url if name == "openai" else upstream.anthropic_base_url
    built = HARNESSES[name](base_url=base_url, api_key="test-key")
    built.retry = NO_RETRY
    return built


@pytest.fixture
def make_harness(upstream: MockUpstream) -> Callable[[str], ToolLoopHarness]:
    """Build SDK harnesses by name, pointed at the (emptied) mock upstream."""
    return lambda name: build_harness(name, upstream)


@pytest.fixture(params=sorted(HARNESSES))
async def harness(
    request: pytest.FixtureRequest, upstream: MockUpstream
) -> AsyncIterator[ToolLoopHarness]:
    """Each SDK harness in turn, pointed at the mock upstream."""
    built = build_harness(request.param, upstream)
    try:
        yield built
    finally:
        await built.aclose()
