"""Bodies of the account and key routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccountCreate",
    "AccountCreated",
    "AccountPublic",
    "KeyCreate",
    "KeyCreated",
    "KeyPublic",
]


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class AccountCreated(BaseModel):
    account_id: str
    name: str
    api_key: str = Field(description="Shown once; store it now.")


class AccountPublic(BaseModel):
    account_id: str
    name: str
    is_admin: bool
    created_at: datetime


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="default", min_length=1, max_length=200)


class KeyPublic(BaseModel):
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    api_key: str = Field(description="Shown once; store it now.")
