"""Registered computes (relays): register, list, read, heartbeat, delete."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.computes import ComputePublic, ComputeRegister, ComputesPublic

router = APIRouter(prefix="/v2/computes", tags=["compute"])


@router.post("/register", status_code=status.HTTP_201_CREATED)
@router.post("", status_code=status.HTTP_201_CREATED, deprecated=True)
async def register_compute(
    body: ComputeRegister, gateway: GatewayDep, account: AccountDep
) -> ComputePublic:
    """Register a running `cerver relay`; the gateway checks it answers before saving it."""
    record = await gateway.registered_computes.register(
        account.id,
        label=body.label,
        base_url=str(body.base_url),
        token=body.token,
        capabilities=body.capabilities,
    )
    return ComputePublic(**gateway.registered_computes.public(record))


@router.get("")
async def list_computes(gateway: GatewayDep, account: AccountDep) -> ComputesPublic:
    records = await gateway.registered_computes.list(account.id)
    return ComputesPublic(
        computes=[ComputePublic(**gateway.registered_computes.public(r)) for r in records]
    )


@router.get("/{compute_id}")
async def get_compute(compute_id: str, gateway: GatewayDep, account: AccountDep) -> ComputePublic:
    record = await gateway.registered_computes.get(account.id, compute_id)
    return ComputePublic(**gateway.registered_computes.public(record))


@router.post("/{compute_id}/heartbeat")
async def heartbeat(compute_id: str, gateway: GatewayDep, account: AccountDep) -> ComputePublic:
    """Mark the compute online now; one missed for the heartbeat timeout marks it offline."""
    record = await gateway.registered_computes.heartbeat(account.id, compute_id)
    return ComputePublic(**gateway.registered_computes.public(record))


@router.delete("/{compute_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_compute(compute_id: str, gateway: GatewayDep, account: AccountDep) -> Response:
    await gateway.registered_computes.delete(account.id, compute_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
