"""Commands and files on a session's compute: ``/run``, ``/run/stream``, ``/files``."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Query
from starlette.responses import StreamingResponse

from cerver.api.contract import SANDBOX, SSE, errors
from cerver.api.deps import GatewayDep, SessionDep
from cerver.api.schemas.execs import (
    ExecCreate,
    ExecPublic,
    ExecResultPublic,
    FileList,
    FilePublic,
    FileWrite,
)
from cerver.api.sse import sse_response
from cerver.errors import InvalidRequest
from compute.base import Sandbox

router = APIRouter(prefix="/v2/sessions", tags=["compute"])


@router.post("/{session_id}/run", responses=errors(*SANDBOX))
async def run_code(body: ExecCreate, session: SessionDep, gateway: GatewayDep) -> ExecPublic:
    """Run a bash command line in the session's sandbox. A non-zero exit is a result."""
    sandbox = await gateway.execs.sandbox(session)
    result = await sandbox.exec(body.code, timeout=body.timeout, env=body.env)
    return ExecPublic(
        session_id=session.id,
        provider=session.provider or "",
        duration_ms=round(result.duration_ms, 2),
        result=ExecResultPublic(
            **result.model_dump(include={"stdout", "stderr", "exit_code", "timed_out", "limit"})
        ),
    )


@router.post(
    "/{session_id}/run/stream",
    response_class=StreamingResponse,
    responses={**SSE, **errors(*SANDBOX)},
)
async def run_code_stream(
    body: ExecCreate, session: SessionDep, gateway: GatewayDep
) -> StreamingResponse:
    """Stream a command's output as SSE: ``stdout``/``stderr`` chunks, then ``exit``."""
    started = time.perf_counter()
    sandbox = await gateway.execs.sandbox(session)  # refuses before the stream opens
    headers = {
        "X-Cerver-Session-Id": session.id,
        "X-Cerver-Provider": session.provider or "",
        "X-Cerver-Harness": session.harness,
        "X-Cerver-Model": session.model,
        "X-Cerver-Stream-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.2f}",
    }
    return sse_response(_exec_events(sandbox, body), headers)


async def _exec_events(sandbox: Sandbox, body: ExecCreate) -> AsyncIterator[bytes]:
    async for chunk in sandbox.exec_stream(body.code, timeout=body.timeout, env=body.env):
        if chunk.stream == "exit":
            data: dict[str, object] = {"exit_code": chunk.exit_code, "limit": chunk.limit}
        else:
            data = {"data": chunk.data}
        yield b"event: " + chunk.stream.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.put("/{session_id}/files", responses=errors(*SANDBOX))
@router.post("/{session_id}/files", deprecated=True, responses=errors(*SANDBOX))
async def write_file(body: FileWrite, session: SessionDep, gateway: GatewayDep) -> FilePublic:
    if body.encoding == "base64":
        try:
            data = base64.b64decode(body.content, validate=True)
        except binascii.Error as exc:
            raise InvalidRequest(
                f"content is not valid base64 ({exc}); send encoding 'utf-8' for text.",
                context={"path": body.path},
            ) from exc
    else:
        data = body.content.encode()
    sandbox = await gateway.execs.sandbox(session)
    await sandbox.write_file(body.path, data)
    return FilePublic(path=body.path, content="", encoding=body.encoding, size=len(data))


@router.get("/{session_id}/files", responses=errors(*SANDBOX))
async def read_or_list_files(
    session: SessionDep,
    gateway: GatewayDep,
    path: Annotated[str, Query(min_length=1, max_length=4096)] = ".",
    list: bool = False,
) -> FilePublic | FileList:
    """Read the file at ``path`` (text as UTF-8, else base64), or list files with ``list=true``."""
    sandbox = await gateway.execs.sandbox(session)
    if list or path == ".":
        return FileList(path=path, files=await sandbox.list_files(path))
    data = await sandbox.read_file(path)
    try:
        return FilePublic(path=path, content=data.decode(), encoding="utf-8", size=len(data))
    except UnicodeDecodeError:
        content = base64.b64encode(data).decode()
        return FilePublic(path=path, content=content, encoding="base64", size=len(data))
