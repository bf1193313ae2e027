"""The vercel provider, driving the real vercel SDK (``vercel.sandbox``) against a local fake
Vercel Sandbox API (a test double speaking its JSON and NDJSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cerver.errors import NotConfigured, NotFound
from cerver.testing.conformance import SandboxConformance
from compute.base import SandboxSpec
from tests.compute.fake_vercel import CREDENTIALS, FakeVercel, fake_vercel

pytest.importorskip("vercel.sandbox", reason="pip install 'cerver[vercel]'")

from compute.vercel import VercelCompute


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeVercel]:
    with fake_vercel(tmp_path_factory.mktemp("vercel")) as server:
        yield server


@pytest.fixture
async def vercel(fake: FakeVercel, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VercelCompute]:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    compute = VercelCompute(api_url=fake.url)
    try:
        yield compute
    finally:
        await compute.aclose()


class TestVercelSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, vercel: VercelCompute) -> VercelCompute:
        return vercel


async def test_lifetime_env_and_tags_reach_the_api(vercel: VercelCompute, fake: FakeVercel) -> None:
    sandbox = await vercel.create(
        SandboxSpec(session_id="sess_x", timeout_minutes=7, env={"K": "v"})
    )
    try:
        body = fake.created[-1]
        assert body["timeout"] == 7 * 60 * 1000
        assert body["env"] == {"K": "v"}
        assert body["tags"] == {"cerver_session_id": "sess_x"}
        assert body["projectId"] == CREDENTIALS["VERCEL_PROJECT_ID"]
    finally:
        await sandbox.delete()
    assert fake.requests == []  # the SDK used nothing the double does not implement


async def test_bad_token_names_the_variables(
    fake: FakeVercel, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("VERCEL_TOKEN", "wrong")
    compute = VercelCompute(api_url=fake.url)
    try:
        with pytest.raises(NotConfigured, match="VERCEL_TOKEN"):
            await compute.create(SandboxSpec(session_id="sess_x"))
    finally:
        await compute.aclose()


async def test_attach_unknown_is_not_found(vercel: VercelCompute) -> None:
    with pytest.raises(NotFound):
        await vercel.attach("fake000000000000")
