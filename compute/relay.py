"""The ``relay`` provider: sandboxes on machines that run ``cerver relay``.

One :class:`RelayCompute` fronts every registered relay of a gateway. A sandbox id is
``<compute_id>/<remote sandbox id>`` so that any gateway process can re-attach to it; the
compute id resolves to the relay's base URL and token through ``resolve`` (the gateway looks
registered computes up in its store). Without a compute id (``SandboxSpec.compute_id`` is
None) the ``base_url``/``token`` given at construction are used, which is how a single relay is
driven directly and how the conformance suite tests one.

Transport failures (relay down, connection reset mid-command) raise a retryable
:class:`~cerver.errors.ComputeError` through :data:`VENDOR_ERRORS`; the relay's own errors
keep their class (``NotFound``, ``InvalidRequest``, ``SandboxGone``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, ClassVar

import httpx
import orjson

from cerver.errors import (
    AuthenticationFailed,
    CerverError,
    ComputeError,
    InvalidRequest,
    NotFound,
    SandboxGone,
)
from cerver.types import ExecResult, RelayEndpoint
from compute.base import (
    Capabilities,
    CliHosting,
    Compute,
    ExecChunk,
    Profile,
    Sandbox,
    SandboxSpec,
    VendorErrors,
)

__all__ = ["RelayCompute", "RelayEndpoint", "RelaySandbox"]

_DIRECT = "direct"
_MARGIN_S = 30.0  # HTTP timeout beyond a command's own timeout


Resolver = Callable[[str], Awaitable[RelayEndpoint]]

_ERRORS: dict[int, type[CerverError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    404: NotFound,
    410: SandboxGone,
}

VENDOR_ERRORS = VendorErrors(
    "Relay",
    {"HTTPError": (ComputeError, True)},  # httpx: the relay is down or the connection broke
    hint="Check that `cerver relay` is running there and reachable from the gateway.",
)
"""The relay client's (httpx's) exceptions as Cerver's."""


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        detail, context = body.get("detail", response.text), body.get("context", {})
        body_retryable = body.get("retryable")
    except ValueError:
        detail, context, body_retryable = response.text, {}, None
    if response.status_code == 401:
        raise ComputeError(
            f"The relay refused the gateway's token while trying to {what}: re-register the "
            "compute with the token its `cerver relay --token` was started with.",
            context={"status": 401},
        )
    cls = _ERRORS.get(response.status_code, ComputeError)
    raise cls(f"Relay could not {what}: {detail}", context=context, retryable=body_retryable)


