"""What the compatible surfaces' request schemas share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["OpenModel"]


class OpenModel(BaseModel):
    """Keeps unknown fields (in ``model_extra``), so a surface refuses each one by name with
    the provider's own error shape instead of dropping it silently."""

    model_config = ConfigDict(extra="allow")
