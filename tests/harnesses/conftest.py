"""Fixtures for the harness tests: a real-shell sandbox over a temporary directory, the mock
upstream, and each SDK harness pointed at it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from cerver.errors import InvalidRequest, NotFound
from cerver.mock_upstream import MockUpstream
from cerver.types import ExecResult
from compute.base import Sandbox
from harnesses._loop import ToolLoopHarness
from harnesses.anthropic import AnthropicHarness
from harnesses.openai import OpenAIHarness
from harnesses.retry import RetryPolicy

NO_RETRY = RetryPolicy(max_attempts=1)


class FakeSandbox(Sandbox):
    """A test double: runs commands with the host's ``bash`` in a temporary directory.

    No isolation at all; it exists so harness tests do not depend on a compute backend.
    ``fail_with`` makes every call raise that exception (a broken backend); ``calls`` records
    ``(method, argument)`` pairs.
    """

    provider = "fake"

    def __init__(self, root: Path) -> None:
        self.sandbox_id = "sbx_fake"
        self.root = root
        self.fail_with: BaseException | None = None
        self.calls: list[tuple[str, str]] = []

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        self._record("exec", command)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=self.root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env else None,
        )
        try:
            async with asyncio.timeout(timeout):
                stdout, stderr = await process.communicate()
        except BaseException as exc:
            # Timed out or cancelled: never leave the child (or its transport) behind.
            process.kill()
            await asyncio.shield(process.wait())
            if not isinstance(exc, TimeoutError):
                raise
            return ExecResult(
                exit_code=124,
                duration_ms=(time.perf_counter() - started) * 1000,
                timed_out=True,
            )
        return ExecResult(
            stdout=stdout.decode(errors="replace"),
            stderr=stderr.decode(errors="replace"),
            exit_code=process.returncode or 0,
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    async def read_file(self, path: str) -> bytes:
        self._record("read_file", path)
        target = self._resolve(path)
        if not target.is_file():
            raise NotFound(f"No such file: {path!r}", context={"path": path})
        return target.read_bytes()

    async def write_file(self, path: str, data: bytes) -> None:
        self._record("write_file", path)
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def _record(self, method: str, argument: str) -> None:
        self.calls.append((method, argument))
        if self.fail_with is not None:
            raise self.fail_with

    def _resolve(self, path: str) -> Path:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise InvalidRequest(f"Path {path!r} escapes the workspace.", context={"path": path})
        return target


@pytest.fixture
def sandbox(tmp_path: Path) -> FakeSandbox:
    return FakeSandbox(tmp_path)


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
