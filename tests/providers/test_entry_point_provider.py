"""A model provider from a third-party package: one module and one entry point, no gateway
change. The package is a throwaway distribution (a ``.dist-info`` directory with
``entry_points.txt``) put on ``sys.path``, so discovery goes through
``importlib.metadata.entry_points`` exactly as for an installed wheel."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cerver.client import AsyncClient
from cerver.gateway import Gateway
from cerver.providers import fingerprint, providers
from cerver.registry import harness_registry
from cerver.testing.mock_upstream import MockUpstream, Reply
from tests.conftest import make_settings

ACME_KEY = "sk-acme-0123456789"

MODULE = '''
"""Acme's models (a throwaway provider for Cerver's tests)."""

from cerver.providers import openai_compatible

PROVIDER = openai_compatible(
    "acme", "https://api.acme.example/v1", description="Acme, OpenAI-compatible."
)
'''


@pytest.fixture
def acme_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock_upstream: MockUpstream
) -> Iterator[None]:
    site = tmp_path / "site"
    dist = site / "acme_provider-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "acme_provider.py").write_text(MODULE)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-provider\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [cerver.providers]
            acme = acme_provider:PROVIDER
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ACME_API_KEY", ACME_KEY)
    monkeypatch.setenv("ACME_BASE_URL", mock_upstream.openai_base_url)
    providers.reset()  # scan entry points again
    try:
        yield
    finally:
        providers.reset()
        harness_registry.reset()


async def test_unknown_before_install(client: AsyncClient) -> None:
    with pytest.raises(Exception) as caught:
        await client.create_session(harness="acme", compute=None)
    assert "Unknown harness 'acme'" in str(caught.value)


async def test_a_session_turn_through_an_entry_point_provider(
    acme_installed: None, tmp_path: Path, sqlite_url: str, mock_upstream: MockUpstream
) -> None:
    import httpx

    from cerver.api import create_app
    from tests.conftest import ADMIN_KEY

    gateway = Gateway(make_settings(tmp_path, sqlite_url, mock_upstream))
    await gateway.start()
    try:
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with AsyncClient("http://cerver.test", ADMIN_KEY, transport=transport) as client:
            session = await client.create_session(
                harness="acme", model="acme-large", compute=None, user="u1"
            )
            assert (session["harness"], session["model"]) == ("acme", "acme-large")
            mock_upstream.script(Reply(text="hello from acme", usage={"input_tokens": 5}))
            result = await client.run_llm(session["session_id"], "hi")
            listed = await client._request("GET", "/v2/providers")
    finally:
        await gateway.stop()

    assert result["status"] == "completed", result
    assert result["message"]["content"] == "hello from acme"
    assert result["message"]["provider"] == "acme"
    (request,) = mock_upstream.requests
    assert (request["path"], request["model"]) == ("/v1/responses", "acme-large")
    assert request["key_fingerprint"] == fingerprint(ACME_KEY)
    acme = next(p for p in listed["model_providers"] if p["name"] == "acme")
    assert (acme["status"], acme["credentials"], acme["harness"]) == ("live", "gateway", "acme")
