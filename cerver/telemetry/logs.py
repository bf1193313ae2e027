"""Structured logs: one JSON object per line when stderr is not a terminal.

Every record carries the ids of the request it belongs to (``request_id``, ``trace_id``), read
from the request context, so a run's lines and its request's access line join up. Fields come
from ``extra={"fields": {...}}``; nothing else of the request (no headers, no query string, no
body) is ever logged, so a key or a run token cannot reach a log line.

``cerver serve`` calls :func:`configure`; a gateway embedded in another application leaves
logging to it and still gets the fields on its records.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from cerver.telemetry import tracing

__all__ = ["JsonFormatter", "TextFormatter", "configure", "fields_of"]

_HANDLER_NAME = "cerver-structured"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record``: its ``fields`` extra, plus the request's ids."""
    fields: dict[str, Any] = {}
    ids = tracing.request_ids()
    if ids is not None:
        fields["request_id"] = ids.request_id
        fields["trace_id"] = ids.trace_id
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        fields.update(extra)
    return fields


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "pid", "msg", …fields, "exc"?}`` on one line (``pid``
    tells the processes of ``cerver serve --workers N`` apart)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """For a terminal: the message, then ``key=value`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = fields_of(record)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def configure(level: int | str = logging.INFO, *, stream: TextIO | None = None) -> None:
    """Log ``cerver.*`` records to ``stream`` (stderr): JSON unless it is a terminal.

    Idempotent: a second call replaces the handler it installed.
    """
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    is_tty = getattr(stream, "isatty", lambda: False)()
    handler.setFormatter(TextFormatter() if is_tty else JsonFormatter())
    logger = logging.getLogger("cerver")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
