"""Prometheus at ``/metrics``: a scripted turn with a tool call moves each series by exactly
what the turn did (the mock upstream is a test double)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cerver.api import create_app
from cerver.gateway import Gateway
from cerver.testing.mock_upstream import MockUpstream, Reply, UpstreamFailure
from tests.conftest import ADMIN_KEY, make_settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_a_tool_using_turn_moves_the_counters_by_what_it_did(
    http: httpx.AsyncClient,
) -> None:
    before = await scrape(http)
    created = await http.post("/v2/sessions", json={"user": "u1", "harness": "anthropic"})
    sid = created.json()["session_id"]
    result = (
        await http.post(f"/v2/sessions/{sid}/run-llm", json={"input": "run `echo metrics`"})
    ).json()
    assert result["status"] == "completed"
    after = await scrape(http)

    turn = {"harness": "anthropic", "model": "claude-sonnet-4-6"}
    assert moved(before, after, "cerver_turns_total", **turn, status="completed") == 1
    assert (
        moved(before, after, "cerver_turn_duration_seconds_count", **turn, status="completed") == 1
    )
    assert moved(before, after, "cerver_time_to_first_token_seconds_count", **turn) == 1
    calls = {**turn, "provider": "anthropic"}
    usage = result["usage"]
    assert usage["input_tokens"] > 0
    assert (
        moved(before, after, "cerver_tokens_total", **calls, direction="input")
        == usage["input_tokens"]
    )
    assert (
        moved(before, after, "cerver_tokens_total", **calls, direction="output")
        == usage["output_tokens"]
    )
    assert moved(before, after, "cerver_cost_usd_total", **calls) == pytest.approx(
        usage["cost_usd"]
    )
    # One sandbox created for the session, one command run by the agent's tool call.
    provisioned = moved(
        before, after, "cerver_sandbox_provision_seconds_count", provider="local", outcome="ok"
    )
    assert provisioned == 1
    execs = moved(before, after, "cerver_sandbox_exec_seconds_count", provider="local", mode="exec")
    assert execs == 1
    assert value(after, "cerver_active_turns") == value(before, "cerver_active_turns")
    assert value(after, "cerver_sessions", status="ready") >= 1


@pytest.fixture
async def retrying(
    tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path, sqlite_url, mock_upstream, upstream_max_attempts=3, upstream_retry_base_delay=0
    )
    gateway = Gateway(settings)
    await gateway.start()
    transport = httpx.ASGITransport(app=create_app(gateway))
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://cerver.test", headers=headers
        ) as client:
            yield client
    finally:
        await gateway.stop()


async def test_upstream_retries_and_errors_are_counted_by_code(
    retrying: httpx.AsyncClient, mock_upstream: MockUpstream
) -> None:
    before = await scrape(retrying)
    sid = (await retrying.post("/v2/sessions", json={"compute": None})).json()["session_id"]
    mock_upstream.script(
        Reply(error=UpstreamFailure(status=429, retry_after=0)),
        Reply(error=UpstreamFailure(status=500)),
        Reply(text="finally"),
    )
    result = (await retrying.post(f"/v2/sessions/{sid}/run-llm", json={"input": "hi"})).json()
    assert result["status"] == "completed"
    after = await scrape(retrying)
    for code in ("429", "500"):
        labels = {"provider": "anthropic", "code": code}
        assert moved(before, after, "cerver_upstream_errors_total", **labels) == 1
        assert moved(before, after, "cerver_upstream_retries_total", **labels) == 1


async def test_proxy_requests_are_counted_by_provider_and_status(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    grant = gateway.proxy.grants.issue(
        run_id="run_1", session_id="sess_1", harness="claude-code", on_usage=lambda *a: None
    )
    before = await scrape(http)
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
    }
    ok = await http.post(
        "/v2/proxy/anthropic/v1/messages", json=body, headers={"x-api-key": grant.token}
    )
    refused = await http.post(
        "/v2/proxy/anthropic/v1/messages", json=body, headers={"x-api-key": "not-a-token"}
    )
    assert (ok.status_code, refused.status_code) == (200, 401)
    after = await scrape(http)
    assert (
        moved(before, after, "cerver_proxy_requests_total", provider="anthropic", status="200") == 1
    )
    assert (
        moved(before, after, "cerver_proxy_requests_total", provider="anthropic", status="401") == 1
    )
    # No secret and no end-user text in any label.
    text = (await http.get("/metrics")).text
    for secret in (ADMIN_KEY, grant.token, "test-anthropic-key", "echo metrics"):
        assert secret not in text


async def test_every_response_carries_request_and_trace_ids(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-Id": "req-from-client"})
    assert response.headers["x-request-id"] == "req-from-client"
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "01")
    incoming = f"00-{'ab' * 16}-{'cd' * 8}-01"
    continued = await http.get("/healthz", headers={"traceparent": incoming})
    assert continued.headers["traceparent"].split("-")[1] == "ab" * 16
    assert continued.headers["x-request-id"] == "ab" * 16
