"""What a tenant may ask of a sandbox, and what ``GET /v2/providers`` says is in force.

Network and limits are the gateway's to grant (``CERVER_SANDBOX_EGRESS``,
``CERVER_SANDBOX_LIMITS_MAX``); a request asking for more is a 400 naming the setting, and
nothing is stored. A local sandbox cannot reach a port the gateway host listens on.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator

import httpx
import pytest

from compute import _bwrap

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap is not installed: run `uv run cerver setup --only bubblewrap`",
)


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


async def sessions(http: httpx.AsyncClient) -> int:
    return len((await http.get("/v2/sessions")).json()["sessions"])


async def test_network_without_egress_is_a_400_naming_the_setting(
    http: httpx.AsyncClient,
) -> None:
    before = await sessions(http)

    response = await http.post(
        "/v2/sessions", json={"compute": {"provider": "local"}, "requirements": {"network": True}}
    )

    assert response.status_code == 400
    assert "CERVER_SANDBOX_EGRESS" in response.json()["detail"]
    assert response.json()["context"]["setting"] == "CERVER_SANDBOX_EGRESS"
    assert await sessions(http) == before


async def test_limits_over_the_gateway_maxima_are_a_400(http: httpx.AsyncClient) -> None:
    before = await sessions(http)

    response = await http.post(
        "/v2/sessions",
        json={"compute": {"provider": "local"}, "requirements": {"limits": {"memory_mb": 10**7}}},
    )

    assert response.status_code == 400
    assert "CERVER_SANDBOX_LIMITS_MAX" in response.json()["detail"]
    assert response.json()["context"]["maxima"] == {"memory_mb": 16384}
    assert await sessions(http) == before


@needs_bwrap
async def test_limits_within_the_maxima_apply_to_the_session(http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/v2/sessions",
        json={"compute": {"provider": "local"}, "requirements": {"limits": {"disk_mb": 8}}},
    )
    assert created.status_code == 201, created.text
    sid = created.json()["session_id"]

    ran = await http.post(
        f"/v2/sessions/{sid}/run", json={"code": "head -c 20000000 /dev/zero > f"}
    )

    assert ran.json()["result"]["limit"] == "disk"


@needs_bwrap
async def test_a_sandbox_cannot_reach_the_gateway_host(
    http: httpx.AsyncClient, listener: int
) -> None:
    sid = (await http.post("/v2/sessions", json={"compute": {"provider": "local"}})).json()[
        "session_id"
    ]
    probe = (
        "python3 -c 'import socket, sys\n"
        f"for port in ({listener}, 5432, 6379):\n"
        "    try:\n"
        '        socket.create_connection(("127.0.0.1", port), timeout=2); print("open", port)\n'
        "    except OSError:\n"
        '        print("blocked", port)\''
    )

    ran = await http.post(f"/v2/sessions/{sid}/run", json={"code": probe})

    assert ran.json()["result"]["stdout"].split() == [
        *("blocked", str(listener)),
        *("blocked", "5432"),
        *("blocked", "6379"),
    ]


@needs_bwrap
async def test_providers_report_the_isolation_in_force(http: httpx.AsyncClient) -> None:
    local = next(
        p for p in (await http.get("/v2/providers")).json()["providers"] if p["name"] == "local"
    )

    assert local["status"] == "live"
    assert local["host"]["isolation"] == "bubblewrap"
    assert set(local["host"]["limits"]) >= {"processes", "memory_mb", "disk_mb"}


async def test_without_bubblewrap_local_needs_setup_and_refuses(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_bwrap, "find_bwrap", lambda: None)

    local = next(
        p for p in (await http.get("/v2/providers")).json()["providers"] if p["name"] == "local"
    )
    created = await http.post("/v2/sessions", json={"compute": {"provider": "local"}})

    assert local["status"] == "needs_setup"
    assert local["host"]["isolation"] == "unavailable"
    assert "uv run cerver setup --only bubblewrap" in local["note"]
    assert created.status_code == 503
    assert "uv run cerver setup --only bubblewrap" in created.json()["detail"]
