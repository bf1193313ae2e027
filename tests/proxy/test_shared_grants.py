"""Run grants live in the store: a second gateway instance on the same database serves a run's
proxy requests, meters them to the run, and refuses the token once the run has ended."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from cerver.api import create_app
from cerver.gateway import Gateway
from cerver.proxy import ProxyGrant
from cerver.store.grants import token_hash
from cerver.store.runs import finish_run, start_run
from cerver.store.schema import ledger, proxy_grants
from tests.conftest import ADMIN_KEY


def http(gateway: Gateway) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(gateway))
    return httpx.AsyncClient(transport=transport, base_url="http://cerver.test")


async def started_run(gateway: Gateway) -> tuple[str, str]:
    """A session with a running run, created through ``gateway``: (session id, run id)."""
    async with http(gateway) as client:
        created = await client.post(
            "/v2/sessions",
            json={"user": "u-shared", "harness": "codex", "compute": None},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
    sid = created.json()["session_id"]
    run_id = "run_shared_1"
    await gateway.store.db.write(lambda c: c.execute(start_run(run_id, sid, "turn", 30.0)))
    return sid, run_id


async def call(gateway: Gateway, grant: ProxyGrant) -> httpx.Response:
    async with http(gateway) as client:
        return await client.post(
            "/v2/proxy/openai/responses",
            json={"model": "gpt-5.5", "input": "hi"},
            headers={"Authorization": f"Bearer {grant.token}"},
        )


async def ledger_rows(gateway: Gateway, run_id: str) -> list[sa.Row]:
    query = sa.select(ledger).where(ledger.c.run_id == run_id)
    return await gateway.store.db.read(lambda c: list(c.execute(query)))


async def issue(gateway: Gateway, sid: str, run_id: str, seen: list[str]) -> ProxyGrant:
    return await gateway.proxy.grant(
        run_id=run_id,
        session_id=sid,
        harness="codex",
        on_usage=lambda model, *_: seen.append(model),
        account_id=None,
    )


async def test_a_grant_of_one_instance_is_served_by_another_until_its_run_ends(
    gateways: tuple[Gateway, Gateway],
) -> None:
    a, b = gateways
    sid, run_id = await started_run(a)
    seen_by_a: list[str] = []
    grant = await issue(a, sid, run_id, seen_by_a)

    # Only the token's hash is stored.
    stored = await a.store.db.read(lambda c: c.execute(sa.select(proxy_grants)).all())
    assert [row.token_hash for row in stored] == [token_hash(grant.token)]
    assert grant.token not in repr(stored)

    served = await call(b, grant)
    assert served.status_code == 200, served.text
    assert served.headers["x-cerver-run-id"] == run_id
    await b.proxy.settle()
    [row] = await ledger_rows(b, run_id)
    assert (row.session_id, row.kind, row.harness, row.user) == (sid, "llm", "codex", "u-shared")
    assert row.input_tokens > 0 and row.provider == "openai"
    assert seen_by_a == []  # b metered it, not a's in-memory callback

    # The run ends (recorded by any replica): b refuses the token though a never revoked it.
    await a.store.db.write(lambda c: c.execute(finish_run(run_id, "completed")))
    refused = await call(b, grant)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"
    assert len(await ledger_rows(b, run_id)) == 1


async def test_a_released_grant_is_refused_everywhere(gateways: tuple[Gateway, Gateway]) -> None:
    a, b = gateways
    sid, run_id = await started_run(a)
    grant = await issue(a, sid, run_id, [])
    assert (await call(b, grant)).status_code == 200
    await a.proxy.release(grant)
    for gateway in (a, b):
        assert (await call(gateway, grant)).status_code == 401


async def test_an_expired_stored_grant_is_refused(gateways: tuple[Gateway, Gateway]) -> None:
    a, b = gateways
    sid, run_id = await started_run(a)
    await a.store.grants.put(
        "cpx_expired", run_id=run_id, session_id=sid, account_id=None, harness="codex", ttl_s=-1
    )
    assert await b.store.grants.live("cpx_expired") is None
    async with http(b) as client:
        refused = await client.post(
            "/v2/proxy/openai/responses",
            json={"model": "gpt-5.5", "input": "hi"},
            headers={"Authorization": "Bearer cpx_expired"},
        )
    assert refused.status_code == 401
    assert await ledger_rows(b, run_id) == []


async def test_expired_grants_are_purged_by_the_reaper(gateways: tuple[Gateway, Gateway]) -> None:
    a, _ = gateways
    sid, run_id = await started_run(a)
    for token, ttl in (("cpx_old", -2 * 86400.0), ("cpx_recent", -1.0), ("cpx_live", 60.0)):
        await a.store.grants.put(
            token, run_id=run_id, session_id=sid, account_id=None, harness="codex", ttl_s=ttl
        )
    await a.runs.reap()
    rows = await a.store.db.read(lambda c: c.execute(sa.select(proxy_grants.c.token_hash)).all())
    assert {r.token_hash for r in rows} == {token_hash("cpx_recent"), token_hash("cpx_live")}


async def test_run_totals_sum_one_runs_model_calls(gateways: tuple[Gateway, Gateway]) -> None:
    a, b = gateways
    sid, run_id = await started_run(a)
    grant = await issue(a, sid, run_id, [])
    assert (await call(b, grant)).status_code == 200
    assert (await call(b, grant)).status_code == 200
    await b.proxy.settle()
    calls, input_tokens, output_tokens, cost = await a.store.ledger.run_totals(run_id)
    rows = await ledger_rows(a, run_id)
    assert calls == 2 == len(rows)
    assert input_tokens == sum(r.input_tokens for r in rows) > 0
    assert output_tokens == sum(r.output_tokens for r in rows)
    assert cost == pytest.approx(sum(r.cost_usd or 0.0 for r in rows))
    assert await a.store.ledger.run_totals("run_other") == (0, 0, 0, 0.0)
    # An unpriced call makes the run's cost unknown, never a lower number.
    unpriced = {**rows[0]._asdict(), "cost_usd": None, "cost_reason": "no price"}
    del unpriced["id"]
    await a.store.db.write(lambda c: c.execute(ledger.insert().values(**unpriced)))
    assert (await a.store.ledger.run_totals(run_id))[3] is None
