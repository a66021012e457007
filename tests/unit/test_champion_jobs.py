"""`ouro champion job ...`: the registry operations the Champion controller runs, on a real store with real ONNX models."""

from __future__ import annotations

import pytest

from ouroboros.contract.champion import RegistryReport
from ouroboros.contract.promotion import GateStatistics
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.commands import champion as command
from ouroboros.trainer.evaluation import champion_jobs, promotion

pytestmark = pytest.mark.unit
GAME = "standard-7x7-2p"


@pytest.fixture
def two(tmp_path, onnx_models):
    """A store with two versions, v1 champion then v2 champion (v2 replaced v1)."""
    url = str(tmp_path / "store")
    registry = promotion.open_registry(url)
    for name, model in zip(("v1", "v2"), onnx_models, strict=True):
        registry.register(model, architecture="cnn_simple-1x8", run=f"run-{name}", phase="bootstrap", game=GAME,
                          version_id=name)
    promotion.promote_manually(registry, GAME, "v1", by="test")
    promotion.promote_manually(registry, GAME, "v2", by="test",
                               statistics={"score": 0.7, "wilson_lower": 0.6, "wilson_upper": 0.8, "elo": 147.0})
    return url, registry


def job(url, tmp_path, *args) -> tuple[int, RegistryReport | None]:
    out = tmp_path / "result.json"
    code = command.main(["job", *args, "--game", GAME, "--store", url, "--result", str(out)])
    return code, RegistryReport.model_validate_json(out.read_text()) if code == 0 else None


def test_sync_reports_the_pointer_and_its_history(two, tmp_path):
    url, _ = two
    code, report = job(url, tmp_path, "sync")
    assert code == 0 and report.version == "v2" and report.generation == 2
    assert [r.version for r in report.history] == ["v2", "v1"] and report.history[0].previous == "v1"
    assert report.history[0].win_rate == pytest.approx(0.7) and report.sha256 and report.uri.endswith("model.onnx")
    assert (report.history[0].win_rate_lower, report.history[0].win_rate_upper) == (0.6, 0.8)
    assert report.history[0].elo == 147.0 and report.history[0].elo_lower is None


def test_pin_then_unpin(two, tmp_path):
    url, registry = two
    code, report = job(url, tmp_path, "pin", "--version", "v1", "--by", "ada")
    assert code == 0 and report.version == "v1" and report.pinned_version == "v1"
    assert report.history[0].action == "pin" and report.history[0].by == "ada"
    assert job(url, tmp_path, "pin", "--version", "v1")[1].generation == report.generation  # idempotent
    code, report = job(url, tmp_path, "unpin")
    assert code == 0 and report.pinned_version is None and report.version == "v1"
    assert registry.champion(GAME).pinned_version is None


def test_pinning_a_version_never_champion_is_refused(two, tmp_path, capsys, onnx_models):
    url, registry = two
    registry.register(onnx_models[0] + b"", architecture="x", run="other", phase="bootstrap", game=GAME,
                      version_id="v3")
    code, _ = job(url, tmp_path, "promote")  # no --version
    assert code == 2 and "--version: required" in capsys.readouterr().err
    assert job(url, tmp_path, "pin", "--version", "nope")[0] == 1
    assert registry.champion(GAME).version == "v2"


def test_promote_an_approved_candidate_with_its_gate_statistics(two, tmp_path, onnx_models):
    url, registry = two
    registry.register(onnx_models[0], architecture="x", run="cand", phase="bootstrap", game=GAME, version_id="v3")
    stats = GateStatistics(verdict="promote", games=20, wins=15, losses=5, win_rate=0.75, candidate="v3")
    code, report = job(url, tmp_path, "promote", "--version", "v3", "--run", "cand", "--by", "ada",
                       "--statistics", stats.model_dump_json(by_alias=True, exclude_none=True))
    assert code == 0 and report.version == "v3" and report.history[0].by == "ada"
    assert report.history[0].run == "cand" and report.history[0].win_rate == pytest.approx(0.75)
    assert job(url, tmp_path, "promote", "--version", "v3")[1].generation == report.generation  # idempotent