class RelaySandbox(Sandbox):
    """A workspace on a relay machine; every method is one HTTP call to it."""

    provider: ClassVar[str] = "relay"
    streams_exec: ClassVar[bool] = True

    def __init__(self, sandbox_id: str, remote_id: str, client: httpx.AsyncClient) -> None:
        self.sandbox_id = sandbox_id
        self._remote = remote_id
        self._client = client

    async def _call(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        where = {"base_url": str(self._client.base_url)}
        async with VENDOR_ERRORS.translate(what, context=where):
            response = await self._client.request(
                method, f"/sandboxes/{self._remote}{path}", **kwargs
            )
        _raise_for(response, what)
        return response

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """Run ``command`` on the relay; see :meth:`Sandbox.exec`."""
        body = {"command": command, "timeout": timeout, "env": dict(env or {})}
        response = await self._call(
            "run a command", "POST", "/exec", json=body, timeout=timeout + _MARGIN_S
        )
        return ExecResult.model_validate(response.json())

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        """Stream a command's output from the relay; a cut connection raises ComputeError."""
        body = {"command": command, "timeout": timeout, "env": dict(env or {})}
        path = f"/sandboxes/{self._remote}/exec/stream"
        ended = False
        async with (
            VENDOR_ERRORS.translate("stream a command"),
            self._client.stream("POST", path, json=body, timeout=timeout + _MARGIN_S) as response,
        ):
            if not response.is_success:
                await response.aread()
                _raise_for(response, "stream a command")
            async for line in response.aiter_lines():
                if line:
                    chunk = ExecChunk(**orjson.loads(line))
                    ended = chunk.stream == "exit"
                    yield chunk
        if not ended:
            raise ComputeError("The relay closed the stream before the command exited.")

    async def read_file(self, path: str) -> bytes:
        response = await self._call("read a file", "GET", "/files", params={"path": path})
        return response.content

    async def write_file(self, path: str, data: bytes) -> None:
        await self._call("write a file", "PUT", "/files", params={"path": path}, content=data)

    async def list_files(self, path: str = ".") -> list[str]:
        response = await self._call("list files", "GET", "/files/list", params={"path": path})
        return list(response.json()["files"])

    async def install_package(self, packages: list[str], *, manager: str = "pip") -> ExecResult:
        body = {"packages": packages, "manager": manager}
        response = await self._call("install packages", "POST", "/install", json=body, timeout=660)
        return ExecResult.model_validate(response.json())

    async def get_state(self) -> bytes:
        return (await self._call("snapshot the workspace", "GET", "/state", timeout=330)).content

    async def set_state(self, archive: bytes) -> None:
        await self._call("restore the workspace", "PUT", "/state", content=archive, timeout=330)

    async def cli_hosting(self) -> CliHosting:
        """The relay machine's CLIs and its uplink to the gateway's model proxy (present
        when the gateway gave its public URL at creation)."""
        body = (await self._call("describe its CLI hosting", "GET", "/cli")).json()
        return CliHosting(
            programs=dict(body.get("programs") or {}),
            proxy="socket" if body.get("proxy_socket") else None,
            proxy_socket=body.get("proxy_socket"),
            carried_by=str(body.get("carried_by") or "the relay machine's installs"),
        )

    async def delete(self) -> None:
        """Delete the remote workspace; an already-deleted one is fine."""
        with contextlib.suppress(NotFound):
            await self._call("delete the sandbox", "DELETE", "")


class RelayCompute(Compute):
    """Sandboxes on registered relays (``compute_id``) or on one relay given directly.

    Args:
        base_url: a relay to use when the spec names no compute id.
        token: that relay's token.
        resolve: compute id -> :class:`RelayEndpoint` (raises NotFound for an unknown one).
        model_proxy_url: the gateway's public URL (``CERVER_PUBLIC_URL``), given to each new
            sandbox so the relay can bridge its CLIs to the model proxy; ``None``: CLI
            harnesses cannot reach their model from relay sandboxes.
    """

    name: ClassVar[str] = "relay"
    capabilities: ClassVar[Capabilities] = Capabilities(
        runtimes=("shell", "python", "node"), package_install=True, persistence="high"
    )
    profile: ClassVar[Profile] = Profile(startup_ms=40, cost_per_hour_usd=0.0, reliability=0.97)

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        resolve: Resolver | None = None,
        connect_timeout: float = 5.0,
        model_proxy_url: str | None = None,
    ) -> None:
        self._direct = RelayEndpoint(base_url, token or "") if base_url else None
        self._model_proxy_url = model_proxy_url
        self._resolve = resolve
        self._connect_timeout = connect_timeout
        self._clients: dict[RelayEndpoint, httpx.AsyncClient] = {}

    async def _endpoint(self, compute_id: str) -> RelayEndpoint:
        if compute_id == _DIRECT:
            if self._direct is None:
                raise InvalidRequest(
                    "The relay provider needs a registered compute: pass "
                    '"compute": {"compute_id": "cmp_…"} (see POST /v2/computes/register).'
                )
            return self._direct
        if self._resolve is None:
            raise NotFound(f"Compute {compute_id!r} is not known to this relay provider.")
        return await self._resolve(compute_id)

    def _client(self, endpoint: RelayEndpoint) -> httpx.AsyncClient:
        if endpoint not in self._clients:
            self._clients[endpoint] = httpx.AsyncClient(
                base_url=endpoint.base_url,
                headers={"Authorization": f"Bearer {endpoint.token}"},
                timeout=httpx.Timeout(60.0, connect=self._connect_timeout),
            )
        return self._clients[endpoint]

    async def create(self, spec: SandboxSpec) -> RelaySandbox:
        """Create a workspace on the spec's compute (or the direct relay).

        Raises:
            ComputeError: the relay is unreachable or failed.
            NotFound: the compute id is unknown.
        """
        compute_id = spec.compute_id or _DIRECT
        client = self._client(await self._endpoint(compute_id))
        body = {
            "session_id": spec.session_id,
            "network": spec.network,
            "timeout_minutes": spec.timeout_minutes,
            "env": dict(spec.env),
            "limits": spec.limits.model_dump() if spec.limits else None,
            "model_proxy_url": self._model_proxy_url,
        }
        where = {"base_url": str(client.base_url), "compute_id": compute_id}
        async with VENDOR_ERRORS.translate("create a sandbox", context=where):
            response = await client.post("/sandboxes", json=body)
        _raise_for(response, "create a sandbox")
        remote = response.json()["sandbox_id"]
        return RelaySandbox(f"{compute_id}/{remote}", remote, client)

    async def attach(self, sandbox_id: str) -> RelaySandbox:
        """Re-attach to ``<compute_id>/<remote id>``.

        Raises:
            NotFound: malformed id, unknown compute, or the relay no longer has the sandbox.
            ComputeError: the relay is unreachable.
        """
        compute_id, sep, remote = sandbox_id.partition("/")
        if not sep or not remote:
            raise NotFound(f"{sandbox_id!r} is not a relay sandbox id (<compute_id>/<sandbox>).")
        sandbox = RelaySandbox(sandbox_id, remote, self._client(await self._endpoint(compute_id)))
        await sandbox._call("find the sandbox", "GET", "")
        return sandbox

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
