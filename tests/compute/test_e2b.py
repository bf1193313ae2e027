"""The e2b provider, driving the real e2b SDK against a local fake E2B (a test double)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cerver.errors import ComputeError, NotConfigured, NotFound
from cerver.testing.conformance import SandboxConformance
from compute.base import SandboxSpec
from compute.e2b import E2BCompute
from tests.compute.fake_e2b import FakeE2B, fake_e2b

pytest.importorskip("e2b")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeE2B]:
    with fake_e2b(tmp_path_factory.mktemp("e2b")) as server:
        yield server


@pytest.fixture
def e2b(fake: FakeE2B) -> E2BCompute:
    return E2BCompute("e2b_test_key", api_url=fake.url, sandbox_url=fake.url)


class TestE2BSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, e2b: E2BCompute) -> E2BCompute:
        return e2b


async def test_timeout_and_internet_are_set_explicitly(e2b: E2BCompute, fake: FakeE2B) -> None:
    sandbox = await e2b.create(SandboxSpec(session_id="sess_x", timeout_minutes=7))
    try:
        body = fake.created[-1]
        assert body["timeout"] == 420
        assert body["allow_internet_access"] is False
        assert body["metadata"] == {"cerver_session_id": "sess_x"}
    finally:
        await sandbox.delete()


async def test_bad_key_names_the_variable(fake: FakeE2B) -> None:
    compute = E2BCompute("wrong", api_url=fake.url, sandbox_url=fake.url)
    with pytest.raises(NotConfigured, match="E2B_API_KEY"):
        await compute.create(SandboxSpec(session_id="sess_x"))


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    with pytest.raises(NotConfigured, match="E2B_API_KEY"):
        E2BCompute()


async def test_unreachable_e2b_is_a_compute_error(tmp_path: Path) -> None:
    compute = E2BCompute("k", api_url="http://127.0.0.1:9", sandbox_url="http://127.0.0.1:9")
    with pytest.raises(ComputeError):
        await compute.create(SandboxSpec(session_id="sess_x"))


async def test_attach_unknown_is_not_found(e2b: E2BCompute) -> None:
    with pytest.raises(NotFound):
        await e2b.attach("fake000000000000")


async def test_without_network_the_gateway_is_the_one_destination(fake: FakeE2B) -> None:
    """With the gateway's public URL, a sandbox without network may reach that host only
    (E2B's allow rules win over its deny-all), for the CLI harnesses' model proxy."""
    compute = E2BCompute(
        "e2b_test_key",
        api_url=fake.url,
        sandbox_url=fake.url,
        model_proxy_url="https://cerver.example.com:8443",
    )
    for network in (False, True):
        sandbox = await compute.create(SandboxSpec(session_id="sess_net", network=network))
        await sandbox.delete()
        body = fake.created[-1]
        if network:
            assert "network" not in body and body["allow_internet_access"] is True
        else:
            assert body["allow_internet_access"] is False
            assert body["network"] == {
                "allowOut": ["cerver.example.com"],
                "denyOut": ["0.0.0.0/0"],
            }
    plain = E2BCompute("e2b_test_key", api_url=fake.url, sandbox_url=fake.url)
    await (await plain.create(SandboxSpec(session_id="sess_plain"))).delete()
    assert "network" not in fake.created[-1]
