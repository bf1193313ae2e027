"""Python clients for a Cerver gateway: :class:`AsyncClient` and its blocking twin :class:`Client`.

Errors come back as the gateway's own exception classes (``cerver.errors``): a missing session
raises :class:`~cerver.errors.NotFound`, a busy one :class:`~cerver.errors.SessionBusy`, with the
server's ``code`` and ``context``.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from cerver import errors
from cerver.event_stream import read_events

__all__ = ["AsyncClient", "Client", "ServerEvent"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One server-sent event; ``data`` is decoded JSON."""

    event: str
    data: Any
    id: int | None = None


def _raise_for_error(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text or response.reason_phrase}
    detail = body.get("detail")
    message = detail if isinstance(detail, str) else json.dumps(detail)
    try:  # the gateway's error body: the exception its code names
        cls = errors.error_class(body.get("code", ""))
    except ValueError:  # not a Cerver body (a proxy in front), or a code newer than this client
        cls = errors.UserError if response.status_code < 500 else errors.RunFailure
    error = cls(
        f"{message} (HTTP {response.status_code})",
        context=body.get("context"),
        retryable=body.get("retryable"),
    )
    error.status_code = response.status_code
    raise error


async def _iter_sse(response: httpx.Response) -> AsyncIterator[ServerEvent]:
    async for sent in read_events(response.aiter_lines()):
        event_id = int(sent.id) if sent.id is not None else None
        yield ServerEvent(sent.event, json.loads(sent.data), event_id)


