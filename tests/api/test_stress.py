"""Stress tests: simulated from profiles, and live canaries that teach the router."""

from __future__ import annotations

import httpx


async def test_seed_body_simulated_ranks_without_running(http: httpx.AsyncClient) -> None:
    body = {
        "task": "Compare preview launch backends",
        "kind": "preview_launch",
        "workload": "preview",
        "requirements": {"runtime": "node", "package_install": True, "timeout_minutes": 20},
        "providers": ["local", "cloudflare", "relay"],
        "sample_size": 5,
    }
    response = await http.post("/v2/stress-tests", json=body)

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["mode"] == "simulated" and report["canary_run"] is False
    by_name = {p["provider"]: p for p in report["providers"]}
    assert by_name["local"]["measured"] is False
    assert by_name["local"]["basis"] == "prior profile"
    assert "package_install" in by_name["cloudflare"]["excluded_reason"]
    assert report["ranking"][0] == report["recommended_provider"]
    assert by_name[report["ranking"][0]]["rank"] == 1
    # Nothing was provisioned: the profiles learned nothing.
    local = next(
        p for p in (await http.get("/v2/providers")).json()["providers"] if p["name"] == "local"
    )
    assert local["observed"] is None


async def test_live_measures_and_feeds_the_profiles(http: httpx.AsyncClient) -> None:
    body = {
        "workload": "general",
        "requirements": {"timeout_minutes": 10},
        "providers": ["local", "cloudflare"],
        "sample_size": 4,
    }
    response = await http.post("/gateway/stress-tests", json={**body, "mode": "live"})

    assert response.status_code == 200, response.text
    report = response.json()
    local = next(p for p in report["providers"] if p["provider"] == "local")
    assert local["measured"] is True
    assert local["failures"] == 0
    assert 0 < local["startup_ms"]["p50"] <= local["startup_ms"]["p95"]
    assert 0 < local["exec_latency_ms"]["p50"] <= local["exec_latency_ms"]["p95"]
    cloudflare = next(p for p in report["providers"] if p["provider"] == "cloudflare")
    assert "cannot run live canaries" in cloudflare["excluded_reason"]
    assert report["recommended_provider"] == "local"

    catalog = (await http.get("/gateway/providers")).json()["providers"]
    observed = next(p for p in catalog if p["name"] == "local")["observed"]
    assert observed["provisions"] == 4 and observed["execs"] == 4
    simulated = (await http.post("/v2/stress-tests", json=body)).json()
    assert next(p for p in simulated["providers"] if p["provider"] == "local")["basis"] == (
        "learned profile"
    )


async def test_bad_stress_bodies_are_400_or_422(http: httpx.AsyncClient) -> None:
    unknown = await http.post("/v2/stress-tests", json={"providers": ["e2c"]})
    assert unknown.status_code == 400
    assert "Unknown provider 'e2c'" in unknown.json()["detail"]
    too_many = await http.post("/v2/stress-tests", json={"sample_size": 500})
    assert too_many.status_code == 422


async def test_python_client_covers_the_compute_routes(client) -> None:
    providers = {p["name"]: p for p in await client.providers()}
    assert providers["local"]["status"] == "live"

    report = await client.stress_test(providers=["local"], sample_size=2, mode="live")
    assert report["providers"][0]["measured"] is True

    session = await client.create_session(compute={"provider": "local"})
    await client.write_file(session["session_id"], "keep.txt", "kept")
    assert (await client.pause(session["session_id"]))["status"] == "paused"
    resumed = await client.resume(session["session_id"], provider="local")
    assert resumed["status"] == "ready"
    assert (await client.read_file(session["session_id"], "keep.txt"))["content"] == "kept"
    moved = await client.move_compute(session["session_id"], policy={"mode": "fastest"})
    assert moved["switch"]["kind"] == "compute_switched"
    assert await client.list_computes() == []
