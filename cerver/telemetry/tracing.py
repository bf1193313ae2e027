"""OpenTelemetry traces, following the GenAI semantic conventions.

Tracing is off (every function here is a cheap no-op) until :func:`configure` turns it on:
the gateway calls it at start-up, and it exports by OTLP over HTTP when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; the
OpenTelemetry SDK is the optional extra ``pip install 'cerver[otel]'``, imported only then.
Tests pass their own exporter. The provider is this module's own, not OpenTelemetry's global
one, so configuring twice (or resetting in tests) is allowed and an embedding application's
global tracer provider is left alone.

Spans (names and ``gen_ai.*`` attributes as the conventions give them):

* ``invoke_agent {harness}`` — one turn (``gen_ai.conversation.id`` = the session id,
  ``cerver.run_id``);
* ``chat {model}`` — one model call, kind CLIENT (``gen_ai.provider.name``, ``gen_ai.system``,
  ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, ``error.type`` on failure);
* ``execute_tool {name}`` — one tool call; ``sandbox.exec`` — one command in a sandbox;
* ``cerver.fanout``, ``cerver.fanout.variant``, ``cerver.judge``.

Message content (prompts, answers, tool arguments and output) goes on spans only when
``CERVER_OTEL_CAPTURE_CONTENT=true`` (:func:`capture_content`); ids, names, counts and
timings always do. No credential is ever an attribute.

Even with tracing off, every request gets a W3C trace id (:func:`new_request_ids`), returned in
``traceparent`` and stored on the runs it starts, so a run, its request and its log lines link.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "CONTENT_MAX_CHARS",
    "RequestIds",
    "bind_request",
    "capture_content",
    "configure",
    "content",
    "current_trace_id",
    "enabled",
    "mark_error",
    "new_request_ids",
    "parse_traceparent",
    "request_ids",
    "reset",
    "span",
    "span_ids",
    "unbind_request",
]

log = logging.getLogger("cerver.telemetry")

CONTENT_MAX_CHARS = 8_000
"""Captured content is cut to this many characters per attribute."""

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@dataclass(slots=True)
class _State:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None
    capture_content: bool = False


_state = _State()


@dataclass(frozen=True, slots=True)
class RequestIds:
    """The ids of one HTTP request: its request id and the W3C trace it belongs to."""

    request_id: str
    trace_id: str
    span_id: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


_request: contextvars.ContextVar[RequestIds | None] = contextvars.ContextVar(
    "cerver_request", default=None
)


def configure(*, capture_content: bool = False, exporter: SpanExporter | None = None) -> bool:
    """Turn tracing on when an exporter is given or an OTLP endpoint is configured.

    Args:
        capture_content: put message content on spans (``CERVER_OTEL_CAPTURE_CONTENT``).
        exporter: export to this exporter, synchronously (tests); default: OTLP over HTTP,
            batched, configured by the standard ``OTEL_*`` variables.

    Returns:
        Whether this call installed a tracer provider (the caller then owns it and calls
        :func:`reset` when it stops). Without an endpoint the tracing already configured (by
        a test, say) is left as it is; without the SDK installed a warning names the extra.
    """
    _state.capture_content = capture_content
    if exporter is None and not any(os.environ.get(v) for v in _ENDPOINT_VARIABLES):
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ModuleNotFoundError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed, so "
            "no traces are exported. Install it with: pip install 'cerver[otel]'"
        )
        return False
    reset()
    from cerver import __version__

    resource = Resource.create({"service.name": "cerver", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ModuleNotFoundError:
            log.warning(
                "The OTLP exporter is not installed, so no traces are exported. Install it "
                "with: pip install 'cerver[otel]'"
            )
            return False
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _state.provider = provider
    _state.tracer = provider.get_tracer("cerver", __version__)
    return True


def reset() -> None:
    """Turn tracing off, flushing and shutting down the provider (gateway stop, tests)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.shutdown()


def enabled() -> bool:
    return _state.tracer is not None


def capture_content() -> bool:
    """Whether message content may go on spans (see the module docstring)."""
    return _state.capture_content and enabled()


def content(text: object) -> str:
    """``text`` as a span attribute: a string cut to :data:`CONTENT_MAX_CHARS`."""
    value = text if isinstance(text, str) else repr(text)
    return value[:CONTENT_MAX_CHARS]


