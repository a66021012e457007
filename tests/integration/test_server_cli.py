"""Full games under the official CLI (`battlesnake play`, rules v1.2.3) against our servers.

This is what a real game does to `ouro serve`: the official engine pings `GET /`,
sends `/start`, one `/move` per snake per turn in parallel (two of our snakes
in one game hit one server at once), and `/end` to every snake, eliminated
ones included. A game passes when the CLI finishes it with a winner or a draw,
its log is valid JSON lines turn by turn, no snake's latency came near the
timeout, the CLI printed no warning (a failed request, a non-200 status, a
bad move) and our servers logged no error and closed every game's session.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ouroboros.trainer.serving import players

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TIMEOUT_MS = 500


def _strongest_builtin() -> str:
    """heuristic once the agents package has it, else greedy."""
    try:
        players.make_player("heuristic")
        return "heuristic"
    except players.PlayerUnavailable:
        return "greedy"


STARTUP_SECONDS = 180
"""How long a server may take to listen (its warm-up move included) before the test gives up."""


class ServerProcess:
    """`ouro serve` in its own process (as in production), its log in a file."""

    def __init__(self, spec: str, log_path: Path):
        self.spec, self.log_path = spec, log_path
        self._log = log_path.open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ouroboros.trainer.commands.cli", "serve", "--player", spec,
             "--port", "0", "--log-level", "INFO"], stderr=self._log, text=True)
        try:
            self.url = self._wait_for_url()
        except BaseException:  # a server that never listened must not outlive the test
            self.proc.kill()
            self.proc.wait(timeout=10)
            self._log.close()
            raise

    def _wait_for_url(self) -> str:
        # A server listens after its warm-up move, which for `search` compiles the numba kernel:
        # 7 to 24 s on a quiet 2-core machine, over 30 s at load 6.6 (two games and a test run beside it).
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            match = re.search(r" on (http://127\.0\.0\.1:\d+)", self.log_path.read_text())
            if match:
                return match[1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"ouro serve {self.spec} did not start:\n{self.log_path.read_text()}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=10)
        self._log.close()
        return code


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Two servers with different players: (strongest built-in, greedy or random-safe)."""
    root = tmp_path_factory.mktemp("servers")
    first = _strongest_builtin()
    second = "greedy" if first != "greedy" else "random-safe"
    procs = [ServerProcess(first, root / "a.log"), ServerProcess(second, root / "b.log")]
    yield procs
    codes = [p.stop() for p in procs]
    assert codes == [0, 0], "ouro serve did not stop cleanly on SIGTERM"


def play(cli: Path, out: Path, snakes: list[tuple[str, str]], gametype: str, seed: int,
         timeout_ms: int = TIMEOUT_MS) -> tuple[list[dict], str]:
    """Runs one CLI game; returns (the output log's records, the CLI's stderr)."""
    args = [str(cli), "play", "-W", "11", "-H", "11", "-g", gametype, "-t", str(timeout_ms),
            "--seed", str(seed), "-o", str(out)]
    for name, url in snakes:
        args += ["--name", name, "--url", url]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, f"battlesnake play failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    lines = out.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON value
    return records, proc.stderr + proc.stdout


def check_game(records: list[dict], cli_output: str, names: set[str],
               timeout_ms: int = TIMEOUT_MS) -> dict:
    """The game's log is well formed, it ended, and nothing timed out or failed."""
    game, turns, result = records[0], records[1:-1], records[-1]
    assert {"id", "ruleset", "map", "timeout"} <= set(game) and game["timeout"] == timeout_ms
    assert turns, "no turns recorded"
    assert [t["turn"] for t in turns] == list(range(len(turns)))
    assert all(t["game"]["id"] == game["id"] for t in turns)
    assert set(result) == {"winnerId", "winnerName", "isDraw"}
    assert result["isDraw"] or result["winnerName"] in names, result
    latencies = [int(s["latency"]) for t in turns[1:] for s in t["board"]["snakes"]]
    assert latencies and max(latencies) < timeout_ms, f"a move hit the timeout: {max(latencies)} ms"
    problems = [line for line in cli_output.splitlines()
                if re.match(r"^(WARN|ERROR|FATAL)", line) or "failed" in line.lower()]
    assert not problems, "\n".join(problems[:10])
    assert re.search(r"Game completed after \d+ turns", cli_output)
    return {"turns": len(turns), "max_latency_ms": max(latencies), "result": result}


def check_servers(servers: list[ServerProcess], game_id: str, snakes: list[int]) -> None:
    """Each server closed the session of each of its snakes at /end, refused no request
    and logged no error."""
    for server, count in zip(servers, snakes, strict=True):
        log = server.log()
        assert "ERROR" not in log and "Traceback" not in log, log[-3000:]
        assert " refused (" not in log, log[-3000:]  # the engine's requests were all well formed
        closed = log.count(f"game {game_id}: end, snake ")
        assert closed == count, f"{server.spec} closed {closed} of its {count} snakes' sessions"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duels_finish_cleanly(battlesnake_cli, servers, tmp_path, seed):
    a, b = servers
    records, output = play(battlesnake_cli, tmp_path / "out.jsonl",
                           [("A", a.url), ("B", b.url)], "standard", seed)
    summary = check_game(records, output, {"A", "B"})
    check_servers(servers, records[0]["id"], [1, 1])
    print(f"seed {seed}: {summary}")


@pytest.mark.parametrize("seed", [11, 12])
def test_four_snake_game_two_per_server(battlesnake_cli, servers, tmp_path, seed):
    a, b = servers
    snakes = [("A1", a.url), ("B1", b.url), ("A2", a.url), ("B2", b.url)]
    records, output = play(battlesnake_cli, tmp_path / "out.jsonl", snakes, "standard", seed)
    summary = check_game(records, output, {name for name, _ in snakes})
    assert len(records[1]["board"]["snakes"]) == 4
    check_servers(servers, records[0]["id"], [2, 2])
    print(summary)


