"""Compute options: ``compute: {provider, options}`` is validated against the provider's
``Options`` before anything is provisioned, reaches ``create`` as ``spec.options``, stays with
the session (a resumed session gets them again), and gateway-wide defaults come from
``CERVER_<PROVIDER>_*``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import httpx
import pytest

from cerver.errors import InvalidRequest
from cerver.registry import compute_registry
from compute.base import SandboxSpec
from tests.plugin_dist import install_plugin

SCRATCH_COMPUTE = '''
    import itertools
    from pathlib import Path
    from typing import ClassVar

    from cerver.options import PluginOptions
    from cerver.testing.sandbox import ShellSandbox
    from compute.base import Compute, SandboxSpec

    CREATED: list[SandboxSpec] = []
    ROOT = Path(__file__).parent / "scratch"
    _ids = itertools.count(1)


    class ScratchCompute(Compute):
        """A third-party compute (over the ShellSandbox test double) that takes an image."""

        name: ClassVar[str] = "scratch"

        class Options(PluginOptions):
            image: str = "debian"
            cpus: int = 1

        def __init__(self) -> None:
            self._sandboxes: dict[str, ShellSandbox] = {}

        async def create(self, spec: SandboxSpec) -> ShellSandbox:
            CREATED.append(spec)
            sandbox_id = f"scratch-{next(_ids)}"
            (ROOT / sandbox_id).mkdir(parents=True)
            sandbox = ShellSandbox(ROOT / sandbox_id)
            sandbox.sandbox_id = sandbox_id
            self._sandboxes[sandbox_id] = sandbox
            return sandbox

        async def attach(self, sandbox_id: str) -> ShellSandbox:
            return self._sandboxes[sandbox_id]
'''


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    install_plugin(
        tmp_path,
        monkeypatch,
        compute_registry,
        group="cerver.compute",
        name="scratch",
        module="cerver_scratch_compute",
        target="ScratchCompute",
        source=SCRATCH_COMPUTE,
    )
    return importlib.import_module("cerver_scratch_compute")


async def test_an_entry_point_compute_receives_its_options(
    scratch: Any, http: httpx.AsyncClient
) -> None:
    body = {"compute": {"provider": "scratch", "options": {"image": "alpine"}}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 201, response.text
    session = response.json()
    assert (session["provider"], session["compute_options"]) == ("scratch", {"image": "alpine"})
    (spec,) = scratch.CREATED
    assert isinstance(spec.options, scratch.ScratchCompute.Options)
    assert (spec.options.image, spec.options.cpus) == ("alpine", 1)


async def test_a_resumed_session_is_created_with_its_options_again(
    scratch: Any, http: httpx.AsyncClient
) -> None:
    body = {"compute": {"provider": "scratch", "options": {"cpus": 4}}}
    sid = (await http.post("/v2/sessions", json=body)).json()["session_id"]

    assert (await http.post(f"/v2/sessions/{sid}/pause")).status_code == 200
    resumed = await http.post(f"/v2/sessions/{sid}/resume", json={})

    assert resumed.status_code == 200, resumed.text
    assert [spec.options.cpus for spec in scratch.CREATED] == [4, 4]


async def test_a_bad_compute_option_is_a_400_before_anything_is_provisioned(
    scratch: Any, http: httpx.AsyncClient
) -> None:
    body = {"compute": {"provider": "scratch", "options": {"cpus": "many"}}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid_request"
    assert (error["context"]["field"], error["context"]["plugin"]) == ("cpus", "scratch")
    assert scratch.CREATED == []
    assert (await http.get("/v2/sessions")).json()["sessions"] == []


async def test_a_provider_without_options_refuses_any(http: httpx.AsyncClient) -> None:
    body = {"compute": {"provider": "local", "options": {"image": "alpine"}}}
    response = await http.post("/v2/sessions", json=body)

    assert response.status_code == 400
    context = response.json()["context"]
    assert (context["field"], context["plugin"]) == ("image", "local")
    assert "takes no options" in response.json()["detail"]


@pytest.mark.parametrize(
    ("provider", "options", "field"),
    [
        ("e2b", {"template": "two words"}, "template"),
        ("e2b", {"image": "x"}, "image"),
        ("vercel", {"image": "--privileged"}, "image"),
        ("daytona", {"snapshot": 3}, "snapshot"),
    ],
)
def test_vendor_options_are_checked_by_name(
    provider: str, options: dict[str, Any], field: str
) -> None:
    if importlib.util.find_spec(provider) is None:
        pytest.skip(f"the {provider} SDK is not installed: pip install 'cerver[{provider}]'")
    with pytest.raises(InvalidRequest) as caught:
        compute_registry.options(provider, options)

    assert (caught.value.context["field"], caught.value.context["plugin"]) == (field, provider)


class TestE2BTemplate:
    """The template reaches E2B's create call (the local fake control plane records it)."""

    @pytest.fixture
    def fake(self, tmp_path: Path) -> Any:
        pytest.importorskip("e2b")
        from tests.compute.fake_e2b import fake_e2b

        with fake_e2b(tmp_path) as server:
            yield server

    async def _template(self, fake: Any, options: dict[str, Any] | None) -> str:
        from compute.e2b import E2BCompute

        compute = E2BCompute("e2b_test_key", api_url=fake.url, sandbox_url=fake.url)
        spec = SandboxSpec(
            session_id="sess_t",
            options=compute_registry.options("e2b", options) if options is not None else None,
        )
        sandbox = await compute.create(spec)
        await sandbox.delete()
        return fake.created[-1]["templateID"]

    async def test_the_session_s_template_is_used(self, fake: Any) -> None:
        assert await self._template(fake, {"template": "my-template"}) == "my-template"

    async def test_the_gateway_wide_default_comes_from_cerver_e2b_template(
        self, fake: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CERVER_E2B_TEMPLATE", "team-default")

        assert await self._template(fake, None) == "team-default"
        assert await self._template(fake, {"template": "mine"}) == "mine"


def test_local_isolation_comes_from_cerver_local_isolation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compute.local import LocalCompute

    monkeypatch.setenv("CERVER_LOCAL_ISOLATION", "none")
    assert LocalCompute(tmp_path).isolation == "none"

    monkeypatch.setenv("CERVER_LOCAL_ISOLATION", "docker")
    with pytest.raises(InvalidRequest, match=r"'bwrap' \(the default\) or 'none'"):
        LocalCompute(tmp_path)
