"""The Battlesnake server over real HTTP on loopback: answers, refusals, lifecycle, concurrency.

What a game engine (and whoever points one at us) relies on: a legal, safe
move for every well-formed `/move`; a 4xx whose message names the field for
every malformed request, never a 500 or a dropped connection; games that do
not disturb each other when served at once.
"""

from __future__ import annotations

import copy
import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ouroboros.trainer.serving import app as app_module
from ouroboros.trainer.serving import players, server

pytestmark = pytest.mark.unit


def _snake(sid: str, cells: list[tuple[int, int]], health: int = 90) -> dict:
    body = [{"x": x, "y": y} for x, y in cells]
    return {"id": sid, "name": sid, "health": health, "body": body, "head": body[0],
            "length": len(body), "latency": "0", "shout": "", "customizations": {}}


def request_body(game_id: str = "g1", turn: int = 5, you: str = "me", **game_extra) -> dict:
    """A /move body as the official engine sends it: `me` in the bottom-left corner,
    moving down into it, so `right` is its only safe move."""
    me = _snake("me", [(0, 0), (0, 1), (0, 2)])
    other = _snake("other", [(5, 5), (5, 6), (5, 7)])
    game = {"id": game_id, "ruleset": {"name": "standard", "version": "v1.2.3", "settings": {
        "foodSpawnChance": 15, "minimumFood": 1, "hazardDamagePerTurn": 14,
        "royale": {"shrinkEveryNTurns": 25}}}, "map": "standard", "timeout": 500, "source": ""}
    game.update(game_extra)
    board = {"width": 11, "height": 11, "snakes": [me, other], "food": [{"x": 3, "y": 3}],
             "hazards": []}
    return {"game": game, "turn": turn, "board": board,
            "you": copy.deepcopy(me if you == "me" else {**me, "id": you})}


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, srv: server.BattlesnakeHTTPServer):
        host, port = srv.server_address[:2]
        self.conn = http.client.HTTPConnection(host, port, timeout=10)

    def call(self, method: str, path: str, body: bytes | dict | None = None,
             headers: dict | None = None) -> tuple[int, dict, http.client.HTTPResponse]:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        self.conn.request(method, path, body=data, headers=headers or {})
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {}), resp

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def serve():
    """serve(spec, **settings) -> a running server (stopped at the test's end)."""
    stack = []

    def start(spec: str = "random-safe", factory=players.make_player, **settings):
        settings.setdefault("port", 0)
        app = app_module.App(spec, app_module.ServerSettings(**settings), factory=factory)
        ctx = server.running(app)
        srv = ctx.__enter__()
        stack.append(ctx)
        return srv

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture
def client(serve):
    c = Client(serve())
    yield c
    c.close()


