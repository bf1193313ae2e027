"""The model proxy on the gateway's API: ``/v2/proxy/{provider}/{path}`` (run tokens only).

The same handler also answers on the sandbox-facing unix socket (``cerver.proxy.listener``).
It authenticates with a CLI run's proxy token, not an account key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from cerver.api.deps import GatewayDep
from cerver.proxy.handler import PROXY_PREFIX, handle

router = APIRouter(prefix=PROXY_PREFIX, tags=["proxy"])


@router.api_route("/{provider}/{path:path}", methods=["GET", "POST"], include_in_schema=False)
async def proxy(
    provider: str, path: str, request: Request, gateway: GatewayDep
) -> StreamingResponse:
    """Forward a provider API request with the gateway's key; stream the answer back.

    Authenticated by ``x-api-key`` or ``Authorization: Bearer`` holding a live run token.
    """
    return await handle(gateway.proxy, request, provider, path)
