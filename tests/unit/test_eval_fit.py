"""`python -m benchmarks.eval_fit`: the Texel fit recovers weights that generated the results, and the
benchmark's rows are the search's own leaf terms of played duels."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit

ROOT = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def eval_fit():
    """As `python -m` from the checkout imports it (the benchmarks are not installed); the checkout goes
    after the standard library on the path: its `operator/` must not shadow `operator`."""
    if ROOT not in sys.path:
        sys.path.append(ROOT)
    return importlib.import_module("benchmarks.eval_fit")


def test_the_fit_recovers_the_weights_that_drew_the_results(eval_fit):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 3))
    true = np.array([1.5, -0.5, 0.25])
    y = (rng.random(40_000) < 1 / (1 + np.exp(-(x @ true)))).astype(float)
    w = eval_fit.fit(x, y, l2=0.0)
    assert w == pytest.approx(true, abs=0.05)
    assert eval_fit.log_loss(x, y, w) < eval_fit.log_loss(x, y, np.zeros(3))


def test_rows_are_each_living_seats_terms_and_its_result(eval_fit):
    rows, results = eval_fit.play(seed=11, games=2, ms=2, max_turns=30)
    assert rows.shape[1] == 3 + len(eval_fit.TERMS) == 8
    assert set(np.unique(rows[:, 0])) == {0, 1} and set(np.unique(rows[:, 2])) <= {0, 1}
    assert (rows[:, 1] >= 0).all()  # turns left before the game's end (0: the capped last turn)
    assert set(np.unique(results)) <= {0.0, 0.5, 1.0}
    first = rows[(rows[:, 0] == 0) & (rows[:, 1] == rows[rows[:, 0] == 0, 1].max())]
    assert len(first) == 2  # the start position, both seats
    assert first[0, 3] == -first[1, 3]  # the Voronoi area lead is one seat's loss
    assert eval_fit.TERMS == ["area", "length", "food", "starve", "trapped"]  # the README table's order
