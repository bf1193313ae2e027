"""OpenTelemetry spans of a tool-using turn, received by an in-memory exporter: the GenAI
attributes are there, the canary secrets and (by default) the message content are not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cerver.api import create_app
from cerver.gateway import Gateway
from cerver.store.schema import runs
from cerver.telemetry import tracing
from cerver.testing.mock_upstream import MockUpstream
from tests.conftest import ADMIN_KEY, make_settings

PROVIDER_KEY = "test-anthropic-key"  # the upstream key make_settings gives the gateway
PROMPT = "Please run `echo traced-canary`"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.reset()


async def traced_client(
    tmp_path: Path, sqlite_url: str, upstream: MockUpstream, *, capture: bool
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    settings = make_settings(tmp_path, sqlite_url, upstream, otel_capture_content=capture)
    gateway = Gateway(settings)
    await gateway.start()
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://cerver.test", headers=headers
        ) as client:
            yield gateway, client
    finally:
        await gateway.stop()


@pytest.fixture
async def traced(
    exporter: InMemorySpanExporter, tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async for pair in traced_client(tmp_path, sqlite_url, mock_upstream, capture=False):
        yield pair


async def run_tool_turn(client: httpx.AsyncClient) -> httpx.Response:
    sid = (await client.post("/v2/sessions", json={"user": "u1"})).json()["session_id"]
    response = await client.post(f"/v2/sessions/{sid}/run-llm", json={"input": PROMPT})
    assert response.json()["status"] == "completed"
    return response


def by_name(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith(prefix)]


def all_values(spans: tuple[ReadableSpan, ...]) -> str:
    parts = []
    for span in spans:
        parts.append(span.name)
        parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        parts.extend(str(e.attributes) for e in span.events)
    return "\n".join(parts)


async def test_a_tool_using_turn_is_traced_with_genai_attributes(
    traced: tuple[Gateway, httpx.AsyncClient], exporter: InMemorySpanExporter
) -> None:
    gateway, client = traced
    response = await run_tool_turn(client)
    spans = exporter.get_finished_spans()

    [request] = by_name(spans, "POST /v2/sessions/{session_id}/run-llm")
    [turn] = by_name(spans, "invoke_agent anthropic")
    chats = by_name(spans, "chat ")
    [tool] = by_name(spans, "execute_tool ")
    [sandbox_exec] = by_name(spans, "sandbox.exec")
    assert len(chats) == 2  # the call asking for the tool, the call answering after it

    # One trace, nested as the work was: request > turn > (chat, tool > sandbox exec).
    trace_id = response.headers["traceparent"].split("-")[1]
    for span in (request, turn, *chats, tool, sandbox_exec):
        assert format(span.context.trace_id, "032x") == trace_id
    assert turn.parent.span_id == request.context.span_id
    assert {c.parent.span_id for c in chats} == {turn.context.span_id}
    assert tool.parent.span_id == turn.context.span_id
    assert sandbox_exec.parent.span_id == tool.context.span_id

    run_id = response.json()["run_id"]
    assert turn.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert turn.attributes["cerver.run_id"] == run_id
    for chat in chats:
        attributes = chat.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == attributes["gen_ai.system"] == "anthropic"
        assert attributes["gen_ai.request.model"] == "claude-sonnet-4-6"
        assert attributes["gen_ai.usage.input_tokens"] > 0
        assert attributes["gen_ai.usage.output_tokens"] > 0
    assert (
        sum(c.attributes["gen_ai.usage.output_tokens"] for c in chats)
        == (response.json()["usage"]["output_tokens"])
    )
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.call.id"]
    assert sandbox_exec.attributes["cerver.compute.provider"] == "local"
    assert sandbox_exec.attributes["process.exit.code"] == 0

    # The run record names the trace.
    query = runs.select().where(runs.c.id == run_id)
    row = await gateway.store.db.read(lambda conn: conn.execute(query).one())
    assert row.trace_id == trace_id

    # No canary secret, and no content without CERVER_OTEL_CAPTURE_CONTENT.
    text = all_values(spans)
    for canary in (ADMIN_KEY, PROVIDER_KEY, "traced-canary"):
        assert canary not in text


async def test_content_goes_on_spans_only_when_asked(
    exporter: InMemorySpanExporter, tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    async for _, client in traced_client(tmp_path, sqlite_url, mock_upstream, capture=True):
        await run_tool_turn(client)
    spans = exporter.get_finished_spans()
    [turn] = by_name(spans, "invoke_agent anthropic")
    assert "traced-canary" in turn.attributes["gen_ai.input.messages"]
    [tool] = by_name(spans, "execute_tool ")
    assert "traced-canary" in tool.attributes["gen_ai.tool.call.result"]
    assert "traced-canary" in by_name(spans, "chat ")[0].attributes["gen_ai.input.messages"]
    text = all_values(spans)
    for canary in (ADMIN_KEY, PROVIDER_KEY):
        assert canary not in text


def test_tracing_is_a_no_op_until_configured() -> None:
    assert not tracing.enabled()
    with tracing.span("anything", {"a": 1}) as span:
        span.set_attribute("b", 2)
        assert not span.is_recording()
    assert tracing.configure() is False  # no OTEL_EXPORTER_OTLP_ENDPOINT in the test env


async def test_a_cli_harness_model_call_through_the_proxy_is_a_chat_span(
    traced: tuple[Gateway, httpx.AsyncClient], exporter: InMemorySpanExporter
) -> None:
    gateway, client = traced
    grant = gateway.proxy.grants.issue(
        run_id="run_cli", session_id="sess_cli", harness="claude-code", on_usage=lambda *a: None
    )
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "proxy-canary"}],
    }
    response = await client.post(
        "/v2/proxy/anthropic/v1/messages",
        json=body,
        headers={"x-api-key": grant.token, "Authorization": ""},
    )
    assert response.status_code == 200
    [chat] = by_name(exporter.get_finished_spans(), "chat ")
    assert chat.name == "chat claude-sonnet-4-6"
    assert chat.attributes["gen_ai.provider.name"] == "anthropic"
    assert chat.attributes["cerver.run_id"] == "run_cli"
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0
    text = all_values(exporter.get_finished_spans())
    for canary in (grant.token, PROVIDER_KEY, ADMIN_KEY, "proxy-canary"):
        assert canary not in text
