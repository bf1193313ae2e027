"""Authentication as the provider SDKs send it.

The ``openai`` SDK sends ``Authorization: Bearer <key>``; the ``anthropic`` SDK sends
``x-api-key: <key>``. Both carry a Cerver ``ck_…`` key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from cerver.api.deps import GatewayDep
from cerver.store import AccountRecord

__all__ = ["CompatAccountDep", "SessionIdHeader"]


async def _compat_account(
    gateway: GatewayDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> AccountRecord:
    if authorization is None and x_api_key:
        authorization = f"Bearer {x_api_key}"
    return await gateway.auth.authenticate(authorization)


CompatAccountDep = Annotated[AccountRecord, Depends(_compat_account)]

SessionIdHeader = Annotated[
    str | None,
    Header(
        alias="X-Cerver-Session-Id",
        description="The session to continue; omitted: a new session (its id is returned).",
    ),
]
