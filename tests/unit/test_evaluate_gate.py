"""The evaluate phase's gate end to end on tiny networks: fixed baselines on paired seeds, the
gate's games kept as official-CLI JSONL logs (read back and replayed through the engine), the
neural-search player, and a result that always fits a termination message."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from test_phases import _phase, _run_config

from ouroboros.contract.promotion import (
    BaselineStatistics,
    GatePlayer,
    GateStatistics,
    PromotionSpec,
)
from ouroboros.contract.run import RESULT_MAX_BYTES, PhaseResult
from ouroboros.trainer.artifacts import registry
from ouroboros.trainer.commands import phase as phase_command
from ouroboros.trainer.evaluation import promotion
from ouroboros.trainer.learning import imported

pytestmark = pytest.mark.unit

ALWAYS_STRONGER = {"sprt": {"elo0": -1000, "elo1": -500}}
"""An SPRT any candidate passes against an equal: the head-to-head says PROMOTE, the baselines decide."""


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def games_in(folder_uri: str) -> dict[str, imported.ImportedGame]:
    """Every game log of a gate folder, validated turn by turn by ``ouro data import``'s reader."""
    folder = Path(folder_uri.removeprefix("file://"))
    return {p.name: imported.read(p) for p in sorted(folder.glob("*.jsonl"))}


def score(games: list[imported.ImportedGame], name: str) -> float:
    """``name``'s score per game (wins + draws/2) as the logs tell it."""
    points = [1.0 if g.winner >= 0 and g.names[g.winner] == name else 0.5 if g.winner < 0 else 0.0 for g in games]
    return sum(points) / len(points)


def test_the_gates_games_are_official_logs_that_agree_with_its_statistics(tmp_path):
    first = _run_config(tmp_path, "first", "uid-1", {})
    _phase("bootstrap", first, tmp_path)
    champion = _phase("evaluate", first, tmp_path).gate.candidate
    second = _run_config(tmp_path, "second", "uid-2",
                         {**ALWAYS_STRONGER, "baselines": [{"player": "greedy", "games": 4, "maxRegression": 1.0}]})
    _phase("bootstrap", second, tmp_path)
    gate = _phase("evaluate", second, tmp_path).gate
    assert gate.verdict.value == "promote" and gate.champion == champion and gate.gate_source.value == "TrainingRun"
    assert [u.rstrip("/").rsplit("/", 1)[1] for u in gate.game_logs] == ["champion", "greedy"]
    # the bounds of the SPRT this gate applied (alpha = beta = 0.05 by default), for the gate metric
    assert (gate.llr_lower_bound, gate.llr_upper_bound) == pytest.approx((math.log(0.05 / 0.95), math.log(0.95 / 0.05)))

    duel = games_in(gate.game_logs[0])  # candidate vs champion: every game the SPRT kept
    assert len(duel) == gate.games and all(set(g.names) == {gate.candidate, champion} for g in duel.values())
    assert score(list(duel.values()), gate.candidate) == pytest.approx(gate.win_rate)
    assert sum(g.winner >= 0 and g.names[g.winner] == gate.candidate for g in duel.values()) == gate.wins

    line = gate.baselines[0]  # the candidate and the champion each played greedy on the same seeds
    logs = games_in(gate.game_logs[1])
    mine = [g for name, g in logs.items() if name.startswith("candidate-")]
    theirs = [g for name, g in logs.items() if name.startswith("champion-")]
    assert len(mine) == len(theirs) == line.games == 4
    assert score(mine, gate.candidate) == pytest.approx(line.win_rate)
    assert score(theirs, champion) == pytest.approx(line.champion_win_rate)
    assert line.difference == pytest.approx(line.win_rate - line.champion_win_rate, abs=1e-4)
    assert [g.states[0].snake_cells(0, 0).tolist() for g in mine] == [g.states[0].snake_cells(0, 0).tolist()
                                                                     for g in theirs]  # same starts: paired seeds


