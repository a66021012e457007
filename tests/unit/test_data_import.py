"""`ouro data import`: game logs in the official CLI's format become replay rows, or are refused.

The logs come from `ouro play -o`, which writes the official CLI's format (its
integration test checks that format against the real CLI, and
tests/integration/test_server_cli.py imports logs the real CLI wrote). A
tampered log must be refused with the line and turn of the first broken rule,
and nothing written.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ouroboros.contract.game import GameSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import data, play
from ouroboros.trainer.learning import imported, shards
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute
from ouroboros.trainer.observation import encoding

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """{ruleset: [log paths]}: two 4-snake games per ruleset on 7x7 boards."""
    folder = tmp_path_factory.mktemp("logs")
    out = {}
    for ruleset in ("standard", "royale", "wrapped", "constrictor"):
        code = play.main(["--players", "greedy,heuristic,random-safe,greedy", "--games", "2", "--seed", "5",
                          "--ruleset", ruleset, "-W", "7", "-H", "7", "-o", str(folder / f"{ruleset}.jsonl")])
        assert code == 0
        out[ruleset] = sorted(folder.glob(f"{ruleset}-*.jsonl"))
    return out


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.mark.parametrize("ruleset", ["standard", "royale", "wrapped", "constrictor"])
def test_logged_games_replay_exactly_and_become_rows(logs, ruleset):
    for path in logs[ruleset]:
        records = lines(path)
        game = imported.read(path)
        turns = records[1:-1]
        assert len(game.states) == len(turns) and game.config.ruleset.value == ruleset
        winner = records[-1]["winnerName"]
        assert (game.names[game.winner] if game.winner >= 0 else "") == winner
        cols = game.columns()
        living = sum(len(t["board"]["snakes"]) for t in turns[:-1])
        assert len(cols["move"]) == living
        assert cols["planes"].shape == (living, encoding.N_CHANNELS, 7, 7)
        assert set(np.unique(cols["value"])) <= {-1.0, 0.0, 1.0}
        # the recorded move is the one that leads to the next logged head
        t, seat = int(cols["turn"][0]), int(cols["seat"][0])
        head = turns[t]["board"]["snakes"][0]["head"]
        nxt = next(s for s in turns[t + 1]["board"]["snakes"] if s["id"] == game.ids[seat])["head"]
        delta = {(0, 1): 0, (0, -1): 1, (-1, 0): 2, (1, 0): 3}
        if ruleset != "wrapped":
            assert delta[(nxt["x"] - head["x"], nxt["y"] - head["y"])] == cols["move"][0]


def _tamper(records, turn, change):
    out = json.loads(json.dumps(records))
    change(out[1 + turn]["board"])
    return out


TAMPERED = [
    ("health", lambda b: b["snakes"][0].update(health=b["snakes"][0]["health"] - 7), "health"),
    ("teleport", lambda b: b["snakes"][0]["body"].__setitem__(0, {"x": (b["snakes"][0]["body"][0]["x"] + 3) % 7,
                                                                     "y": b["snakes"][0]["body"][0]["y"]}),
     "not one step"),
    ("resurrection", lambda b: b["snakes"].append({**b["snakes"][0], "id": "ghost"}), "'ghost' was not in the game"),
    ("food vanishes", lambda b: b.update(food=[]), "was not eaten but is gone"),
]


@pytest.mark.parametrize(("name", "change", "words"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_a_log_that_breaks_the_rules_is_refused_with_the_turn(logs, tmp_path, name, change, words):
    records = lines(logs["standard"][0])
    turn = 3
    if name == "food vanishes":  # pick a turn that has food left from the turn before
        turn = next(t for t in range(2, len(records) - 2) if records[t]["board"]["food"])
    bad = write(tmp_path / "bad.jsonl", _tamper(records, turn, change))
    with pytest.raises(imported.LogError, match=rf"line {turn + 2}: turn {turn}") as err:
        imported.read(bad)
    assert words in str(err.value)


def test_malformed_logs_name_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "g", "ruleset": {"name": "standard"}}\nnot json\n')
    with pytest.raises(imported.LogError, match="line 2: not JSON"):
        imported.read(path)
    path.write_text('{"id": "g", "ruleset": {"name": "chess"}}\n{}\n')
    with pytest.raises(imported.LogError, match="line 1: ruleset.name: unknown ruleset 'chess'"):
        imported.read(path)
    with pytest.raises(imported.LogError, match="cannot read"):
        imported.read(tmp_path / "missing.jsonl")


def test_a_wrong_winner_is_refused(logs, tmp_path):
    records = lines(logs["standard"][0])
    records[-1]["winnerId"] = next(s["id"] for s in records[1]["board"]["snakes"] if s["name"] != records[-1]["winnerName"])
    with pytest.raises(imported.LogError, match="result: winnerId"):
        imported.read(write(tmp_path / "w.jsonl", records))


def test_import_command_writes_shards_with_provenance_once(logs, tmp_path, capsys):
    store = str(tmp_path / "store")
    files = [str(p) for p in logs["standard"]]
    assert data.main(["import", *files, "--store", store, "--run", "r1"]) == 0
    refs = shards.list_shards(ArtifactStore(store), "r1", "imported")
    assert len(refs) == 2
    meta = refs[0].meta.extra
    assert meta["producer"] == "import" and meta["source"] in files and len(meta["sha256"]) == 64
    assert meta["encoding"] == "planes-v2"  # the planes it holds, not the version before the territory planes
    assert meta["snakes"] == ["greedy", "heuristic", "random-safe", "greedy#2"]
    assert data.main(["import", *files, "--store", store, "--run", "r1"]) == 0
    assert "already imported" in capsys.readouterr().out
    assert len(shards.list_shards(ArtifactStore(store), "r1", "imported")) == 2
    # only one snake's moves
    assert data.main(["import", files[0], "--store", store, "--run", "r2", "--only", "heuristic"]) == 0
    cols = shards.read_shard(ArtifactStore(store), shards.list_shards(ArtifactStore(store), "r2", "imported")[0])
    assert set(cols["seat"].tolist()) == {1}


def test_one_bad_log_refuses_the_whole_import(logs, tmp_path, capsys):
    records = lines(logs["standard"][0])
    bad = write(tmp_path / "bad.jsonl", _tamper(records, 2, TAMPERED[0][1]))
    store = str(tmp_path / "store")
    assert data.main(["import", str(logs["standard"][1]), bad, "--store", store, "--run", "r1"]) == data.EXIT_REFUSED
    err = capsys.readouterr().err
    assert "bad.jsonl: line 4: turn 2: snake" in err
    assert not shards.list_shards(ArtifactStore(store), "r1", "imported")


def test_bootstrap_imitates_imported_games(logs, tmp_path):
    """games=0 and imitate_phases=('imported',): the phase trains on the imported rows alone."""
    store = str(tmp_path / "store")
    assert data.main(["import", *map(str, logs["standard"]), "--store", store, "--run", "t"]) == 0
    rows = sum(r.meta.rows for r in shards.list_shards(ArtifactStore(store), "t", "imported"))
    run = pc.RunSettings(run="t", store=store, game=GameSpec(width=7, height=7, snakes=4, max_turns=40),
                         network=pc.networks.NetworkConfig(architecture="cnn_simple", attention_layers=0,
                                                           blocks=1, channels=8), seed=3)
    phase = pc.phase_settings(PhaseName.BOOTSTRAP, games=0, parallel_games=4, batch_size=32, epochs=1,
                              checkpoint_every=2, imitate_phases=("imported",))
    outcome = execute.execute(run, phase)
    assert outcome.metrics["games"] == 0 and outcome.metrics["positions"] == rows
    assert outcome.metrics["steps"] == -(-rows // 32)


def test_a_turn_where_everyone_dies_together(tmp_path):
    """Equal snakes meet head-on: the last turn's board has no snakes, and the game is a draw."""
    def snake(sid, cells):
        return {"id": sid, "name": sid, "health": 100, "body": [{"x": x, "y": y} for x, y in cells]}

    game = {"id": "g", "ruleset": {"name": "standard", "settings": {"foodSpawnChance": 0, "minimumFood": 0}},
            "map": "empty", "timeout": 500}
    board = {"width": 7, "height": 7, "food": [], "hazards": [],
             "snakes": [snake("a", [(2, 3), (1, 3), (0, 3)]), snake("b", [(4, 3), (5, 3), (6, 3)])]}
    records = [game, {"game": game, "turn": 0, "board": board},
               {"game": game, "turn": 1, "board": {**board, "snakes": []}},
               {"winnerId": "", "winnerName": "", "isDraw": True}]
    result = imported.read(write(tmp_path / "draw.jsonl", records))
    # right and left, into (3, 3): each snake turning into its own neck would explain it too,
    # but moves that do not lose at once are tried first
    assert result.winner == -1 and result.moves.tolist() == [[3, 2]]
    assert result.columns()["value"].tolist() == [0.0, 0.0]
