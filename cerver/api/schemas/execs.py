"""Bodies of the compute routes of a session (``/run``, ``/files``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cerver.types import LimitName

__all__ = ["ExecCreate", "ExecPublic", "ExecResultPublic", "FileList", "FilePublic", "FileWrite"]


class ExecCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=100_000, description="A bash command line.")
    timeout: float = Field(default=60, gt=0, le=3600, description="Seconds.")
    env: dict[str, str] = Field(default_factory=dict)


class ExecResultPublic(BaseModel):
    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool = False
    limit: LimitName | None = Field(
        default=None, description="The sandbox limit that ended the command, if one did."
    )


class ExecPublic(BaseModel):
    session_id: str
    provider: str
    duration_ms: float
    result: ExecResultPublic


class FileWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=4096)
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"


class FilePublic(BaseModel):
    path: str
    content: str
    encoding: Literal["utf-8", "base64"]
    size: int


class FileList(BaseModel):
    path: str
    files: list[str]
