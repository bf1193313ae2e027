"""Signing in to the console and what the cookie allows, driven in-process (no browser)."""

from __future__ import annotations

import httpx

from cerver.console.auth import COOKIE
from tests.conftest import ADMIN_KEY

ORIGIN = "http://cerver.test"


async def sign_in(http: httpx.AsyncClient, key: str = ADMIN_KEY) -> httpx.Response:
    return await http.post(
        "/console/login",
        content=f"api_key={key}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": ORIGIN,
            "Authorization": "",
        },
    )


async def test_pages_ask_to_sign_in_first(http: httpx.AsyncClient) -> None:
    for path in ("/console", "/console/usage", "/console/providers", "/console/sessions/sess_x"):
        response = await http.get(path, headers={"Authorization": ""})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login"


async def test_sign_in_sets_an_httponly_strict_cookie(http: httpx.AsyncClient) -> None:
    refused = await sign_in(http, "ck_wrong")
    assert refused.status_code == 401 and "Invalid or revoked API key" in refused.text
    assert COOKIE not in refused.cookies
    response = await sign_in(http)
    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    page = await http.get("/console", headers={"Authorization": ""})
    assert page.status_code == 200 and "Sessions" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_a_cross_site_sign_in_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/console/login",
        content=f"api_key={ADMIN_KEY}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://evil.example",
        },
    )
    assert response.status_code == 403
    assert COOKIE not in response.cookies


async def test_the_cookie_authenticates_the_api_only_from_the_console_origin(
    http: httpx.AsyncClient,
) -> None:
    await sign_in(http)
    no_bearer = {"Authorization": ""}
    sid = (
        await http.post(
            "/v2/sessions", json={"compute": None}, headers={**no_bearer, "Origin": ORIGIN}
        )
    ).json()["session_id"]
    # Reads work with the cookie alone; a write from another origin is refused and changes nothing.
    assert (await http.get(f"/v2/sessions/{sid}", headers=no_bearer)).status_code == 200
    forged = await http.post(
        f"/v2/sessions/{sid}/close", headers={**no_bearer, "Origin": "https://evil.example"}
    )
    assert forged.status_code == 403 and forged.json()["code"] == "forbidden"
    missing = await http.post(f"/v2/sessions/{sid}/close", headers=no_bearer)
    assert missing.status_code == 403
    assert (await http.get(f"/v2/sessions/{sid}")).json()["status"] == "ready"
    closed = await http.post(
        f"/v2/sessions/{sid}/close", headers={**no_bearer, "Referer": f"{ORIGIN}/console"}
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"


async def test_another_accounts_session_is_not_found(http: httpx.AsyncClient) -> None:
    other = (await http.post("/v2/accounts", json={"name": "other"})).json()
    theirs = (
        await http.post(
            "/v2/sessions",
            json={"compute": None, "user": "their-user"},
            headers={"Authorization": f"Bearer {other['api_key']}"},
        )
    ).json()["session_id"]
    await sign_in(http)
    response = await http.get(f"/console/sessions/{theirs}", headers={"Authorization": ""})
    assert response.status_code == 404
    assert "Session not found" in response.text and "their-user" not in response.text
    listing = await http.get("/console?user=their-user", headers={"Authorization": ""})
    assert theirs not in listing.text
