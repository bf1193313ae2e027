"""TEST DOUBLE: a local Modal control plane and task command router, for the real ``modal`` SDK.

The unchanged SDK is pointed here with ``MODAL_SERVER_URL=http://127.0.0.1:PORT`` (the SDK
allows plain HTTP/2 to a localhost server, for tests). Modal speaks gRPC (grpclib): this double
serves the ``modal.client.ModalClient`` service from ``modal_proto.api_grpc`` and the
``TaskCommandRouter`` service from ``modal_proto.task_command_router_grpc`` on one port (the
router URL handed to the SDK is this server again). Only the RPCs Cerver's Modal provider
reaches are implemented; any other answers ``UNIMPLEMENTED`` naming itself and is recorded in
:attr:`FakeModal.unimplemented`.

Commands run under bubblewrap with the sandbox's directory at ``/workspace`` and ``/tmp``
(see :mod:`tests.compute.fake_box`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpclib.const
import grpclib.server
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from modal_proto import api_grpc, api_pb2, task_command_router_grpc
from modal_proto import task_command_router_pb2 as router_pb2

from tests.compute.fake_box import FakeBox

__all__ = ["TOKEN_ID", "TOKEN_SECRET", "FakeModal", "fake_modal"]

TOKEN_ID = "ak-test"
TOKEN_SECRET = "as-test"
WORKSPACE = "/workspace"


@dataclass
class FakeModal:
    url: str
    sandboxes: dict[str, FakeBox]
    created: list[Any]
    unimplemented: list[str] = field(default_factory=list)


def _jwt() -> str:
    """An unsigned token the SDK can read an hour-long expiry from (it never verifies it)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': int(time.time()) + 3600})}.fake"


class _Exec:
    """One started command: its output kept whole, so each stream can be read from any
    offset (the router's ``TaskExecStdioRead`` contract), and its exit."""

    def __init__(
        self, box: FakeBox, process: asyncio.subprocess.Process, timeout: int | None
    ) -> None:
        self.box = box
        self.process = process
        self.output = {False: bytearray(), True: bytearray()}
        self.closed = {False: False, True: False}
        self.changed = asyncio.Condition()
        assert process.stdout is not None and process.stderr is not None
        self.pumps = [
            asyncio.create_task(self._pump(process.stdout, False)),
            asyncio.create_task(self._pump(process.stderr, True)),
        ]
        self.killer = (
            asyncio.get_running_loop().call_later(timeout, box.kill, process) if timeout else None
        )

    async def _pump(self, pipe: asyncio.StreamReader, stderr: bool) -> None:
        while chunk := await pipe.read(65536):
            async with self.changed:
                self.output[stderr] += chunk
                self.changed.notify_all()
        async with self.changed:
            self.closed[stderr] = True
            self.changed.notify_all()

    async def read(self, stderr: bool, offset: int) -> AsyncIterator[bytes]:
        while True:
            async with self.changed:
                await self.changed.wait_for(
                    lambda at=offset: len(self.output[stderr]) > at or self.closed[stderr]
                )
                chunk = bytes(self.output[stderr][offset:])
                closed = self.closed[stderr]
            if chunk:
                offset += len(chunk)
                yield chunk
            elif closed:
                return

    async def wait(self) -> int:
        code = await self.process.wait()
        if self.killer is not None:
            self.killer.cancel()
        self.box.processes.discard(self.process)
        return code


def _task_id(sandbox_id: str) -> str:
    return "ta-" + sandbox_id.removeprefix("sb-")


