"""The provider catalog: ``GET /v2/providers``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.computes import ProvidersPublic
from cerver.providers import Endpoints, ModelProvider

router = APIRouter(prefix="/v2/providers", tags=["compute"])


@router.get("")
async def list_providers(gateway: GatewayDep, account: AccountDep) -> ProvidersPublic:
    """Every compute provider (status live, needs_credentials, missing_sdk, modelled;
    capabilities, predicted profile, what this gateway observed) and every model provider of
    the registry (live or needs_credentials for this account, and whose key it would use)."""
    entries = await gateway.placement.entries(account.id)
    endpoints = await gateway.harnesses.endpoints_for(account.id)
    return ProvidersPublic(
        providers=[entry.public() for entry in entries],
        model_providers=[
            _model_public(provider, endpoints) for provider in gateway.settings.model_providers()
        ],
    )


def _model_public(provider: ModelProvider, endpoints: Endpoints) -> dict[str, Any]:
    endpoint = endpoints.get(provider.name)
    live = endpoint.api_key is not None
    return {
        "name": provider.name,
        "kind": "model",
        "status": "live" if live else "needs_credentials",
        "credentials": endpoint.source if live else None,
        "key_env": provider.key_env,
        "base_url_env": provider.base_url_env,
        "default_base_url": provider.default_base_url,
        "wire_formats": list(provider.wire_formats),
        "mock_dialect": provider.mock_dialect,
        "pricing_id": provider.price_source_id,
        "harness": provider.name if provider.sdk_harness else provider.default_harness,
        "account_base_url": provider.account_base_url,
        "note": provider.description
        if live
        else f"Set {provider.key_env} where the gateway runs, or store the account's own key "
        f"with PUT /v2/account/credentials/{provider.name}.",
    }
