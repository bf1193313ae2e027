"""TEST DOUBLE: a local Vercel Sandbox API, for the real ``vercel`` SDK (``vercel.sandbox``).

The unchanged SDK is pointed here with ``SandboxServiceOptions(base_url=…)`` (Cerver's
``VercelCompute(api_url=…)``). Only what Cerver's Vercel provider uses is implemented, with the
JSON of the SDK's wire models (``vercel/sandbox/_internal/api_client.py``):

- ``POST /v3/sandboxes`` (records the body), ``GET`` and ``DELETE /v2/sandboxes/{name}``, each
  answering ``{sandbox, session, routes}``; the bearer token must be ``vercel_test_token``;
- ``POST /v2/sandboxes/sessions/{session}/cmd?wait=true&logs=true``: NDJSON, the command's
  metadata, its ``stdout``/``stderr`` records as they come, then the metadata with
  ``exitCode``; the service kills it after ``timeout`` milliseconds. Without ``wait`` the
  command is detached: ``GET …/cmd/{id}/logs`` streams its records (from the first, then as
  they come), ``GET …/cmd/{id}?wait=true`` answers once it has exited, and
  ``POST …/cmd/{id}/kill`` kills its process group;
- ``POST /v2/sandboxes/sessions/{session}/fs/read`` (the raw bytes, 404 when missing) and
  ``/fs/write`` (a gzipped tar extracted at ``x-cwd``).

Commands run under bubblewrap with the sandbox's directory at ``/vercel/sandbox`` and ``/tmp``
(see :mod:`tests.compute.fake_box`).
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import tarfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.compute.fake_box import FakeBox, output_of, serve

__all__ = ["CREDENTIALS", "FakeVercel", "fake_vercel"]

CREDENTIALS = {
    "VERCEL_TOKEN": "vercel_test_token",
    "VERCEL_TEAM_ID": "team_fake",
    "VERCEL_PROJECT_ID": "prj_fake",
}
HOME = "/vercel/sandbox"


@dataclass
class FakeVercel:
    url: str
    sandboxes: dict[str, FakeBox]
    created: list[dict[str, Any]]
    requests: list[str]


def _now() -> int:
    return int(time.time() * 1000)


@dataclass
class _Command:
    """A command the double started: its output records, kept for any number of readers."""

    meta: dict[str, Any]
    box: FakeBox
    process: asyncio.subprocess.Process
    records: list[dict[str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    code: int | None = None
    collector: asyncio.Task[None] | None = None

    async def collect(self, limit: float | None) -> None:
        """Record the output as it comes, then the exit code (killed after ``limit`` s)."""
        loop = asyncio.get_running_loop()
        killer = loop.call_later(limit, self.kill) if limit else None
        try:
            async for stream, chunk in output_of(self.process):
                self.records.append({"stream": stream, "data": chunk.decode(errors="replace")})
                self._notify()
            self.code = await self.process.wait()
        finally:
            if killer is not None:
                killer.cancel()
            self.kill()
            self.box.processes.discard(self.process)
            self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[dict[str, str]]:
        """Every record from the first, then new ones as they come, until the command ends."""
        sent = 0
        while True:
            changed = self.changed
            while sent < len(self.records):
                yield self.records[sent]
                sent += 1
            if self.code is not None or (self.collector is not None and self.collector.done()):
                return
            await changed.wait()

    async def exit_code(self) -> int:
        while self.code is None and not (self.collector is not None and self.collector.done()):
            await self.changed.wait()
        return self.code if self.code is not None else -9

    def state(self) -> dict[str, Any]:
        return {**self.meta, **({"exitCode": self.code} if self.code is not None else {})}

    def kill(self) -> None:
        self.box.kill(self.process)


def _app(
    root: Path,
    sandboxes: dict[str, FakeBox],
    created: list[dict[str, Any]],
    log: list[str],
    image: Mapping[str, Path],
) -> Any:
    sessions: dict[str, str] = {}  # session id -> sandbox name
    bodies: dict[str, dict[str, Any]] = {}

    def sandbox_json(box: FakeBox, status: str = "running") -> dict[str, Any]:
        body = bodies[box.sandbox_id]
        session_id = f"sbx_{box.sandbox_id}"
        session = {
            "id": session_id,
            "sourceSandboxName": box.sandbox_id,
            "projectId": CREDENTIALS["VERCEL_PROJECT_ID"],
            "status": status,
            "cwd": HOME,
            "region": "iad1",
            "memory": 2048,
            "vcpus": 1,
            "timeout": body.get("timeout"),
            "requestedAt": _now(),
            "startedAt": _now(),
        }
        sandbox = {
            "name": box.sandbox_id,
            "currentSessionId": session_id,
            "status": status,
            "persistent": False,
            "projectId": CREDENTIALS["VERCEL_PROJECT_ID"],
            "cwd": HOME,
            "region": "iad1",
            "memory": 2048,
            "vcpus": 1,
            "timeout": body.get("timeout"),
            "tags": body.get("tags") or {},
            "createdAt": _now(),
            "updatedAt": _now(),
        }
        return {"sandbox": sandbox, "session": session, "routes": []}

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {CREDENTIALS['VERCEL_TOKEN']}"

    def error(status: int, code: str, message: str) -> Response:
        return JSONResponse({"error": {"code": code, "message": message}}, status)

    def refused() -> Response:
        return error(403, "forbidden", "Not authorized")

    async def create(request: Request) -> Response:
        if not authorized(request):
            return refused()
        body = await request.json()
        created.append(body)
        name = f"fake{secrets.token_hex(6)}"
        bodies[name] = body
        box = FakeBox(name, root / name, (HOME, "/tmp"), dict(body.get("env") or {}), image)
        sandboxes[name] = box
        sessions[f"sbx_{name}"] = name
        return JSONResponse(sandbox_json(box))

    async def one(request: Request) -> Response:
        if not authorized(request):
            return refused()
        name = request.path_params["name"]
        box = sandboxes.get(name)
        if box is None:
            return error(404, "not_found", f"Sandbox {name} not found")
        if request.method == "DELETE":
            sandboxes.pop(name).destroy()
            return JSONResponse(sandbox_json(box, "stopped"))
        return JSONResponse(sandbox_json(box))

    def addressed(request: Request) -> FakeBox | None:
        name = sessions.get(request.path_params["session"], "")
        return sandboxes.get(name) if authorized(request) else None

    def gone(request: Request) -> Response:
        return error(410, "sandbox_stopped", f"Session {request.path_params['session']} is gone")

    commands: dict[str, _Command] = {}

    async def command(request: Request) -> Response:
        box = addressed(request)
        if box is None:
            return gone(request)
        body = await request.json()
        cwd = body.get("cwd") or HOME
        process = await box.start(
            [body["command"], *(body.get("args") or [])], cwd=cwd, env=body.get("env") or {}
        )
        meta = {
            "id": f"cmd_{secrets.token_hex(6)}",
            "name": body["command"],
            "args": body.get("args") or [],
            "cwd": cwd,
            "sessionId": request.path_params["session"],
            "startedAt": _now(),
        }
        limit = (body.get("timeout") or 0) / 1000 or None
        started = _Command(meta, box, process)
        started.collector = asyncio.create_task(started.collect(limit))
        commands[meta["id"]] = started
        if request.query_params.get("wait") != "true":  # detached: logs and wait come later
            return JSONResponse({"command": meta})

        async def records() -> AsyncIterator[bytes]:
            yield (json.dumps({"command": meta}) + "\n").encode()
            try:
                async for record in started.follow():
                    yield (json.dumps(record) + "\n").encode()
                code = await started.exit_code()
            finally:
                started.kill()
            yield (json.dumps({"command": {**meta, "exitCode": code}}) + "\n").encode()

        return StreamingResponse(records(), media_type="application/x-ndjson")

    def command_of(request: Request) -> _Command | None:
        if addressed(request) is None:
            return None
        return commands.get(request.path_params["command"])

    async def logs(request: Request) -> Response:
        found = command_of(request)
        if found is None:
            return error(404, "not_found", "No such command")

        async def records() -> AsyncIterator[bytes]:
            async for record in found.follow():
                yield (json.dumps(record) + "\n").encode()

        return StreamingResponse(records(), media_type="application/x-ndjson")

    async def command_state(request: Request) -> Response:
        found = command_of(request)
        if found is None:
            return error(404, "not_found", "No such command")
        if request.query_params.get("wait") == "true":
            return JSONResponse({"command": {**found.meta, "exitCode": await found.exit_code()}})
        return JSONResponse({"command": found.state()})

    async def kill(request: Request) -> Response:
        found = command_of(request)
        if found is None:
            return error(404, "not_found", "No such command")
        found.kill()
        return JSONResponse({"command": found.state()})

    async def read(request: Request) -> Response:
        box = addressed(request)
        if box is None:
            return gone(request)
        body = await request.json()
        path = (
            body["path"]
            if body["path"].startswith("/")
            else f"{body.get('cwd') or HOME}/{body['path']}"
        )
        target = box.host(path)
        if not target.is_file():
            return error(404, "file_not_found", f"File not found: {path}")
        return Response(target.read_bytes(), media_type="application/octet-stream")

    async def write(request: Request) -> Response:
        box = addressed(request)
        if box is None:
            return gone(request)
        cwd = request.headers.get("x-cwd", "/")
        with tarfile.open(fileobj=io.BytesIO(await request.body()), mode="r:gz") as tar:
            for member in tar.getmembers():
                path = (
                    member.name
                    if member.name.startswith("/")
                    else f"{cwd.rstrip('/')}/{member.name}"
                )
                target = box.host(path)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    target.write_bytes(extracted.read())
        return JSONResponse({})

    async def unknown(request: Request) -> Response:
        log.append(f"{request.method} {request.url.path} {(await request.body())[:300]!r}")
        return error(501, "not_implemented", f"the double has no {request.url.path}")

    web = Starlette(
        routes=[
            Route("/v3/sandboxes", create, methods=["POST"]),
            Route("/v2/sandboxes/{name}", one, methods=["GET", "DELETE"]),
            Route("/v2/sandboxes/sessions/{session}/cmd", command, methods=["POST"]),
            Route("/v2/sandboxes/sessions/{session}/cmd/{command}", command_state),
            Route("/v2/sandboxes/sessions/{session}/cmd/{command}/logs", logs),
            Route("/v2/sandboxes/sessions/{session}/cmd/{command}/kill", kill, methods=["POST"]),
            Route("/v2/sandboxes/sessions/{session}/fs/read", read, methods=["POST"]),
            Route("/v2/sandboxes/sessions/{session}/fs/write", write, methods=["POST"]),
            Route("/{rest:path}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        ]
    )
    return web


@contextmanager
def fake_vercel(root: Path, image: Mapping[str, Path] | None = None) -> Iterator[FakeVercel]:
    """Serve the double on a free localhost port in a background thread; every sandbox's
    image carries ``image`` (sandbox path → host directory, read-only)."""
    sandboxes: dict[str, FakeBox] = {}
    created: list[dict[str, Any]] = []
    log: list[str] = []
    with serve(_app(root, sandboxes, created, log, image or {}), "fake Vercel") as url:
        try:
            yield FakeVercel(url, sandboxes, created, log)
        finally:
            for box in sandboxes.values():
                box.destroy()
