"""Egress for local sandboxes: an HTTP proxy that reaches allow-listed hosts and no others.

A local sandbox never shares the host's network: even one whose session may use the network
has only a loopback interface. When the gateway allows egress (``CERVER_SANDBOX_EGRESS``,
an allow-list), its commands reach the outside through this proxy, served by the gateway on
a unix socket that the sandbox sees read-only, and bridged to ``127.0.0.1:<port>`` inside by
the same forwarder the model proxy uses (:mod:`compute._proxy_bridge`); ``HTTP_PROXY``,
``HTTPS_PROXY`` and ``ALL_PROXY`` point at it.

The proxy speaks ``CONNECT host:port`` (HTTPS, any TLS) and absolute-URI HTTP requests. A
request is refused with 403 unless its host matches the allow-list *and* every address it
resolves to is public (:meth:`ipaddress.IPv4Address.is_global`): loopback, private, link-local
(cloud metadata) and the host's own services are never reachable, whatever a name resolves
to. The checked address is the one connected to, so DNS cannot be rebound in between.

Allow-list entries: ``host`` or ``host:port``; ``*.example.com`` matches its subdomains; an
entry without a port allows 80 and 443.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import ipaddress
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from compute._proxy_bridge import forwarder_prelude

__all__ = ["EGRESS_URL_VARIABLE", "EgressProxy", "allowed", "egress_prelude", "public_address"]

log = logging.getLogger("cerver.compute.egress")

SETTING: Final = "CERVER_SANDBOX_EGRESS"
EGRESS_URL_VARIABLE: Final = "CERVER_EGRESS_URL"
"""Shell variable holding the proxy's URL inside the sandbox."""
_DEFAULT_PORTS: Final = (80, 443)
_HEAD_LIMIT: Final = 64 * 1024
_HEAD_TIMEOUT_S: Final = 30.0
_CONNECT_TIMEOUT_S: Final = 10.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def public_address(address: Address) -> bool:
    """Whether a sandbox may connect to ``address``: only public ones."""
    return address.is_global and not address.is_multicast


def allowed(allow: Sequence[str], host: str, port: int) -> bool:
    """Whether ``host:port`` matches an entry of the allow-list (case-insensitive)."""
    host = host.lower().rstrip(".")
    for entry in allow:
        pattern, _, entry_port = entry.lower().rpartition(":")
        if not pattern or not entry_port.isdigit():
            pattern, ports = entry.lower(), _DEFAULT_PORTS
        else:
            ports = (int(entry_port),)
        if port in ports and (
            host == pattern or (pattern.startswith("*.") and fnmatch.fnmatch(host, pattern))
        ):
            return True
    return False


def _split_target(target: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port`` → host and port."""
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif target.count(":") == 1:
        host, _, port = target.partition(":")
    else:
        host, port = target, ""
    return host, int(port) if port.isdigit() else default_port


def egress_prelude(socket_path: str) -> str:
    """Shell lines that bridge the proxy into the sandbox and point the proxy variables at it.

    ``NO_PROXY`` keeps ``127.0.0.1`` direct, so the model proxy's own forwarder (which is
    reached by address) still works; names, ``localhost`` included, go to the proxy.
    """
    variables = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    url = f"${EGRESS_URL_VARIABLE}"
    exports = " ".join(f"{v}={url} {v.lower()}={url}" for v in variables)
    return "\n".join(
        [
            forwarder_prelude(socket_path, "/tmp/.cerver-egress.port", EGRESS_URL_VARIABLE),
            f"export {exports} NO_PROXY=127.0.0.1,::1 no_proxy=127.0.0.1,::1",
            "",
        ]
    )


class EgressProxy:
    """The gateway side: an HTTP proxy on a unix socket in its own small directory.

    Args:
        allow: the allow-list (see the module docstring).
        address_ok: which resolved addresses may be connected to; :func:`public_address`
            (tests pass a wider check to reach a local test server).
    """

    def __init__(
        self, allow: Sequence[str], *, address_ok: Callable[[Address], bool] = public_address
    ) -> None:
        self.allow = tuple(allow)
        self._address_ok = address_ok
        self.directory = Path(tempfile.mkdtemp(prefix="cerver-egress-"))
        self.directory.chmod(0o755)
        self.socket_path = self.directory / "egress.sock"
        self._server: asyncio.AbstractServer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Serve (once; later calls return at once)."""
        async with self._lock:
            if self._server is None:
                self._server = await asyncio.start_unix_server(
                    self._handle, path=str(self.socket_path)
                )
                # The sandbox's user must be able to connect (it may be another uid).
                os.chmod(self.socket_path, 0o777)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
            self.directory.rmdir()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        if len(head) > _HEAD_LIMIT:
            return await self._refuse(writer, 431, "request head too large")
        request_line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("ascii").split(" ")
        except ValueError:
            return await self._refuse(writer, 400, "not an HTTP proxy request")
        if method == "CONNECT":
            host, port = _split_target(target, 443)
            forward = b""
        elif target.startswith("http://"):
            authority, _, path = target[len("http://") :].partition("/")
            host, port = _split_target(authority, 80)
            forward = f"{method} /{path} {version}\r\n".encode() + rest
        else:
            return await self._refuse(writer, 400, "use an absolute http:// URL or CONNECT")
        await self._relay(reader, writer, host, port, method == "CONNECT", forward)

    async def _relay(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        tunnel: bool,
        forward: bytes,
    ) -> None:
        if not allowed(self.allow, host, port):
            return await self._refuse(
                writer, 403, f"{host}:{port} is not in the gateway's egress allow-list ({SETTING})"
            )
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=0, proto=6)
        except OSError as exc:
            return await self._refuse(writer, 502, f"cannot resolve {host}: {exc}")
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
        if not addresses or not all(self._address_ok(a) for a in addresses):
            return await self._refuse(
                writer, 403, f"{host} resolves to a non-public address; sandboxes never reach it"
            )
        address = str(sorted(addresses, key=lambda a: a.version)[0])
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                up_reader, up_writer = await asyncio.open_connection(address, port)
        except (OSError, TimeoutError) as exc:
            return await self._refuse(writer, 502, f"cannot connect to {host}:{port}: {exc}")
        if tunnel:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(forward)
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
        log.info("Sandbox egress refused: %s", reason)
        body = f"cerver: {reason}\n".encode()
        writer.write(
            f"HTTP/1.1 {status} Refused\r\ncontent-type: text/plain\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(OSError):
            await writer.drain()
        writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        pass
