"""One mock upstream per test module (starting one costs ~20 ms, stopping ~0.1 s); the
queue and the log are reset before every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import openai
import pytest

from cerver.testing.mock_upstream import MockUpstream


@pytest.fixture(scope="module")
def running_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as upstream:
        yield upstream


@pytest.fixture
def upstream(running_upstream: MockUpstream) -> MockUpstream:
    running_upstream.reset()
    return running_upstream


@pytest.fixture
async def claude(upstream: MockUpstream) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The real Anthropic SDK, pointed at the mock, with retries off."""
    async with anthropic.AsyncAnthropic(
        base_url=upstream.anthropic_base_url, api_key="sk-ant-test", max_retries=0
    ) as client:
        yield client


@pytest.fixture
async def oai(upstream: MockUpstream) -> AsyncIterator[openai.AsyncOpenAI]:
    """The real OpenAI SDK, pointed at the mock, with retries off."""
    async with openai.AsyncOpenAI(
        base_url=upstream.openai_base_url, api_key="sk-test", max_retries=0
    ) as client:
        yield client
