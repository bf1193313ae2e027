"""The mutable part of a mock upstream: the script queue, the request log, stored responses.

One :class:`MockState` is shared by the server's event loop and the test that drives it, so
every method takes a lock; none of them blocks for longer than a list operation.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from typing import Any

from cerver.providers import fingerprint
from cerver.testing.mock_upstream.script import Reply

__all__ = ["REDACTED", "MockState", "key_fingerprint", "redact_headers"]

REDACTED = "<redacted>"
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "cookie", "api-key"}
)
_MAX_STORED_RESPONSES = 1000


class MockState:
    """A FIFO of scripted replies and a log of the model requests received.

    Log entries are dicts ``{id, time, path, query, api, model, stream, headers,
    key_fingerprint, body}``: ``id`` counts from ``req_1``; ``time`` is a Unix timestamp;
    header names are lower-cased and secret values (``authorization``, ``x-api-key``, cookies)
    read ``"<redacted>"``, so a test sees that a key was sent but never the key;
    ``key_fingerprint`` (:func:`cerver.providers.fingerprint` of the key the request
    presented, or ``None``) tells a test *which* key it was.

    Args:
        max_logged: keep only the newest this many log entries, so that a long benchmark
            holds memory flat (``None``: keep all).
    """

    def __init__(self, *, max_logged: int | None = 10_000) -> None:
        self._lock = threading.Lock()
        self._replies: list[Reply] = []
        self._log: deque[dict[str, Any]] = deque(maxlen=max_logged)
        self._count = 0
        self._responses: OrderedDict[str, list[Any]] = OrderedDict()

    def script(self, *replies: Reply | Mapping[str, Any]) -> None:
        """Append replies to the queue (dicts are validated as :class:`Reply`)."""
        parsed = [r if isinstance(r, Reply) else Reply.model_validate(r) for r in replies]
        with self._lock:
            self._replies.extend(parsed)

    def take(self, model: str) -> Reply | None:
        """Remove and return the oldest reply whose ``model`` pattern matches ``model``."""
        with self._lock:
            for index, reply in enumerate(self._replies):
                if reply.model is None or fnmatch.fnmatchcase(model, reply.model):
                    return self._replies.pop(index)
        return None

    @property
    def pending(self) -> list[Reply]:
        """The replies still queued, oldest first."""
        with self._lock:
            return list(self._replies)

    def record(
        self,
        *,
        path: str,
        query: str,
        api: str,
        model: str | None,
        stream: bool,
        headers: Iterable[tuple[str, str]],
        body: Any,
    ) -> dict[str, Any]:
        """Log one model request and return its entry."""
        headers = list(headers)
        entry = {
            "path": path,
            "query": query,
            "api": api,
            "model": model,
            "stream": stream,
            "headers": redact_headers(headers),
            "key_fingerprint": key_fingerprint(headers),
            "body": body,
        }
        with self._lock:
            self._count += 1
            entry = {"id": f"req_{self._count}", "time": time.time(), **entry}
            self._log.append(entry)
        return entry

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (a copy)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> int:
        """Empty the request log; returns how many entries it held."""
        with self._lock:
            count = len(self._log)
            self._log.clear()
            return count

    def reset(self) -> None:
        """Forget everything: the queue, the log, the stored responses, the id counter."""
        with self._lock:
            self._replies.clear()
            self._log.clear()
            self._responses.clear()
            self._count = 0

    def remember_response(self, response_id: str, items: list[Any]) -> None:
        """Keep a response's full conversation for ``previous_response_id`` (newest 1000)."""
        with self._lock:
            self._responses[response_id] = items
            while len(self._responses) > _MAX_STORED_RESPONSES:
                self._responses.popitem(last=False)

    def recall_response(self, response_id: str) -> list[Any] | None:
        with self._lock:
            return self._responses.get(response_id)


def key_fingerprint(headers: Iterable[tuple[str, str]]) -> str | None:
    """The fingerprint of the API key a request presented (any provider's header)."""
    found = {name.lower(): value for name, value in headers}
    for name in ("x-api-key", "x-goog-api-key", "api-key", "authorization"):
        if value := found.get(name):
            scheme, _, rest = value.partition(" ")
            return fingerprint(rest.strip() if scheme.lower() == "bearer" and rest else value)
    return None


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case header names; replace the values of secret headers by ``"<redacted>"``."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        result[key] = REDACTED if key in _SECRET_HEADERS else value
    return result