def test_a_check_under_the_threshold_rolls_back_and_over_it_keeps(two, tmp_path):
    url, registry = two
    code, report = job(url, tmp_path, "check", "--version", "v2", "--against", "v1", "--games", "4",
                       "--min-win-rate", "0")
    assert code == 0 and report.check.passed and report.check.games == 4 and report.version == "v2"
    code, report = job(url, tmp_path, "check", "--version", "v2", "--against", "v1", "--games", "4",
                       "--min-win-rate", "1")  # only a clean sweep passes (these seeds: none)
    assert code == 0 and not report.check.passed and report.check.rolled_back
    assert report.version == "v1" and report.history[0].action == "rollback"
    assert "post-promotion check failed" in report.history[0].reason
    state = registry.champion(GAME)
    assert state.version == "v1" and state.history[0].action is reg.ChampionAction.ROLLBACK
    # checking a version no longer in force plays nothing and changes nothing
    code, again = job(url, tmp_path, "check", "--version", "v2", "--against", "v1", "--min-win-rate", "1")
    assert again.check.passed and again.check.games == 0 and again.generation == report.generation


def test_a_report_always_fits_a_termination_message(two):
    _, registry = two
    state = registry.champion(GAME)
    long = state.model_copy(update={"history": [state.history[0].model_copy(update={"reason": "x" * 5000})] * 20})
    report = champion_jobs.report_of(champion_jobs.ChampionOperation.SYNC, long)
    assert len(champion_jobs.encode(report)) <= 4096 and report.history


def test_the_check_plays_both_versions_as_the_champions_gate_plays_them(two, tmp_path, nsearch_decisions, capsys):
    """--player nsearch:...: the champion and the version it replaced both play inside the neural search
    (here on a simulation cap, so the games are the same on any machine), and the result says so."""
    url, registry = two
    seen = nsearch_decisions
    check = ["check", "--version", "v2", "--against", "v1", "--games", "2", "--min-win-rate", "0"]
    code, policy = job(url, tmp_path, *check)
    assert code == 0 and policy.check.player == "policy" and "both playing policy" in policy.check.message
    assert seen == []  # the default: the bare policies, no search
    code, report = job(url, tmp_path, *check, "--player", "nsearch:ms=0,visits=4")
    assert code == 0 and report.check.passed and report.check.games == 2
    assert report.check.player == "nsearch:ms=0,visits=4" and "both playing nsearch:ms=0,visits=4" in report.check.message
    models = {name.split("model=")[1].split(",")[0].rsplit("/", 1)[1] for name, _ in seen}
    assert models == {"v1.onnx", "v2.onnx"} and {sims for _, sims in seen} <= {0, 4}
    assert any(sims == 4 for _, sims in seen)
    _, again = job(url, tmp_path, *check, "--player", "nsearch:ms=0,visits=4")
    assert again.check.win_rate == report.check.win_rate  # capped, not clocked: the same games
    # a failing check says in the rollback's reason how the versions played
    assert report.check.win_rate < 1  # these capped games are no clean sweep, so a threshold of 1 fails them
    code, failed = job(url, tmp_path, *check[:-1], "1", "--player", "nsearch:ms=0,visits=4")
    assert failed.check.rolled_back and failed.version == "v1"
    assert "both playing nsearch:ms=0,visits=4" in registry.champion(GAME).history[0].reason
    assert job(url, tmp_path, *check, "--player", "search:ms=10")[0] == 2
    assert "--player: unknown player 'search:ms=10'" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "words"), [
    (["--games", "0"], "--games: 1 to 100,000 smoke games (spec.check.games), got 0"),
    (["--games", "-3"], "--games: 1 to 100,000 smoke games (spec.check.games), got -3"),
    (["--games", "100001"], "--games: 1 to 100,000 smoke games (spec.check.games), got 100001"),
    (["--min-win-rate", "7"], "--min-win-rate: a score between 0 and 1, got 7"),
    (["--min-win-rate", "-0.1"], "--min-win-rate: a score between 0 and 1, got -0.1"),
    (["--min-win-rate", "nan"], "--min-win-rate: a score between 0 and 1, got nan"),
    (["--player", "junk"], "--player: unknown player 'junk'"),
])
def test_a_check_with_a_bad_flag_is_refused_and_the_champion_stays(two, tmp_path, capsys, argv, words):
    """A threshold above 1 rolled back every champion and --games 0 played 2 games: now exit 2, naming the
    flag, with the pointer untouched and no game played."""
    url, registry = two
    code, _ = job(url, tmp_path, "check", "--version", "v2", "--against", "v1", *argv)
    assert code == 2 and words in capsys.readouterr().err
    assert registry.champion(GAME).version == "v2" and registry.champion(GAME).history[0].action is not \
        reg.ChampionAction.ROLLBACK
