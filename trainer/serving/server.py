"""The HTTP shell around `serving.app`: read a bounded body, write one JSON answer.

Standard library only (`http.server.ThreadingHTTPServer`): a move costs tens of
microseconds of HTTP work next to the player's own time, and a thread per
connection lets a slow search in one game leave other games' requests
running. What the shell adds over the stock handler, and why:

- HTTP/1.1 keep-alive, with the whole answer written in one `send` and
  Nagle's algorithm off: the engine reuses its connection every turn, and a
  header/body split would wait out the peer's delayed ACK (40 ms);
- the body limit is checked on `Content-Length` before reading (413), a body
  without a length is refused (411), a stalled or idle connection is closed
  after `idle_timeout_s`, and past `max_connections` new ones get 503;
- every error, the protocol-level ones included, is JSON naming the field.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ouroboros.trainer.serving import app as app_module

log = logging.getLogger(__name__)


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
        self.timeout = self.server.app.settings.idle_timeout_s
        super().setup()

    def _write(self, status: int, payload: dict, headers: dict | None = None) -> None:
        """The whole answer in one write (status line, headers, JSON body)."""
        data = _json_bytes(payload)
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
                 f"Content-Length: {len(data)}", "Server: ouroboros"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + data)
        if status >= 400:
            log.debug("%s %s -> %d %s", self.command, self.path, status, payload.get("error"))

    def _refuse(self, status: int, field: str, message: str) -> None:
        """A 4xx before the body was read: the connection cannot be reused."""
        self.close_connection = True
        self._write(status, {"error": f"{field}: {message}", "field": field})

    def _body_length(self) -> int | None:
        """Content-Length checked against the limit; None after a refusal was sent."""
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self._refuse(411, "Content-Length", "chunked bodies are not accepted; send Content-Length")
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            if self.command in ("GET", "HEAD"):
                return 0
            self._refuse(411, "Content-Length", "required for a request with a body")
            return None
        if not raw.strip().isdigit():
            self._refuse(400, "Content-Length", f"{raw[:40]!r} is not a byte count")
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
            return  # the client went away mid-body: nobody to answer
        status, payload, headers = self.server.app.dispatch(self.command, self.path, body)
        self._write(status, payload, headers)

    def __getattr__(self, name: str):
        # The base class looks up `do_<METHOD>`: every method, standard or not, is
        # routed, so an unsupported one gets 405 with Allow rather than 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (bad request line, URI or header too long) as JSON."""
        self.close_connection = True
        field = "request"
        text = message or HTTPStatus(code).phrase
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
        log.exception("connection from %s failed", client_address)

    def server_close(self) -> None:
        """Stops listening and ends the open keep-alive connections."""
        super().server_close()
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
