"""Bad input gets the right status, a body that names the problem, and changes nothing."""

from __future__ import annotations

import httpx

from cerver.gateway import Gateway


async def _count_sessions(gateway: Gateway) -> int:
    import sqlalchemy as sa

    from cerver.store.schema import sessions

    query = sa.select(sa.func.count()).select_from(sessions)
    return await gateway.store.db.read(lambda conn: conn.execute(query).scalar_one())


async def test_malformed_json_is_400(http: httpx.AsyncClient, gateway: Gateway) -> None:
    response = await http.post(
        "/v2/sessions", content=b'{"user": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_json" and "not valid JSON" in body["detail"]
    assert await _count_sessions(gateway) == 0


async def test_wrong_types_keep_fastapis_422_shape(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    response = await http.post("/v2/sessions", json={"metadata": "not-an-object"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["detail"][0]["loc"] == ["body", "metadata"]
    assert await _count_sessions(gateway) == 0


async def test_unknown_field_is_rejected(http: httpx.AsyncClient) -> None:
    response = await http.post("/v2/sessions", json={"usr": "typo"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "usr"]


async def test_unknown_session_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/v2/sessions/sess_nope")
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Session 'sess_nope' not found. List your sessions with GET /v2/sessions.",
        "code": "not_found",
        "retryable": False,
        "context": {"session_id": "sess_nope"},
    }


async def test_oversized_body_is_413(http: httpx.AsyncClient, gateway: Gateway) -> None:
    big = "x" * (gateway.settings.max_body_bytes + 1)
    response = await http.post("/v2/sessions", json={"task": big})
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert await _count_sessions(gateway) == 0


async def test_missing_and_bad_keys_are_401(gateway: Gateway) -> None:
    from cerver.api import create_app

    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
        missing = await anonymous.get("/v2/sessions")
        assert missing.status_code == 401 and missing.json()["code"] == "unauthenticated"
        bad = await anonymous.get("/v2/sessions", headers={"Authorization": "Bearer ck_wrong"})
        assert bad.status_code == 401
        assert (await anonymous.get("/openapi.json")).status_code == 200
