"""The snake server under hostile and unusual clients: every valid game is answered, no
client can starve it, framing follows RFC 9112, and what clients normally do is logged
as one line. Every test is bounded by counts and generous deadlines, never by how fast
the machine is (CI runs it on a loaded 2-core machine)."""

from __future__ import annotations

import gc
import json
import logging
import random
import socket
import threading
import time

import pytest
from test_server import Client, raw_exchange, request_body

from ouroboros.trainer.serving import app as app_module
from ouroboros.trainer.serving import players, protocol, server

pytestmark = pytest.mark.unit

BODY = json.dumps(request_body()).encode()


@pytest.fixture
def serve():
    """serve(spec, **settings) -> a running server on a free port (stopped at the test's end)."""
    stack = []

    def start(spec: str = "random-safe", **settings):
        app = app_module.App(spec, app_module.ServerSettings(**{"port": 0, **settings}))
        ctx = server.running(app)
        stack.append(ctx)
        return ctx.__enter__()

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def _post(headers: bytes, body: bytes = BODY) -> bytes:
    return b"POST /move HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


def _no_tracebacks(caplog) -> None:
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not noisy, [r.getMessage() for r in noisy]


# -- framing (RFC 9112 section 6.3) -----------------------------------------------------

N = str(len(BODY)).encode()
FRAMING = [
    ("duplicate Content-Length", b"Content-Length: " + N + b"\r\nContent-Length: " + N + b"\r\n",
     400, "Content-Length"),
    ("conflicting Content-Length", b"Content-Length: " + N + b"\r\nContent-Length: 3\r\n", 400, "Content-Length"),
    ("a Content-Length list", b"Content-Length: " + N + b", " + N + b"\r\n", 400, "Content-Length"),
    ("Transfer-Encoding with Content-Length", b"Transfer-Encoding: chunked\r\nContent-Length: " + N + b"\r\n",
     400, "Transfer-Encoding"),
    ("identity Transfer-Encoding with Content-Length",
     b"Transfer-Encoding: identity\r\nContent-Length: " + N + b"\r\n", 400, "Transfer-Encoding"),
    ("Content-Length after Transfer-Encoding", b"Content-Length: " + N + b"\r\nTransfer-Encoding: chunked\r\n",
     400, "Transfer-Encoding"),
    ("chunked alone", b"Transfer-Encoding: chunked\r\n", 411, "Content-Length"),
    ("superscript two", "Content-Length: \u00b2\r\n".encode(), 400, "Content-Length"),
    ("Arabic-Indic digits", "Content-Length: \u0663\u0660\r\n".encode(), 400, "Content-Length"),
    ("5,000 digits", b"Content-Length: " + b"9" * 5000 + b"\r\n", 400, "Content-Length"),
    ("a sign", b"Content-Length: +" + N + b"\r\n", 400, "Content-Length"),
    ("negative", b"Content-Length: -1\r\n", 400, "Content-Length"),
    ("hexadecimal", b"Content-Length: 0x10\r\n", 400, "Content-Length"),
    ("underscore", b"Content-Length: 1_0\r\n", 400, "Content-Length"),
    ("empty", b"Content-Length: \r\n", 400, "Content-Length"),
]


@pytest.mark.parametrize(("name", "headers", "status", "field"), FRAMING, ids=[c[0] for c in FRAMING])
def test_framing_that_a_proxy_could_read_otherwise_is_refused(serve, caplog, name, headers, status, field):
    srv = serve()
    with caplog.at_level(logging.DEBUG):
        got, body = raw_exchange(srv, _post(headers))
    assert (got, body["field"]) == (status, field), body
    _no_tracebacks(caplog)


def test_a_plain_length_with_spaces_around_it_is_fine(serve):
    got, body = raw_exchange(serve(), _post(b"Content-Length:  " + N + b" \r\nConnection: close\r\n"))
    assert got == 200 and body["move"] == "right"


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1.1.1", b"HTTP/9"])
def test_an_unsupported_version_is_one_log_line(serve, caplog, version):
    srv = serve()
    with caplog.at_level(logging.DEBUG):
        got, body = raw_exchange(srv, b"POST /move " + version + b"\r\nContent-Length: 2\r\n\r\n{}")
    assert got in (400, 505) and body["field"] == "request"
    _no_tracebacks(caplog)


