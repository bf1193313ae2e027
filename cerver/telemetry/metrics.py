"""Prometheus metrics of one gateway process, served at ``GET /metrics``.

Every series is declared here, with the few functions the gateway calls to move them, so the
label sets stay small and known: harness, model, provider, status, error code. Labels never
carry an account, a session, a user id or any text someone typed; model names (which a caller
chooses) are cut to :data:`MAX_LABEL_CHARS`.

The series live in their own :data:`REGISTRY` (not the client library's global one), next to
the process collectors, so an embedding application's own metrics do not mix with ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

__all__ = [
    "CONTENT_TYPE",
    "MAX_LABEL_CHARS",
    "REGISTRY",
    "exec_finished",
    "fanout_finished",
    "proxy_request",
    "render",
    "sandbox_provisioned",
    "set_sessions_by_status",
    "turn_finished",
    "turn_first_token",
    "turn_started",
    "upstream_error",
    "usage_charged",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
MAX_LABEL_CHARS = 100
"""Longer label values are cut: a model name is the caller's choice, a label is not a log."""

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

# A turn takes from ~10 ms (a cached mock) to minutes (an agent running tools).
_TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

TURNS = Counter(
    "cerver_turns", "Model turns finished.", ["harness", "model", "status"], registry=REGISTRY
)
TURN_SECONDS = Histogram(
    "cerver_turn_duration_seconds",
    "Wall time of a model turn, from the lock taken to the turn recorded.",
    ["harness", "model", "status"],
    buckets=_TURN_BUCKETS,
    registry=REGISTRY,
)
FIRST_TOKEN_SECONDS = Histogram(
    "cerver_time_to_first_token_seconds",
    "Time from a turn's start to its first streamed text.",
    ["harness", "model"],
    buckets=_FAST_BUCKETS,
    registry=REGISTRY,
)
ACTIVE_TURNS = Gauge(
    "cerver_active_turns", "Model turns running in this process.", registry=REGISTRY
)
SESSIONS = Gauge(
    "cerver_sessions",
    "Sessions in the store by status (all accounts; read at scrape time).",
    ["status"],
    registry=REGISTRY,
)
TOKENS = Counter(
    "cerver_tokens",
    "Model tokens charged to the ledger.",
    ["harness", "model", "provider", "direction"],
    registry=REGISTRY,
)
COST = Counter(
    "cerver_cost_usd",
    "Model cost charged to the ledger, in US dollars (priced calls only).",
    ["harness", "model", "provider"],
    registry=REGISTRY,
)
UPSTREAM_RETRIES = Counter(
    "cerver_upstream_retries",
    "Model calls retried after a retryable upstream failure.",
    ["provider", "code"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "cerver_upstream_errors",
    "Upstream failures seen by model calls (each failed attempt, retried or not).",
    ["provider", "code"],
    registry=REGISTRY,
)
PROVISION_SECONDS = Histogram(
    "cerver_sandbox_provision_seconds",
    "Time to create a sandbox, by compute provider and outcome.",
    ["provider", "outcome"],
    buckets=_FAST_BUCKETS,
    registry=REGISTRY,
)
EXEC_SECONDS = Histogram(
    "cerver_sandbox_exec_seconds",
    "Latency of commands run in sandboxes (tool calls and /run), by compute provider.",
    ["provider", "mode"],
    buckets=_FAST_BUCKETS,
    registry=REGISTRY,
)
CLI_INSTALL_SECONDS = Histogram(
    "cerver_cli_install_seconds",
    "Time to install a CLI harness's program in a sandbox on first use, by harness and "
    "compute provider (once per sandbox).",
    ["harness", "provider"],
    buckets=_TURN_BUCKETS,
    registry=REGISTRY,
)
PROXY_REQUESTS = Counter(
    "cerver_proxy_requests",
    "Requests CLI harnesses sent through the model proxy, by provider and response status.",
    ["provider", "status"],
    registry=REGISTRY,
)
FANOUTS = Counter("cerver_fanouts", "Fan-outs finished.", ["status"], registry=REGISTRY)
FANOUT_VARIANTS = Counter(
    "cerver_fanout_variants",
    "Fan-out variants finished, by harness and status.",
    ["harness", "status"],
    registry=REGISTRY,
)


def _label(value: object) -> str:
    text = "" if value is None else str(value)
    return text[:MAX_LABEL_CHARS]


def turn_started() -> None:
    ACTIVE_TURNS.inc()


def turn_first_token(harness: str, model: str, seconds: float) -> None:
    FIRST_TOKEN_SECONDS.labels(_label(harness), _label(model)).observe(seconds)


def turn_finished(harness: str, model: str, status: str, seconds: float) -> None:
    """A turn ended (completed, failed or cancelled); pairs with :func:`turn_started`."""
    ACTIVE_TURNS.dec()
    labels = (_label(harness), _label(model), _label(status))
    TURNS.labels(*labels).inc()
    TURN_SECONDS.labels(*labels).observe(seconds)


def usage_charged(
    *,
    harness: str | None,
    model: str | None,
    provider: str | None,
    input_tokens: int,
    output_tokens: int,
    cost_usd: float | None,
) -> None:
    """One ledger charge: tokens by direction, and its cost when the call was priced."""
    labels = (_label(harness), _label(model), _label(provider))
    if input_tokens:
        TOKENS.labels(*labels, "input").inc(input_tokens)
    if output_tokens:
        TOKENS.labels(*labels, "output").inc(output_tokens)
    if cost_usd:
        COST.labels(*labels).inc(cost_usd)


def upstream_error(provider: str, code: object, *, retried: bool) -> None:
    """A model call failed with ``code`` (an HTTP status, or ``connection``); ``retried`` when
    the retry layer calls the same model again."""
    labels = (_label(provider), _label(code))
    UPSTREAM_ERRORS.labels(*labels).inc()
    if retried:
        UPSTREAM_RETRIES.labels(*labels).inc()


def sandbox_provisioned(provider: str, seconds: float, *, ok: bool) -> None:
    PROVISION_SECONDS.labels(_label(provider), "ok" if ok else "failed").observe(seconds)


def exec_finished(provider: str | None, seconds: float, *, stream: bool = False) -> None:
    EXEC_SECONDS.labels(_label(provider), "stream" if stream else "exec").observe(seconds)


def cli_installed(harness: str, provider: str, seconds: float) -> None:
    CLI_INSTALL_SECONDS.labels(_label(harness), _label(provider)).observe(seconds)


def proxy_request(provider: str, status: int | str) -> None:
    PROXY_REQUESTS.labels(_label(provider), _label(status)).inc()


def fanout_finished(status: str, variants: Iterable[tuple[str, str]]) -> None:
    """A fan-out ended with ``status``; ``variants`` are ``(harness, status)`` pairs."""
    FANOUTS.labels(_label(status)).inc()
    for harness, variant_status in variants:
        FANOUT_VARIANTS.labels(_label(harness), _label(variant_status)).inc()


def set_sessions_by_status(counts: Mapping[str, int]) -> None:
    """Refresh :data:`SESSIONS` from a store count (statuses missing from ``counts`` read 0)."""
    for status in ("ready", "running", "paused", "closed", "failed", *counts):
        SESSIONS.labels(_label(status)).set(counts.get(status, 0))


def render() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)
