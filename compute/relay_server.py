"""The relay server: the compute interface of one machine, served over HTTP.

``cerver relay --port N --token T`` runs this app on any machine; a gateway that registered
it (``POST /v2/computes/register``) creates sandboxes on it through
:class:`compute.relay.RelayCompute`.
The sandboxes themselves are :class:`compute.local.LocalCompute` workspaces on the relay's
machine. Every route but ``GET /healthz`` needs ``Authorization: Bearer <token>``.

Wire format (JSON unless noted; errors are ``{"detail", "code", "retryable", "context"}`` with
the status of the :mod:`cerver.errors` class):

    GET    /healthz                           {"status": "ok", "capabilities": {...}}
    POST   /sandboxes                         {session_id, network, timeout_minutes, env,
                                               limits}
    GET    /sandboxes/{id}                    {"sandbox_id"} or 404
    DELETE /sandboxes/{id}
    POST   /sandboxes/{id}/exec               {command, timeout, env} -> ExecResult
    POST   /sandboxes/{id}/exec/stream        same body -> NDJSON ExecChunk lines
    GET    /sandboxes/{id}/files?path=        raw bytes
    PUT    /sandboxes/{id}/files?path=        raw bytes
    GET    /sandboxes/{id}/files/list?path=   {"files": [...]}
    POST   /sandboxes/{id}/install            {packages, manager} -> ExecResult
    GET    /sandboxes/{id}/state              tar.gz bytes
    PUT    /sandboxes/{id}/state              tar.gz bytes
    GET    /sandboxes/{id}/cli                {"programs", "proxy", "proxy_socket",
                                               "carried_by"}: the CLIs of this machine and
                                               the uplink socket to the gateway's model proxy

``POST /sandboxes`` may carry ``model_proxy_url``: the gateway's public URL. The relay then
serves, on a unix socket bound read-only into every sandbox, an uplink forwarding
``/v2/proxy/…`` (and nothing else) to it (:mod:`compute._uplink`): the CLI harnesses' way to
their model from a sandbox without network.

An operation on a deleted sandbox answers 410 ``sandbox_gone`` (so 404 means a missing file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cerver.cli_programs import cli_tool_dirs
from cerver.errors import (
    AuthenticationFailed,
    CerverError,
    InvalidRequest,
    NotFound,
    SandboxGone,
)
from cerver.failures import Failure
from cerver.types import SandboxLimits
from compute._uplink import Uplinks
from compute.base import SandboxSpec
from compute.local import LocalCompute, LocalSandbox

__all__ = ["create_relay_app"]

Handler = Callable[[Request], Awaitable[Response]]


def _limits(value: Any) -> SandboxLimits | None:
    """The ``limits`` of a create body (the gateway already held them to its maxima)."""
    if value is None:
        return None
    try:
        return SandboxLimits.model_validate(value)
    except ValidationError as exc:
        raise InvalidRequest(f"Invalid limits: {exc.errors()[0]['msg']}.") from exc


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return data


def _command(body: dict[str, Any]) -> str:
    command = body.get("command")
    if not isinstance(command, str) or not command:
        raise InvalidRequest('The body needs "command": a non-empty bash command line.')
    return command


def create_relay_app(token: str, root: Path | None = None) -> Starlette:
    """The relay's ASGI app, serving sandboxes under ``root`` to holders of ``token``.

    Raises:
        InvalidRequest: ``token`` is empty (a relay never runs open).
    """
    if not token:
        raise InvalidRequest("The relay needs a token: cerver relay --token <secret>.")
    uplinks = Uplinks()
    # Made now: a sandbox binds the shared directories that exist when it is first built.
    uplinks.directory.mkdir(mode=0o711, parents=True, exist_ok=True)
    # Confined, or refused; CERVER_LOCAL_ISOLATION=none on this machine is the owner's opt-in.
    # Sandboxes see the uplinks and this machine's CLI installs, read-only.
    compute = LocalCompute(root, shared=[uplinks.directory, *cli_tool_dirs()])

    def uplink_file(sandbox_id: str) -> Path:
        return compute.root / f"{sandbox_id}.uplink"

    expected = f"Bearer {token}".encode()

    def guarded(handler: Handler, *, public: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                given = request.headers.get("authorization", "").encode()
                if not public and not hmac.compare_digest(given, expected):
                    raise AuthenticationFailed(
                        "Missing or wrong relay token: send Authorization: Bearer <token> "
                        "with the token the relay was started with (--token)."
                    )
                return await handler(request)
            except CerverError as exc:
                return _json(Failure.from_error(exc).to_json(), exc.status_code)

        return endpoint

    async def sandbox(request: Request) -> LocalSandbox:
        """The addressed sandbox; a deleted one is 410 (the client's ComputeError: the
        sandbox is gone), so that 404 keeps meaning "no such file"."""
        try:
            return await compute.attach(request.path_params["sandbox_id"])
        except NotFound as exc:
            raise SandboxGone(exc.message, context=exc.context) from exc

    async def health(request: Request) -> Response:
        caps = dataclasses.asdict(compute.capabilities)
        return _json({"status": "ok", "isolation": compute.isolation, "capabilities": caps})

    async def create(request: Request) -> Response:
        body = await _body(request)
        spec = SandboxSpec(
            session_id=str(body.get("session_id", "")),
            network=bool(body.get("network", False)),
            timeout_minutes=int(body.get("timeout_minutes", 60)),
            env={str(k): str(v) for k, v in (body.get("env") or {}).items()},
            limits=_limits(body.get("limits")),
        )
        created = await compute.create(spec)
        target = body.get("model_proxy_url")
        if isinstance(target, str) and target.startswith(("http://", "https://")):
            uplink_file(created.sandbox_id).write_text(target)
        return _json({"sandbox_id": created.sandbox_id}, 201)

    async def cli(request: Request) -> Response:
        box = await sandbox(request)
        hosting = await box.cli_hosting()
        socket_path = None
        with contextlib.suppress(OSError):
            target = uplink_file(box.sandbox_id).read_text().strip()
            socket_path = str(await uplinks.ensure(target))
        return _json(
            {
                "programs": dict(hosting.programs),
                "proxy": "socket" if socket_path else None,
                "proxy_socket": socket_path,
                "carried_by": "the relay machine's installs",
            }
        )

    async def get(request: Request) -> Response:
        found = await compute.attach(request.path_params["sandbox_id"])  # 404 when gone
        return _json({"sandbox_id": found.sandbox_id})

    async def delete(request: Request) -> Response:
        await (await compute.attach(request.path_params["sandbox_id"])).delete()
        uplink_file(request.path_params["sandbox_id"]).unlink(missing_ok=True)
        return Response(status_code=204)

    async def exec_(request: Request) -> Response:
        body = await _body(request)
        result = await (await sandbox(request)).exec(
            _command(body), timeout=float(body.get("timeout", 60)), env=body.get("env")
        )
        return _json(result.model_dump(mode="json"))

    async def exec_stream(request: Request) -> Response:
        body = await _body(request)
        box = await sandbox(request)
        chunks = box.exec_stream(
            _command(body), timeout=float(body.get("timeout", 60)), env=body.get("env")
        )

        async def lines() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                yield orjson.dumps(dataclasses.asdict(chunk)) + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def files(request: Request) -> Response:
        box, path = await sandbox(request), request.query_params.get("path", "")
        if request.method == "PUT":
            await box.write_file(path, await request.body())
            return Response(status_code=204)
        return Response(await box.read_file(path), media_type="application/octet-stream")

    async def list_files(request: Request) -> Response:
        box = await sandbox(request)
        return _json({"files": await box.list_files(request.query_params.get("path", "."))})

    async def install(request: Request) -> Response:
        body = await _body(request)
        packages = [str(p) for p in body.get("packages", [])]
        result = await (await sandbox(request)).install_package(
            packages, manager=str(body.get("manager", "pip"))
        )
        return _json(result.model_dump(mode="json"))

    async def state(request: Request) -> Response:
        box = await sandbox(request)
        if request.method == "PUT":
            await box.set_state(await request.body())
            return Response(status_code=204)
        return Response(await box.get_state(), media_type="application/gzip")

    prefix = "/sandboxes/{sandbox_id}"
    routes = [
        Route("/healthz", guarded(health, public=True)),
        Route("/sandboxes", guarded(create), methods=["POST"]),
        Route(prefix, guarded(get), methods=["GET"]),
        Route(prefix, guarded(delete), methods=["DELETE"]),
        Route(f"{prefix}/exec", guarded(exec_), methods=["POST"]),
        Route(f"{prefix}/exec/stream", guarded(exec_stream), methods=["POST"]),
        Route(f"{prefix}/files", guarded(files), methods=["GET", "PUT"]),
        Route(f"{prefix}/files/list", guarded(list_files), methods=["GET"]),
        Route(f"{prefix}/install", guarded(install), methods=["POST"]),
        Route(f"{prefix}/state", guarded(state), methods=["GET", "PUT"]),
        Route(f"{prefix}/cli", guarded(cli), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await uplinks.aclose()

    return Starlette(routes=routes, lifespan=lifespan)
