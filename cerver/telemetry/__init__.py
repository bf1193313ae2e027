"""What a gateway tells the people who run it: Prometheus metrics, OpenTelemetry traces and
structured logs.

Each concern is one module, called from a few central points (the turn service, the metered
sandbox, placement, the model proxy, fan-out, the harness tool loop) and never from route
handlers. None of them needs a gateway object, so plug-ins may record through them too, and
none of them ever puts a secret or an end user's text in a label.
"""

from cerver.telemetry import logs, metrics, tracing

__all__ = ["logs", "metrics", "tracing"]
