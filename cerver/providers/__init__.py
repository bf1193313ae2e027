"""Providers as one extension point: model providers and compute providers' credentials.

:mod:`~cerver.providers.model` describes a model provider, :mod:`~cerver.providers.compute`
a compute provider's credentials, :mod:`~cerver.providers.registry` holds them all, and
:mod:`~cerver.providers.endpoint` is what a caller resolves a provider to (a base URL and a
key, the account's or the gateway's).
"""

from cerver.providers.compute import ComputeCredentials
from cerver.providers.endpoint import Endpoint, Endpoints, EndpointSource, fingerprint
from cerver.providers.model import MOCK_BASE_PATHS, MockDialect, ModelProvider, WireFormat
from cerver.providers.registry import (
    ENTRY_POINT_GROUP,
    ProviderEntry,
    ProviderRegistry,
    openai_compatible,
    providers,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MOCK_BASE_PATHS",
    "ComputeCredentials",
    "Endpoint",
    "EndpointSource",
    "Endpoints",
    "MockDialect",
    "ModelProvider",
    "ProviderEntry",
    "ProviderRegistry",
    "WireFormat",
    "fingerprint",
    "openai_compatible",
    "providers",
]
