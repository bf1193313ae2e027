"""How a CLI inside a local sandbox reaches the model proxy, and nothing else.

A local sandbox has its own network namespace with only a loopback interface (bubblewrap
``--unshare-net``): no internet, no host services (the database, the gateway's API). The
gateway serves the model proxy, and only it, on a unix socket (``cerver.proxy.listener``)
whose directory every local sandbox sees read-only at the same path (``LocalCompute``'s
``shared`` directories). A CLI speaks TCP, so the command that runs it first starts
:data:`FORWARDER`, a stdlib-only Python relay listening on ``127.0.0.1:<free port>`` inside
the sandbox and copying each connection to the socket. It lives in the command's process
group and dies with it.

Without bubblewrap (isolation ``none``) the same relay runs on the host's loopback: the CLI
still reaches its model only through the proxy, but nothing stops it from reaching more.
"""

from __future__ import annotations

import shlex
from typing import Final

__all__ = ["FORWARDER", "FORWARDER_FAILED_EXIT", "PROXY_URL_VARIABLE", "forwarder_prelude"]

FORWARDER_FAILED_EXIT: Final = 97
"""Exit code of a command whose forwarder did not start within 5 s."""

PROXY_URL_VARIABLE: Final = "CERVER_PROXY_URL"
"""Shell variable holding ``http://127.0.0.1:<port>`` once the prelude has run."""

FORWARDER: Final = """\
import asyncio, os, sys

SOCKET, PORT_FILE = sys.argv[1], sys.argv[2]


async def pump(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        pass


async def relay(reader, writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(SOCKET)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))
    for w in (writer, upstream_writer):
        w.close()


async def main():
    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    with open(PORT_FILE + ".tmp", "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.replace(PORT_FILE + ".tmp", PORT_FILE)
    await server.serve_forever()


asyncio.run(main())
"""


def forwarder_prelude(socket_path: str, port_file: str, variable: str = PROXY_URL_VARIABLE) -> str:
    """Shell lines that start the forwarder and set ``variable`` to its URL.

    Args:
        socket_path: the proxy's unix socket (the same path inside and outside).
        port_file: a writable path (in the run's directory) where the forwarder reports its
            port; it is removed first.
        variable: the shell variable to set (:data:`PROXY_URL_VARIABLE` by default).

    The lines exit with :data:`FORWARDER_FAILED_EXIT` and a message on stderr when the
    forwarder has not reported a port after 5 s.
    """
    sock, port = shlex.quote(socket_path), shlex.quote(port_file)
    return "\n".join(
        [
            f"rm -f {port}",
            f"python3 -c {shlex.quote(FORWARDER)} {sock} {port} &",
            f"for _ in $(seq 250); do [ -s {port} ] && break; sleep 0.02; done",
            f"[ -s {port} ] || {{ echo 'cerver: the proxy forwarder did not start' >&2; "
            f"exit {FORWARDER_FAILED_EXIT}; }}",
            f'{variable}="http://127.0.0.1:$(cat {port})"',
        ]
    )