def _wait_until(predicate, seconds: float = 30.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("cut", ["in the request line", "in the headers", "in the body", "with a reset"])
def test_a_client_that_leaves_mid_request_is_one_log_line(serve, caplog, cut):
    srv = serve()
    data = {"in the request line": b"POST /mo", "in the headers": b"POST /move HTTP/1.1\r\nContent-Le",
            "in the body": _post(b"Content-Length: " + N + b"\r\n")[:-20],
            "with a reset": _post(b"Content-Length: " + N + b"\r\n")[:-20]}[cut]
    with caplog.at_level(logging.DEBUG):
        sock = socket.create_connection(srv.server_address[:2], timeout=10)
        sock.sendall(data)
        assert _wait_until(lambda: srv.connections == 1)
        if cut == "with a reset":  # SO_LINGER 0: the close sends RST, the server's read fails
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        assert _wait_until(lambda: srv.connections == 0)
    _no_tracebacks(caplog)
    # The server still plays.
    assert Client(srv).call("POST", "/move", request_body())[1]["move"] == "right"


# -- slow clients -------------------------------------------------------------------------

def _trickle(address, stop: threading.Event, closed: list) -> None:
    """Sends a request one byte every 50 ms, for as long as the server listens."""
    request = _post(b"Content-Length: " + N + b"\r\n")
    with socket.create_connection(address, timeout=30) as sock:
        try:
            for byte in request:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
            closed.append("never")  # the whole request went through: the deadline failed
        except OSError:
            closed.append(time.monotonic())


def test_trickling_clients_cannot_hold_the_connection_slots(serve, caplog):
    """Two connections trickling a byte every 50 ms would take ~70 s to send a request; the
    whole-request deadline (1 s here) frees their slots, and a real game then gets its move."""
    srv = serve(max_connections=2, request_timeout_s=1.0, idle_timeout_s=30.0)
    stop, closed = threading.Event(), []
    threads = [threading.Thread(target=_trickle, args=(srv.server_address[:2], stop, closed), daemon=True)
               for _ in range(2)]
    with caplog.at_level(logging.INFO):
        for t in threads:
            t.start()
        assert _wait_until(lambda: srv.connections == 2)
        assert _wait_until(lambda: len(closed) == 2, seconds=60), "the trickling clients were never cut off"
        stop.set()
    assert "never" not in closed
    assert Client(srv).call("POST", "/move", request_body())[1]["move"] == "right"
    assert any("not complete within 1 s" in r.getMessage() for r in caplog.records)
    _no_tracebacks(caplog)


def test_the_deadline_answers_408_to_a_client_still_listening(serve):
    srv = serve(request_timeout_s=0.5)
    with socket.create_connection(srv.server_address[:2], timeout=30) as sock:
        sock.sendall(b"POST /move HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and json.loads(body)["field"] == "request"


def test_an_idle_keep_alive_connection_is_not_cut_by_the_request_deadline(serve):
    """The request clock starts at a request's first byte: a game engine that waits between
    turns on its keep-alive connection (longer than request_timeout_s) is not cut."""
    srv = serve(request_timeout_s=0.3, idle_timeout_s=30.0)
    c = Client(srv)
    assert c.call("POST", "/move", request_body())[0] == 200
    time.sleep(0.6)
    assert c.call("POST", "/move", request_body())[0] == 200
    c.close()


# -- bad text and unexpected failures -------------------------------------------------------

def _body_with(path: list, value) -> bytes:
    body = request_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "@@MARK@@"
    return json.dumps(body).replace('"@@MARK@@"', value).encode()


@pytest.mark.parametrize(("path", "field"), [
    (["you", "id"], "you.id"), (["game", "id"], "game.id"),
    (["board", "snakes", 1, "id"], "board.snakes[1].id"),
])
@pytest.mark.parametrize("endpoint", ["/start", "/move"])
def test_a_lone_surrogate_in_an_id_is_a_4xx_naming_the_field(serve, path, field, endpoint):
    srv = serve()
    status, body, _ = Client(srv).call("POST", endpoint, _body_with(path, '"\\udfff"'))
    assert (status, body["field"]) == (400, field)


def test_a_lone_surrogate_in_end_is_a_4xx(serve):
    status, body, _ = Client(serve()).call("POST", "/end", _body_with(["game", "id"], '"a\\ud800"'))
    assert (status, body["field"]) == (400, "game.id")


def test_a_failure_after_parsing_answers_a_safe_move(serve, monkeypatch, caplog):
    srv = serve()

    def broken(*_args, **_kw):
        raise RuntimeError("session store broken")

    monkeypatch.setattr(srv.app.sessions, "get_or_open", broken)
    with caplog.at_level(logging.ERROR):
        status, body, _ = Client(srv).call("POST", "/move", request_body())
    assert status == 200 and body["move"] == "right"  # up is our neck, down and left the wall
    assert srv.app.metrics.moves.labels("server_error")._value.get() == 1


def test_a_failure_before_parsing_still_avoids_the_neck(serve, monkeypatch):
    srv = serve()

    def broken(_obj):
        raise RuntimeError("parser broken")

    monkeypatch.setattr(protocol, "parse_move_request", broken)
    status, body, _ = Client(srv).call("POST", "/move", request_body())
    assert status == 200 and body["move"] == "right"


@pytest.mark.parametrize(("obj", "want"), [
    (None, "up"), ({}, "up"), ({"you": {"body": [{"x": 0, "y": 0}, {"x": 0, "y": 1}]}}, "right"),
    ({"you": {"body": [{"x": 3, "y": 4}, {"x": 3, "y": 5}]}, "board": {"width": 7, "height": 7}}, "right"),
    ({"you": {"body": [{"x": 6, "y": 6}, {"x": 5, "y": 6}]}, "board": {"width": 7, "height": 7}}, "down"),
    ({"you": {"body": [{"x": 0, "y": 0}]}, "board": {"width": 1, "height": 1}}, "up"),
])
def test_the_last_resort_move_avoids_the_neck_and_the_walls(obj, want):
    assert protocol.last_resort_move(obj).api_name == want


# -- games the rules do not model --------------------------------------------------------------

def _big_game(n_snakes: int, side: int, game_id: str) -> dict:
    body = request_body(game_id)
    snakes = [body["board"]["snakes"][0]]  # `me` in the bottom-left corner, heading down
    columns = side - 2  # two-segment snakes in columns x = 2.., rows of 4 cells from y = 3
    for i in range(1, n_snakes):
        x, y = 2 + (i - 1) % columns, 3 + 4 * ((i - 1) // columns)
        cells = [{"x": x, "y": y}, {"x": x, "y": y + 1}]
        snakes.append({**snakes[0], "id": f"s{i}", "name": f"s{i}", "body": cells, "head": cells[0]})
    body["board"].update(width=side, height=side, snakes=snakes)
    return body


@pytest.mark.parametrize(("n_snakes", "side", "spec"), [
    (12, 11, "random-safe"), (16, 19, "heuristic"), (2, 40, "greedy"), (16, 64, "search:ms=20"),
    (9, 25, "heuristic")])
def test_games_beyond_the_modelled_rules_get_a_safe_move(serve, caplog, n_snakes, side, spec):
    srv = serve(spec)
    game_id = f"big-{n_snakes}-{side}"
    c = Client(srv)
    with caplog.at_level(logging.WARNING):
        assert c.call("POST", "/start", _big_game(n_snakes, side, game_id))[0] == 200
        for _ in range(3):
            status, body, _ = c.call("POST", "/move", _big_game(n_snakes, side, game_id))
            assert (status, body["move"]) == (200, "right")  # the only safe move
    assert sum("beyond the modelled rules" in r.getMessage() for r in caplog.records) == 1
    assert srv.app.metrics.unmodelled_games._value.get() == 1
    c.close()


def test_metrics_are_prometheus_text(serve):
    srv = serve()
    c = Client(srv)
    c.call("POST", "/move", request_body())
    c.call("POST", "/move", b"{")
    c.conn.request("GET", "/metrics")
    resp = c.conn.getresponse()
    text = resp.read().decode()
    assert resp.getheader("Content-Type").startswith("text/plain")
    assert 'ouroboros_serve_moves_total{chooser="player"} 1.0' in text
    assert 'ouroboros_serve_refused_requests_total{status="400"} 1.0' in text
    assert "ouroboros_serve_unmodelled_games_total 0.0" in text
    c.close()


def test_a_neural_player_hands_big_games_to_one_that_plays_any_board():
    assert str(players.any_board_spec(players.Spec.parse("onnx:/m.onnx"))) == "heuristic"
    assert str(players.any_board_spec(players.Spec.parse("champion"))) == "heuristic"
    assert str(players.any_board_spec(players.Spec.parse("search:ms=50"))) == "search:ms=50"


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b["board"].update(width=65), "board.width"),
    (lambda b: b["board"].update(snakes=b["board"]["snakes"] * 9), "board.snakes"),
    (lambda b: b["board"].update(food=[{"x": 3, "y": 3}] * 40_000), "board.food[1]"),
    (lambda b: b["board"].update(hazards=[{"x": 3, "y": 3}] * 40_000), "board.hazards[16]"),
    (lambda b: b["board"]["snakes"][1].update(body=[{"x": 5, "y": 5}] * 40_000), "board.snakes[1].body"),
    (lambda b: b.update(turn=2**70), "turn"),
    (lambda b: b["board"]["snakes"][1].update(health=-(2**64)), "board.snakes[1].health"),
    (lambda b: b["game"]["ruleset"]["settings"].update(minimumFood=10**30), "game.ruleset.settings.minimumFood"),
])
def test_work_is_bounded_by_the_board_not_the_body(serve, mutate, field):
    """A body of legal JSON (700 kB here) that describes more than the board holds is refused
    at the first entry past the limit, before work proportional to its length."""
    body = request_body()
    mutate(body)
    status, answer, _ = Client(serve()).call("POST", "/move", body)
    assert (status, answer["field"]) == (400, field)


