"""The gateway: one object wiring settings, store and services, with a start/stop lifecycle."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cerver.cli_programs import cli_tool_dirs
from cerver.events import EventHub
from cerver.placement import Catalog
from cerver.providers import Endpoint
from cerver.proxy import ModelProxy, ProxyForwarder, runtime_dir
from cerver.services.auth import AuthService, BootstrapResult
from cerver.services.branching import BranchingService
from cerver.services.client_tools import offered_tools
from cerver.services.computes import ComputeService
from cerver.services.credentials import CredentialService
from cerver.services.execs import ExecService
from cerver.services.fanout import FanoutService
from cerver.services.locks import SessionLocks
from cerver.services.metrics import MetricsService
from cerver.services.moves import MoveService
from cerver.services.placement import PlacementService
from cerver.services.plugins import ComputePool, HarnessPool, Upstreams
from cerver.services.runs import RunService
from cerver.services.sandbox_policy import SandboxPolicy
from cerver.services.secret_key import CredentialCipher, load_or_create
from cerver.services.sessions import SessionService
from cerver.services.stress import StressService
from cerver.services.turns import TurnService
from cerver.settings import Settings
from cerver.store import Store
from cerver.telemetry import tracing
from cerver.types import ProxyGrant
from harnesses.tools import ToolSpec

if TYPE_CHECKING:
    from cerver.testing.mock_upstream import MockUpstream

__all__ = ["Gateway"]

log = logging.getLogger("cerver")

#: The logger that announces the mock upstream; the CLI, which prints its own banner, mutes it.
MOCK_LOGGER = "cerver.upstream"
MOCK_NOTICE = (
    "No provider key is configured: models are served by Cerver's MOCK UPSTREAM, a test "
    "double that returns canned '[mock upstream]' answers. Set ANTHROPIC_API_KEY or "
    "OPENAI_API_KEY to use real models."
)


class Gateway:
    """Everything one gateway process holds. ``await start()`` before use, ``stop()`` after."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.store = Store(self.settings.resolved_database_url)
        self.credentials = CredentialService(self.store)
        self.hub = EventHub()
        sandboxes = self.settings.resolved_data_dir / "sandboxes"
        self.registered_computes = ComputeService(self.store)
        self.proxy = ModelProxy(
            ProxyForwarder(self._upstream_route),
            runtime_dir(),
            store=self.store.grants,
            public_url=self.settings.public_url,
            tools_of=self._app_tools_of,
        )
        # Local sandboxes see the proxy's socket and the CLI harnesses' binaries, read-only.
        shared = [self.proxy.socket_dir, *cli_tool_dirs()]
        sandbox_policy = SandboxPolicy(
            self.settings.sandbox_limits,
            self.settings.sandbox_limits_max,
            self.settings.sandbox_egress,
        )
        compute_options: dict[str, dict[str, Any]] = {
            "local": {
                "root": sandboxes,
                "shared": shared,
                "limits": sandbox_policy.defaults,
                "egress": sandbox_policy.egress,
            },
            "relay": {
                "resolve": self.registered_computes.endpoint,
                "model_proxy_url": self.settings.public_url,
            },
            # E2B sandboxes without network may still reach the gateway (the model proxy).
            "e2b": {"model_proxy_url": self.settings.public_url},
        }
        self.computes = ComputePool(compute_options)
        self.placement = PlacementService(
            self.store,
            self.computes,
            self.registered_computes,
            Catalog(options=compute_options),
            sandbox_policy,
        )
        self.placement.credentials = self.credentials
        self.harnesses = HarnessPool(Upstreams.from_settings(self.settings))
        self.harnesses.account_endpoints = self.credentials.model_endpoints
        self.locks = SessionLocks(
            self.store, self.hub, lease_seconds=self.settings.run_lease_seconds
        )
        self.auth = AuthService(self.store)
        self.runs = RunService(
            self.store,
            self.hub,
            lease_seconds=self.settings.run_lease_seconds,
            cancel_poll_seconds=self.settings.cancel_poll_seconds,
        )
        self.sessions = SessionService(
            self.store,
            self.locks,
            self.harnesses,
            self.computes,
            self.settings,
            self.placement,
            runs=self.runs,
        )
        self.execs = ExecService(self.store, self.sessions, self.computes)
        self.turns = TurnService(
            self.store,
            self.locks,
            self.sessions,
            self.harnesses,
            self.execs,
            self.proxy,
            runs=self.runs,
        )
        self.metrics = MetricsService(self.store, self.computes)
        self.moves = MoveService(
            self.store, self.locks, self.sessions, self.computes, self.placement
        )
        self.stress = StressService(self.store, self.computes, self.placement)
        self.branching = BranchingService(self.store, self.locks, self.sessions, self.computes)
        self.fanouts = FanoutService(
            self.store,
            self.locks,
            self.sessions,
            self.branching,
            self.turns,
            self.harnesses,
            self.computes,
            self.execs,
            lease_seconds=self.settings.run_lease_seconds,
            runs=self.runs,
        )
        self.bootstrap: BootstrapResult | None = None
        self._mock: MockUpstream | None = None
        self._owns_tracing = False

    async def _app_tools_of(self, grant: ProxyGrant) -> Sequence[ToolSpec]:
        """The app's tools offered with a CLI run (served to its CLI by the model proxy)."""
        return offered_tools(await self.sessions.transcript(grant.session_id), grant.run_id)

    async def _upstream_route(self, provider: str, account_id: str | None) -> Endpoint:
        """The model proxy's upstream for ``provider`` on a run of ``account_id``: the
        account's own key when it stored one, else the gateway's (NotConfigured without)."""
        return (await self.harnesses.endpoints_for(account_id)).require(provider)

    @property
    def upstream_is_mock(self) -> bool:
        return self.harnesses.upstreams.mock

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` began: ``/readyz`` answers 503, no new turns start."""
        return self.runs.draining

    async def drain(self, grace: float | None = None) -> None:
        """The first half of a graceful shutdown (SIGTERM): refuse new turns and fan-outs,
        give running ones ``grace`` seconds (default ``shutdown_grace_seconds``), then stop
        them as ``interrupted``. :meth:`stop` follows."""
        if grace is None:
            grace = self.settings.shutdown_grace_seconds
        await self.runs.drain(grace)

    async def prepare(self) -> BootstrapResult | None:
        """The store's first-start work: migrate it, load (or create) the secret key, and
        create the admin account on an empty store. Idempotent; ``cerver serve --workers N``
        runs it once in the parent so that N workers starting at once never race on it.
        Returns what :meth:`AuthService.bootstrap` created (``None`` when nothing)."""
        await self.store.open()
        configured = self.settings.secret_key
        key = load_or_create(
            self.settings.resolved_data_dir,
            configured.get_secret_value() if configured is not None else None,
        )
        self.credentials.open(CredentialCipher(key))
        self.bootstrap = await self.auth.bootstrap(
            self.settings.resolved_data_dir, self.settings.admin_key
        )
        return self.bootstrap

    async def start(self) -> None:
        """:meth:`prepare` the store, reclaim dead runs and fan-outs, start the background run
        supervisor (cancel requests from other replicas, runs of dead processes), and start
        the mock upstream when no provider key is configured."""
        self._owns_tracing = tracing.configure(capture_content=self.settings.otel_capture_content)
        await self.prepare()
        await self.runs.reap()
        self.runs.start()
        if self.settings.use_mock_upstream:
            from cerver.testing.mock_upstream import MockUpstream

            self._mock = MockUpstream()
            self._mock.start()
            self.harnesses.upstreams = Upstreams.from_settings(self.settings, self._mock.url)
            logging.getLogger(MOCK_LOGGER).warning(MOCK_NOTICE)
        elif "default_harness" not in self.settings.model_fields_set:
            # Default to a harness this gateway can actually run: the first provider in the
            # registry that has a key and names a default harness.
            for provider in self.settings.model_providers():
                if provider.default_harness and self.harnesses.upstreams.configured(provider.name):
                    self.settings.default_harness = provider.default_harness
                    break

    async def stop(self) -> None:
        await self.runs.aclose()
        await self.fanouts.aclose()
        await self.turns.aclose()
        await self.proxy.aclose()
        await self.harnesses.aclose()
        await self.computes.aclose()
        await self.store.close()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._owns_tracing:
            tracing.reset()
            self._owns_tracing = False
