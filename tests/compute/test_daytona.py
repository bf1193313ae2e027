"""The daytona provider, driving the real daytona SDK against a local fake Daytona (a test
double speaking its API and toolbox JSON)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cerver.errors import NotConfigured, NotFound
from cerver.testing.conformance import SandboxConformance
from compute.base import SandboxSpec
from tests.compute.fake_daytona import API_KEY, FakeDaytona, fake_daytona

pytest.importorskip("daytona", reason="pip install 'cerver[daytona]'")

from compute.daytona import DaytonaCompute


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeDaytona]:
    with fake_daytona(tmp_path_factory.mktemp("daytona")) as server:
        yield server


@pytest.fixture
async def daytona(fake: FakeDaytona) -> AsyncIterator[DaytonaCompute]:
    compute = DaytonaCompute(API_KEY, api_url=fake.url)
    try:
        yield compute
    finally:
        await compute.aclose()


class TestDaytonaSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, daytona: DaytonaCompute) -> DaytonaCompute:
        return daytona


async def test_network_env_and_lifetime_reach_the_api(
    daytona: DaytonaCompute, fake: FakeDaytona
) -> None:
    spec = SandboxSpec(session_id="sess_x", timeout_minutes=7, env={"K": "v"})
    sandbox = await daytona.create(spec)
    try:
        body = fake.created[-1]
        assert body["networkBlockAll"] is True
        assert body["autoStopInterval"] == 7
        assert body["env"] == {"K": "v"}
        assert body["labels"]["cerver_session_id"] == "sess_x"
    finally:
        await sandbox.delete()


async def test_bad_key_names_the_variable(fake: FakeDaytona) -> None:
    compute = DaytonaCompute("dtn_wrong", api_url=fake.url)
    try:
        with pytest.raises(NotConfigured, match="DAYTONA_API_KEY"):
            await compute.create(SandboxSpec(session_id="sess_x"))
    finally:
        await compute.aclose()


async def test_attach_unknown_is_not_found(daytona: DaytonaCompute) -> None:
    with pytest.raises(NotFound):
        await daytona.attach("fake000000000000")
