"""The provider registry: built-ins, did-you-mean errors, the readers that consult it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cerver.errors import NotConfigured, UnknownPlugin
from cerver.providers import Endpoint, Endpoints, fingerprint, openai_compatible, providers
from cerver.registry import compute_registry
from cerver.services.plugins import Upstreams
from cerver.settings import Settings
from cerver.testing.mock_upstream import MockUpstream


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Registrations a test makes (an operator's endpoints) do not outlive it."""
    yield
    providers.reset()


def test_builtins_in_order() -> None:
    assert [p.name for p in providers.models()][:4] == ["anthropic", "openai", "gemini", "xai"]
    assert {c.name for c in providers.computes()} == {"e2b", "daytona", "modal", "vercel"}


def test_an_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(UnknownPlugin) as caught:
        providers.model("opnai")
    assert "Did you mean 'openai'?" in caught.value.message
    assert "Known: anthropic, gemini, openai, xai" in caught.value.message
    with pytest.raises(UnknownPlugin):
        providers.model("e2b")  # a compute provider is not a model provider


def test_each_header_presents_its_key() -> None:
    assert providers.model("anthropic").auth_header("k") == ("x-api-key", "k")
    assert providers.model("gemini").auth_header("k") == ("x-goog-api-key", "k")
    assert providers.model("xai").auth_header("k") == ("authorization", "Bearer k")


@pytest.mark.parametrize("name", ["e2b", "daytona", "modal", "vercel"])
def test_compute_declarations_match_the_plugins(name: str) -> None:
    declared = providers.compute(name)
    assert declared is not None
    assert declared.variables == compute_registry.load(name).credentials


def test_settings_read_each_providers_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-from-env")
    monkeypatch.setenv("CERVER_GEMINI_API_KEY", "gemini-from-alias")
    settings = Settings(openai_api_key="explicit", anthropic_api_key=None)
    key = settings.provider_api_key
    assert key(providers.model("xai")) == "xai-from-env"
    assert key(providers.model("gemini")) == "gemini-from-alias"
    assert key(providers.model("openai")) == "explicit"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ignored")  # an explicit None wins over the env
    assert key(providers.model("anthropic")) is None
    assert not settings.use_mock_upstream


def test_operator_named_openai_compatible_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORP_API_KEY", "corp-key")
    settings = Settings(openai_compatible={"corp": {"base_url": "http://llm.corp/v1"}})
    corp = next(p for p in settings.model_providers() if p.name == "corp")
    assert corp == openai_compatible("corp", "http://llm.corp/v1")
    assert settings.provider_api_key(corp) == "corp-key"
    upstreams = Upstreams.from_settings(settings)
    assert upstreams.kwargs_for("corp") == {"base_url": None, "api_key": "corp-key"}


def test_an_unknown_provider_is_an_error_not_an_empty_configuration() -> None:
    upstreams = Upstreams.from_settings(Settings(api_keys={}))
    for call in (upstreams.configured, upstreams.kwargs_for):
        with pytest.raises(UnknownPlugin, match="Known: anthropic"):
            call("litellm")


def test_a_missing_key_names_the_variable_and_the_route() -> None:
    upstreams = Upstreams.from_settings(Settings(xai_api_key=None))
    with pytest.raises(NotConfigured) as caught:
        upstreams.kwargs_for("xai")
    assert "XAI_API_KEY" in caught.value.message
    assert "PUT /v2/account/credentials/xai" in caught.value.message


def test_an_accounts_key_wins_and_keeps_the_gateways_base_url() -> None:
    gateway = Endpoints(providers, {"openai": Endpoint("openai", "http://mock/v1", "gw")})
    own = gateway.with_account({"openai": Endpoint("openai", None, "mine", "account")})
    assert own.get("openai") == Endpoint("openai", "http://mock/v1", "mine", "account")
    assert gateway.get("openai").api_key == "gw"
    assert own.account_keys == {"openai": fingerprint("mine")}


def test_an_endpoint_never_shows_its_key() -> None:
    shown = repr(Endpoint("openai", None, "sk-very-secret"))
    assert "sk-very-secret" not in shown and fingerprint("sk-very-secret") in shown


def test_the_mock_upstream_serves_each_provider_in_its_dialect(
    mock_upstream: MockUpstream,
) -> None:
    assert mock_upstream.base_url_for("anthropic") == mock_upstream.url
    assert mock_upstream.base_url_for("xai") == mock_upstream.url + "/v1"
    assert mock_upstream.base_url_for("gemini") == mock_upstream.url
    upstreams = Upstreams.from_settings(Settings(), mock_upstream.url)
    assert upstreams.mock
    assert upstreams.kwargs_for("xai")["base_url"] == mock_upstream.url + "/v1"