@pytest.mark.parametrize("gametype", ["wrapped", "royale"])
def test_other_rulesets_finish_cleanly(battlesnake_cli, servers, tmp_path, gametype):
    a, b = servers
    records, output = play(battlesnake_cli, tmp_path / "out.jsonl",
                           [("A", a.url), ("B", b.url)], gametype, 5)
    summary = check_game(records, output, {"A", "B"})
    assert records[0]["ruleset"]["name"] == gametype
    if gametype == "royale" and summary["turns"] > 25:
        assert any(t["board"]["hazards"] for t in records[1:-1]), "royale never shrank"
    check_servers(servers, records[0]["id"], [1, 1])
    print(f"{gametype}: {summary}")


def test_search_player_keeps_within_a_short_timeout(battlesnake_cli, servers, tmp_path):
    """A budgeted player under a 250 ms engine timeout thinks 100 ms (margin 150) and
    no move comes near the timeout."""
    search = ServerProcess("search", tmp_path / "search.log")
    try:
        records, output = play(battlesnake_cli, tmp_path / "out.jsonl",
                               [("S", search.url), ("A", servers[0].url)], "standard", 3,
                               timeout_ms=250)
        summary = check_game(records, output, {"S", "A"}, timeout_ms=250)
        check_servers([search, servers[0]], records[0]["id"], [1, 1])
        assert "budget 100 ms" in search.log()
        assert "of a 250 ms timeout" not in search.log()  # never past 175 ms of thinking
    finally:
        assert search.stop() == 0
    print(f"search: {summary}")


def test_neural_server_plays_full_games(battlesnake_cli, servers, tmp_path):
    """An ONNX network (the default architecture, untrained: the point is the serving
    path, not its strength) served by `ouro serve --player onnx:PATH` plays full games
    against a heuristic server under the official CLI, inside the timeout."""
    pytest.importorskip("torch")
    from ouroboros.trainer.learning import networks, onnx_export

    model = tmp_path / "net.onnx"
    onnx_export.export(networks.build_network(seed=0), model)
    neural = ServerProcess(f"onnx:{onnx_export.sibling(model, 'opt')}", tmp_path / "neural.log")
    try:
        for seed in (21, 22):
            records, output = play(battlesnake_cli, tmp_path / f"out-{seed}.jsonl",
                                   [("N", neural.url), ("A", servers[0].url)], "standard", seed)
            summary = check_game(records, output, {"N", "A"})
            check_servers([neural, servers[0]], records[0]["id"], [1, 1])
            print(f"neural, seed {seed}: {summary}")
    finally:
        assert neural.stop() == 0


@pytest.mark.parametrize("hand_off", [False, True], ids=["mcts", "alpha-beta-with-leaf-net"])
def test_neural_search_server_plays_full_games_inside_the_timeout(battlesnake_cli, servers, tmp_path, hand_off):
    """`ouro serve --player nsearch:model=PATH` (a small untrained network inside the
    neural MCTS) thinks `timeout - margin` per move under the official CLI's 500 ms
    timeout and never reaches it; so does the champion's served form, every move handed to
    the alpha-beta with the leaf net the model carries in its metadata (`endgame=0.01`: a
    random net of the 11x11 board's size, whose kernel the warm-up compiles)."""
    pytest.importorskip("torch")
    from leafnets import random_net

    from ouroboros.trainer.learning import networks, onnx_export

    model = tmp_path / "net.onnx"
    config = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=16)
    onnx_export.export(networks.build_network(config, seed=0), model)
    spec = f"nsearch:model={model}"
    if hand_off:
        model.write_bytes(onnx_export.with_leaf_net(model.read_bytes(), random_net(13 * 13)))
        spec += ",endgame=0.01"
    nsearch = ServerProcess(spec, tmp_path / "nsearch.log")
    try:
        records, output = play(battlesnake_cli, tmp_path / "out.jsonl",
                               [("M", nsearch.url), ("A", servers[0].url)], "standard", 31)
        summary = check_game(records, output, {"M", "A"})
        check_servers([nsearch, servers[0]], records[0]["id"], [1, 1])
        assert "budget 350 ms" in nsearch.log()
    finally:
        assert nsearch.stop() == 0
    print(f"nsearch (hand-off {hand_off}): {summary}")


@pytest.mark.parametrize(("gametype", "snakes"), [("standard", 4), ("royale", 2), ("wrapped", 2)])
def test_official_cli_logs_import_turn_by_turn(battlesnake_cli, servers, tmp_path, gametype, snakes):
    """Logs the official CLI wrote replay exactly through our engine (`ouro data import`),
    winner included; the same log with one snake's health changed is refused at that turn."""
    from ouroboros.trainer.learning import imported

    a, b = servers
    line_up = [(f"S{i}", (a, b)[i % 2].url) for i in range(snakes)]
    out = tmp_path / "game.jsonl"
    records, _ = play(battlesnake_cli, out, line_up, gametype, 41)
    game = imported.read(out)
    assert len(game.states) == len(records) - 2
    result = records[-1]
    assert (game.names[game.winner] if game.winner >= 0 else "") == result["winnerName"]
    assert len(game.columns()["move"]) == sum(len(r["board"]["snakes"]) for r in records[1:-2])
    turn = min(3, len(records) - 3)
    records[1 + turn]["board"]["snakes"][0]["health"] -= 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in records))
    with pytest.raises(imported.LogError, match=rf"turn {turn}: snake .*health"):
        imported.read(bad)
