"""Accounts' own provider keys: ``/v2/account/credentials`` (bring your own key).

The proof of issue 10: two accounts store different keys for the same provider; the mock
upstream sees each account's own key on its turns (SDK harness calls and proxied CLI calls);
afterwards neither key appears in any captured log line, any route response, any event, the
database file or a sandbox's environment.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cerver.api import create_app
from cerver.gateway import Gateway
from cerver.providers import fingerprint
from cerver.services.secret_key import SECRET_KEY_FILE
from cerver.testing.mock_upstream import MockUpstream, Reply
from cerver.types import Usage
from tests.conftest import ADMIN_KEY

KEY_A = "sk-account-a-0123456789abcdef"
KEY_B = "sk-account-b-fedcba9876543210"


class Recorder:
    """Every response body any route returned during the test."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    async def __call__(self, response: httpx.Response) -> None:
        await response.aread()
        self.bodies.append(f"{response.headers}\n{response.text}")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def api(gateway: Gateway, recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(gateway))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://cerver.test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        event_hooks={"response": [recorder]},
    ) as client:
        yield client


def as_account(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_put_list_delete(api: httpx.AsyncClient) -> None:
    put = await api.put("/v2/account/credentials/openai", json={"api_key": KEY_A})
    assert put.status_code == 200, put.text
    shown = put.json()
    assert shown["provider"] == "openai" and shown["kind"] == "model"
    assert shown["fingerprint"] == fingerprint(KEY_A)
    assert KEY_A not in put.text

    listed = (await api.get("/v2/account/credentials")).json()["credentials"]
    assert [(c["provider"], c["fingerprint"]) for c in listed] == [("openai", fingerprint(KEY_A))]

    # Replacing keeps one credential per provider.
    await api.put("/v2/account/credentials/openai", json={"api_key": KEY_B})
    listed = (await api.get("/v2/account/credentials")).json()["credentials"]
    assert [c["fingerprint"] for c in listed] == [fingerprint(KEY_B)]

    assert (await api.delete("/v2/account/credentials/openai")).status_code == 204
    assert (await api.get("/v2/account/credentials")).json()["credentials"] == []
    missing = await api.delete("/v2/account/credentials/openai")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("provider", "body", "status", "fragment"),
    [
        ("opnai", {"api_key": KEY_A}, 400, "Did you mean 'openai'?"),
        ("openai", {"api_key": "  "}, 400, "api_key must be"),
        ("openai", {"api_key": KEY_A, "base_url": "http://evil.test"}, 400, "Omit base_url"),
        ("modal", {"api_key": KEY_A}, 400, "MODAL_TOKEN_ID, MODAL_TOKEN_SECRET"),
        ("openai", {"api_key": KEY_A, "extra": 1}, 422, ""),
        ("openai", {"api_key": 12345}, 422, ""),
    ],
)
async def test_bad_input_is_refused_and_stores_nothing(
    api: httpx.AsyncClient, provider: str, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = await api.put(f"/v2/account/credentials/{provider}", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert KEY_A not in response.text and "12345" not in response.text
    assert (await api.get("/v2/account/credentials")).json()["credentials"] == []


async def test_a_compute_key_makes_the_provider_live_for_that_account(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)

    async def daytona() -> dict[str, Any]:
        providers = (await api.get("/v2/providers")).json()["providers"]
        return next(p for p in providers if p["name"] == "daytona")

    if (await daytona())["status"] == "missing_sdk":
        pytest.skip("the daytona SDK is not installed: uv sync --locked --extra test")
    assert (await daytona())["status"] == "needs_credentials"
    await api.put("/v2/account/credentials/daytona", json={"api_key": KEY_A})
    assert (await daytona())["status"] == "live"


async def test_model_providers_are_listed_with_whose_key_applies(api: httpx.AsyncClient) -> None:
    def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in body["model_providers"]}

    listed = by_name((await api.get("/v2/providers")).json())
    assert {"anthropic", "openai", "gemini", "xai"} <= set(listed)
    assert listed["openai"]["credentials"] == "gateway"
    assert listed["xai"]["status"] == "needs_credentials"
    assert listed["xai"]["pricing_id"] == "x-ai"
    await api.put("/v2/account/credentials/xai", json={"api_key": KEY_A})
    listed = by_name((await api.get("/v2/providers")).json())
    assert (listed["xai"]["status"], listed["xai"]["credentials"]) == ("live", "account")


async def test_keys_are_encrypted_at_rest_with_a_generated_secret_key(
    api: httpx.AsyncClient, gateway: Gateway
) -> None:
    await api.put("/v2/account/credentials/anthropic", json={"api_key": KEY_A})
    secret_file = gateway.settings.resolved_data_dir / SECRET_KEY_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    (record,) = await gateway.store.credentials.list(await admin_id(api))
    assert KEY_A not in record.secret and record.secret.startswith("gAAAA")  # a Fernet token
    assert KEY_A.encode() not in database_bytes(gateway)


async def admin_id(api: httpx.AsyncClient) -> str:
    return (await api.get("/v2/auth/account")).json()["account_id"]


def database_bytes(gateway: Gateway) -> bytes:
    path = Path(gateway.settings.resolved_database_url.removeprefix("sqlite+aiosqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_each_account_reaches_the_upstream_with_its_own_key(
    api: httpx.AsyncClient,
    gateway: Gateway,
    mock_upstream: MockUpstream,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    other = (await api.post("/v2/accounts", json={"name": "team-b"})).json()
    accounts = {"a": (ADMIN_KEY, KEY_A), "b": (other["api_key"], KEY_B)}
    sessions: dict[str, str] = {}
    for name, (api_key, provider_key) in accounts.items():
        headers = as_account(api_key)
        stored = await api.put(
            "/v2/account/credentials/openai", json={"api_key": provider_key}, headers=headers
        )
        assert stored.status_code == 200, stored.text
        created = await api.post(
            "/v2/sessions",
            json={"harness": "openai", "model": "gpt-5.5", "compute": None, "user": name},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        sessions[name] = created.json()["session_id"]

    # 1. SDK harness turns: each account's calls carry its own key.
    for name, (api_key, provider_key) in accounts.items():
        mock_upstream.reset()
        mock_upstream.script(Reply(text=f"hello {name}"))
        turn = await api.post(
            f"/v2/sessions/{sessions[name]}/run-llm",
            json={"input": "hi", "stream": False},
            headers=as_account(api_key),
        )
        assert turn.status_code == 200, turn.text
        assert turn.json()["message"]["content"] == f"hello {name}"
        (request,) = mock_upstream.requests
        assert request["key_fingerprint"] == fingerprint(provider_key)

    # 2. Proxied calls (what a CLI harness in a sandbox makes) carry the run's account's key.
    account_ids = {
        name: (await api.get("/v2/auth/account", headers=as_account(k))).json()["account_id"]
        for name, (k, _) in accounts.items()
    }
    for name, (_, provider_key) in accounts.items():
        mock_upstream.reset()
        grant = gateway.proxy.grants.issue(
            run_id=f"run_{name}",
            session_id=sessions[name],
            harness="codex",
            on_usage=_ignore,
            account_id=account_ids[name],
        )
        proxied = await api.post(
            "/v2/proxy/openai/responses",
            json={"model": "gpt-5.5", "input": "hi"},
            headers={"Authorization": f"Bearer {grant.token}"},
        )
        gateway.proxy.revoke(grant)
        assert proxied.status_code == 200, proxied.text
        (request,) = mock_upstream.requests
        assert request["key_fingerprint"] == fingerprint(provider_key)

    # 3. Without its own key an account falls back to the gateway's.
    await api.delete("/v2/account/credentials/openai", headers=as_account(accounts["b"][0]))
    mock_upstream.reset()
    await api.post(
        f"/v2/sessions/{sessions['b']}/run-llm",
        json={"input": "again", "stream": False},
        headers=as_account(accounts["b"][0]),
    )
    assert mock_upstream.requests[0]["key_fingerprint"] == fingerprint("test-openai-key")

    # 4. Neither key anywhere: logs, responses (events included), the store, the mock's log.
    for name in sessions:
        events = await api.get(
            f"/v2/sessions/{sessions[name]}/events",
            headers={**as_account(accounts[name][0]), "Last-Event-ID": "0"},
            params={"follow": "false"},
        )
        assert events.status_code == 200
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    responses = "\n".join(recorder.bodies)
    assert "turn.completed" in responses  # the events were read back
    for key in (KEY_A, KEY_B):
        assert key not in logged
        assert key not in responses
        assert key.encode() not in database_bytes(gateway)
        assert key not in repr(mock_upstream.requests)


async def test_no_key_reaches_a_sandbox(api: httpx.AsyncClient, gateway: Gateway) -> None:
    await api.put("/v2/account/credentials/openai", json={"api_key": KEY_A})
    await api.put("/v2/account/credentials/e2b", json={"api_key": KEY_B})
    created = await api.post(
        "/v2/sessions", json={"harness": "openai", "compute": {"provider": "local"}}
    )
    assert created.status_code == 201, created.text
    ran = await api.post(
        f"/v2/sessions/{created.json()['session_id']}/run",
        json={"code": "env; cat /proc/1/environ"},
    )
    assert ran.status_code == 200, ran.text
    output = ran.text
    assert "PATH" in output or ran.json()["result"]["exit_code"] is not None
    for key in (KEY_A, KEY_B):
        assert key not in output


def _ignore(model: str, provider: str, usage: Usage, latency_ms: float) -> None:
    return None
