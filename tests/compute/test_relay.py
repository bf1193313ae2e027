"""The relay provider against a real ``cerver relay`` process in its own network namespace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cerver.errors import ComputeError, NotFound
from cerver.testing.conformance import SandboxConformance
from compute.base import SandboxSpec
from compute.relay import RelayCompute
from tests.compute.relay_process import RelayProcess, relay_process


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RelayProcess]:
    with relay_process(tmp_path_factory.mktemp("relay")) as process:
        yield process


@pytest.fixture
async def relay_compute(relay: RelayProcess) -> AsyncIterator[RelayCompute]:
    compute = RelayCompute(relay.base_url, relay.token)
    yield compute
    await compute.aclose()


class TestRelaySandbox(SandboxConformance):
    @pytest.fixture
    def compute(self, relay_compute: RelayCompute) -> RelayCompute:
        return relay_compute


def test_relay_runs_in_its_own_network_namespace(relay: RelayProcess) -> None:
    assert relay.isolation == "netns", "expected root + iproute2 on this machine"
    assert not relay.base_url.startswith("http://127.")


async def test_wrong_token_is_refused_with_the_fix(relay: RelayProcess) -> None:
    compute = RelayCompute(relay.base_url, "not-the-token")
    with pytest.raises(ComputeError, match="token"):
        await compute.create(SandboxSpec(session_id="sess_x"))
    await compute.aclose()


async def test_attach_to_a_deleted_sandbox_is_not_found(relay_compute: RelayCompute) -> None:
    sandbox = await relay_compute.create(SandboxSpec(session_id="sess_x"))
    await sandbox.delete()
    await sandbox.delete()  # idempotent

    with pytest.raises(NotFound):
        await relay_compute.attach(sandbox.sandbox_id)


async def test_unreachable_relay_is_a_compute_error_naming_the_fix() -> None:
    compute = RelayCompute("http://127.0.0.1:9", "t", connect_timeout=1)
    with pytest.raises(ComputeError, match="cerver relay"):
        await compute.create(SandboxSpec(session_id="sess_x"))
    await compute.aclose()


@pytest.mark.parametrize("streaming", [False, True])
async def test_relay_dying_mid_command_fails_fast(tmp_path: Path, streaming: bool) -> None:
    with relay_process(tmp_path) as relay:
        compute = RelayCompute(relay.base_url, relay.token)
        sandbox = await compute.create(SandboxSpec(session_id="sess_x"))

        async def run() -> None:
            if streaming:
                async for _ in sandbox.exec_stream("echo started; sleep 30", timeout=60):
                    pass
            else:
                await sandbox.exec("sleep 30", timeout=60)

        task = asyncio.create_task(run())
        await asyncio.sleep(1.0)
        killed = time.perf_counter()
        relay.kill()
        with pytest.raises(ComputeError, match=r"(?i)relay"):
            await asyncio.wait_for(task, 10)
        assert time.perf_counter() - killed < 5
        with pytest.raises(ComputeError):
            await compute.attach(sandbox.sandbox_id)
        await compute.aclose()


async def test_healthz_reports_capabilities_without_a_token(relay: RelayProcess) -> None:
    async with httpx.AsyncClient() as client:
        body = (await client.get(f"{relay.base_url}/healthz")).json()
    assert body["status"] == "ok"
    assert "shell" in body["capabilities"]["runtimes"]