def test_a_first_champion_is_judged_against_the_baselines_alone(tmp_path):
    config = _run_config(tmp_path, "first", "uid-1",
                         {"baselines": [{"player": "heuristic", "games": 4, "minWinRate": 1.0}]})
    _phase("bootstrap", config, tmp_path)
    gate = _phase("evaluate", config, tmp_path).gate
    assert gate.verdict.value == "reject" and gate.first_champion and gate.champion is None
    assert gate.reasons[0].startswith("regressed against baseline heuristic: candidate ")
    assert "under the minimum 1.000" in gate.reasons[0] and gate.baselines[0].passed is False
    assert gate.baselines[0].champion_win_rate is None and len(games_in(gate.game_logs[0])) == 4
    assert registry.Registry.open(str(tmp_path / "store")).champion("standard-7x7-2p").version is None


def test_baselines_are_not_played_when_the_head_to_head_already_rejects(tmp_path):
    """...and with keepGames false no game is written (the report still is)."""
    first = _run_config(tmp_path, "first", "uid-1", {})
    _phase("bootstrap", first, tmp_path)
    _phase("evaluate", first, tmp_path)
    second = _run_config(tmp_path, "second", "uid-2", {"method": "winRate", "minWinRate": 1.0, "keepGames": False,
                                                       "baselines": [{"player": "greedy", "games": 4}]})
    _phase("bootstrap", second, tmp_path)
    gate = _phase("evaluate", second, tmp_path).gate
    assert gate.verdict.value == "reject" and gate.games == 8 and gate.baselines == [] and gate.game_logs == []
    assert Path(gate.report.removeprefix("file://")).is_file()
    assert not list(Path(gate.report.removeprefix("file://")).parent.glob("games/**/*.jsonl"))


def test_the_gate_can_play_both_sides_with_the_neural_search_at_a_budget(tmp_path):
    first = _run_config(tmp_path, "first", "uid-1", {})
    _phase("bootstrap", first, tmp_path)
    _phase("evaluate", first, tmp_path)
    second = _run_config(tmp_path, "second", "uid-2",
                         {**ALWAYS_STRONGER, "player": "nsearch", "moveBudgetMs": 0, "maxVisits": 4})
    _phase("bootstrap", second, tmp_path)
    gate = _phase("evaluate", second, tmp_path).gate
    assert gate.player is GatePlayer.NSEARCH and gate.games == 8 and len(games_in(gate.game_logs[0])) == 8
    spec = PromotionSpec(player="nsearch", move_budget_ms=0, max_visits=4)
    assert promotion.player_spec(Path("/m.onnx"), spec) == "nsearch:model=/m.onnx,ms=0,visits=4"
    assert promotion.player_spec(Path("/m.onnx"), PromotionSpec()) == "onnx:/m.onnx"


def test_a_gate_result_always_fits_a_termination_message():
    """Four baselines, eight long reasons and five long log URIs do not fit in 4096 bytes: the result
    sheds reasons (the first stays), then log URIs (the report keeps everything)."""
    uri = "s3://a-bucket-with-a-long-name/and/a/deep/prefix/runs/namespace.a-long-run-name-0123456789/"
    gate = GateStatistics(
        verdict="reject", games=400, candidate="v" * 60, champion="w" * 60, report=uri + "evaluate/gate.json",
        reasons=[f"reason {i}: " + "x" * 228 for i in range(8)],
        baselines=[BaselineStatistics(player=p, games=100, win_rate=0.1234, win_rate_upper=0.2345,
                                      champion_win_rate=0.3456, difference=-0.2222, difference_upper=-0.1111,
                                      passed=False) for p in ("random-safe", "greedy", "heuristic", "search")],
        game_logs=[uri + f"evaluate/games/{o}/" for o in ("champion", "random-safe", "greedy", "heuristic", "search")])
    result = PhaseResult(phase="evaluate", gate=gate, message="m" * 1000)
    fitted = phase_command.fit_result(result)
    size = len(phase_command.write_result(result, Path("/dev/null")).encode())
    assert size <= RESULT_MAX_BYTES and fitted.gate.reasons[0] == gate.reasons[0]
    assert len(fitted.gate.baselines) >= 1 and fitted.gate.verdict == gate.verdict
