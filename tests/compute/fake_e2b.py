"""TEST DOUBLE: a local E2B control plane plus sandbox agent (``envd``), for the real e2b SDK.

The unchanged SDK is pointed here with ``api_url`` / ``sandbox_url`` (the same as
``E2B_API_URL`` / ``E2B_SANDBOX_URL``). One server plays both roles, the way the SDK's
``sandbox_url`` override expects: requests to envd carry ``E2b-Sandbox-Id``, which picks the
sandbox's directory. Only what Cerver's E2B provider uses is implemented:

- control plane: ``POST /v2/sandboxes`` (records ``timeout``, ``allow_internet_access``,
  ``envVars``), ``POST /v2/sandboxes/{id}/connect``, ``DELETE /sandboxes/{id}``;
- envd: ``process.Process/Start`` and ``SendSignal`` (Connect RPC, through the SDK's own
  generated ``ProcessASGIApplication``), ``GET``/``POST /files`` (octet-stream), ``/health``.

Processes run under bubblewrap with the host's root read-only and the sandbox's own
directory mounted at ``/home/user`` (so paths look like E2B's); processes of one sandbox share
a pid namespace view, like one E2B VM. The double checks the wire contract, not E2B's isolation.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from e2b.envd.process import process_pb
from e2b.envd.process.process_connect import Process, ProcessASGIApplication
from protobuf import Oneof
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.compute.fake_box import output_of

__all__ = ["FakeE2B", "fake_e2b"]

HOME = "/home/user"


@dataclass
class FakeSandbox:
    sandbox_id: str
    root: Path
    envs: dict[str, str]
    timeout: int | None
    allow_internet_access: bool | None
    processes: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)

    def host(self, path: str) -> Path:
        """Map a sandbox path (``/home/user/...``) into this sandbox's directory."""
        return self.root / path.lstrip("/")


@dataclass
class FakeE2B:
    url: str
    sandboxes: dict[str, FakeSandbox]
    created: list[dict[str, Any]]


