"""The HTTP shell around `serving.app`: read a bounded body, write one JSON answer.

Standard library only (`http.server.ThreadingHTTPServer`): a move costs tens of
microseconds of HTTP work next to the player's own time, and a thread per
connection lets a slow search in one game leave other games' requests
running. What the shell adds over the stock handler, and why:

- HTTP/1.1 keep-alive, with the whole answer written in one `send` and
  Nagle's algorithm off: the engine reuses its connection every turn, and a
  header/body split would wait out the peer's delayed ACK (40 ms);
- message framing as RFC 9112 section 6.3 asks of a server that may sit behind
  a proxy (request smuggling): one `Content-Length` of ASCII digits, or the
  request is refused (400); `Transfer-Encoding` together with `Content-Length`
  is refused (400), and alone (chunked) gets 411;
- the body limit is checked on `Content-Length` before reading (413), and past
  `max_connections` new connections get 503;
- two clocks per connection: `idle_timeout_s` for the wait between requests,
  and `request_timeout_s` for a whole request from its first byte (headers and
  body), so a client trickling a byte a second cannot hold a slot (408);
- a client that hangs up while its move is being thought about (the game
  engine stopped waiting) stops the thinking (`HangupWatcher`,
  `agents.stopping`): nobody reads that answer;
- the cyclic garbage collector is paused from a thinking player's request
  until its answer is written (`agents.collector`), so a collection due after
  the search runs after the answer, not before it;
- what clients normally do (disconnect, time out, speak another HTTP version)
  is logged as one line, not as an error with a traceback;
- every error, the protocol-level ones included, is JSON naming the field.

Why not an HTTP library: h11 (the standard sans-IO HTTP/1.1 parser) would do
the framing checks above, but the shell would still own the socket loop, both
deadlines and the connection cap, and it is another dependency for what is
here about forty lines over the standard library's parser; the checks are
tested request by request in tests/unit/test_server_hostile.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ouroboros.trainer.agents import stopping
from ouroboros.trainer.agents.collector import COLLECTOR
from ouroboros.trainer.serving import app as app_module
from ouroboros.trainer.serving.connection import DeadlineReader, HangupWatcher

log = logging.getLogger(__name__)


_DIGITS = re.compile(rb"[0-9]{1,18}")
"""A Content-Length as RFC 9110 defines it (1*DIGIT, ASCII), short enough to be an int64."""

CLIENT_ERRORS = (ConnectionError, TimeoutError)
"""What a client's going away or going quiet raises: logged as one line, not a traceback."""


