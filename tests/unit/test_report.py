"""`ouro report RUN`: a self-contained HTML report from what a run left in its store."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest

from ouroboros.contract.progress import ProgressRecord
from ouroboros.trainer.artifacts import registry
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import report as command
from ouroboros.trainer.evaluation import report

pytestmark = pytest.mark.unit

GAME = "standard-7x7-2p"


def record(phase: str, history: dict, **fields) -> dict:
    return ProgressRecord(run="r1", phase=phase, started_at=datetime(2026, 1, 1, tzinfo=UTC),
                          updated_at=datetime(2026, 1, 1, 0, 3, tzinfo=UTC), history=history, done=True,
                          fraction=1, games=64, positions=9000, **fields).to_api()


@pytest.fixture
def store(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    store.write_json("runs/r1/progress/bootstrap-w0.json", record(
        "bootstrap", {"loss/policy": [(10, 1.2), (20, 0.9)], "accuracy": [(10, 0.5), (20, 0.6)]}))
    store.write_json("runs/r1/progress/hybrid-w0.json", record(
        "hybrid", {"loss/value": [(5, 0.4), (10, 0.3)], "win_rate/heuristic": [(0, 0.4), (1, 0.55)]},
        scalars={"loss/value": 0.3}))
    store.write_json("runs/r1/strength.json", {"opponents": [
        {"opponent": "heuristic", "games": 200, "wins": 110, "draws": 2, "losses": 88},
        {"opponent": "random-safe", "games": 200, "wins": 200, "draws": 0, "losses": 0,
         "player": "nsearch:ms=40"}]})  # the first row is from before the field: the policy played
    reg = registry.Registry(store)
    old = reg.register(b"old-model", architecture="cnn", run="r0", phase="self_play", game=GAME)
    new = reg.register(b"new-model", architecture="cnn", run="r1", phase="self_play", game=GAME)
    reg.promote(GAME, old.id, by="ouro train", reason="first")
    reg.promote(GAME, new.id, by="ouro train", reason="<script>alert(1)</script> beat the old one")
    return store


def test_the_report_is_one_self_contained_html_file(store, tmp_path, capsys):
    out = tmp_path / "r1.html"
    assert command.main(["r1", "--store", store.url, "-o", str(out)]) == 0
    html = out.read_text()
    assert html.startswith("<!doctype html>") and html.count("<svg") == 4  # 3 curve charts + strength
    # nothing is fetched from elsewhere: no scripts, stylesheets or images by URL
    assert "<script" not in html and not re.search(r'(src|href)="(?!#)', html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; beat the old one" in html  # user text is escaped
    for text in ("Run r1", "bootstrap", "hybrid", "110-2-88", "55.5%", "[48.6%, 62.2%]", "200-0-0",
                 "policy loss", "vs heuristic", "imitation accuracy", "promote",
                 "<td>policy</td><td>heuristic</td>", "<td>nsearch:ms=40</td><td>random-safe</td>"):
        assert text in html, text
    assert "wrote" in capsys.readouterr().out


def test_strength_rows_carry_wilson_and_elo_intervals():
    row = report.strength_row("heuristic", 200, 110, 2, 88)
    # the README's own figures for 110-2-88: 55.5% [48.6%, 62.2%]
    assert round(row.score.lower, 3) == 0.486 and round(row.score.upper, 3) == 0.622
    assert row.elo.lower < row.elo.elo < row.elo.upper and round(row.elo.elo) == 38
    perfect = report.strength_row("random-safe", 10, 10, 0, 0)
    assert perfect.elo.elo == math.inf and report._elo(perfect.elo.elo) == "+inf"
    with pytest.raises(ValueError, match="strength vs x: wins \\+ draws \\+ losses = 3, games = 4"):
        report.strength_row("x", 4, 1, 1, 1)


def test_an_unknown_run_is_a_clear_error(store, capsys):
    assert command.main(["nope", "--store", store.url]) == 1
    assert "no run 'nope' in" in capsys.readouterr().err


def test_a_run_without_strength_or_versions_still_reports(tmp_path):
    store = ArtifactStore(tmp_path / "s")
    store.write_json("runs/r1/progress/hybrid-w0.json", record("hybrid", {}))
    html = report.render(report.collect(store, "r1", datetime(2026, 1, 1, tzinfo=UTC)))
    assert "No strength measurement" in html and "No scalars recorded" in html
