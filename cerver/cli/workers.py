"""``cerver serve --workers N``: N gateway processes on one listening socket and one store.

The parent does the store's first-start work once (:meth:`Gateway.prepare`: migrations, the
secret key, the admin account), so N workers starting together never race on it; it then binds
the socket and spawns N workers (a fresh interpreter each: no thread, lock or event loop is
inherited). Each worker is a whole gateway process, as one replica behind a load balancer is.
What must hold across them already holds across replicas:

* per-session ordering: a turn's lock is a lease on the session row, taken by compare-and-set
  in the store (:meth:`SessionStore.try_lock`); each writer numbers rows from the counters the
  lock handed it and writes only while it still holds the lock;
* dead runs: each process's reaper ends runs whose lease ran out, with conditional statements
  (exactly one process acts); live runs renew their lease;
* SQLite: WAL mode; writers of every process queue on one advisory lock file next to the
  database (:mod:`cerver.store.database`), so they take turns rather than fail; caches (the
  transcript cache) are checked against the row's ``next_seq`` under the lock, so another
  process's appends are seen.

Signals: each worker runs in its own process group, so a terminal's Ctrl-C reaches only the
parent, which passes every SIGTERM/SIGINT on to the workers as SIGTERM: the first drains them
(as ``cerver serve`` alone drains), a second skips the rest of the drain. A worker whose parent
died drains itself. A worker that dies after it started is replaced; one that never started
(a bad configuration fails the same way every time) stops the whole server.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from cerver.cli.serving import STARTUP_FAILURE, ServeOptions, serve_gateway

__all__ = ["Supervisor", "listening_sockets"]

log = logging.getLogger("cerver.workers")

_TICK_S = 0.2
_PARENT_CHECK_S = 1.0


class Supervisor:
    """Starts ``options.workers`` workers on ``sockets`` and keeps them running until a signal.

    :meth:`run` returns the process's exit code: 0 after a signal, :data:`STARTUP_FAILURE`
    when a worker could not start.
    """

    def __init__(self, options: ServeOptions, sockets: list[socket.socket]) -> None:
        """``sockets``: one listening socket per worker (``SO_REUSEPORT``, see
        :func:`listening_sockets`), or a single one that all workers share."""
        self._options = options
        self._sockets = sockets
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self._signals: list[int] = []

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self._workers = [self._spawn(i) for i in range(self._options.workers)]
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for worker in self._workers:
                worker.join(timeout=0)

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        self._signals.append(sig)

    def _spawn(self, slot: int) -> BaseProcess:
        """Start the worker of ``slot`` (a replacement takes over its slot's socket, and the
        connections queued on it meanwhile)."""
        sock = self._sockets[slot % len(self._sockets)]
        worker = self._context.Process(
            target=_worker_main,
            args=(self._options, [sock], os.getpid()),
            name="cerver-worker",
        )
        worker.start()
        return worker

    def _supervise(self) -> int:
        stopping = False
        code = 0
        while True:
            while self._signals:
                self._signals.pop(0)
                stopping = True
                self._signal_all(signal.SIGTERM)
            if stopping:
                if not any(w.is_alive() for w in self._workers):
                    return code
            else:
                for i, worker in enumerate(self._workers):
                    if worker.is_alive():
                        continue
                    if worker.exitcode == STARTUP_FAILURE:
                        log.error("A worker could not start; stopping the others.")
                        stopping, code = True, STARTUP_FAILURE
                        self._signal_all(signal.SIGTERM)
                        break
                    log.warning(
                        "Worker %s exited with code %s; starting another.",
                        worker.pid,
                        worker.exitcode,
                    )
                    self._workers[i] = self._spawn(i)
            time.sleep(_TICK_S)

    def _signal_all(self, sig: int) -> None:
        for worker in self._workers:
            if worker.is_alive() and worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                    os.kill(worker.pid, sig)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets bound to ``host:port`` with ``SO_REUSEPORT``, one per worker, so the
    kernel spreads new connections evenly over the workers; where the platform has no
    ``SO_REUSEPORT``, one socket that the workers share.

    With one shared socket, the worker whose event loop is idle first accepts every
    connection waiting, so a client's pool of keep-alive connections can all land on one
    worker and the others idle (measured: 2 workers no faster than one).

    Raises:
        OSError: the address is taken or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    if reuse_port:
        # SO_REUSEPORT would also let this server share a port another one (of this user)
        # holds: a plain bind first fails if anyone holds the port.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if reuse_port else 1):
            # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections of
            # a socket that says it is TCP. Without it Nagle's algorithm held a response's
            # last segment until the client's delayed ACK: about 40 ms on every answer.
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _worker_main(options: ServeOptions, sockets: list[socket.socket], parent: int) -> None:
    """A worker: its own process group (signals come from the parent), a watch on the parent,
    then one gateway serving on the parent's sockets."""
    os.setpgid(0, 0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    started = serve_gateway(options, sockets=sockets)
    sys.exit(0 if started else STARTUP_FAILURE)


def _watch_parent(parent: int) -> None:
    """Drain this worker if the parent died (it can no longer pass signals on)."""
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_S)
    os.kill(os.getpid(), signal.SIGTERM)
