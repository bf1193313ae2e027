"""Accounts and API keys."""

from __future__ import annotations

from fastapi import APIRouter, status

from cerver.api.contract import errors
from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.auth import (
    AccountCreate,
    AccountCreated,
    AccountPublic,
    KeyCreate,
    KeyCreated,
    KeyPublic,
)
from cerver.errors import Conflict, PermissionDenied

router = APIRouter(prefix="/v2", tags=["auth"])


@router.post("/accounts", status_code=status.HTTP_201_CREATED, responses=errors(PermissionDenied))
async def create_account(
    body: AccountCreate, gateway: GatewayDep, account: AccountDep
) -> AccountCreated:
    """Create another account (admin key only). Its first API key is returned once."""
    created, key = await gateway.auth.create_account(account, body.name)
    return AccountCreated(account_id=created.id, name=created.name, api_key=key)


@router.get("/auth/account")
async def get_account(account: AccountDep) -> AccountPublic:
    return AccountPublic(
        account_id=account.id,
        name=account.name,
        is_admin=account.is_admin,
        created_at=account.created_at,
    )


@router.get("/auth/keys")
async def list_keys(gateway: GatewayDep, account: AccountDep) -> list[KeyPublic]:
    return [
        KeyPublic.model_validate(k, from_attributes=True)
        for k in await gateway.auth.list_keys(account)
    ]


@router.post("/auth/keys", status_code=status.HTTP_201_CREATED)
async def create_key(
    gateway: GatewayDep, account: AccountDep, body: KeyCreate | None = None
) -> KeyCreated:
    record, key = await gateway.auth.create_key(account, (body or KeyCreate()).name)
    return KeyCreated(**record.model_dump(exclude={"account_id"}), api_key=key)


@router.delete(
    "/auth/keys/{prefix}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(Conflict)
)
async def revoke_key(prefix: str, gateway: GatewayDep, account: AccountDep) -> None:
    await gateway.auth.revoke_key(account, prefix)