# -- thinking time ------------------------------------------------------------------------------

@pytest.mark.parametrize(("timeout", "cap", "want"), [(60_000, 1000, 1000), (500, 1000, 350), (60_000, 40, 40)])
def test_the_server_caps_thinking_time_whatever_the_request_says(serve, timeout, cap, want):
    srv = serve("search", max_think_ms=cap, latency_margin_ms=150)
    c = Client(srv)
    assert c.call("POST", "/start", request_body("long", turn=0, timeout=timeout))[0] == 200
    session = srv.app.sessions.get_or_open(("long", "me"), None)[0]
    assert (session.budget_ms, session.player.ms) == (want, want)
    c.close()


# -- fuzz ---------------------------------------------------------------------------------------

def _mutations(rng: random.Random, value, depth: int = 0):
    """A random structural mutation of a JSON value."""
    choice = rng.random()
    if isinstance(value, dict) and value and choice < 0.7:
        key = rng.choice(list(value))
        out = dict(value)
        if rng.random() < 0.15:
            del out[key]
        else:
            out[key] = _mutations(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and choice < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.2:
            out.append(out[i])
        elif roll < 0.3:
            del out[i]
        else:
            out[i] = _mutations(rng, out[i], depth + 1)
        return out
    return rng.choice([None, True, 0, -1, 1, 2**31, -(2**63), 2**64, 1e308, float("nan"), "", "\udfff",
                       "x" * 300, [], {}, [value], {"x": value}, 25, 26, 64, 65, 17, "up"])


def test_fuzzed_requests_never_get_a_5xx_or_an_unsafe_fixed_move():
    """2,000 seeded mutations of a valid /move through the app (the HTTP shell's own cases
    are above): every answer is a 200 with a legal move or a 4xx JSON naming a field."""
    app = app_module.App("heuristic", app_module.ServerSettings(port=0))
    rng = random.Random(14)
    base = request_body()
    for _ in range(2000):
        mutated = base
        for _ in range(rng.randint(1, 3)):
            mutated = _mutations(rng, mutated)
        try:
            data = json.dumps(mutated).encode("utf-8", "surrogatepass")
        except ValueError:
            continue
        status, answer, _ = app.dispatch("POST", "/move", data)
        assert status in (200, 400, 422), (status, answer)
        if status == 200:
            assert answer["move"] in ("up", "down", "left", "right") and answer["shout"] != "error"
        else:
            assert isinstance(answer["field"], str) and answer["error"].startswith(answer["field"])


def test_a_client_that_hangs_up_stops_the_search(serve, caplog):
    """A search allowed 10 minutes stops once its client closes the connection: without the
    stop it would hold the CPU (and this test) for the whole budget."""
    srv = serve("search", max_think_ms=600_000, latency_margin_ms=150)
    body = _open_position()
    body["game"].update(id="hangup", timeout=600_150)
    data = json.dumps(body).encode()
    with caplog.at_level(logging.INFO):
        sock = socket.create_connection(srv.server_address[:2], timeout=10)
        sock.sendall(b"POST /move HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
        assert _wait_until(lambda: ("hangup", "me") in srv.app.sessions)
        sock.close()
        assert _wait_until(lambda: any("hung up before the answer" in r.getMessage() for r in caplog.records),
                           seconds=120)
    session = srv.app.sessions.get_or_open(("hangup", "me"), None)[0]
    assert session.moves == 1 and session.budget_ms == 600_000
    _no_tracebacks(caplog)


def _open_position() -> dict:
    """`me` in the open (several safe moves), so the search has something to search."""
    body = request_body("open")
    me = body["you"]["body"] = [{"x": 5, "y": 5}, {"x": 5, "y": 4}, {"x": 5, "y": 3}]
    body["board"]["snakes"][0].update(body=me, head=me[0])
    return body


def test_the_budget_counts_from_the_request_s_arrival():
    """A request that arrived long ago (queued behind others, read slowly) has spent its
    budget: the search answers at once, with no iteration completed, instead of thinking
    its full budget on top."""
    app = app_module.App("search", app_module.ServerSettings(port=0, max_think_ms=1000))
    body = json.dumps(_open_position()).encode()
    status, answer, _ = app.dispatch("POST", "/move", body, received_at=time.perf_counter() - 60)
    session = app.sessions.get_or_open(("open", "me"), None)[0]
    assert status == 200 and answer["move"] in ("up", "left", "right")
    assert session.budget_ms == 350 and list(session.player.depths) == []
    status, answer, _ = app.dispatch("POST", "/move", body)  # a fresh request does search
    assert status == 200 and len(session.player.depths) == 1


def test_the_collector_waits_until_a_thinking_move_is_answered(serve, monkeypatch):
    """From a thinking player's request until its answer is written the cyclic collector is
    paused (`agents.collector`): a full pass due after the search runs after the answer went
    out, not between the search and the write. Afterwards it is enabled again."""
    assert gc.isenabled()
    during = []
    write = server.Handler._write

    def recording_write(self, status, payload, headers=None):
        during.append((getattr(self, "path", ""), gc.isenabled()))
        write(self, status, payload, headers)

    monkeypatch.setattr(server.Handler, "_write", recording_write)
    srv = serve("search", max_think_ms=20)
    client = Client(srv)
    try:
        status, answer, _ = client.call("POST", "/move", _open_position())
    finally:
        client.close()
    assert status == 200 and answer["move"] in ("up", "left", "right")
    assert during == [("/move", False)]
    assert _wait_until(gc.isenabled)
