"""The seed's /gateway flow: providers → session → run → stream → metrics."""

from __future__ import annotations

import httpx


async def test_seed_flow(http: httpx.AsyncClient) -> None:
    providers = await http.get("/gateway/providers")
    assert providers.status_code == 200
    assert {"local", "relay", "cloudflare"} <= {p["name"] for p in providers.json()["providers"]}

    body = {
        "task": "Run a quick shell command",
        "workload": "general",
        "requirements": {"runtime": "shell", "timeout_minutes": 5},
        "policy": {"mode": "pinned", "pinned_provider": "local", "allowed_providers": ["local"]},
    }
    created = await http.post("/gateway/sessions", json=body)
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["routing"]["recommended_provider"] == "local"
    assert session["metrics"]["provision_time_ms"] is not None
    sid = session["session_id"]

    run = await http.post(f"/gateway/sessions/{sid}/run", json={"code": "echo hello from cerver"})
    assert run.json()["result"]["stdout"] == "hello from cerver\n"
    stream = await http.post(f"/gateway/sessions/{sid}/run/stream", json={"code": "echo s"})
    assert stream.headers["x-cerver-provider"] == "local"
    assert float(stream.headers["x-cerver-stream-latency-ms"]) >= 0
    assert "event: exit" in stream.text
    metrics = (await http.get(f"/gateway/sessions/{sid}/metrics")).json()
    assert metrics["total_exec_count"] == 1
    assert metrics["total_stream_count"] == 1


async def test_seed_vercel_pin_is_409_until_vercel_is_executable(http: httpx.AsyncClient) -> None:
    body = {"policy": {"mode": "pinned", "pinned_provider": "cloudflare"}}
    response = await http.post("/gateway/sessions", json=body)

    assert response.status_code == 409
    assert response.json()["context"]["routing"]["recommended_provider"] is None
