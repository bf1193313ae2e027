"""``GET /v1/models``: the model names the compatibility surfaces accept, in OpenAI's shape.

The list holds examples of the grammar (:mod:`cerver.api.compat.model_names`), not a limit:
any ``<harness>/<model>`` and any model of a known family is accepted.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cerver.api.compat.deps import CompatAccountDep
from cerver.api.compat.model_names import listed_models, parse_model
from cerver.api.deps import GatewayDep

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

_CREATED = 1_735_689_600
"""A fixed ``created`` timestamp (2025-01-01): Cerver does not know when a model was made."""


@router.get("/models")
async def list_models(gateway: GatewayDep, _: CompatAccountDep) -> dict[str, Any]:
    """Model ids the gateway accepts as ``model`` (examples of ``[harness/]model``)."""
    return {"object": "list", "data": [_model(m) for m in listed_models(gateway.harnesses)]}


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, gateway: GatewayDep, _: CompatAccountDep) -> dict[str, Any]:
    """One model id, if the grammar accepts it (404 with a did-you-mean otherwise)."""
    parse_model(model_id, gateway.harnesses)
    return _model(model_id)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "cerver"}
