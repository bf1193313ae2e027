"""Registered computes: register a real relay process, heartbeat, offline, routing to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from cerver.gateway import Gateway
from cerver.store.schema import utcnow
from tests.compute.relay_process import RelayProcess, relay_process


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    with relay_process(tmp_path_factory.mktemp("relay")) as process:
        yield process


async def register(http: httpx.AsyncClient, relay: RelayProcess) -> dict:
    body = {"label": "laptop", "base_url": relay.base_url, "token": relay.token}
    response = await http.post("/v2/computes/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_register_list_heartbeat_delete(http: httpx.AsyncClient, relay: RelayProcess) -> None:
    compute = await register(http, relay)

    assert compute["status"] == "online"
    assert compute["capabilities"]["package_install"] is True
    assert "token" not in compute
    listed = (await http.get("/v2/computes")).json()["computes"]
    assert [c["compute_id"] for c in listed] == [compute["compute_id"]]
    beat = await http.post(f"/v2/computes/{compute['compute_id']}/heartbeat")
    assert beat.json()["last_heartbeat_at"] >= compute["last_heartbeat_at"]
    assert (await http.delete(f"/v2/computes/{compute['compute_id']}")).status_code == 204
    assert (await http.get(f"/v2/computes/{compute['compute_id']}")).status_code == 404


async def test_register_refuses_a_url_without_a_relay(http: httpx.AsyncClient) -> None:
    body = {"label": "x", "base_url": "http://127.0.0.1:9", "token": "0123456789"}
    response = await http.post("/v2/computes/register", json=body)

    assert response.status_code == 400
    assert "cerver relay --port" in response.json()["detail"]


async def test_session_on_a_compute_id_runs_on_the_relay(
    http: httpx.AsyncClient, relay: RelayProcess
) -> None:
    compute = await register(http, relay)
    body = {"compute": {"compute_id": compute["compute_id"]}}
    session = (await http.post("/v2/sessions", json=body)).json()

    assert session["provider"] == "relay"
    assert session["compute_id"] == compute["compute_id"]
    code = {"code": "echo on-relay > proof.txt"}
    run = await http.post(f"/v2/sessions/{session['session_id']}/run", json=code)
    assert run.json()["result"]["exit_code"] == 0
    remote = session["sandbox_id"].split("/")[1]
    assert (relay.root / remote / "proof.txt").read_text() == "on-relay\n"


async def test_unknown_compute_id_is_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/v2/sessions", json={"compute": {"compute_id": "cmp_nope"}})
    assert response.status_code == 404
    assert "GET /v2/computes" in response.json()["detail"]


async def test_missed_heartbeats_mark_offline_and_stop_routing(
    http: httpx.AsyncClient, gateway: Gateway, relay: RelayProcess
) -> None:
    compute = await register(http, relay)
    pinned = {"policy": {"mode": "pinned", "pinned_provider": "relay"}}
    assert (await http.post("/v2/sessions", json=pinned)).json()["provider"] == "relay"

    stale = utcnow() - timedelta(seconds=gateway.registered_computes.heartbeat_timeout_s + 1)
    account_id = (await http.get("/v2/auth/account")).json()["account_id"]
    await gateway.store.computes.heartbeat(account_id, compute["compute_id"], stale)

    assert (await http.get(f"/v2/computes/{compute['compute_id']}")).json()["status"] == "offline"
    response = await http.post("/v2/sessions", json=pinned)
    assert response.status_code == 409
    assert "relay" in response.json()["detail"]
    await http.post(f"/v2/computes/{compute['compute_id']}/heartbeat")
    assert (await http.post("/v2/sessions", json=pinned)).status_code == 201
