"""A sandbox driven through one primitive: run a shell command to completion remotely.

Providers whose SDKs offer "run this command and give me stdout, stderr and the exit code"
(``vercel``, ``daytona``, ``modal``) subclass :class:`CommandSandbox` and implement
:meth:`CommandSandbox._run`, plus, when their SDK has native file calls, ``_read_bytes`` /
``_write_bytes``. Everything else of the contract is built here, the same way for all of them:

- timeouts: ``timeout -k 2 T`` inside the sandbox signals the command's whole process group
  and exits 124, reported as ``timed_out`` (a command that itself exits 124 reads as a timeout);
- output is capped at 1 MiB per stream with a marker;
- paths are checked lexically and then resolved inside the sandbox (``realpath``) so links
  cannot leave the workspace; state archives are checked member by member before upload.

``exec_stream`` replays a finished ``exec`` (these SDKs' run-to-completion calls do not
stream).
"""

from __future__ import annotations

import base64
import secrets
import shlex
import time
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from cerver.errors import ComputeError, InvalidRequest, NotFound
from cerver.types import ExecResult
from compute import _remote_paths as paths
from compute._cli_hosting import remote_hosting
from compute.base import CliHosting, Sandbox

__all__ = ["IMAGE_NAME", "OUTPUT_CAP", "CommandSandbox", "RawResult"]

OUTPUT_CAP = 1 << 20
IMAGE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,254}$"
"""What a vendor's image, snapshot or template name option may be (no spaces, no flags)."""
_CHUNK = 64 * 1024  # bytes of file data per command when writing through commands
_MISSING = 44


@dataclass(frozen=True, slots=True)
class RawResult:
    stdout: str
    stderr: str
    exit_code: int


def _cap(text: str, name: str) -> str:
    if len(text) <= OUTPUT_CAP:
        return text
    return text[:OUTPUT_CAP] + f"\n[cerver: {name} truncated at {OUTPUT_CAP} bytes]\n"


