"""Request dependencies, as ``Annotated`` aliases that tests can override."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cerver.console.auth import cookie_authorization
from cerver.gateway import Gateway
from cerver.store import AccountRecord, SessionRecord

__all__ = ["AccountDep", "GatewayDep", "SessionDep", "get_account", "get_gateway", "get_session"]


async def get_gateway(request: Request) -> Gateway:
    # async, though it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread
    # pool, a thread hand-off on every request for one attribute read.
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


# Declares the bearer scheme in the OpenAPI document (clients and schemathesis send the key
# as a credential, not as an ordinary header parameter); the check itself stays in AuthService,
# which reads the raw header to tell a missing key from a malformed one.
_bearer = HTTPBearer(
    auto_error=False, scheme_name="ApiKey", description="An API key: `Bearer ck_…`."
)


async def get_account(
    request: Request,
    gateway: GatewayDep,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> AccountRecord:
    """The caller's account: from ``Authorization: Bearer``, else the console's cookie
    (same-origin only for unsafe methods; see :mod:`cerver.console.auth`)."""
    authorization = request.headers.get("authorization") or cookie_authorization(request)
    return await gateway.auth.authenticate(authorization)


AccountDep = Annotated[AccountRecord, Depends(get_account)]


async def get_session(
    gateway: GatewayDep, account: AccountDep, session_id: Annotated[str, Path()]
) -> SessionRecord:
    return await gateway.sessions.get(account.id, session_id)


SessionDep = Annotated[SessionRecord, Depends(get_session)]
