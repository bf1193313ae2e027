"""The pieces of the shared tool loop that need no upstream: error translation, entries."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cerver.errors import MissingDependency, UpstreamError
from cerver.types import ReasoningPart, ToolCallPart
from harnesses import _loop
from harnesses._loop import (
    import_sdk,
    reasoning_entry,
    tool_call_entry,
    upstream_error,
)
from harnesses.replay import REASONING_ITEM_ID_KEY


class FakeAPIError(Exception):
    """Shaped like the SDKs' errors: ``message``, ``body`` and (for HTTP errors) a status."""

    def __init__(self, message: str, *, status_code: int | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.body = body
        if status_code is not None:
            self.status_code = status_code


@pytest.mark.parametrize(
    ("status", "body", "retryable", "message"),
    [
        (429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
         True, "Anthropic API error 429: slow down"),
        (529, {"error": {"type": "overloaded_error", "message": "busy"}},
         True, "Anthropic API error 529: busy"),
        (400, {"error": {"type": "invalid_request_error", "message": "bad field"}},
         False, "Anthropic API error 400: bad field"),
        (200, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
         True, "Anthropic API error in the response stream: busy"),
        (200, {"error": {"type": "invalid_request_error", "message": "nope"}},
         False, "Anthropic API error in the response stream: nope"),
    ],
)  # fmt: skip
def test_upstream_error_from_http_errors(
    status: int, body: Any, retryable: bool, message: str
) -> None:
    error = upstream_error("Anthropic", FakeAPIError("raw", status_code=status, body=body))
    assert error.code == "upstream_error"
    assert error.message == message
    assert error.retryable is retryable
    assert error.context["status"] == status and error.context["provider"] == "anthropic"


def test_upstream_error_uses_the_openai_code() -> None:
    body = {"message": "limit", "type": "requests", "code": "rate_limit_exceeded"}
    error = upstream_error("OpenAI", FakeAPIError("raw", status_code=200, body=body))
    assert error.retryable and error.message == "OpenAI API error in the response stream: limit"


def test_upstream_error_without_status_is_a_retryable_connection_failure() -> None:
    exc = FakeAPIError("Connection error.")
    exc.__cause__ = OSError("connection refused")
    error = upstream_error("OpenAI", exc)
    assert error.retryable
    assert error.message == (
        "Connection to the OpenAI API failed: Connection error. (connection refused)"
    )


def test_upstream_error_falls_back_to_the_exception_message() -> None:
    error = upstream_error(
        "OpenAI", FakeAPIError("Error code: 502", status_code=502, body="<html>")
    )
    assert error.message == "OpenAI API error 502: Error code: 502" and error.retryable


def test_entry_builders() -> None:
    call = tool_call_entry(ToolCallPart(id="c", name="bash", arguments={"command": "ls"}))
    assert (call.role, call.kind, call.content) == (
        "assistant",
        "tool_call",
        'bash {"command": "ls"}',
    )
    part = ReasoningPart(text="hmm", provider="openai", encrypted="e")
    reasoning = reasoning_entry(part, item_id="rs_9")
    assert reasoning.reasoning == part and reasoning.content == "hmm"
    assert reasoning.metadata == {REASONING_ITEM_ID_KEY: "rs_9"}
    assert reasoning_entry(part).metadata == {}


def test_import_sdk_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(_loop.importlib, "import_module", missing)
    with pytest.raises(MissingDependency, match=r"pip install anthropic") as info:
        import_sdk("anthropic", harness="anthropic")
    assert info.value.context == {"harness": "anthropic", "missing": "anthropic"}


def test_import_sdk_reraises_a_broken_dependency_of_the_sdk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(name: str) -> None:
        raise ModuleNotFoundError("No module named 'jiter'", name="jiter")

    monkeypatch.setattr(_loop.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="jiter"):
        import_sdk("anthropic", harness="anthropic")


async def _ticks(gaps: list[float]) -> Any:
    """A stream whose events come after ``gaps`` seconds each."""
    for gap in gaps:
        await asyncio.sleep(gap)
        yield _loop.PROGRESS


async def test_the_idle_timeout_counts_only_time_spent_waiting_for_the_stream() -> None:
    received = []
    async for event in _loop._unless_idle(_ticks([0.0] * 4), 0.2, "m"):
        received.append(event)
        await asyncio.sleep(0.3)  # a slow consumer: longer than the timeout, between events
    assert len(received) == 4


async def test_a_stream_silent_for_the_idle_timeout_fails_as_a_retryable_stall() -> None:
    received = []
    with pytest.raises(UpstreamError, match="went silent") as failed:
        async for event in _loop._unless_idle(_ticks([0.05, 0.05, 5.0]), 0.3, "m"):
            received.append(event)
    assert failed.value.retryable and len(received) == 2


async def test_a_cancellation_from_outside_is_not_taken_for_a_stall() -> None:
    async def consume() -> None:
        async for _ in _loop._unless_idle(_ticks([5.0]), 0.2, "m"):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
