"""The Compute contract: a provider creates sandboxes; a sandbox runs commands and holds files.

This is the seed's compute interface (``createSandbox``, ``runSandbox``,
``runSandboxStream``, ``installPackage``, ``writeFile``, ``readFile``, ``getState``,
``setState``, ``deleteSandbox``) split in two small ABCs: :class:`Compute` (the provider) and
:class:`Sandbox` (one workspace). Providers implement three abstract methods on each; the rest
have portable defaults built on ``exec`` that a provider may override with a native call.
"""

from __future__ import annotations

import base64
import importlib
import os
import shlex
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Final, Literal, Self

from cerver.errors import (
    CerverError,
    ComputeError,
    ComputeTimeout,
    MissingDependency,
    NotConfigured,
)
from cerver.options import PluginOptions
from cerver.types import ExecResult, LimitName, SandboxLimits

__all__ = [
    "MISSING",
    "PASS_THROUGH",
    "TRANSPORT_ERRORS",
    "Capabilities",
    "CliHosting",
    "Compute",
    "ExecChunk",
    "HostReport",
    "Profile",
    "Sandbox",
    "SandboxSpec",
    "VendorErrors",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    runtimes: tuple[str, ...] = ("shell", "python")
    package_install: bool = False
    public_preview: bool = False
    persistence: Literal["low", "medium", "high"] = "low"
    browser: bool = False
    max_timeout_s: int = 3600


@dataclass(frozen=True, slots=True)
class CliHosting:
    """How one sandbox runs the CLI harnesses (Claude Code, Codex, Gemini CLI).

    Attributes:
        programs: harness name → the CLI's program inside the sandbox, for the CLIs the
            sandbox carries (the gateway's installs bound in, the relay's own, or an image
            holding Cerver's tools layout at :data:`cerver.cli_programs.IMAGE_TOOLS_DIR`).
        proxy: how a command reaches the gateway's model proxy: ``"gateway"`` (the gateway's
            own unix socket is bound in at the same path: local sandboxes), ``"socket"`` (a
            socket in the sandbox, :attr:`proxy_socket`, bridged to the gateway by the
            machine: relays), ``"url"`` (over the network, at the gateway's public URL),
            or ``None`` (it cannot: a CLI turn there is refused).
        proxy_socket: the socket of ``proxy == "socket"``.
        install_dir: where Cerver may install a missing CLI on first use (a writable
            directory outside the workspace, so moves do not carry it); ``None``: it may not.
        carried_by: how the CLIs got there, in words (shown in errors and the matrix).
    """

    programs: Mapping[str, str] = field(default_factory=dict)
    proxy: Literal["gateway", "socket", "url"] | None = None
    proxy_socket: str | None = None
    install_dir: str | None = None
    carried_by: str = ""


@dataclass(frozen=True, slots=True)
class Profile:
    """Prior figures the router scores a provider with before it has observed any."""

    startup_ms: float
    cost_per_hour_usd: float
    reliability: float = 0.99


@dataclass(frozen=True, slots=True)
class HostReport:
    """What the gateway's host gives a provider, as ``GET /v2/providers`` shows it."""

    problem: str | None = None
    """Why the provider cannot run here, naming the fix (the catalog lists it as
    ``needs_setup``); ``None`` when it can."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Facts worth showing, e.g. the isolation and limits really in force."""


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """What a session asks of its sandbox."""

    session_id: str
    network: bool = False
    timeout_minutes: int = 60
    env: Mapping[str, str] = field(default_factory=dict)
    compute_id: str | None = None
    """A registered machine to create on, for providers that front several (``relay``)."""
    limits: SandboxLimits | None = None
    """What each command may use; ``None``: the provider's defaults. Providers that cannot
    hold a limit say so in their docstring."""
    options: PluginOptions | None = None
    """The session's options for this provider: an instance of its ``Options``, validated
    when the request arrived (``None``: none were given)."""


@dataclass(frozen=True, slots=True)
class ExecChunk:
    """A piece of a streaming command's output, or (``stream == "exit"``) its end, with the
    limit that ended the command if one did."""

    stream: Literal["stdout", "stderr", "exit"]
    data: str = ""
    exit_code: int | None = None
    limit: LimitName | None = None


class _Missing:
    """The "not found" class the call site names (``translate(..., missing=NotFound)``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""In a :class:`VendorErrors` table: "not found" means what the call site says it means
(reading a missing file is :class:`~cerver.errors.NotFound`; losing the sandbox mid-command
is a :class:`~cerver.errors.ComputeError`)."""

PASS_THROUGH: Final = None
"""In a :class:`VendorErrors` table, ``(PASS_THROUGH, False)``: not a vendor failure (e.g. our
own ``asyncio`` deadline); re-raised unchanged."""

Outcome = tuple[type[CerverError] | _Missing | None, bool]
"""What a vendor exception becomes: a Cerver error class (or :data:`MISSING` /
:data:`PASS_THROUGH`) and whether a retry may get past it."""

TRANSPORT_ERRORS: Final[Mapping[str, Outcome]] = {
    # httpx (most vendor SDKs speak HTTP through it) and the standard library's own.
    "TimeoutException": (ComputeTimeout, True),
    "TransportError": (ComputeError, True),
    "ConnectionError": (ComputeError, True),
    "TimeoutError": (ComputeTimeout, True),
}
"""Connection failures and timeouts below any SDK: always worth a retry. Every vendor table
starts from these (a vendor's own entry with the same name wins)."""


@dataclass(frozen=True, slots=True)
class VendorErrors:
    """One vendor SDK's exceptions translated to Cerver's, declared as one table.

    ``table`` maps the name of an exception class (matched along the raised exception's MRO,
    most specific first, so an SDK subclass the table does not name falls to its base, and
    the SDK need not be imported to build the table) to an :data:`Outcome`. Unknown
    exceptions become ``default``. A :class:`~cerver.errors.CerverError` always passes
    through. An outcome of :class:`~cerver.errors.NotConfigured` names ``credentials``.

    Attributes:
        vendor: how messages name the vendor (``"E2B"``).
        table: exception class name → (Cerver error class, retryable); see :data:`MISSING`
            and :data:`PASS_THROUGH`. :data:`TRANSPORT_ERRORS` are merged underneath.
        credentials: the environment variables a refused credential points at.
        default: the outcome of an exception no entry names.
        hint: a sentence added to every translated message (what to check).
        statuses: HTTP status → outcome, for SDKs that raise one class for every API error
            and carry the status on it (``exc.status_code``); looked up before ``table``.
    """

    vendor: str
    table: Mapping[str, Outcome]
    credentials: tuple[str, ...] = ()
    default: Outcome = (ComputeError, False)
    hint: str = ""
    statuses: Mapping[int, Outcome] = field(default_factory=dict)

    def outcome(self, exc: BaseException) -> Outcome:
        """The table's outcome for ``exc`` (``default`` when no name along its MRO is in it)."""
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and status in self.statuses:
            return self.statuses[status]
        for cls in type(exc).__mro__:
            if cls.__name__ in self.table:
                return self.table[cls.__name__]
            if cls.__name__ in TRANSPORT_ERRORS:
                return TRANSPORT_ERRORS[cls.__name__]
        return self.default

    def translate_exception(
        self,
        exc: BaseException,
        what: str,
        *,
        missing: type[CerverError] = ComputeError,
        context: Mapping[str, Any] | None = None,
    ) -> BaseException:
        """The exception to raise instead of ``exc`` (``exc`` itself when it passes through).

        Args:
            exc: what the SDK raised.
            what: the operation, completing "could not …" (``"create a sandbox"``).
            missing: the class for the SDK's "not found" (:data:`MISSING` entries).
            context: values for the error's context (ids, base URLs).
        """
        if isinstance(exc, CerverError):
            return exc
        cls, retryable = self.outcome(exc)
        if cls is PASS_THROUGH:
            return exc
        if isinstance(cls, _Missing):
            cls = missing
        details = {"vendor": self.vendor, "exception": type(exc).__name__, **(context or {})}
        if issubclass(cls, NotConfigured):
            variables = ", ".join(self.credentials) or "its credentials"
            message = (
                f"{self.vendor} refused the credentials ({exc}): set a valid {variables} "
                "where the gateway runs."
            )
            details["variables"] = list(self.credentials)
        else:
            message = f"{self.vendor}: could not {what}: {type(exc).__name__}: {exc}"
            if self.hint:
                message = f"{message}. {self.hint}"
        return cls(message, context=details, retryable=retryable)

    @asynccontextmanager
    async def translate(
        self,
        what: str,
        *,
        missing: type[CerverError] = ComputeError,
        context: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[None]:
        """Run the block, raising what :meth:`translate_exception` says instead of an SDK
        exception."""
        try:
            yield
        except Exception as exc:
            translated = self.translate_exception(exc, what, missing=missing, context=context)
            if translated is exc:
                raise
            raise translated from exc


class Sandbox(ABC):
    """One isolated workspace.

    Paths are relative to the workspace root; an absolute path must lie under the
    workspace's own path inside the sandbox (``/workspace`` for ``local``). A path that
    escapes the workspace, directly or through a symlink, raises
    :class:`~cerver.errors.InvalidRequest`.

    Errors (every method):
        ComputeError: the backend failed (sandbox gone, transport broken).
        InvalidRequest: a path escapes the workspace; :meth:`set_state` got an archive whose
            members would land outside it.
        NotFound: :meth:`read_file` of a missing file, :meth:`list_files` of a missing
            directory.

    A timeout is not an error: :meth:`exec` reports it as a result with ``timed_out=True``
    and ``exit_code`` 124, and :meth:`exec_stream` ends with exit code 124.
    """

    sandbox_id: str
    provider: ClassVar[str]
    streams_exec: ClassVar[bool] = False
    """True when :meth:`exec_stream` yields output while the command runs (and closing it
    early stops the command); False when it yields everything once the command has ended,
    as the default does."""

    @abstractmethod
    async def exec(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        """Run ``command`` with ``bash -c`` in the workspace.

        A non-zero exit is a result. On timeout the whole process tree is killed and the
        result has ``timed_out=True``, ``exit_code=124``. Output past 1 MiB per stream is
        truncated with a marker.
        """

    @abstractmethod
    async def read_file(self, path: str) -> bytes:
        """Return the file's bytes. Raises NotFound when it does not exist."""

    @abstractmethod
    async def write_file(self, path: str, data: bytes) -> None:
        """Create or replace the file, creating parent directories."""

    async def exec_stream(
        self, command: str, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> AsyncIterator[ExecChunk]:
        """Run a command and yield its output as it comes; the last chunk is ``exit``.

        The default runs :meth:`exec` and yields its output at the end.
        """
        result = await self.exec(command, timeout=timeout, env=env)
        if result.stdout:
            yield ExecChunk("stdout", result.stdout)
        if result.stderr:
            yield ExecChunk("stderr", result.stderr)
        yield ExecChunk("exit", exit_code=result.exit_code)

    async def list_files(self, path: str = ".") -> list[str]:
        """Relative paths of the regular files under ``path``, sorted."""
        result = await self.exec(f"cd {shlex.quote(path)} && find . -type f -printf '%P\\n'")
        if result.exit_code != 0:
            raise ComputeError(f"Could not list {path!r}: {result.stderr.strip()}")
        return sorted(line for line in result.stdout.splitlines() if line)

    async def install_package(self, packages: list[str], *, manager: str = "pip") -> ExecResult:
        """Install packages with ``pip`` or ``npm`` inside the sandbox."""
        quoted = " ".join(shlex.quote(p) for p in packages)
        commands = {"pip": f"python3 -m pip install --user {quoted}", "npm": f"npm i {quoted}"}
        if manager not in commands:
            raise ComputeError(f"Unknown package manager {manager!r}; use 'pip' or 'npm'.")
        return await self.exec(commands[manager], timeout=600)

    async def get_state(self) -> bytes:
        """Snapshot the workspace as a gzipped tar archive (how a session moves providers)."""
        result = await self.exec("tar -czf - . | base64 -w0", timeout=300)
        if result.exit_code != 0:
            raise ComputeError(f"Could not snapshot the workspace: {result.stderr.strip()}")
        return base64.b64decode(result.stdout)

    async def set_state(self, archive: bytes) -> None:
        """Restore a snapshot made by :meth:`get_state` into the workspace."""
        await self.write_file(".cerver-state.tgz", archive)
        result = await self.exec("tar -xzf .cerver-state.tgz && rm .cerver-state.tgz", timeout=300)
        if result.exit_code != 0:
            raise ComputeError(f"Could not restore the workspace: {result.stderr.strip()}")

    async def delete(self) -> None:  # noqa: B027 - providers without teardown keep the default
        """Release the sandbox and its workspace. Idempotent."""

    async def cli_hosting(self) -> CliHosting:
        """How this sandbox runs the CLI harnesses. Default: it cannot (no CLIs, no way to
        the model proxy), so a CLI turn on it is refused before anything is written."""
        return CliHosting()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.delete()


class Compute(ABC):
    """A compute provider: creates sandboxes and re-attaches to existing ones.

    Options: a provider that takes per-session options (an image, a template) declares them
    as a nested ``Options`` model (a :class:`~cerver.options.PluginOptions`); ``compute:
    {provider, options}`` is validated against it when the request arrives and reaches
    :meth:`create` as ``spec.options``. Gateway-wide settings (a default template) come from
    the provider's own settings model read with :func:`~cerver.options.plugin_settings`
    (``CERVER_<PROVIDER>_<FIELD>``), not from the gateway.

    Errors:
        ComputeError: provisioning failed (the router may fall back to another provider).
        MissingDependency: the provider's SDK is not installed (raised on construction).
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    profile: ClassVar[Profile] = Profile(startup_ms=1000, cost_per_hour_usd=0.1)
    credentials: ClassVar[tuple[str, ...]] = ()
    """Environment variables the provider needs; the catalog lists it as
    ``needs_credentials`` until they are all set."""
    vendor_errors: ClassVar[VendorErrors | None] = None
    """How the provider's SDK exceptions become Cerver's (one table per SDK, used by the
    provider and its sandboxes); ``None`` for a provider that raises Cerver's own."""

    @classmethod
    def host_report(cls, **options: Any) -> HostReport:
        """Check, without side effects, what this host gives the provider built with
        ``options`` (the gateway's constructor arguments). Default: nothing to report."""
        return HostReport()

    @classmethod
    def _import_sdk(cls, module: str) -> ModuleType:
        """Import the provider's SDK (on construction, never at package import).

        Raises:
            MissingDependency: not installed; the message names ``cerver[<provider>]``.
        """
        try:
            return importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise MissingDependency(
                f"The compute {cls.name!r} needs the package {module!r}, which is not "
                f"installed. Install it with: pip install 'cerver[{cls.name}]'",
                context={"kind": "compute", "name": cls.name, "missing": module},
            ) from exc

    @classmethod
    def _require_credentials(cls, what: str, given: Mapping[str, str | None] | None = None) -> None:
        """Check that every variable of :attr:`credentials` is set (or passed in ``given``).

        Raises:
            NotConfigured: some are missing; the message names them.
        """
        given = given or {}
        unset = [name for name in cls.credentials if not (given.get(name) or os.environ.get(name))]
        if unset:
            raise NotConfigured(
                f"No {what}: set {', '.join(unset)} where the gateway runs.",
                context={"variables": unset},
            )

    @abstractmethod
    async def create(self, spec: SandboxSpec) -> Sandbox:
        """Provision a new, empty sandbox."""

    @abstractmethod
    async def attach(self, sandbox_id: str) -> Sandbox:
        """Return a handle to a sandbox created earlier (e.g. by another gateway process).

        Raises:
            NotFound: the sandbox no longer exists.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release pooled clients."""
