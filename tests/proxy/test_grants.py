"""Run tokens: issue, resolve, expire, revoke, and release after in-flight requests."""

from __future__ import annotations

import asyncio

import pytest

from cerver.errors import AuthenticationFailed
from cerver.proxy import ProxyGrants


def issue(grants: ProxyGrants, ttl_s: float = 60.0):
    return grants.issue(
        run_id="run_1", session_id="s", harness="codex", on_usage=lambda *_: None, ttl_s=ttl_s
    )


def test_tokens_are_scoped_secrets() -> None:
    grants = ProxyGrants()
    one, two = issue(grants), issue(grants)
    assert one.token != two.token and one.token.startswith("cpx_") and len(one.token) > 40
    assert grants.resolve(one.token)[0] is one


def test_expired_and_revoked_tokens_are_refused() -> None:
    grants = ProxyGrants()
    expired, revoked = issue(grants, ttl_s=-1), issue(grants)
    grants.revoke(revoked)
    for token in (expired.token, revoked.token, None, ""):
        with pytest.raises(AuthenticationFailed):
            grants.resolve(token)


async def test_release_waits_for_requests_in_flight() -> None:
    grants = ProxyGrants()
    grant = issue(grants)
    call = grants.begin(grant.token)
    release = asyncio.create_task(grants.release(grant))
    await asyncio.sleep(0.05)
    assert not release.done()  # a response is still streaming its usage
    with pytest.raises(AuthenticationFailed):
        grants.begin(grant.token)  # but no new request gets in
    call.end()
    call.end()  # idempotent
    await asyncio.wait_for(release, 1)


async def test_release_gives_up_after_its_grace() -> None:
    grants = ProxyGrants()
    grant = issue(grants)
    grants.begin(grant.token)  # never ends
    await asyncio.wait_for(grants.release(grant, grace_s=0.05), 1)
