"""Games the rules do not model, played under the official CLI: the official engine
places up to 16 snakes and plays boards of any size; `ouro serve` must answer every
move of them (a 400 would make the engine repeat our last move), within the timeout,
logging once per game that it plays them beyond the modelled rules."""

from __future__ import annotations

import json
import subprocess

import pytest

from integration.test_server_cli import ServerProcess, check_game, check_servers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

TIMEOUT_MS = 2000
"""Generous: 16 snakes' moves arrive at one server at once (about 170 ms at worst on the
loaded 2-core CI machine); the point here is that every move is answered."""


@pytest.mark.parametrize(("snakes", "side", "seed"), [(12, 19, 31), (16, 25, 32), (2, 40, 33)])
def test_unmodelled_games_are_played_to_the_end(battlesnake_cli, tmp_path, snakes, side, seed):
    server = ServerProcess("heuristic", tmp_path / "serve.log")
    try:
        out = tmp_path / "out.jsonl"
        args = [str(battlesnake_cli), "play", "-W", str(side), "-H", str(side), "-g", "standard",
                "-t", str(TIMEOUT_MS), "--seed", str(seed), "-o", str(out)]
        for i in range(snakes):
            args += ["--name", f"S{i}", "--url", server.url]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = [json.loads(line) for line in out.read_text().splitlines()]
        summary = check_game(records, proc.stderr + proc.stdout, {f"S{i}" for i in range(snakes)},
                             timeout_ms=TIMEOUT_MS)
        assert len(records[1]["board"]["snakes"]) == snakes
        check_servers([server], records[0]["id"], [snakes])
        log = server.log()
        assert log.count("beyond the modelled rules") == snakes  # one session per snake of ours
    finally:
        assert server.stop() == 0
    print(f"{snakes} snakes on {side}x{side}: {summary}")
