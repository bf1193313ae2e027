"""Bodies of the account credentials routes (bring your own provider key)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["CredentialPublic", "CredentialPut", "CredentialsPublic"]


class CredentialPut(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    api_key: SecretStr = Field(
        description="The provider key. Stored encrypted; no route ever returns it."
    )
    base_url: str | None = Field(
        default=None,
        max_length=2000,
        description="The provider's API for this account's calls, where the provider allows "
        "it (an OpenAI-compatible endpoint declared with account_base_url).",
    )


class CredentialPublic(BaseModel):
    """A stored credential as routes show it: never the key, only its fingerprint."""

    provider: str
    kind: Literal["model", "compute", "unknown"]
    fingerprint: str = Field(description="sha256: and the first 12 hex digits of the key's hash.")
    base_url: str | None
    set_at: datetime


class CredentialsPublic(BaseModel):
    credentials: list[CredentialPublic]