class _NoSpan:
    """What :func:`span` yields while tracing is off: accepts everything, records nothing."""

    __slots__ = ()

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        pass

    def record_exception(self, exception: BaseException) -> None:
        pass

    def is_recording(self) -> bool:
        return False


_NO_SPAN = _NoSpan()
_NOT_TRACED: contextlib.nullcontext[_NoSpan] = contextlib.nullcontext(_NO_SPAN)


def span(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    *,
    client: bool = False,
    server: bool = False,
    current: bool = True,
    parent_traceparent: str | None = None,
) -> contextlib.AbstractContextManager[Span | _NoSpan]:
    """A span around the block (a shared no-op context while tracing is off).

    Args:
        name: the span name (see the module docstring for the ones in use).
        attributes: initial attributes; ``None`` values are dropped.
        client: kind CLIENT (a call out: model calls); ``server``: kind SERVER (a request).
        current: make the span the parent of spans started inside the block. Pass ``False``
            when the block contains a ``yield`` of an async generator: a context attached
            there would leak into the consumer between iterations.
        parent_traceparent: continue this W3C trace (an incoming request's header).

    An exception leaving the block is recorded, sets ``error.type`` and the span's error status.
    """
    tracer = _state.tracer
    if tracer is None:
        return _NOT_TRACED
    return _recording(tracer, name, attributes, client, server, current, parent_traceparent)


@contextlib.contextmanager
def _recording(
    tracer: Tracer,
    name: str,
    attributes: Mapping[str, Any] | None,
    client: bool,
    server: bool,
    current: bool,
    parent_traceparent: str | None,
) -> Iterator[Span]:
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    kind = SpanKind.CLIENT if client else SpanKind.SERVER if server else SpanKind.INTERNAL
    context = None
    if parent_traceparent is not None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        context = TraceContextTextMapPropagator().extract({"traceparent": parent_traceparent})
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    started = tracer.start_span(name, context=context, kind=kind, attributes=attrs)
    token = None
    if current:
        token = trace.context_api.attach(trace.set_span_in_context(started))
    try:
        yield started
    except GeneratorExit:  # the consumer of a generator stopped early: not a failure
        raise
    except BaseException as exc:
        started.set_attribute("error.type", str(getattr(exc, "code", None) or type(exc).__name__))
        started.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
        raise
    finally:
        if token is not None:
            trace.context_api.detach(token)
        started.end()


def mark_error(target: Span | _NoSpan, code: str, message: str = "") -> None:
    """Record a failure that is a value, not an exception (a failed turn, a failed variant)."""
    if not target.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    target.set_attribute("error.type", code)
    target.set_status(Status(StatusCode.ERROR, message[:200]))  # type: ignore[union-attr]


# -- request ids -------------------------------------------------------------------------


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """``(trace_id, parent_span_id)`` of a valid W3C ``traceparent``, else ``None``."""
    if not value:
        return None
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    trace_id, span_id = parts[1].lower(), parts[2].lower()
    try:
        int(trace_id, 16), int(span_id, 16)
    except ValueError:
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def new_request_ids(request_id: str | None, traceparent: str | None) -> RequestIds:
    """Ids for a request that starts now (before any span), continuing an incoming trace.

    ``request_id`` is the client's ``X-Request-Id`` when it is a sane token, else the trace id.
    """
    parsed = parse_traceparent(traceparent) if traceparent else None
    # Random, not secret (as OpenTelemetry's own id generator): getrandbits costs no syscall.
    trace_id = parsed[0] if parsed else f"{random.getrandbits(128):032x}"
    if not (request_id and len(request_id) <= 128 and request_id.isprintable()):
        request_id = trace_id
    return RequestIds(request_id, trace_id, f"{random.getrandbits(64):016x}")


def bind_request(ids: RequestIds) -> contextvars.Token[RequestIds | None]:
    return _request.set(ids)


def unbind_request(token: contextvars.Token[RequestIds | None]) -> None:
    _request.reset(token)


def request_ids() -> RequestIds | None:
    """The ids of the request being served (also inside tasks it started)."""
    return _request.get()


def current_trace_id() -> str | None:
    """The trace id to record for work starting now: the current span's, else the request's."""
    if _state.tracer is not None:
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            return trace.format_trace_id(context.trace_id)
    ids = _request.get()
    return ids.trace_id if ids else None


def span_ids(target: Span | _NoSpan) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a recording span, as hex."""
    if not target.is_recording():
        return None
    from opentelemetry import trace

    context = target.get_span_context()  # type: ignore[union-attr]
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