class _Process(Process):
    """``process.Process``: Start runs ``cmd args`` in the sandbox's directory tree."""

    def __init__(self, sandboxes: dict[str, FakeSandbox], image: Mapping[str, Path]) -> None:
        self._sandboxes = sandboxes
        self._image = image

    def _sandbox(self, ctx: Any) -> FakeSandbox:
        sandbox_id = ctx.request_headers.get("e2b-sandbox-id", "")
        if sandbox_id not in self._sandboxes:
            raise ConnectError(Code.NOT_FOUND, f"sandbox {sandbox_id} not found")
        return self._sandboxes[sandbox_id]

    async def start(
        self, request: process_pb.StartRequest, ctx: Any
    ) -> AsyncIterator[process_pb.StartResponse]:
        sandbox = self._sandbox(ctx)
        config = request.process
        assert config is not None
        jail = ["bwrap", "--ro-bind", "/", "/", "--tmpfs", "/home"]
        jail += [
            "--bind",
            str(sandbox.host(HOME)),
            HOME,
            "--bind",
            str(sandbox.host("/tmp")),
            "/tmp",
        ]
        if self._image:  # what the sandbox's template carries, read-only
            jail += ["--tmpfs", "/opt"]
            for target, source in self._image.items():
                jail += ["--ro-bind", str(source), target]
        jail += ["--dev", "/dev", "--proc", "/proc"]
        jail += ["--chdir", config.cwd or HOME, "--die-with-parent", "--"]
        env = {"PATH": os.environ["PATH"], "HOME": HOME, **sandbox.envs, **dict(config.envs)}
        process = await asyncio.create_subprocess_exec(
            *jail,
            config.cmd,
            *config.args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        sandbox.processes[process.pid] = process

        def event(name: str, value: Any) -> process_pb.StartResponse:
            return process_pb.StartResponse(event=process_pb.ProcessEvent(event=Oneof(name, value)))

        yield event("start", process_pb.ProcessEvent.StartEvent(pid=process.pid))
        try:
            async for stream, chunk in output_of(process):
                data = process_pb.ProcessEvent.DataEvent(output=Oneof(stream, chunk))
                yield event("data", data)
            code = await process.wait()
        finally:
            if process.returncode is None:  # the client went away: envd kills the process
                os.killpg(process.pid, signal.SIGKILL)
            sandbox.processes.pop(process.pid, None)
        end = process_pb.ProcessEvent.EndEvent(
            exit_code=code if code >= 0 else -1,
            exited=code >= 0,
            status=f"exit status {code}" if code >= 0 else f"signal: {-code}",
        )
        yield event("end", end)

    async def send_signal(
        self, request: process_pb.SendSignalRequest, ctx: Any
    ) -> process_pb.SendSignalResponse:
        sandbox = self._sandbox(ctx)
        selector = request.process
        pid = selector.selector.value if selector and selector.selector else None
        process = sandbox.processes.get(pid) if isinstance(pid, int) else None
        if process is None:
            raise ConnectError(Code.NOT_FOUND, f"process {pid} not found")
        process.send_signal(signal.SIGKILL)
        return process_pb.SendSignalResponse()


def _app(
    root: Path,
    sandboxes: dict[str, FakeSandbox],
    created: list[dict[str, Any]],
    image: Mapping[str, Path],
) -> Any:
    def sandbox_json(sandbox: FakeSandbox) -> dict[str, Any]:
        return {
            "templateID": "base",
            "sandboxID": sandbox.sandbox_id,
            "clientID": "fake-e2b",
            "envdVersion": "0.6.7",
        }

    async def create(request: Request) -> Response:
        if request.headers.get("x-api-key") != "e2b_test_key":
            return JSONResponse({"code": 401, "message": "Invalid API key"}, 401)
        body = await request.json()
        created.append(body)
        sandbox_id = f"fake{secrets.token_hex(6)}"
        sandbox = FakeSandbox(
            sandbox_id,
            root / sandbox_id,
            dict(body.get("envVars") or {}),
            body.get("timeout"),
            body.get("allow_internet_access"),
        )
        sandbox.host(HOME).mkdir(parents=True)
        sandbox.host("/tmp").mkdir()
        sandboxes[sandbox_id] = sandbox
        return JSONResponse(sandbox_json(sandbox), 201)

    async def connect(request: Request) -> Response:
        sandbox = sandboxes.get(request.path_params["sandbox_id"])
        if sandbox is None:
            return JSONResponse({"code": 404, "message": "sandbox not found"}, 404)
        return JSONResponse(sandbox_json(sandbox), 200)

    async def kill(request: Request) -> Response:
        sandbox = sandboxes.pop(request.path_params["sandbox_id"], None)
        if sandbox is None:
            return JSONResponse({"code": 404, "message": "sandbox not found"}, 404)
        for process in sandbox.processes.values():
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(sandbox.root, ignore_errors=True)
        return Response(status_code=204)

    def addressed(request: Request) -> FakeSandbox | None:
        return sandboxes.get(request.headers.get("e2b-sandbox-id", ""))

    async def files(request: Request) -> Response:
        sandbox = addressed(request)
        if sandbox is None:
            return JSONResponse({"code": 502, "message": "sandbox not found"}, 502)
        path = request.query_params["path"]
        target = sandbox.host(path if path.startswith("/") else f"{HOME}/{path}")
        if request.method == "GET":
            if not target.is_file():
                return JSONResponse({"code": 404, "message": f"path {path} not found"}, 404)
            return Response(target.read_bytes(), media_type="application/octet-stream")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(await request.body())
        return JSONResponse([{"name": target.name, "type": "file", "path": path}])

    async def health(request: Request) -> Response:
        return Response(status_code=204)

    web = Starlette(
        routes=[
            Route("/v2/sandboxes", create, methods=["POST"]),
            Route("/v2/sandboxes/{sandbox_id}/connect", connect, methods=["POST"]),
            Route("/sandboxes/{sandbox_id}", kill, methods=["DELETE"]),
            Route("/files", files, methods=["GET", "POST"]),
            Route("/health", health),
        ]
    )
    rpc = ProcessASGIApplication(_Process(sandboxes, image))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/process.Process/"):
            await rpc(scope, receive, send)
        else:
            await web(scope, receive, send)

    return app


@contextmanager
def fake_e2b(root: Path, image: Mapping[str, Path] | None = None) -> Iterator[FakeE2B]:
    """Serve the double on a free localhost port in a background thread; every sandbox's
    template carries ``image`` (sandbox path under ``/opt`` → host directory, read-only)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sandboxes: dict[str, FakeSandbox] = {}
    created: list[dict[str, Any]] = []
    config = uvicorn.Config(
        _app(root, sandboxes, created, image or {}),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("fake E2B did not start")
        time.sleep(0.02)
    try:
        yield FakeE2B(f"http://127.0.0.1:{port}", sandboxes, created)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