class AsyncClient:
    """Async client.

    Args:
        base_url: the gateway, default ``$CERVER_URL`` or ``http://127.0.0.1:8787``.
        api_key: a ``ck_…`` key, default ``$CERVER_API_KEY``.
        timeout: seconds per request (turns can take minutes; streams have no read timeout).
        transport: an httpx transport (e.g. ``httpx.ASGITransport(app)`` in tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        api_key = api_key or os.environ.get("CERVER_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url or os.environ.get("CERVER_URL", "http://127.0.0.1:8787"),
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        _raise_for_error(response)
        return None if response.status_code == 204 else response.json()

    async def _stream(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[ServerEvent]:
        headers = {"Accept": "text/event-stream", **kwargs.pop("headers", {})}
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        async with self._http.stream(
            method, path, headers=headers, timeout=timeout, **kwargs
        ) as response:
            if not response.is_success:
                await response.aread()
                _raise_for_error(response)
            async for event in _iter_sse(response):
                yield event

    # -- accounts ----------------------------------------------------------------------------

    async def account(self) -> dict[str, Any]:
        return await self._request("GET", "/v2/auth/account")

    async def create_account(self, name: str) -> dict[str, Any]:
        return await self._request("POST", "/v2/accounts", json={"name": name})

    async def list_keys(self) -> list[dict[str, Any]]:
        return await self._request("GET", "/v2/auth/keys")

    async def create_key(self, name: str = "default") -> dict[str, Any]:
        return await self._request("POST", "/v2/auth/keys", json={"name": name})

    async def revoke_key(self, prefix: str) -> None:
        await self._request("DELETE", f"/v2/auth/keys/{prefix}")

    # -- routing policy, budgets, usage --------------------------------------------------------

    async def routing_policy(self) -> dict[str, Any]:
        return await self._request("GET", "/v2/account/routing-policy")

    async def set_routing_policy(self, policy: str | dict[str, Any] | None) -> dict[str, Any]:
        """Set the account's routing policy: a document, a preset name, or ``None`` to clear."""
        body = {"routing_policy": policy}
        return await self._request("PUT", "/v2/account/routing-policy", json=body)

    async def budgets(self) -> dict[str, Any]:
        return await self._request("GET", "/v2/account/budgets")

    async def set_budgets(
        self,
        *,
        default_user_max_cost_usd: float | None = None,
        users: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        body = {"default_user_max_cost_usd": default_user_max_cost_usd, "users": users or {}}
        return await self._request("PUT", "/v2/account/budgets", json=body)

    async def usage(
        self,
        group_by: str = "user",
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Spend and tokens grouped by ``user``, ``model``, ``harness``, ``provider``, ``day``
        or ``session`` (``GET /v2/usage``)."""
        params: dict[str, Any] = {"group_by": group_by}
        for name, value in (("since", since), ("until", until), ("user", user)):
            if value is not None:
                params[name] = value.isoformat() if isinstance(value, datetime) else value
        return await self._request("GET", "/v2/usage", params=params)

    # -- sessions ----------------------------------------------------------------------------

    async def create_session(self, **fields: Any) -> dict[str, Any]:
        """Create a session; ``fields`` are the body of ``POST /v2/sessions``
        (pass ``compute=None`` for a transcript-only session)."""
        return await self._request("POST", "/v2/sessions", json=fields)

    async def list_sessions(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return await self._request("GET", "/v2/sessions", params=params)

    async def get_session(
        self, session_id: str, *, transcript: bool = False, tail: int | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"transcript": transcript}
        if tail is not None:
            params["tail"] = tail
        return await self._request("GET", f"/v2/sessions/{session_id}", params=params)

    async def messages(
        self, session_id: str, *, after_seq: int = 0, limit: int = 100
    ) -> dict[str, Any]:
        params = {"after_seq": after_seq, "limit": limit}
        return await self._request("GET", f"/v2/sessions/{session_id}/messages", params=params)

    async def append_input(self, session_id: str, content: str, **fields: Any) -> dict[str, Any]:
        body = {"content": content, **fields}
        return await self._request("POST", f"/v2/sessions/{session_id}/input", json=body)

    async def run_llm(self, session_id: str, input: str, **fields: Any) -> dict[str, Any]:
        body = {"input": input, **fields, "stream": False}
        return await self._request("POST", f"/v2/sessions/{session_id}/run-llm", json=body)

    async def submit_tool_results(
        self, session_id: str, results: list[dict[str, Any]], **fields: Any
    ) -> dict[str, Any]:
        """Answer the pending calls of the app's tools (``{tool_call_id, output,
        is_error}`` each); the turn continues and its result is returned."""
        body = {"results": results, **fields, "stream": False}
        return await self._request("POST", f"/v2/sessions/{session_id}/tool-results", json=body)

    def stream_llm(self, session_id: str, input: str, **fields: Any) -> AsyncIterator[ServerEvent]:
        body = {"input": input, **fields, "stream": True}
        return self._stream("POST", f"/v2/sessions/{session_id}/run-llm", json=body)

    async def switch_harness(
        self, session_id: str, harness: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        body = {"harness": harness, "model": model}
        return await self._request("POST", f"/v2/sessions/{session_id}/harness", json=body)

    async def metrics(self, session_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v2/sessions/{session_id}/metrics")

    async def close_session(self, session_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/v2/sessions/{session_id}/close")

    async def delete_session(self, session_id: str) -> None:
        await self._request("DELETE", f"/v2/sessions/{session_id}")

    async def list_runs(self, session_id: str, **filters: Any) -> dict[str, Any]:
        return await self._request("GET", f"/v2/sessions/{session_id}/runs", params=filters)

    async def get_run(self, session_id: str, run_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v2/sessions/{session_id}/runs/{run_id}")

    async def cancel_run(self, session_id: str, run_id: str) -> dict[str, Any]:
        """Cancel a running turn (from any replica); returns the run once it ended."""
        return await self._request("POST", f"/v2/sessions/{session_id}/runs/{run_id}/cancel")

    def events(
        self, session_id: str, *, last_event_id: int | None = None, follow: bool = True
    ) -> AsyncIterator[ServerEvent]:
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        params = {"follow": follow}
        return self._stream(
            "GET", f"/v2/sessions/{session_id}/events", headers=headers, params=params
        )

    # -- branches and fan-outs --------------------------------------------------------------

    async def spawn(self, session_id: str, **fields: Any) -> dict[str, Any]:
        """A child session inheriting the transcript; ``fields``: harness, model, compute."""
        return await self._request("POST", f"/v2/sessions/{session_id}/spawn", json=fields)

    async def fork(self, session_id: str, at_seq: int | None = None) -> dict[str, Any]:
        body = {} if at_seq is None else {"at_seq": at_seq}
        return await self._request("POST", f"/v2/sessions/{session_id}/fork", json=body)

    async def fanout(
        self,
        input: str,
        variants: list[dict[str, Any]],
        *,
        session_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Run ``variants`` of ``input`` in parallel and judge them (``judge``, ``keep``…).

        On ``session_id``, or on a new parent session when it is ``None``.
        """
        body = {"input": input, "variants": variants, **fields, "stream": False}
        path = f"/v2/sessions/{session_id}/fanout" if session_id else "/v2/fanouts"
        return await self._request("POST", path, json=body)

    def stream_fanout(
        self,
        input: str,
        variants: list[dict[str, Any]],
        *,
        session_id: str | None = None,
        **fields: Any,
    ) -> AsyncIterator[ServerEvent]:
        """Like :meth:`fanout`, as events ending with ``fanout.completed``."""
        body = {"input": input, "variants": variants, **fields, "stream": True}
        path = f"/v2/sessions/{session_id}/fanout" if session_id else "/v2/fanouts"
        return self._stream("POST", path, json=body)

    async def get_fanout(self, fanout_id: str) -> dict[str, Any]:
        return await self._request("GET", f"/v2/fanouts/{fanout_id}")

    async def cancel_fanout(self, fanout_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/v2/fanouts/{fanout_id}/cancel")

    async def pick(
        self, fanout_id: str, variant_id: str, reason: str | None = None
    ) -> dict[str, Any]:
        body = {"variant_id": variant_id, "reason": reason}
        return await self._request("POST", f"/v2/fanouts/{fanout_id}/pick", json=body)

    # -- compute -----------------------------------------------------------------------------

    async def run(
        self, session_id: str, code: str, *, timeout: float = 60, env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {"code": code, "timeout": timeout, "env": env or {}}
        return await self._request("POST", f"/v2/sessions/{session_id}/run", json=body)

    def run_stream(
        self, session_id: str, code: str, *, timeout: float = 60, env: dict[str, str] | None = None
    ) -> AsyncIterator[ServerEvent]:
        body = {"code": code, "timeout": timeout, "env": env or {}}
        return self._stream("POST", f"/v2/sessions/{session_id}/run/stream", json=body)

    async def write_file(self, session_id: str, path: str, content: str | bytes) -> dict[str, Any]:
        if isinstance(content, bytes):
            import base64

            body = {
                "path": path,
                "content": base64.b64encode(content).decode(),
                "encoding": "base64",
            }
        else:
            body = {"path": path, "content": content}
        return await self._request("PUT", f"/v2/sessions/{session_id}/files", json=body)

    async def read_file(self, session_id: str, path: str) -> dict[str, Any]:
        return await self._request("GET", f"/v2/sessions/{session_id}/files", params={"path": path})

    async def list_files(self, session_id: str, path: str = ".") -> list[str]:
        params = {"path": path, "list": True}
        body = await self._request("GET", f"/v2/sessions/{session_id}/files", params=params)
        return body["files"]

    # -- compute: providers, registered computes, moves, stress tests ----------------------

    async def providers(self) -> list[dict[str, Any]]:
        return (await self._request("GET", "/v2/providers"))["providers"]

    async def register_compute(
        self, label: str, base_url: str, token: str, **fields: Any
    ) -> dict[str, Any]:
        body = {"label": label, "base_url": base_url, "token": token, **fields}
        return await self._request("POST", "/v2/computes/register", json=body)

    async def list_computes(self) -> list[dict[str, Any]]:
        return (await self._request("GET", "/v2/computes"))["computes"]

    async def heartbeat(self, compute_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/v2/computes/{compute_id}/heartbeat")

    async def delete_compute(self, compute_id: str) -> None:
        await self._request("DELETE", f"/v2/computes/{compute_id}")

    async def move_compute(self, session_id: str, **target: Any) -> dict[str, Any]:
        """Move a session to ``provider=…``, ``compute_id=…`` or ``policy={…}``."""
        return await self._request("POST", f"/v2/sessions/{session_id}/compute", json=target)

    async def pause(self, session_id: str) -> dict[str, Any]:
        return await self._request("POST", f"/v2/sessions/{session_id}/pause")

    async def resume(self, session_id: str, **target: Any) -> dict[str, Any]:
        return await self._request("POST", f"/v2/sessions/{session_id}/resume", json=target)

    async def stress_test(self, **body: Any) -> dict[str, Any]:
        return await self._request("POST", "/v2/stress-tests", json=body)


class Client:
    """The blocking client: every :class:`AsyncClient` method, run on a private event loop.

    Streaming methods return ordinary iterators. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, base_url: str | None = None, api_key: str | None = None, **kwargs: Any):
        self._portal_cm = start_blocking_portal()
        self._portal: BlockingPortal = self._portal_cm.__enter__()
        self._async = self._portal.call(_make_async_client, base_url, api_key, kwargs)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._portal.call(self._async.aclose)
        self._portal_cm.__exit__(None, None, None)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._async, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if hasattr(result, "__anext__"):
                return self._iterate(result)
            return self._portal.call(lambda: result)

        return call

    def _iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        while True:
            try:
                yield self._portal.call(iterator.__anext__)
            except StopAsyncIteration:
                return


async def _make_async_client(
    base_url: str | None, api_key: str | None, kwargs: dict
) -> AsyncClient:
    await anyio.lowlevel.checkpoint()
    return AsyncClient(base_url, api_key, **kwargs)
