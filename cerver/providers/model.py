"""What Cerver knows about one model provider: where it is, how it is keyed, what it speaks.

A :class:`ModelProvider` is pure data. The settings read its variables, the SDK harnesses and
the model proxy reach it through it, the mock upstream serves it in its dialect, and the
pricer names it by its price-source id: adding a provider is one of these plus one registry
line (or one entry point), never an edit of those readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["MOCK_BASE_PATHS", "MockDialect", "ModelProvider", "WireFormat"]

WireFormat = Literal["anthropic-messages", "openai-responses", "openai-chat", "gemini"]
"""The model APIs Cerver's harnesses, proxy and mock upstream speak."""

MockDialect = Literal["anthropic", "openai", "gemini"]
"""Which of the mock upstream's APIs stands in for a provider."""

MOCK_BASE_PATHS: Final[dict[MockDialect, str]] = {"anthropic": "", "openai": "/v1", "gemini": ""}
"""A dialect's base URL on the mock upstream, relative to its root, in the SDKs' convention
(Anthropic's and Gemini's without a version, OpenAI's with ``/v1``)."""


@dataclass(frozen=True, slots=True)
class ModelProvider:
    """One model provider.

    Attributes:
        name: the registry key (kebab-case), also the ``provider`` recorded on entries, the
            ledger and ``/v2/proxy/{name}``.
        key_env: the variable holding the gateway's key (``ANTHROPIC_API_KEY``);
            ``CERVER_<NAME>_API_KEY`` is accepted too.
        default_base_url: the provider's API in its SDK's convention (see
            :data:`MOCK_BASE_PATHS` for the versioning rule).
        base_url_env: the variable overriding the base URL, if any.
        key_header: the request header carrying the key (lower-case).
        key_scheme: the header value's scheme (``"Bearer"``), or ``None`` for the bare key.
        wire_formats: the APIs it serves, preferred first.
        mock_dialect: the mock upstream's API that stands in for it.
        pricing_id: its id in price sources (genai-prices says ``x-ai`` for xAI); ``None``
            means the name itself.
        sdk_harness: for a provider without a harness of its own (an OpenAI-compatible
            endpoint a user names): the built-in harness whose client speaks its first wire
            format. Sessions then name the provider itself as their harness.
        default_model: the model a session of the bound harness (``sdk_harness``) gets
            when it names none.
        default_harness: the harness a gateway whose only key is this provider's uses when
            ``CERVER_DEFAULT_HARNESS`` is not set.
        account_base_url: whether an account may store its own base URL with its key (an
            account cannot point a provider with a fixed API elsewhere).
        description: one line for ``GET /v2/providers``.
    """

    name: str
    key_env: str
    default_base_url: str
    base_url_env: str | None = None
    key_header: str = "authorization"
    key_scheme: str | None = "Bearer"
    wire_formats: tuple[WireFormat, ...] = ("openai-chat",)
    mock_dialect: MockDialect = "openai"
    pricing_id: str | None = None
    sdk_harness: str | None = None
    default_model: str | None = None
    default_harness: str | None = None
    account_base_url: bool = False
    description: str = ""

    kind: Literal["model"] = "model"

    def auth_header(self, api_key: str) -> tuple[str, str]:
        """The ``(header, value)`` that presents ``api_key`` to this provider."""
        value = f"{self.key_scheme} {api_key}" if self.key_scheme else api_key
        return self.key_header, value

    def mock_base_url(self, mock_url: str) -> str:
        """This provider's base URL on the mock upstream served at ``mock_url``."""
        return mock_url.rstrip("/") + MOCK_BASE_PATHS[self.mock_dialect]

    @property
    def env_alias(self) -> str:
        """``CERVER_<NAME>_API_KEY``, the gateway-prefixed spelling of :attr:`key_env`."""
        return f"CERVER_{self.name.upper().replace('-', '_')}_API_KEY"

    @property
    def price_source_id(self) -> str:
        return self.pricing_id or self.name