class _Services:
    """Both gRPC services; an RPC is served by the ``rpc_<Name>`` method of the same name."""

    def __init__(self, root: Path, state: FakeModal, image: Mapping[str, Path]) -> None:
        self.root = root
        self.image = image
        self.state = state
        self.workdirs: dict[str, str] = {}
        self.execs: dict[str, _Exec] = {}
        self.terminated: set[str] = set()
        self.box_of: dict[str, FakeBox] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None  # the generated bases name every RPC; unimplemented ones are wrapped below

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        mapping = {
            **api_grpc.ModalClientBase.__mapping__(self),  # type: ignore[arg-type]
            **task_command_router_grpc.TaskCommandRouterBase.__mapping__(self),  # type: ignore[arg-type]
        }
        served = {}
        for path, handler in mapping.items():
            name = path.rsplit("/", 1)[1]
            method = getattr(self, f"rpc_{name}", None) or self._unimplemented(name)
            if path.startswith("/modal.client.ModalClient/"):
                method = self._authenticated(method)
            served[path] = grpclib.const.Handler(
                method, handler.cardinality, handler.request_type, handler.reply_type
            )
        return served

    @staticmethod
    def _authenticated(method: Any) -> Any:
        """The control plane refuses any token but the test one, as Modal does (UNAUTHENTICATED)."""

        async def checked(stream: Any) -> None:
            metadata = stream.metadata or {}
            given = (metadata.get("x-modal-token-id"), metadata.get("x-modal-token-secret"))
            if given != (TOKEN_ID, TOKEN_SECRET):
                raise GRPCError(Status.UNAUTHENTICATED, "Token is invalid")
            await method(stream)

        return checked

    def _unimplemented(self, name: str) -> Any:
        async def refuse(stream: Any) -> None:
            self.state.unimplemented.append(name)
            raise GRPCError(Status.UNIMPLEMENTED, f"the Modal test double has no {name}")

        return refuse

    # -- control plane ------------------------------------------------------------------

    async def rpc_ClientHello(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.ClientHelloResponse())

    async def rpc_AppGetOrCreate(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.AppGetOrCreateResponse(app_id="ap-fake"))

    async def rpc_EnvironmentGetOrCreate(self, stream: Any) -> None:
        await stream.recv_message()
        settings = api_pb2.EnvironmentSettings(image_builder_version="2024.10")
        metadata = api_pb2.EnvironmentMetadata(name="main", settings=settings)
        await stream.send_message(
            api_pb2.EnvironmentGetOrCreateResponse(environment_id="en-fake", metadata=metadata)
        )

    async def rpc_ImageGetOrCreate(self, stream: Any) -> None:
        await stream.recv_message()  # every image is "already built": the host's /usr
        done = api_pb2.GenericResult(status=api_pb2.GenericResult.GENERIC_STATUS_SUCCESS)
        await stream.send_message(api_pb2.ImageGetOrCreateResponse(image_id="im-fake", result=done))

    async def rpc_SandboxCreateV2(self, stream: Any) -> None:
        request = await stream.recv_message()
        self.state.created.append(request)
        sandbox_id = f"sb-fake{secrets.token_hex(6)}"
        env: dict[str, str] = {}
        for source in request.secret_sources:  # Sandbox.create(env=…) arrives inline
            if source.HasField("env"):
                env.update(source.env.contents)
        box = FakeBox(sandbox_id, self.root / sandbox_id, (WORKSPACE, "/tmp"), env, self.image)
        self.state.sandboxes[sandbox_id] = box
        self.box_of[sandbox_id] = box
        self.workdirs[sandbox_id] = request.definition.workdir or WORKSPACE
        access = api_pb2.CommandRouterAccess(url=self.state.url, jwt=_jwt())
        await stream.send_message(
            api_pb2.SandboxCreateV2Response(
                sandbox_id=sandbox_id,
                task_id=_task_id(sandbox_id),
                command_router_access=access,
                sandbox_token="fake-sandbox-token",
            )
        )

    def _sandbox(self, sandbox_id: str) -> FakeBox:
        box = self.state.sandboxes.get(sandbox_id)
        if box is None:
            raise GRPCError(Status.NOT_FOUND, f"Sandbox {sandbox_id} not found")
        return box

    async def rpc_SandboxGetTaskId(self, stream: Any) -> None:
        request = await stream.recv_message()
        self._sandbox(request.sandbox_id)
        task_id = "ta-" + request.sandbox_id.removeprefix("sb-")
        await stream.send_message(api_pb2.SandboxGetTaskIdResponse(task_id=task_id))

    async def rpc_TaskGetCommandRouterAccess(self, stream: Any) -> None:
        await stream.recv_message()
        access = api_pb2.TaskGetCommandRouterAccessResponse(jwt=_jwt(), url=self.state.url)
        await stream.send_message(access)

    async def rpc_AuthTokenGet(self, stream: Any) -> None:
        await stream.recv_message()
        await stream.send_message(api_pb2.AuthTokenGetResponse(token=_jwt()))

    def _result(self, sandbox_id: str) -> api_pb2.GenericResult:
        """A running sandbox has no result yet; a terminated one keeps its own."""
        if sandbox_id in self.terminated:
            return api_pb2.GenericResult(status=api_pb2.GenericResult.GENERIC_STATUS_TERMINATED)
        self._sandbox(sandbox_id)
        return api_pb2.GenericResult()

    async def rpc_SandboxWaitV2(self, stream: Any) -> None:
        request = await stream.recv_message()
        deadline = time.monotonic() + request.timeout
        result = self._result(request.sandbox_id)
        while not result.status and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            result = self._result(request.sandbox_id)
        await stream.send_message(api_pb2.SandboxWaitResponse(result=result))

    async def rpc_SandboxGetTaskIdV2(self, stream: Any) -> None:
        request = await stream.recv_message()
        result = self._result(request.sandbox_id)
        if result.status:
            await stream.send_message(api_pb2.SandboxGetTaskIdResponse(task_result=result))
        else:
            task_id = _task_id(request.sandbox_id)
            await stream.send_message(api_pb2.SandboxGetTaskIdResponse(task_id=task_id))

    async def rpc_SandboxGetCommandRouterAccess(self, stream: Any) -> None:
        await stream.recv_message()
        access = api_pb2.SandboxGetCommandRouterAccessResponse(jwt=_jwt(), url=self.state.url)
        await stream.send_message(access)

    async def rpc_SandboxTerminateV2(self, stream: Any) -> None:
        request = await stream.recv_message()
        if request.sandbox_id not in self.terminated:
            self.state.sandboxes.pop(request.sandbox_id, None) or self._sandbox(request.sandbox_id)
            self.box_of[request.sandbox_id].destroy()
            self.terminated.add(request.sandbox_id)
        await stream.send_message(api_pb2.SandboxTerminateResponse())

    # -- task command router ------------------------------------------------------------

    def _box_of_task(self, task_id: str) -> FakeBox:
        return self._sandbox("sb-" + task_id.removeprefix("ta-"))

    async def rpc_TaskExecStart(self, stream: Any) -> None:
        request = await stream.recv_message()
        box = self._box_of_task(request.task_id)
        sandbox_id = box.sandbox_id
        env = dict(request.env)
        for source in request.secret_sources:
            if source.HasField("env"):
                env.update(source.env.contents)
        workdir = request.workdir if request.HasField("workdir") else self.workdirs[sandbox_id]
        process = await box.start(list(request.command_args), cwd=workdir, env=env)
        timeout = request.timeout_secs if request.HasField("timeout_secs") else None
        self.execs[request.exec_id] = _Exec(box, process, timeout)
        await stream.send_message(router_pb2.TaskExecStartResponse())

    def _exec(self, exec_id: str) -> _Exec:
        if exec_id not in self.execs:
            raise GRPCError(Status.NOT_FOUND, f"exec {exec_id} not found")
        return self.execs[exec_id]

    async def rpc_TaskExecStdioRead(self, stream: Any) -> None:
        request = await stream.recv_message()
        running = self._exec(request.exec_id)
        stderr = request.file_descriptor == router_pb2.TASK_EXEC_STDIO_FILE_DESCRIPTOR_STDERR
        async for chunk in running.read(stderr, request.offset):
            await stream.send_message(router_pb2.TaskExecStdioReadResponse(data=chunk))

    async def rpc_TaskExecWait(self, stream: Any) -> None:
        request = await stream.recv_message()
        code = await self._exec(request.exec_id).wait()
        reply = (
            router_pb2.TaskExecWaitResponse(code=code)
            if code >= 0
            else router_pb2.TaskExecWaitResponse(signal=-code)
        )
        await stream.send_message(reply)


@contextmanager
def fake_modal(root: Path, image: Mapping[str, Path] | None = None) -> Iterator[FakeModal]:
    """Serve the double on a free localhost port in a background thread (its own loop);
    every sandbox's image carries ``image`` (sandbox path → host directory, read-only)."""
    state = FakeModal("", {}, [])
    loop = asyncio.new_event_loop()
    servers: list[grpclib.server.Server] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        servers.append(grpclib.server.Server([_Services(root, state, image or {})]))
        loop.run_until_complete(servers[0].start("127.0.0.1", 0))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("fake Modal did not start")
    (server,) = servers
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        for box in state.sandboxes.values():
            box.destroy()

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
