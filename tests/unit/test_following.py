"""`ouro serve --player champion` follows the registry: a new version from the next game on, never
mid-game, never a corrupt one. A real store, real ONNX models, the real HTTP server."""

from __future__ import annotations

import copy
import http.client
import json
import logging

import pytest

from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.evaluation import promotion
from ouroboros.trainer.serving import app as app_module
from ouroboros.trainer.serving import following, players, server

pytestmark = pytest.mark.unit
GAME = "standard-7x7-2p"


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def body(game_id: str, turn: int = 3) -> dict:
    def snake(sid, cells):
        b = [{"x": x, "y": y} for x, y in cells]
        return {"id": sid, "name": sid, "health": 90, "body": b, "head": b[0], "length": len(b), "latency": "0",
                "shout": "", "customizations": {}}
    me, other = snake("me", [(0, 0), (0, 1), (0, 2)]), snake("other", [(5, 4), (5, 5), (5, 6)])
    game = {"id": game_id, "ruleset": {"name": "standard", "version": "v1.2.3", "settings": {}}, "map": "standard",
            "timeout": 500, "source": ""}
    return {"game": game, "turn": turn, "board": {"width": 7, "height": 7, "snakes": [me, other],
                                                  "food": [{"x": 3, "y": 3}], "hazards": []}, "you": copy.deepcopy(me)}


def call(srv, method, path, data=None):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=json.dumps(data).encode() if data is not None else None)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path, onnx_models):
    url = str(tmp_path / "store")
    registry = promotion.open_registry(url)
    for name, model in zip(("v1", "v2"), onnx_models, strict=True):
        registry.register(model, architecture="cnn_simple-1x8", run=f"run-{name}", phase="bootstrap", game=GAME,
                          version_id=name)
    promotion.promote_manually(registry, GAME, "v1", by="test")
    return url, registry


def test_a_promotion_reaches_the_next_game_and_a_corrupt_version_never_plays(store, onnx_models, caplog):
    url, registry = store
    clock = Clock()
    follower = following.ChampionFollower(GAME, url, interval_s=5, clock=clock)
    app = app_module.App("champion", app_module.ServerSettings(port=0), factory=lambda spec, source: follower)
    with server.running(app) as srv:
        assert call(srv, "POST", "/start", body("a"))[0] == 200
        first = app.sessions._sessions[("a", "me")].player
        assert first.name == "champion (v1)"

        promotion.promote_manually(registry, GAME, "v2", by="test")
        assert call(srv, "POST", "/start", body("b"))[1] == {}  # within the interval: still v1
        assert app.sessions._sessions[("b", "me")].player is first
        clock.t = 6
        assert call(srv, "POST", "/start", body("c"))[0] == 200
        second = app.sessions._sessions[("c", "me")].player
        assert second.name == "champion (v2)" and second is not first
        status, answer = call(srv, "POST", "/move", body("a", turn=4))  # game a goes on with v1
        assert status == 200 and answer["move"] in ("up", "down", "left", "right")
        assert app.sessions._sessions[("a", "me")].player is first
        info = call(srv, "GET", "/")[1]["champion"]
        assert info["version"] == "v2" and info["switches"] == 1 and info["refused"] == 0

        # a third version whose bytes are damaged after it was put in force
        registry.register(onnx_models[0], architecture="x", run="run-v3", phase="bootstrap", game=GAME,
                          version_id="v3")
        promotion.promote_manually(registry, GAME, "v3", by="test")
        key = registry.get("v3").artifact
        data = bytearray(registry.store.fs.cat_file(registry.store.path(key)))
        data[100] ^= 0xFF
        registry.store.fs.pipe_file(registry.store.path(key), bytes(data))
        clock.t = 12
        with caplog.at_level(logging.ERROR, logger=following.__name__):
            assert call(srv, "POST", "/start", body("d"))[0] == 200
        assert app.sessions._sessions[("d", "me")].player is second  # the old one keeps playing
        assert any("refused version v3" in r.getMessage() and "still serving v2" in r.getMessage()
                   for r in caplog.records)
        clock.t = 18  # tried again, counted once
        call(srv, "POST", "/start", body("e"))
        info = call(srv, "GET", "/")[1]["champion"]
        assert info["version"] == "v2" and info["refused"] == 1 and "v3" in info["lastError"]

        registry.store.fs.pipe_file(registry.store.path(key), onnx_models[0])  # repaired
        clock.t = 24
        call(srv, "POST", "/start", body("f"))
        assert app.sessions._sessions[("f", "me")].player.name == "champion (v3)"


def test_a_rollback_is_followed_too(store):
    url, registry = store
    clock = Clock()
    promotion.promote_manually(registry, GAME, "v2", by="test")
    follower = following.ChampionFollower(GAME, url, interval_s=0, clock=clock)
    assert follower.current().name == "champion (v2)"
    registry.rollback(GAME, by="test", reason="check failed")
    assert follower.current().name == "champion (v1)" and follower.switches == 1


def test_serving_the_champion_needs_one(tmp_path):
    with pytest.raises(ValueError, match="no champion"):
        following.ChampionFollower(GAME, str(tmp_path / "empty"))
    with pytest.raises(players.PlayerUnavailable):
        players.make_player("champion", players.ChampionSource())
    assert isinstance(reg.Registry.open(str(tmp_path / "empty")).champion(GAME), reg.ChampionState)


def test_a_champion_too_small_for_the_game_is_never_served(store, onnx_models):
    """A pointer written without the board check (an older registry, or by hand) that names a 7x7 model as
    an 11x11 game's champion is refused at start-up with the reason (a switch to it goes through the same
    load, which keeps the old champion, as for a corrupt one)."""
    url, _ = store
    raw = reg.Registry.open(url)  # no model check: what an older registry or a hand-edited pointer allows
    raw.register(onnx_models[1], architecture="x", run="run-any", phase="bootstrap", version_id="any")
    raw.promote("standard-11x11-2p", "any", by="test")
    with pytest.raises(ValueError, match=r"model plays boards up to 7x7 .* the game standard-11x11-2p is 11x11"):
        following.ChampionFollower("standard-11x11-2p", url)
