"""The modal provider, driving the real modal SDK against a local fake Modal (a test double
serving its gRPC control plane and task command router)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from cerver.errors import NotConfigured, NotFound
from cerver.testing.conformance import SandboxConformance
from compute.base import SandboxSpec
from tests.compute.fake_modal import TOKEN_ID, TOKEN_SECRET, FakeModal, fake_modal

pytest.importorskip("modal", reason="pip install 'cerver[modal]'")

from compute.modal import ModalCompute


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeModal]:
    with fake_modal(tmp_path_factory.mktemp("modal")) as server:
        yield server


@pytest.fixture
async def modal(fake: FakeModal, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ModalCompute]:
    monkeypatch.setenv("MODAL_SERVER_URL", fake.url)
    monkeypatch.setenv("MODAL_TOKEN_ID", TOKEN_ID)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", TOKEN_SECRET)
    compute = ModalCompute()
    try:
        yield compute
    finally:
        await compute.aclose()


class TestModalSandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, modal: ModalCompute) -> ModalCompute:
        return modal


async def test_lifetime_network_and_workdir_reach_the_api(
    modal: ModalCompute, fake: FakeModal
) -> None:
    sandbox = await modal.create(SandboxSpec(session_id="sess_x", timeout_minutes=7))
    try:
        definition = fake.created[-1].definition
        assert definition.timeout_secs == 7 * 60
        assert definition.workdir == "/workspace"
        assert definition.network_access.network_access_type == definition.network_access.BLOCKED
    finally:
        await sandbox.delete()
    assert fake.unimplemented == []  # the SDK used no RPC the double lacks


async def test_attach_unknown_is_not_found(modal: ModalCompute) -> None:
    with pytest.raises(NotFound):
        await modal.attach("sb-fake000000000000")


async def test_bad_token_names_the_variables(
    fake: FakeModal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODAL_SERVER_URL", fake.url)
    monkeypatch.setenv("MODAL_TOKEN_ID", TOKEN_ID)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", "wrong")
    compute = ModalCompute()
    try:
        with pytest.raises(NotConfigured, match="MODAL_TOKEN_SECRET"):
            await compute.create(SandboxSpec(session_id="sess_x"))
    finally:
        await compute.aclose()