def _json_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class Handler(BaseHTTPRequestHandler):
    """One connection; `self.server.app` answers, this class only moves bytes."""

    protocol_version = "HTTP/1.1"
    server_version = "ouroboros"
    sys_version = ""
    disable_nagle_algorithm = True
    server: BattlesnakeHTTPServer

    def setup(self) -> None:
        settings = self.server.app.settings
        self.timeout = settings.idle_timeout_s
        super().setup()
        self.reader = DeadlineReader(self.connection, settings.idle_timeout_s, settings.request_timeout_s)
        self.rfile = io.BufferedReader(self.reader)

    def handle_one_request(self) -> None:
        self.reader.next_request()
        super().handle_one_request()  # catches TimeoutError and closes the connection
        if self.reader.expired:
            self.reader.expired = False
            log.info("%s: request not complete within %g s; closed", self.address_string(),
                     self.reader.request_s)
            with contextlib.suppress(OSError):
                self.close_connection = True
                self.command = getattr(self, "command", None) or ""
                self._write(408, {"error": f"request: not complete within {self.reader.request_s:g} s",
                                  "field": "request"})

    def _write(self, status: int, payload: dict | bytes, headers: dict | None = None) -> None:
        """The whole answer in one write (status line, headers, body: JSON unless `payload`
        is bytes with its Content-Type in `headers`)."""
        data = payload if isinstance(payload, bytes) else _json_bytes(payload)
        headers = {"Content-Type": "application/json", **(headers or {})}
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(data)}", "Server: ouroboros"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if getattr(self, "command", None) == "HEAD" else head + data)
        if status >= 400 and isinstance(payload, dict):
            log.debug("%s %s -> %d %s", getattr(self, "command", None), getattr(self, "path", "")[:100],
                      status, payload.get("error"))

    def _refuse(self, status: int, field: str, message: str) -> None:
        """A 4xx before the body was read: the connection cannot be reused."""
        self.close_connection = True
        self._write(status, {"error": f"{field}: {message}", "field": field})

    def _body_length(self) -> int | None:
        """Content-Length checked against RFC 9112's framing rules and the limit; None after
        a refusal was sent."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if encodings and lengths:
            self._refuse(400, "Transfer-Encoding", "not accepted together with Content-Length "
                                                   "(RFC 9112 section 6.3)")
            return None
        if encodings:
            self._refuse(411, "Content-Length", "chunked bodies are not accepted; send Content-Length")
            return None
        if len(lengths) > 1:
            self._refuse(400, "Content-Length", f"sent {len(lengths)} times; exactly one is accepted")
            return None
        if not lengths:
            if self.command in ("GET", "HEAD"):
                return 0
            self._refuse(411, "Content-Length", "required for a request with a body")
            return None
        raw = lengths[0].strip(" \t")
        if not _DIGITS.fullmatch(raw.encode("utf-8", "replace")):
            self._refuse(400, "Content-Length", f"{raw[:40]!r} is not a byte count (1 to 18 ASCII digits)")
            return None
        length, limit = int(raw), self.server.app.settings.max_body_bytes
        if length > limit:
            self._refuse(413, "body", f"{length} bytes exceed the limit of {limit} bytes")
            return None
        return length

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        return self._body_length() is not None and super().handle_expect_100()

    def _serve(self) -> None:
        refusal = self.server.app.route(self.command, self.path)
        if refusal is not None:
            # An unread body would be taken for the next request: close after answering.
            if self.headers.get("Content-Length", "0").strip() not in ("", "0") or \
                    "Transfer-Encoding" in self.headers:
                self.close_connection = True
            self._write(*refusal)
            return
        length = self._body_length()
        if length is None:
            return
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            if self.reader.expired:
                return  # handle_one_request answers 408 and logs it
            log.info("%s: closed the connection %d bytes into a %d-byte body", self.address_string(),
                     len(body), length)
            return  # the client went away mid-body: nobody to answer
        received_at = self.reader.started or time.perf_counter()
        self.reader.next_request()  # the request is whole: its clock stops
        if not self.server.app.thinks_long:  # answers in about a millisecond: nothing to stop
            status, payload, headers = self.server.app.dispatch(self.command, self.path, body)
            self._write(status, payload, headers)
            return
        # The collector waits until the answer is written: a full pass due after a search would
        # otherwise run at the next allocation, between the search and the write (agents.collector).
        with COLLECTOR.paused():
            with self.server.hangups.watching(self.connection) as hung_up, stopping.limits(hung_up=hung_up):
                status, payload, headers = self.server.app.dispatch(self.command, self.path, body,
                                                                    received_at=received_at)
            if hung_up.is_set():
                self.close_connection = True
                log.info("%s: hung up before the answer to %s %s; stopped thinking", self.address_string(),
                         self.command, self.path[:100])
                return
            self._write(status, payload, headers)

    def __getattr__(self, name: str):
        # The base class looks up `do_<METHOD>`: every method, standard or not, is
        # routed, so an unsupported one gets 405 with Allow rather than 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, unsupported HTTP version, URI or header
        too long) as JSON, logged as one line."""
        self.close_connection = True
        field = "request"
        text = message or HTTPStatus(code).phrase
        log.info("%s: refused (%d): %s", self.address_string(), code, text[:200])
        with contextlib.suppress(OSError):
            self._write(code, {"error": f"{field}: {text}", "field": field})

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


class BattlesnakeHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one App, with a cap on open connections."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, app: app_module.App):
        self.app = app
        self.hangups = HangupWatcher()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((app.settings.host, app.settings.port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def process_request(self, request, client_address) -> None:
        with self._open_lock:
            full = len(self._open) >= self.app.settings.max_connections
            if not full:
                self._open.add(request)
        if full:
            body = _json_bytes({"error": "connections: the server is at its connection limit",
                                "field": "connections"})
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json"
                                b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                                % (len(body), body))
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, CLIENT_ERRORS):  # the client left or went quiet: its business
            log.info("connection from %s ended: %s", client_address[0] if client_address else "?",
                     type(error).__name__)
            return
        log.exception("connection from %s failed", client_address)

    def server_close(self) -> None:
        """Stops listening and ends the open keep-alive connections."""
        super().server_close()
        self.hangups.close()
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @property
    def connections(self) -> int:
        with self._open_lock:
            return len(self._open)


def make_server(app: app_module.App) -> BattlesnakeHTTPServer:
    """A bound (not yet serving) server for `app` at `app.settings.host:port`."""
    return BattlesnakeHTTPServer(app)


@contextlib.contextmanager
def running(app: app_module.App) -> Iterator[BattlesnakeHTTPServer]:
    """Serves `app` on a background thread for the block (tests, benchmarks)."""
    server = make_server(app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"battlesnake-{server.server_address[1]}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
