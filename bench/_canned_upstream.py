"""A canned Anthropic upstream (a TEST DOUBLE) for throughput benchmarks.

``cerver mock-upstream`` is a FastAPI app with scripts, a request log and pacing: about a
millisecond of CPU per request, which on a 2-core machine takes part of the core a second
gateway worker would use. This one answers every ``POST …/messages`` with the same short
Messages API answer, built once, streamed (server-sent events) when the request asks for a
stream and as JSON otherwise, and ``GET /_mock/health`` with ``ok``; anything else gets 404.
Every path of a benchmark that uses it reaches the same upstream.

    python -m bench._canned_upstream PORT
"""

from __future__ import annotations

import asyncio
import socket
import sys

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


def _events() -> bytes:
    words = ANSWER.split(" ")
    pieces = [" ".join(words[i : i + 3]) + " " for i in range(0, len(words), 3)]
    pieces[-1] = pieces[-1].rstrip()
    events: list[tuple[str, dict]] = [
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
        *(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            for piece in pieces
        ),
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
    return b"".join(
        f"event: {name}\n".encode() + b"data: " + orjson.dumps(data) + b"\n\n"
        for name, data in events
    )


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


_STREAM = _response("200 OK", "text/event-stream", _events())
_JSON = _response(
    "200 OK",
    "application/json",
    orjson.dumps({**_MESSAGE, "content": [{"type": "text", "text": ANSWER}], "usage": _USAGE}),
)
_HEALTH = _response("200 OK", "text/plain", b"ok")
_NOT_FOUND = _response("404 Not Found", "text/plain", b"the canned upstream serves /v1/messages")


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                writer.write(_STREAM if wants_stream else _JSON)
            elif method == "GET" and path == "/_mock/health":
                writer.write(_HEALTH)
            else:
                writer.write(_NOT_FOUND)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    """Serve on ``127.0.0.1:port`` until cancelled."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await asyncio.start_server(_serve_connection, sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    print("Canned Anthropic upstream: a TEST DOUBLE, not a model provider.", flush=True)
    asyncio.run(serve(int(sys.argv[1])))