def raw_exchange(srv, data: bytes) -> tuple[int, dict]:
    """Sends raw bytes, reads until the server closes: (status, JSON body)."""
    with socket.create_connection(srv.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# -- well-formed games ------------------------------------------------------------------

def test_index_describes_the_snake(client):
    status, body, resp = client.call("GET", "/")
    assert status == 200 and resp.getheader("Content-Type") == "application/json"
    assert body["apiversion"] == "1"
    assert set(body) == {"apiversion", "author", "color", "head", "tail", "version"}
    assert "random-safe" in body["version"]


def test_start_move_end_lifecycle_keeps_and_cleans_the_session(serve):
    srv = serve()
    c = Client(srv)
    assert c.call("POST", "/start", request_body("life", turn=0))[:2] == (200, {})
    assert ("life", "me") in srv.app.sessions
    for turn in range(1, 4):
        status, body, _ = c.call("POST", "/move", request_body("life", turn=turn))
        assert status == 200 and body == {"move": "right", "shout": ""}  # the only safe move
    assert c.call("POST", "/end", request_body("life", turn=4))[:2] == (200, {})
    assert ("life", "me") not in srv.app.sessions and len(srv.app.sessions) == 0
    c.close()


def test_move_without_start_opens_a_session(serve):
    srv = serve()
    c = Client(srv)
    assert c.call("POST", "/move", request_body("restarted"))[1]["move"] == "right"
    assert ("restarted", "me") in srv.app.sessions
    c.close()


def test_end_for_an_eliminated_snake_is_accepted(client):
    body = request_body("gone")
    body["you"] = _snake("me", [(-1, 0), (0, 0), (0, 1)])  # ran off the board: not on it any more
    body["board"]["snakes"] = body["board"]["snakes"][1:]
    assert client.call("POST", "/end", body)[:2] == (200, {})


@pytest.mark.parametrize("path", ["/move/", "/move?x=1"])
def test_trailing_slash_and_query_are_the_same_endpoint(client, path):
    assert client.call("POST", path, request_body())[1]["move"] == "right"


def test_unknown_ruleset_and_map_are_played_as_standard(client, caplog):
    body = request_body("odd", map="hz_new_map")
    body["game"]["ruleset"]["name"] = "squad"
    with caplog.at_level(logging.WARNING):
        status, answer, _ = client.call("POST", "/move", body)
    assert status == 200 and answer["move"] == "right"
    assert "unknown ruleset 'squad'" in caplog.text and "unknown map 'hz_new_map'" in caplog.text


def test_wrapped_game_can_leave_the_board_edge(client):
    body = request_body("wrap")
    body["game"]["ruleset"]["name"] = "wrapped"
    # me at (0,0) with its neck at (1,0): left wraps to (10,0), down wraps to (0,10).
    body["board"]["snakes"][0] = body["you"] = _snake("me", [(0, 0), (1, 0), (2, 0)])
    moves = {client.call("POST", "/move", {**body, "game": {**body["game"], "id": f"w{i}"}})[1]["move"]
             for i in range(30)}
    assert moves <= {"up", "down", "left"} and moves & {"down", "left"}  # wrapping moves are safe


# -- refusals ---------------------------------------------------------------------------

def _without(path: list, body: dict | None = None) -> dict:
    body = body or request_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(path: list, value) -> dict:
    body = request_body()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


MALFORMED = [
    ("not json", b"{\"game\": ", 400, "body"),
    ("not utf-8", b"\xff\xfe{}", 400, "body"),
    ("json array", b"[1, 2]", 400, "body"),
    ("nested too deeply", b"[" * 100_000, 400, "body"),
    ("integer of 5000 digits", b'{"turn": ' + b"9" * 5000 + b"}", 400, "body"),
    ("missing game", _without(["game"]), 400, "game"),
    ("game not an object", _with(["game"], "g"), 400, "game"),
    ("game.id a number", _with(["game", "id"], 7), 400, "game.id"),
    ("missing game.ruleset", _without(["game", "ruleset"]), 400, "game.ruleset"),
    ("ruleset name a number", _with(["game", "ruleset", "name"], 3), 400, "game.ruleset.name"),
    ("setting of wrong type", _with(["game", "ruleset", "settings", "minimumFood"], "1"), 400,
     "game.ruleset.settings.minimumFood"),
    ("map a number", _with(["game", "map"], 1), 400, "game.map"),
    ("royale that never shrinks", _with(["game", "ruleset"], {"name": "royale", "settings": {
        "royale": {"shrinkEveryNTurns": 0}}}), 400, "game.ruleset.settings.royale.shrinkEveryNTurns"),
    ("timeout a string", _with(["game", "timeout"], "500"), 400, "game.timeout"),
    ("timeout zero", _with(["game", "timeout"], 0), 400, "game.timeout"),
    ("missing turn", _without(["turn"]), 400, "turn"),
    ("turn a float", _with(["turn"], 1.5), 400, "turn"),
    ("turn negative", _with(["turn"], -1), 400, "turn"),
    ("turn huge", _with(["turn"], 10**30), 400, "turn"),
    ("missing board", _without(["board"]), 400, "board"),
    ("board width a string", _with(["board", "width"], "11"), 400, "board.width"),
    ("board too large", _with(["board", "width"], 1000), 400, "board.width"),
    ("snakes not a list", _with(["board", "snakes"], {}), 400, "board.snakes"),
    ("no snakes", _with(["board", "snakes"], []), 400, "board.snakes"),
    ("snake without id", _without(["board", "snakes", 1, "id"]), 400, "board.snakes[1].id"),
    ("body cell off the board", _with(["board", "snakes", 1, "body", 2], {"x": 5, "y": 11}), 400,
     "board.snakes[1].body[2]"),
    ("body cell x a string", _with(["board", "snakes", 0, "body", 0, "x"], "0"), 400,
     "board.snakes[0].body[0].x"),
    ("health a string", _with(["board", "snakes", 0, "health"], "90"), 400, "board.snakes[0].health"),
    ("health huge", _with(["board", "snakes", 1, "health"], 10**30), 400, "board.snakes[1].health"),
    ("food not a list", _with(["board", "food"], 3), 400, "board.food"),
    ("hazard missing y", _with(["board", "hazards"], [{"x": 1}]), 400, "board.hazards[0].y"),
    ("missing you", _without(["you"]), 400, "you"),
    ("missing you.id", _without(["you", "id"]), 400, "you.id"),
    ("unknown snake", request_body(you="stranger"), 422, "you.id"),
    ("you eliminated", _with(["board", "snakes", 0, "eliminatedCause"], "wall-collision"), 422,
     "you.id"),
]


@pytest.mark.parametrize("path", ["/start", "/move"])
@pytest.mark.parametrize(("case", "body", "status", "field"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_a_4xx_naming_the_field(client, path, case, body, status, field):
    got, answer, resp = client.call("POST", path, body)
    assert got == status, answer
    assert answer["field"] == field
    assert answer["error"].startswith(f"{field}: ") and len(answer["error"]) > len(field) + 5
    assert resp.getheader("Content-Type") == "application/json"
    # The connection survives a refusal of a body it has read: the next request works.
    assert client.call("POST", "/move", request_body())[1]["move"] == "right"


@pytest.mark.parametrize(("path", "low", "values"), [
    (["turn"], 0, [-1, -(2**31), 2**31, 10**30]),
    (["game", "timeout"], 1, [0, -5, 2**31, 10**30]),
])
def test_a_number_out_of_range_names_the_one_range(client, path, low, values):
    """Below or above, small or huge: the same range in the message (it once read -2147483647..
    for a huge turn and 0.. for -1, two checks disagreeing)."""
    field = ".".join(path)
    for value in values:
        got, answer, _ = client.call("POST", "/move", _with(path, value))
        assert got == 400 and answer["field"] == field
        assert answer["error"].endswith(f"is outside {low}..2147483647"), answer["error"]


def test_an_integer_too_long_to_read_is_refused_in_our_words(client):
    """Past Python's 4,300-digit limit the JSON cannot be read at all: 400 on the body, and the
    message says what is wrong without Python's advice to call sys.set_int_max_str_digits."""
    got, answer, _ = client.call("POST", "/move", b'{"turn": ' + b"9" * 5000 + b"}")
    assert got == 400 and answer["field"] == "body"
    assert answer["error"] == "body: not valid JSON: an integer of more than 4300 digits"


def test_end_needs_only_the_game_id(serve):
    srv = serve()
    c = Client(srv)
    for you in ("me", "other"):  # two of our snakes in one game: a session each
        body = request_body("two", turn=0)
        body["you"] = next(s for s in body["board"]["snakes"] if s["id"] == you)
        c.call("POST", "/start", body)
    assert len(srv.app.sessions) == 2
    assert c.call("POST", "/end", {"game": {"id": "two"}, "you": {"id": "me"}})[0] == 200
    assert list(srv.app.sessions.games()) == ["two"] and len(srv.app.sessions) == 1
    assert c.call("POST", "/end", {"game": {"id": "two"}})[0] == 200  # no you: the whole game
    assert len(srv.app.sessions) == 0
    status, answer, _ = c.call("POST", "/end", {"game": {}})
    assert status == 400 and answer["field"] == "game.id"
    status, answer, _ = c.call("POST", "/end", {"game": {"id": "x"}, "you": {"id": 3}})
    assert status == 400 and answer["field"] == "you.id"
    c.close()


def test_oversized_body_is_refused_with_413(serve):
    srv = serve(max_body_bytes=2048)
    big = request_body()
    big["board"]["food"] = [{"x": 1, "y": 1}] * 500
    status, answer, resp = Client(srv).call("POST", "/move", big)
    assert status == 413 and answer["field"] == "body" and "2048" in answer["error"]
    assert resp.getheader("Connection") == "close"


def test_oversized_length_is_refused_before_the_body_is_sent(serve):
    srv = serve(max_body_bytes=1 << 20)
    status, answer = raw_exchange(srv, b"POST /move HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Length: 999999999\r\n\r\n{")
    assert status == 413 and "999999999 bytes" in answer["error"]


@pytest.mark.parametrize(("headers", "status", "field"), [
    (b"", 411, "Content-Length"),
    (b"Transfer-Encoding: chunked\r\n", 411, "Content-Length"),
    (b"Content-Length: ten\r\n", 400, "Content-Length"),
])
def test_bodies_need_a_valid_length(serve, headers, status, field):
    got, answer = raw_exchange(serve(), b"POST /move HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert (got, answer["field"]) == (status, field)


def test_garbage_request_line_gets_json_400(serve):
    status, answer = raw_exchange(serve(), b"HELLO THERE GENERAL KENOBI\r\n\r\n")
    assert status == 400 and answer["field"] == "request"


@pytest.mark.parametrize(("method", "path", "status", "field"), [
    ("GET", "/nowhere", 404, "path"),
    ("POST", "/api/move", 404, "path"),
    ("GET", "/move", 405, "method"),
    ("PUT", "/move", 405, "method"),
    ("DELETE", "/", 405, "method"),
    ("BREW", "/start", 405, "method"),
])
def test_unknown_paths_and_methods(client, method, path, status, field):
    got, answer, resp = client.call(method, path, b"{}" if method != "GET" else None)
    assert (got, answer["field"]) == (status, field)
    if status == 405:
        assert resp.getheader("Allow")


# -- players, fallbacks, budgets --------------------------------------------------------

class Exploding:
    name = "exploding"

    def act(self, config, state, seat, rng):
        raise RuntimeError("boom")


class Illegal:
    name = "illegal"

    def act(self, config, state, seat, rng):
        return np.array([7], np.int8)


@pytest.mark.parametrize("player", [Exploding(), Illegal()])
def test_a_failing_player_falls_back_to_a_safe_move_and_is_logged(serve, caplog, player):
    srv = serve(factory=lambda spec, champion: player)
    c = Client(srv)
    with caplog.at_level(logging.ERROR):
        for turn in range(3):
            status, answer, _ = c.call("POST", "/move", request_body("fb", turn=turn))
            assert (status, answer["move"]) == (200, "right")
    assert "answering a safe move" in caplog.text
    c.close()


class Recording:
    """Records the games it is asked to play and the deadline it is held to."""

    name = "recording"

    def __init__(self) -> None:
        self.calls = []

    def act(self, config, state, seat, rng):
        from ouroboros.trainer.agents import stopping

        self.calls.append((config, state.batch_size, seat, stopping.current().deadline, time.perf_counter()))
        return np.zeros(state.batch_size, np.int8)


def test_the_warm_up_plays_one_move_of_no_game_before_the_first_request():
    """`ouro serve` calls it before its port opens, so that a game's first move does not compile
    numba's kernels (450 to 750 ms with a cold cache, `benchmarks.first_move`): the served player plays one
    move of a 7x7 duel, under the warm-up's own short deadline, and no session or metric counts it."""
    player = Recording()
    app = app_module.App("random-safe", factory=lambda spec, champion: player)
    took = app.warm_up()
    assert len(player.calls) == 1
    config, games, seat, deadline, at = player.calls[0]
    assert (config.width, config.height, config.n_snakes, games, seat) == (7, 7, 2, 1, 0)
    assert deadline is not None and 0 < deadline - at <= app_module.WARM_UP_BUDGET_S
    assert took >= 0 and len(app.sessions) == 0
    assert b"ouroboros_serve_moves_total{" not in app.metrics.exposition()


def test_the_warm_up_builds_the_player_a_default_timeout_game_gets():
    """A budgeted spec is its own player per game timeout: the warm-up builds and plays the one a
    500 ms game gets (ms lowered by the margin), so that game's first move builds nothing."""
    built = []

    def factory(spec, champion):
        built.append(str(spec))
        return Recording()

    app = app_module.App("search:ms=400", factory=factory)
    app.warm_up()
    assert built == ["search:ms=400", "search:ms=350"]
    assert app._players["search:ms=350"].calls
    app.move(request_body("g500"))  # timeout 500
    assert built == ["search:ms=400", "search:ms=350"]


def test_a_warm_up_that_fails_is_logged_and_the_server_still_plays(caplog):
    app = app_module.App("random-safe", factory=lambda spec, champion: Exploding())
    with caplog.at_level(logging.WARNING):
        app.warm_up()
    assert "warm-up move of exploding failed (boom)" in caplog.text
    assert app.move(request_body("after"))["move"] == "right"  # the fallback, as for any failure


def test_a_network_player_warms_up_on_its_own_board_size(tmp_path, caplog):
    """A network exported for 11x11 plays the 7x7 warm-up padded into its board (no warning)."""
    from ouroboros.trainer.learning import networks, onnx_export

    net = networks.build_network(networks.NetworkConfig(architecture="cnn_simple", blocks=1, channels=8), seed=0)
    path = tmp_path / "tiny.onnx"
    path.write_bytes(onnx_export.to_onnx(net, 11, 11))
    app = app_module.App(f"onnx:{path}")
    with caplog.at_level(logging.WARNING):
        took = app.warm_up()
    assert took > 0 and len(app.sessions) == 0
    assert "warm-up" not in caplog.text


def test_player_specs():
    assert players.Spec.parse("search:ms=200,focus=3").options() == {"ms": "200", "focus": "3"}
    assert players.Spec.parse("onnx:/m/a,b=c.onnx").options() == {}  # a scheme's rest is verbatim
    assert str(players.Spec.parse("onnx:/m/model.onnx")) == "onnx:/m/model.onnx"
    assert players.make_player("random-safe").name == "random-safe"
    assert players.make_player("search:ms=20").ms == 20
    for spec, words in [("onnx:model.onnx", "no such model file"), ("champion", "--store"),
                        ("nosuch", "unknown player"), ("greedy:x=1", "unknown option"),
                        (":ms=1", "unknown player")]:
        with pytest.raises(players.PlayerUnavailable, match=words):
            players.make_player(spec)


@pytest.mark.parametrize(("spec", "timeout", "want"), [
    ("search", 500, "search:ms=350"),
    ("search:ms=100", 500, "search:ms=100"),
    ("search:ms=900", 500, "search:ms=350"),
    ("search", 100, "search:ms=5"),
    ("search:focus=3,ms=120.5", 500, "search:focus=3,ms=120"),
    ("greedy", 500, "greedy"),
])
def test_search_budget_fits_the_game_timeout(spec, timeout, want):
    assert str(players.budgeted_spec(players.Spec.parse(spec), timeout, margin_ms=150)) == want


def test_each_game_gets_a_search_budget_from_its_timeout(serve):
    srv = serve(spec="search:ms=400", latency_margin_ms=150)
    c = Client(srv)
    for game, timeout in (("quick", 200), ("slow", 2000)):
        body = request_body(game, turn=0, timeout=timeout)
        assert c.call("POST", "/start", body)[0] == 200
    quick, slow = (srv.app.sessions.get_or_open((g, "me"), None)[0] for g in ("quick", "slow"))
    assert (quick.budget_ms, quick.player.ms) == (50, 50)
    assert (slow.budget_ms, slow.player.ms) == (400, 400)  # never more than the spec asked
    assert c.call("POST", "/move", request_body("quick", turn=1, timeout=200))[1]["move"] == "right"
    c.close()


# -- concurrency and bounds -------------------------------------------------------------

def test_concurrent_games_are_all_answered(serve):
    srv = serve(spec="greedy")
    n_threads, moves = 8, 40

    def play(game: int) -> list[tuple[int, str]]:
        c = Client(srv)
        out = [c.call("POST", "/start", request_body(f"c{game}", turn=0))[:1] + ("",)]
        out += [(s, b["move"]) for s, b, _ in
                (c.call("POST", "/move", request_body(f"c{game}", turn=t)) for t in range(1, moves))]
        c.close()
        return out

    barrier = threading.Barrier(n_threads)

    def run(game: int):
        barrier.wait()
        return play(game)

    with ThreadPoolExecutor(n_threads) as pool:
        results = list(pool.map(run, range(n_threads)))
    assert all(status == 200 for game in results for status, _ in game)
    assert all(move == "right" for game in results for _, move in game[1:])
    assert len(srv.app.sessions) == n_threads


class SlowOnTurn999:
    """Thinks for 1.5 s on turn 999 (releasing the GIL, as onnxruntime does)."""

    name = "slow"

    def act(self, config, state, seat, rng):
        if state.turn[0] == 999:
            time.sleep(1.5)
        return players.make_player("random-safe").act(config, state, seat, rng)


def test_a_slow_game_does_not_hold_up_the_others(serve):
    srv = serve(factory=lambda spec, champion: SlowOnTurn999())
    slow_done = threading.Event()

    def slow_game():
        c = Client(srv)
        c.call("POST", "/move", request_body("slow", turn=999))
        slow_done.set()
        c.close()

    thread = threading.Thread(target=slow_game)
    thread.start()
    time.sleep(0.05)
    c = Client(srv)
    began = time.perf_counter()
    answers = [c.call("POST", "/move", request_body("fast", turn=t))[1]["move"] for t in range(20)]
    elapsed = time.perf_counter() - began
    assert not slow_done.is_set() and answers == ["right"] * 20 and elapsed < 1.0
    thread.join()
    assert slow_done.is_set()
    c.close()


def test_sessions_are_bounded(serve):
    srv = serve(max_games=3)
    c = Client(srv)
    for i in range(5):
        c.call("POST", "/start", request_body(f"b{i}", turn=0))
    assert len(srv.app.sessions) == 3 and srv.app.sessions.evicted == 2
    assert srv.app.sessions.games() == {"b2", "b3", "b4"}
    c.close()


def test_connections_beyond_the_cap_get_503(serve):
    srv = serve(max_connections=2)
    held = [Client(srv) for _ in range(2)]
    for c in held:
        assert c.call("GET", "/")[0] == 200
    status, answer = raw_exchange(srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 503 and answer["field"] == "connections"
    for c in held:
        c.close()


# -- the command ------------------------------------------------------------------------

def test_serve_command_refuses_a_bad_player(capsys):
    from ouroboros.trainer.commands import serve as serve_command

    assert serve_command.main(["--player", "nosuch", "--port", "0"]) == 2
    assert "unknown player 'nosuch'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "line"), [
    (["--port", "-1"], "argument --port: -1 is not a TCP port (0 to 65535)"),  # was an OverflowError traceback
    (["--port", "99999"], "argument --port: 99999 is not a TCP port (0 to 65535)"),
    (["--color", "red"], "argument --color: 'red' is not a #rrggbb colour"),
    (["--follow-interval", "-3"], "argument --follow-interval: -3 is not a number of seconds >= 0"),
    (["--margin-ms", "-5"], "ouro serve: --margin-ms: -5 must not be negative"),
    (["--request-timeout", "nan"], "ouro serve: --request-timeout: nan must be positive"),
    (["--max-games", "0"], "ouro serve: --max-games: 0 must be positive"),
])
def test_serve_command_refuses_a_bad_flag_naming_it(capsys, argv, line):
    """Exit 2 before the port opens, one line naming the flag the user typed (not the settings' field)."""
    from ouroboros.trainer.commands import serve as serve_command

    try:
        code = serve_command.main(["--player", "random-safe", *argv])
    except SystemExit as exit_:  # argparse's own refusal
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and line in err and "Traceback" not in err, err


def test_serve_command_serves_until_sigterm():
    proc = subprocess.Popen([sys.executable, "-m", "ouroboros.trainer.commands.cli", "serve",
                             "--player", "random-safe", "--port", "0", "--log-level", "WARNING"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        line = proc.stderr.readline()
        assert " on http://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/move", body=json.dumps(request_body()))
        assert json.loads(conn.getresponse().read())["move"] == "right"
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.stderr.close()


def test_serve_command_needs_a_champion_in_the_registry(tmp_path, capsys):
    from ouroboros.trainer.commands import serve as serve_command

    assert serve_command.main(["--player", "champion", "--store", str(tmp_path), "--port", "0"]) == 2
    assert "no champion for 'standard-11x11-2p'" in capsys.readouterr().err


def test_serve_plays_the_default_stores_champion_when_there_is_one(tmp_path, monkeypatch, onnx_models):
    """One default store for every verb: after `ouro train`, `ouro serve` serves its champion."""
    from ouroboros.trainer.artifacts import registry as reg
    from ouroboros.trainer.commands import serve as serve_command

    monkeypatch.setenv("OURO_STORE", str(tmp_path / "store"))
    assert serve_command.default_spec(reg.default_store(), "standard-7x7-2p") == "heuristic"
    registry = reg.Registry.open(reg.default_store())
    version = registry.register(onnx_models[0], architecture="a", run="r", phase="p", game="standard-7x7-2p")
    registry.promote("standard-7x7-2p", version.id)
    assert serve_command.default_spec(reg.default_store(), "standard-7x7-2p") == "champion"
    assert serve_command.default_spec(reg.default_store(), "standard-11x11-2p") == "heuristic"


def test_serve_command_reports_a_busy_port(capsys):
    from ouroboros.trainer.commands import serve as serve_command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert serve_command.main(["--player", "random-safe", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
