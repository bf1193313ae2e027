"""TEST DOUBLE: a local Daytona API plus toolbox, for the real ``daytona`` SDK.

The unchanged SDK is pointed here with ``DaytonaConfig(api_url=…)`` (``DAYTONA_API_URL``); the
sandbox JSON this double returns names itself as the ``toolboxProxyUrl``, so the SDK's toolbox
calls (``/{sandbox_id}/process/execute``, ``/files/…``) come here too. Only what Cerver's
Daytona provider uses is implemented, with the JSON of the SDK's OpenAPI models
(``daytona_api_client_async.models.Sandbox``, ``…toolbox….ExecuteRequest/ExecuteResponse``):

- API: ``POST /sandbox`` (records the ``CreateSandbox`` body), ``GET /sandbox/{id}``,
  ``DELETE /sandbox/{id}``; the bearer key must be ``dtn_test_key``;
- toolbox: ``POST /{id}/process/execute`` (the command is split into words, no shell, and its
  stdout and stderr come back merged in ``result``, as Daytona's daemon does),
  ``POST /{id}/files/bulk-download`` (multipart ``file`` / ``error`` parts named by the
  source path), ``POST /{id}/files/bulk-upload`` (multipart ``files[i].path`` +
  ``files[i].file``).

Commands run under bubblewrap with the sandbox's directory at ``/home/daytona`` and ``/tmp``
(see :mod:`tests.compute.fake_box`).
"""

from __future__ import annotations

import json
import secrets
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.compute.fake_box import FakeBox, serve

__all__ = ["API_KEY", "FakeDaytona", "fake_daytona"]

API_KEY = "dtn_test_key"
HOME = "/home/daytona"


@dataclass
class FakeDaytona:
    url: str
    sandboxes: dict[str, FakeBox]
    created: list[dict[str, Any]]


def _app(
    root: Path,
    sandboxes: dict[str, FakeBox],
    created: list[dict[str, Any]],
    image: Mapping[str, Path],
) -> Any:
    def sandbox_json(request: Request, box: FakeBox, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": box.sandbox_id,
            "organizationId": "org_fake",
            "name": box.sandbox_id,
            "user": "daytona",
            "env": box.env,
            "labels": body.get("labels") or {},
            "public": False,
            "networkBlockAll": bool(body.get("networkBlockAll")),
            "kvm": False,
            "target": "local",
            "cpu": 1,
            "gpu": 0,
            "memory": 1,
            "disk": 3,
            "state": "started",
            "toolboxProxyUrl": str(request.base_url).rstrip("/"),
        }

    bodies: dict[str, dict[str, Any]] = {}

    def authorized(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {API_KEY}"

    def refused() -> Response:
        return JSONResponse({"statusCode": 401, "message": "Invalid API key"}, 401)

    def missing(sandbox_id: str) -> Response:
        message = f"Sandbox with ID or name {sandbox_id} not found"
        return JSONResponse({"statusCode": 404, "message": message, "error": "Not Found"}, 404)

    async def create(request: Request) -> Response:
        if not authorized(request):
            return refused()
        body = await request.json()
        created.append(body)
        sandbox_id = f"fake{secrets.token_hex(6)}"
        box = FakeBox(
            sandbox_id, root / sandbox_id, (HOME, "/tmp"), dict(body.get("env") or {}), image
        )
        sandboxes[sandbox_id] = box
        bodies[sandbox_id] = body
        return JSONResponse(sandbox_json(request, box, body), 200)

    async def one(request: Request) -> Response:
        if not authorized(request):
            return refused()
        sandbox_id = request.path_params["sandbox_id"]
        box = sandboxes.get(sandbox_id)
        if box is None:
            return missing(sandbox_id)
        if request.method == "DELETE":
            sandboxes.pop(sandbox_id).destroy()
            gone = {**sandbox_json(request, box, bodies[sandbox_id]), "state": "destroying"}
            return JSONResponse(gone)
        return JSONResponse(sandbox_json(request, box, bodies[sandbox_id]))

    def addressed(request: Request) -> FakeBox | None:
        return sandboxes.get(request.path_params["sandbox_id"]) if authorized(request) else None

    async def execute(request: Request) -> Response:
        box = addressed(request)
        if box is None:
            return missing(request.path_params["sandbox_id"])
        body = await request.json()
        finished = await box.run(
            shlex.split(body["command"]),
            cwd=body.get("cwd") or HOME,
            env=body.get("envs") or {},
            timeout=body.get("timeout") or None,
        )
        if finished.timed_out:
            return JSONResponse({"statusCode": 408, "message": "command timed out"}, 408)
        merged = (finished.stdout + finished.stderr).decode(errors="replace")
        return JSONResponse({"exitCode": finished.exit_code, "result": merged})

    async def download(request: Request) -> Response:
        box = addressed(request)
        if box is None:
            return missing(request.path_params["sandbox_id"])
        paths = (await request.json())["paths"]
        boundary = f"fake{secrets.token_hex(8)}"
        body = b""
        for path in paths:
            target = box.host(path)
            if target.is_file():
                name, kind, payload = "file", "application/octet-stream", target.read_bytes()
            else:
                error = {"message": f"file not found: {path}", "statusCode": 404}
                name, kind, payload = "error", "application/json", json.dumps(error).encode()
            body += (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{path}"\r\nContent-Type: {kind}\r\n\r\n'
                ).encode()
                + payload
                + b"\r\n"
            )
        body += f"--{boundary}--\r\n".encode()
        return Response(body, media_type=f"multipart/form-data; boundary={boundary}")

    async def upload(request: Request) -> Response:
        box = addressed(request)
        if box is None:
            return missing(request.path_params["sandbox_id"])
        form = await request.form()
        index = 0
        while f"files[{index}].path" in form:
            target = box.host(str(form[f"files[{index}].path"]))
            upload = form[f"files[{index}].file"]
            assert not isinstance(upload, str)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(await upload.read())
            index += 1
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route("/sandbox", create, methods=["POST"]),
            Route("/sandbox/{sandbox_id}", one, methods=["GET", "DELETE"]),
            Route("/{sandbox_id}/process/execute", execute, methods=["POST"]),
            Route("/{sandbox_id}/files/bulk-download", download, methods=["POST"]),
            Route("/{sandbox_id}/files/bulk-upload", upload, methods=["POST"]),
        ]
    )


@contextmanager
def fake_daytona(root: Path, image: Mapping[str, Path] | None = None) -> Iterator[FakeDaytona]:
    """Serve the double on a free localhost port in a background thread; every sandbox's
    image carries ``image`` (sandbox path → host directory, read-only)."""
    sandboxes: dict[str, FakeBox] = {}
    created: list[dict[str, Any]] = []
    with serve(_app(root, sandboxes, created, image or {}), "fake Daytona") as url:
        try:
            yield FakeDaytona(url, sandboxes, created)
        finally:
            for box in sandboxes.values():
                box.destroy()
