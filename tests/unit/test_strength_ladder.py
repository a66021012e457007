"""`python -m benchmarks.strength`: what it plays is what the README's commands say it plays."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def strength():
    """`benchmarks.strength` as `python -m` from the checkout imports it (the benchmarks are not installed).
    The checkout goes after the standard library on the path: its `operator/` must not shadow `operator`."""
    if ROOT not in sys.path:
        sys.path.append(ROOT)
    return importlib.import_module("benchmarks.strength")


def test_players_keep_a_spec_options_together(strength):
    """--players splits as `ouro evaluate --players` does: `nsearch:model=M,ms=100` is one player
    (a plain split on commas made `ms=100` an unknown player)."""
    got = strength.entrants("nsearch:model=m.onnx,ms=100,prune=0.1,search:ms=10,heuristic", [100], None)
    assert [spec for spec, _ in got] == ["nsearch:model=m.onnx,ms=100,prune=0.1", "search:ms=10", "heuristic"]


def test_the_ladder_without_a_model_leaves_the_neural_players_out(strength):
    names = [name for _, name in strength.entrants(None, [10, 40], None)]
    assert names == ["random-safe", "greedy", "heuristic", "search-v1 10ms", "search 10ms", "search 40ms"]


def test_a_model_too_small_for_11x11_is_refused_before_any_game(strength, tmp_path, onnx_models, capsys):
    """The smoke preset's 7x7 champion was a traceback from inside the first neural game."""
    model = tmp_path / "m.onnx"
    model.write_bytes(onnx_models[0])  # 7x7
    code = strength.main(["--model", str(model), "--games", "2", "--budgets", "5", "--ffa-games", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "takes boards up to 7x7, the ladder plays 11x11" in err and "Traceback" not in err
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert strength.main(["--model", str(junk), "--games", "2", "--ffa-games", "0"]) == 2
    assert "not a loadable ONNX model" in capsys.readouterr().err


def test_the_champion_with_search_plays_the_served_hand_off(strength):
    """--endgame plays champion+nsearch as `endgameShare` serves it; without it, the tree alone."""
    served = dict((name, spec) for spec, name in strength.entrants(None, [100], "m.onnx", 0.25))
    assert served["champion+nsearch 100ms"] == "nsearch:model=m.onnx,ms=100,endgame=0.25"
    assert served["search 100ms"] == "search:ms=100" and served["champion policy"] == "onnx:m.onnx"
    tree = dict((name, spec) for spec, name in strength.entrants(None, [100], "m.onnx"))
    assert tree["champion+nsearch 100ms"] == "nsearch:model=m.onnx,ms=100"


@pytest.mark.parametrize("share", ["-0.1", "1.5", "nan"])
def test_an_endgame_share_off_the_board_is_refused(strength, share, capsys):
    with pytest.raises(SystemExit) as stop:
        strength.main(["--endgame", share, "--games", "1", "--ffa-games", "0"])
    assert stop.value.code == 2 and "--endgame: a share of the board between 0 and 1" in capsys.readouterr().err
