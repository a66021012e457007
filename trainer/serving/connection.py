"""What the HTTP shell watches on a connection besides its bytes: two clocks and the peer.

- `DeadlineReader`: the socket's own timeout bounds each read, so a client that
  trickles a byte a second never trips it; this reader adds a deadline for a
  whole request, counted from its first byte, next to the idle wait between
  requests.
- `HangupWatcher`: while a player thinks, nobody reads the socket, so nobody
  notices that the client closed it; one thread per server polls the sockets
  of the requests in progress and fires an event the player's search checks
  (`agents.stopping`).
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import threading
import time
from collections.abc import Iterator


class DeadlineReader(io.RawIOBase):
    """The connection's bytes, with two clocks: up to `idle_s` for the first byte of a
    request, then `request_s` for all of it, however slowly the bytes come (the socket's
    own timeout only bounds each read). `TimeoutError` when either runs out."""

    def __init__(self, sock: socket.socket, idle_s: float, request_s: float):
        self.sock, self.idle_s, self.request_s = sock, idle_s, request_s
        self.deadline: float | None = None
        self.started: float | None = None
        """`time.perf_counter()` when the current request's first byte arrived."""
        self.expired = False

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        """Restart the clocks: the next byte read begins a new request."""
        self.deadline = self.started = None
        self.sock.settimeout(self.idle_s)

    def readinto(self, buffer) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.expired = True
                raise TimeoutError(f"request not complete within {self.request_s:g} s")
            self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(buffer)
        except TimeoutError:
            self.expired = self.deadline is not None
            raise
        if n and self.deadline is None:
            self.deadline = time.monotonic() + self.request_s
            self.started = time.perf_counter()
        return n


class HangupWatcher:
    """Fires an event when the client of a request being answered closes its connection.

    One thread per server polls the sockets of the requests in progress (a handler
    does not read its socket while the player thinks): readable with nothing to
    peek at means the peer closed. It sleeps while no request is in progress.
    """

    POLL_S = 0.05

    def __init__(self) -> None:
        self._watched: dict[int, tuple[socket.socket, threading.Event]] = {}
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="hangup-watcher", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def watching(self, sock: socket.socket) -> Iterator[threading.Event]:
        """An event set if the peer of `sock` hangs up before the block ends."""
        event, fd = threading.Event(), sock.fileno()
        with self._wake:
            self._watched[fd] = (sock, event)
            self._wake.notify()
        try:
            yield event
        finally:
            with self._wake:
                self._watched.pop(fd, None)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._watched and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                watched = dict(self._watched)
            poller = select.poll()
            for fd in watched:
                poller.register(fd, select.POLLIN | select.POLLRDHUP | select.POLLHUP)
            for fd, _ in poller.poll(self.POLL_S * 1000):
                sock, event = watched[fd]
                try:
                    gone = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    gone = False
                except OSError:
                    gone = True
                with self._wake:
                    if gone:
                        event.set()
                    self._watched.pop(fd, None)  # gone, or already sending its next request
            time.sleep(self.POLL_S if not watched else 0)
