"""The provider catalog: ``GET /v2/providers``."""

from __future__ import annotations

from fastapi import APIRouter

from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.computes import ProvidersPublic

router = APIRouter(prefix="/v2/providers", tags=["compute"])


@router.get("")
async def list_providers(gateway: GatewayDep, account: AccountDep) -> ProvidersPublic:
    """Every provider: status (live, needs_credentials, missing_sdk, modelled), capabilities,
    predicted profile and what this gateway observed."""
    entries = await gateway.placement.entries(account.id)
    return ProvidersPublic(providers=[entry.public() for entry in entries])
