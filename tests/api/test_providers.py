"""The catalog, routed session creation, 409 with the report, fallback, learned profiles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from cerver.errors import ComputeError
from cerver.registry import compute_registry
from compute.base import Capabilities, Compute, Profile, Sandbox, SandboxSpec


class BrokenCompute(Compute):
    """TEST DOUBLE: a provider whose provisioning always fails, predicted to be the fastest."""

    name: ClassVar[str] = "broken"
    capabilities: ClassVar[Capabilities] = Capabilities(runtimes=("shell", "python", "node"))
    profile: ClassVar[Profile] = Profile(startup_ms=0.1, cost_per_hour_usd=0.0)

    async def create(self, spec: SandboxSpec) -> Sandbox:
        raise ComputeError("broken provider (test double) refuses to provision")

    async def attach(self, sandbox_id: str) -> Sandbox:
        raise ComputeError("broken provider (test double)")


@pytest.fixture
def broken() -> Iterator[None]:
    compute_registry.register("broken", BrokenCompute)
    yield
    compute_registry.reset()


async def test_catalog_lists_statuses(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    response = await http.get("/v2/providers")

    assert response.status_code == 200
    by_name = {p["name"]: p for p in response.json()["providers"]}
    assert by_name["local"]["status"] == "live"
    assert by_name["cloudflare"]["status"] == "modelled"
    assert by_name["beam"]["status"] == "modelled"
    assert "gRPC" in by_name["beam"]["note"]
    assert by_name["replicate"]["status"] == "modelled"
    assert "not shells" in by_name["replicate"]["note"]
    assert by_name["replicate"]["capabilities"]["runtimes"] == []
    assert by_name["e2b"]["status"] == "needs_credentials"
    assert by_name["e2b"]["missing"] == ["E2B_API_KEY"]
    assert by_name["relay"]["status"] == "needs_credentials"  # no relay registered yet
    assert by_name["local"]["capabilities"]["package_install"] is True
    assert by_name["local"]["profile"]["predicted_startup_ms"] >= 0


async def test_routed_session_gets_the_report(http: httpx.AsyncClient) -> None:
    body = {
        "task": "Run a quick shell command",
        "workload": "general",
        "requirements": {"runtime": "shell", "timeout_minutes": 5},
        "policy": {"mode": "fastest"},
    }
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 201, response.text
    session = response.json()
    assert session["provider"] == "local"
    routing = session["routing"]
    assert routing["recommended_provider"] == "local"
    assert routing["primary_reason"].startswith("Fastest predicted startup")
    run = await http.post(f"/v2/sessions/{session['session_id']}/run", json={"code": "echo hi"})
    assert run.json()["result"]["stdout"] == "hi\n"


async def test_nothing_qualifies_is_409_with_the_report(http: httpx.AsyncClient) -> None:
    body = {"requirements": {"public_preview": True, "timeout_minutes": 20}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 409
    error = response.json()
    assert error["code"] == "no_provider_qualifies"
    candidates = {c["provider"]: c for c in error["context"]["routing"]["candidates"]}
    assert "public_preview" in candidates["local"]["excluded_reason"]
    assert "modelled" in candidates["cloudflare"]["excluded_reason"]


async def test_seed_pinned_vercel_example_is_a_clear_400(http: httpx.AsyncClient) -> None:
    body = {"policy": {"mode": "pinned", "pinned_provider": "vercle"}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 400
    assert "Unknown provider 'vercle'" in response.json()["detail"]


async def test_provisioning_failure_falls_back(http: httpx.AsyncClient, broken: None) -> None:
    body = {"policy": {"mode": "fastest", "allowed_providers": ["broken", "local"]}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 201, response.text
    routing = response.json()["routing"]
    assert response.json()["provider"] == "local"
    assert routing["fallback_used"] is True
    assert routing["attempts"][0]["provider"] == "broken"
    assert "refuses to provision" in routing["attempts"][0]["error"]
    providers = {p["name"]: p for p in (await http.get("/v2/providers")).json()["providers"]}
    assert providers["broken"]["observed"]["failures"] == 1


async def test_pinned_does_not_fall_back(http: httpx.AsyncClient, broken: None) -> None:
    body = {"policy": {"mode": "pinned", "pinned_provider": "broken"}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 502
    assert response.json()["code"] == "compute_error"
    assert response.json()["context"]["routing"]["attempts"][0]["provider"] == "broken"


async def test_profiles_learn_from_provisioning(http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await http.post("/v2/sessions", json={"compute": {"provider": "local"}})

    local = next(
        p for p in (await http.get("/v2/providers")).json()["providers"] if p["name"] == "local"
    )
    assert local["observed"]["provisions"] == 3
    assert local["profile"]["predicted_startup_ms"] == pytest.approx(
        local["observed"]["startup_ms"], abs=0.01
    )