class CommandSandbox(Sandbox):
    workspace: ClassVar[str] = "/workspace"

    @abstractmethod
    async def _run(self, command: str, *, timeout: float) -> RawResult:
        """Run ``bash -c command`` to completion; a non-zero exit is a result.

        Raises:
            ComputeError: the provider failed (sandbox gone, transport broken).
        """

    async def _read_bytes(self, absolute: str) -> bytes:
        """A file's bytes (the path is already checked). Default: base64 over stdout."""
        quoted = shlex.quote(absolute)
        result = await self._run(
            f"test -f {quoted} || exit {_MISSING}; base64 -w0 -- {quoted}", timeout=300
        )
        if result.exit_code == _MISSING:
            raise NotFound(f"No file {absolute!r} in the sandbox.", context={"path": absolute})
        if result.exit_code != 0:
            raise ComputeError(f"Could not read {absolute!r}: {result.stderr.strip()}")
        return base64.b64decode(result.stdout)

    async def _write_bytes(self, absolute: str, data: bytes) -> None:
        """Write a file (the path is already checked). Default: base64 chunks via commands."""
        quoted = shlex.quote(absolute)
        chunks = [data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK)] or [b""]
        for index, chunk in enumerate(chunks):
            redirect = ">" if index == 0 else ">>"
            encoded = base64.b64encode(chunk).decode()
            prepare = f"mkdir -p -- $(dirname -- {quoted}) && " if index == 0 else ""
            result = await self._run(
                f"{prepare}printf %s {encoded} | base64 -d {redirect} {quoted}", timeout=300
            )
            if result.exit_code != 0:
                raise ComputeError(f"Could not write {absolute!r}: {result.stderr.strip()}")

    async def cli_hosting(self) -> CliHosting:
        """The CLIs of the image (or installed by Cerver); the model proxy at the gateway's
        public URL. Installing needs the provider's native file upload."""
        native = type(self)._write_bytes is not CommandSandbox._write_bytes
        return await remote_hosting(self, vendor=self.provider, can_install=native)

    # -- commands -----------------------------------------------------------------------

    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """See :meth:`Sandbox.exec`."""
        line = self._command_line(command, timeout=timeout, env=env)
        started = time.perf_counter()
        raw = await self._run(line, timeout=timeout + 10)
        return ExecResult(
            stdout=_cap(raw.stdout, "stdout"),
            stderr=_cap(raw.stderr, "stderr"),
            exit_code=raw.exit_code,
            duration_ms=(time.perf_counter() - started) * 1000,
            timed_out=raw.exit_code == 124,
        )

    def _command_line(self, command: str, *, timeout: float, env: Mapping[str, str] | None) -> str:
        """The shell line that runs ``command`` in the workspace with ``env``, under
        ``timeout`` (exit 124, the whole group killed 2 s after it is signalled). The line
        ``exec``s into ``timeout``, so a signal to the vendor's process reaches the group.

        Raises:
            InvalidRequest: ``timeout`` is not a positive number.
        """
        if not timeout > 0:
            raise InvalidRequest(f"timeout must be a positive number of seconds, not {timeout!r}.")
        assignments = " ".join(shlex.quote(f"{k}={v}") for k, v in (env or {}).items())
        return (
            f"cd {shlex.quote(self.workspace)} && exec env {assignments} "
            f"timeout -k 2 {timeout:g} bash -c {shlex.quote(command)}"
        )

    # -- files --------------------------------------------------------------------------

    async def _checked(self, *requested: str) -> list[str]:
        absolute = [paths.lexical(p, self.workspace) for p in requested]
        result = await self._run(paths.resolve_script(absolute), timeout=30)
        if result.exit_code != 0:
            raise ComputeError(f"Could not resolve {requested!r}: {result.stderr.strip()}")
        for path, real in zip(requested, result.stdout.splitlines(), strict=True):
            if not paths.inside(real, self.workspace):
                raise paths.outside(path, self.workspace)
        return absolute

    async def read_file(self, path: str) -> bytes:
        (absolute,) = await self._checked(path)
        return await self._read_bytes(absolute)

    async def write_file(self, path: str, data: bytes) -> None:
        (absolute,) = await self._checked(path)
        await self._write_bytes(absolute, data)

    async def list_files(self, path: str = ".") -> list[str]:
        (absolute,) = await self._checked(path)
        quoted = shlex.quote(absolute)
        result = await self._run(
            f"test -d {quoted} || exit {_MISSING}; cd {quoted} && find . -type f -printf '%P\\n'",
            timeout=60,
        )
        if result.exit_code == _MISSING:
            raise NotFound(f"No directory {path!r} in the workspace.", context={"path": path})
        if result.exit_code != 0:
            raise ComputeError(f"Could not list {path!r}: {result.stderr.strip()}")
        return sorted(line for line in result.stdout.splitlines() if line)

    # -- state ----------------------------------------------------------------------------

    async def get_state(self) -> bytes:
        temp = f"/tmp/cerver-state-{secrets.token_hex(6)}.tgz"
        ws = shlex.quote(self.workspace)
        packed = await self._run(f"tar -czf {temp} -C {ws} .", timeout=300)
        if packed.exit_code != 0:
            raise ComputeError(f"Could not snapshot the workspace: {packed.stderr.strip()}")
        try:
            return await self._read_bytes(temp)
        finally:
            await self._run(f"rm -f {temp}", timeout=30)

    async def set_state(self, archive: bytes) -> None:
        members = paths.check_archive(archive, self.workspace)
        if members:
            try:
                await self._checked(*members)
            except InvalidRequest as exc:
                raise InvalidRequest(
                    f"Refusing state archive member: {exc.message}", context=exc.context
                ) from exc
        temp = f"/tmp/cerver-state-{secrets.token_hex(6)}.tgz"
        await self._write_bytes(temp, archive)
        ws = shlex.quote(self.workspace)
        restored = await self._run(
            f"tar -xzf {temp} -C {ws} --no-same-owner; code=$?; rm -f {temp}; exit $code",
            timeout=300,
        )
        if restored.exit_code != 0:
            raise ComputeError(f"Could not restore the workspace: {restored.stderr.strip()}")
