"""The account's own provider credentials: ``/v2/account/credentials``.

``PUT`` stores a key for a model or compute provider (encrypted at rest), ``GET`` lists what
is stored (provider, fingerprint, when), ``DELETE`` removes one. No route returns a key.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Response, status

from cerver.api.deps import AccountDep, GatewayDep
from cerver.api.schemas.credentials import CredentialPublic, CredentialPut, CredentialsPublic

router = APIRouter(prefix="/v2/account/credentials", tags=["account"])


@router.get("")
async def list_credentials(gateway: GatewayDep, account: AccountDep) -> CredentialsPublic:
    """The providers this account has its own key for, with fingerprints (never the keys)."""
    stored = await gateway.credentials.list(account.id)
    return CredentialsPublic(
        credentials=[CredentialPublic(**dataclasses.asdict(c)) for c in stored]
    )


@router.put("/{provider}")
async def put_credential(
    provider: str, body: CredentialPut, gateway: GatewayDep, account: AccountDep
) -> CredentialPublic:
    """Store (or replace) this account's key for ``provider``; from now on its turns, proxied
    CLI calls and provisioning use it instead of the gateway's."""
    stored = await gateway.credentials.put(
        account.id, provider, body.api_key.get_secret_value(), body.base_url
    )
    return CredentialPublic(**dataclasses.asdict(stored))


@router.delete("/{provider}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_credential(provider: str, gateway: GatewayDep, account: AccountDep) -> Response:
    """Remove this account's key for ``provider``: the gateway's applies again."""
    await gateway.credentials.delete(account.id, provider)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
