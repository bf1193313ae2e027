"""A canned Anthropic upstream (a TEST DOUBLE) for throughput and streaming benchmarks.

``cerver mock-upstream`` is a FastAPI app with scripts, a request log and pacing: about a
millisecond of CPU per request, and more per paced chunk, which on a 2-core machine takes part
of the core a second gateway worker would use. This one answers every ``POST …/messages``
with the same Messages API answer, built once, streamed (server-sent events) when the request
asks for a stream and as JSON otherwise, and ``GET /_mock/health`` with ``ok``; anything else
gets 404. Every path of a benchmark that uses it reaches the same upstream.

By default the answer is one short sentence, sent at once. With ``--deltas N --gap-ms G`` a
streamed answer is ``N`` text deltas sent ``G`` ms apart (``bench.streams``).

    python -m bench._canned_upstream PORT [--deltas N --gap-ms G]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import socket

import orjson

__all__ = ["ANSWER", "serve"]

ANSWER = "[canned upstream, a test double] Hello! This answer is the same for every request."
_MODEL = "claude-sonnet-4-6"
_USAGE = {"input_tokens": 12, "output_tokens": 18}
_MESSAGE = {
    "id": "msg_canned",
    "type": "message",
    "role": "assistant",
    "model": _MODEL,
    "stop_reason": "end_turn",
    "stop_sequence": None,
}


def _sent(name: str, data: dict) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"


def _stream(pieces: list[str]) -> tuple[bytes, list[bytes], bytes]:
    """A streamed answer of ``pieces``: the events before the deltas, each delta's event,
    the events after them."""
    before = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **_MESSAGE,
                    "content": [],
                    "stop_reason": None,
                    "usage": {**_USAGE, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    deltas = [
        _sent(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            },
        )
        for piece in pieces
    ]
    after = [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": _USAGE["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(_sent(*e) for e in before), deltas, b"".join(_sent(*e) for e in after)


def _sentence() -> list[str]:
    words = ANSWER.split(" ")
    pieces = [" ".join(words[i : i + 3]) + " " for i in range(0, len(words), 3)]
    pieces[-1] = pieces[-1].rstrip()
    return pieces


def _head(status: str, content_type: str, length: int) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def _response(status: str, content_type: str, body: bytes) -> bytes:
    return _head(status, content_type, len(body)) + body


_JSON = _response(
    "200 OK",
    "application/json",
    orjson.dumps({**_MESSAGE, "content": [{"type": "text", "text": ANSWER}], "usage": _USAGE}),
)
_HEALTH = _response("200 OK", "text/plain", b"ok")
_NOT_FOUND = _response("404 Not Found", "text/plain", b"the canned upstream serves /v1/messages")


class _Streamed:
    """The streamed answer: ``deltas`` text deltas ``gap_ms`` apart (all at once when 0)."""

    def __init__(self, pieces: list[str], gap_ms: float) -> None:
        self._before, self._deltas, self._after = _stream(pieces)
        self._gap = gap_ms / 1000
        length = len(self._before) + sum(map(len, self._deltas)) + len(self._after)
        self._head = _head("200 OK", "text/event-stream", length)
        self._whole = self._head + self._before + b"".join(self._deltas) + self._after

    async def send(self, writer: asyncio.StreamWriter) -> None:
        if not self._gap:
            writer.write(self._whole)
            return
        writer.write(self._head + self._before)
        for delta in self._deltas:
            await asyncio.sleep(self._gap)
            writer.write(delta)
        writer.write(self._after)


async def _serve_connection(
    streamed: _Streamed, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            length = 0
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if method == "POST" and path.split("?", 1)[0].endswith("/messages"):
                wants_stream = bool(body) and orjson.loads(body).get("stream") is True
                if wants_stream:
                    await streamed.send(writer)
                else:
                    writer.write(_JSON)
            elif method == "GET" and path == "/_mock/health":
                writer.write(_HEALTH)
            else:
                writer.write(_NOT_FOUND)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int, *, deltas: int | None = None, gap_ms: float = 0) -> None:
    """Serve on ``127.0.0.1:port`` until cancelled; a streamed answer is ``deltas`` text
    deltas ``gap_ms`` apart (default: the short sentence, at once)."""
    streamed = _Streamed(_sentence() if deltas is None else ["tok "] * deltas, gap_ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    serve_connection = functools.partial(_serve_connection, streamed)
    server = await asyncio.start_server(serve_connection, sock=sock, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--deltas", type=int, help="text deltas per streamed answer")
    parser.add_argument("--gap-ms", type=float, default=0, help="between two deltas")
    args = parser.parse_args()
    print("Canned Anthropic upstream: a TEST DOUBLE, not a model provider.", flush=True)
    asyncio.run(serve(args.port, deltas=args.deltas, gap_ms=args.gap_ms))


if __name__ == "__main__":
    main()
