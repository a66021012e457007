"""The promotion gate: promote only on sound evidence and a servable model."""

import json

import pytest

from ouroboros.contract.promotion import GateVerdict as Verdict
from ouroboros.contract.promotion import ReadinessSpec, SprtSpec
from ouroboros.trainer.evaluation import gate, sprt, stats
from ouroboros.trainer.evaluation.gate import GateConfig, ReadinessReport, TournamentResult
from ouroboros.trainer.evaluation.stats import Outcome

pytestmark = pytest.mark.unit

W, D, L = Outcome.WIN, Outcome.DRAW, Outcome.LOSS
READY = ReadinessReport(p50_latency_ms=0.5, p99_latency_ms=0.9, peak_memory_mb=18.0)


def paired(**counts: int) -> TournamentResult:
    """A tournament of seat-swapped pairs, e.g. paired(WW=3, WL=2), counted both ways."""
    letter = {"W": W, "D": D, "L": L}
    pairs = [(letter[k[0]], letter[k[1]]) for k, n in counts.items() for _ in range(n)]
    games = [o for pair in pairs for o in pair]
    return TournamentResult(stats.WDL.from_outcomes(games), stats.Pentanomial.from_pairs(pairs))


STRONG = paired(WW=33, WD=20, WL=40, LD=5, LL=2)  # 200 games, score 0.69
WEAK = paired(WW=2, WD=8, WL=40, LD=20, LL=30)  # 200 games, score 0.31
EVEN = paired(WW=10, WD=10, WL=40, LD=10, LL=10)  # 160 games, score 0.5


def test_strong_candidate_is_promoted_with_recordable_statistics():
    decision = gate.decide(STRONG, GateConfig(), READY)
    assert decision.verdict is Verdict.PROMOTE and not decision.continue_testing
    assert "accepted H1" in decision.reasons[0] and "production-ready" in decision.reasons[-1]
    s = decision.statistics
    assert s["counting"] == "pentanomial" and s["pentanomial"] == [2, 5, 40, 20, 33]
    assert s["llr"] >= s["llr_upper_bound"] == pytest.approx(2.944, abs=1e-3)
    assert (s["wins"], s["draws"], s["losses"], s["games"]) == (126, 25, 49, 200)
    assert s["elo_lower"] < s["elo"] < s["elo_upper"] and s["p99_latency_ms"] == 0.9
    assert json.loads(json.dumps(s)) == s  # goes into the registry's history as is


def test_weak_candidate_is_rejected_by_sprt():
    decision = gate.decide(WEAK, GateConfig(), READY)
    assert decision.verdict is Verdict.REJECT and "accepted H0" in decision.reasons[0]


def test_undecided_sprt_keeps_testing_until_the_budget():
    decision = gate.decide(EVEN, GateConfig(), READY)
    assert decision.verdict is Verdict.INCONCLUSIVE and decision.continue_testing
    spent = gate.decide(EVEN, GateConfig(max_games=160), READY)
    assert spent.verdict is Verdict.INCONCLUSIVE and not spent.continue_testing
    assert "undecided after the 160-game budget" in spent.reasons[0]


def test_sprt_cannot_stop_before_min_games():
    early = paired(WW=40)  # 80 straight wins: LLR 3.83 > 2.944 (logistic [0, 35])
    assert sprt.sprt(early.pentanomial, SprtSpec()).decision.value == "accept_h1"
    decision = gate.decide(early, GateConfig(min_games=100), READY)
    assert decision.verdict is Verdict.INCONCLUSIVE and decision.continue_testing
    assert "only 80 < 100 games" in decision.reasons[0]
    assert gate.decide(early, GateConfig(min_games=80), READY).verdict is Verdict.PROMOTE


def test_trinomial_counting_without_pairs():
    result = TournamentResult(STRONG.wdl)
    decision = gate.decide(result, GateConfig(), READY)
    assert decision.statistics["counting"] == "trinomial"
    assert decision.verdict is Verdict.PROMOTE


@pytest.mark.parametrize(
    "report, reason",
    [
        (ReadinessReport(p99_latency_ms=12, peak_memory_mb=18), "p99 latency 12 ms exceeds 10 ms"),
        (ReadinessReport(p99_latency_ms=1, peak_memory_mb=64), "peak memory 64 MB exceeds 50 MB"),
        (
            ReadinessReport(p99_latency_ms=1, peak_memory_mb=8, parity_ok=False),
            "does not pick the same moves",
        ),
    ],
)
def test_unready_model_is_rejected_whatever_its_strength(report, reason):
    decision = gate.decide(STRONG, GateConfig(), report)
    assert decision.verdict is Verdict.REJECT and not decision.continue_testing
    assert any(reason in r and "not production-ready" in r for r in decision.reasons)
    # no point playing on either
    assert gate.decide(EVEN, GateConfig(), report).continue_testing is False


def test_thresholds_are_configurable():
    slow = ReadinessReport(p99_latency_ms=12, peak_memory_mb=18)
    lenient = GateConfig(readiness=ReadinessSpec(max_p99_latency_ms=20))
    assert gate.decide(STRONG, lenient, slow).verdict is Verdict.PROMOTE


def test_missing_readiness_report_blocks_promotion_unless_waived():
    decision = gate.decide(STRONG, GateConfig(), None)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "no production-readiness report" in decision.reasons[-1]
    assert gate.decide(STRONG, GateConfig(require_readiness=False), None).verdict is Verdict.PROMOTE


def test_win_rate_gate_is_a_fixed_budget_test():
    config = GateConfig(method="winRate", min_games=0, max_games=200)
    # 120/200 = 0.60 >= 0.55 and Wilson 95% lower bound 0.5308 >= 0.5
    # (p = 0.6, n = 200: (0.6 + 0.0096 - 1.96·sqrt(0.0012 + 0.000024)) / 1.0192 = 0.5308)
    passed = TournamentResult(stats.WDL(120, 0, 80))
    decision = gate.decide(passed, config, READY)
    assert decision.verdict is Verdict.PROMOTE
    assert decision.statistics["wilson_lower"] == pytest.approx(0.5308, abs=1e-4)
    # 112/200 = 0.56 >= 0.55 but the lower bound 0.4907 < 0.5: not convincing
    failed = gate.decide(TournamentResult(stats.WDL(112, 0, 88)), config, READY)
    assert failed.verdict is Verdict.REJECT and "failed" in failed.reasons[0]
    # draws are half points: 100 W + 40 D of 200 is the same score as 120 W
    drawn = gate.decide(TournamentResult(stats.WDL(100, 40, 60)), config, READY)
    assert drawn.statistics["wilson_lower"] == decision.statistics["wilson_lower"]
    # before the budget it never decides, however good it looks
    early = gate.decide(TournamentResult(stats.WDL(60, 0, 0)), config, READY)
    assert early.verdict is Verdict.INCONCLUSIVE and early.continue_testing


def test_no_games_yet_is_inconclusive():
    decision = gate.decide(TournamentResult(stats.WDL()), GateConfig(), READY)
    assert decision.verdict is Verdict.INCONCLUSIVE and decision.continue_testing


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="pentanomial covers 2 games but the record has 3"):
        TournamentResult(stats.WDL(1, 1, 1), stats.Pentanomial(ww=1))
    with pytest.raises(ValueError, match=r"min_games \(500\) must not exceed max_games \(400\)"):
        GateConfig(min_games=500)
    with pytest.raises(ValueError, match="elo0"):
        GateConfig(sprt={"elo0": 10, "elo1": 0})
    with pytest.raises(ValueError):
        ReadinessReport(p99_latency_ms=-1, peak_memory_mb=1)


# -- fixed baselines: paired non-regression ------------------------------------------------------

from ouroboros.contract.promotion import BaselinePlayer, BaselineSpec  # noqa: E402

HEURISTIC = BaselineSpec(player=BaselinePlayer.HEURISTIC, games=60, max_regression=0.05)
PROMOTED = gate.decide(STRONG, GateConfig(), READY)


def baseline(candidate, champion, spec=HEURISTIC) -> gate.BaselineResult:
    return gate.BaselineResult(spec, candidate, champion)


def test_a_significant_regression_against_a_baseline_rejects_a_promotable_candidate():
    # the champion draws every pair (2 half-points); the candidate loses 20 pairs outright, 10 by half
    result = baseline([0] * 20 + [1] * 10, [2] * 30)
    decision = gate.with_baselines(PROMOTED, [result])
    assert decision.verdict is Verdict.REJECT and not decision.continue_testing
    assert decision.reasons[0] == ("regressed against baseline heuristic: candidate 0.083, champion 0.500 on the "
                                   "same seeds (60 games): difference -0.417, one-sided 95% upper bound -0.381 "
                                   "< -0.050 allowed")
    assert len(decision.reasons[0]) <= 240  # what GateStatistics keeps of a reason
    line = decision.statistics["baselines"][0]
    assert line["passed"] is False and line["difference"] == pytest.approx(-5 / 12, abs=1e-4)
    # the statistic: mean of the per-pair differences + z(one-sided 95%) * sample sd / sqrt(pairs)
    diffs = [-0.5] * 20 + [-0.25] * 10
    mean = sum(diffs) / 30
    sd = (sum((d - mean) ** 2 for d in diffs) / 29) ** 0.5
    assert line["difference_upper"] == pytest.approx(mean + 1.644854 * sd / 30**0.5, abs=1e-4)
    assert "accepted H1" in decision.reasons[1]  # the head-to-head evidence is still there


@pytest.mark.parametrize(("candidate", "champion", "why"), [
    ([2] * 29 + [1], [2] * 30, "a drop inside maxRegression"),
    ([0, 4, 0, 4], [4, 0, 4, 4], "a large drop on too few pairs to be significant"),
    ([3] * 30, [2] * 30, "an improvement"),
    ([0], [4], "one pair: no variance, no evidence"),
])
def test_no_evidence_of_a_regression_never_rejects(candidate, champion, why):
    decision = gate.with_baselines(PROMOTED, [baseline(candidate, champion)])
    assert decision.verdict is Verdict.PROMOTE, why
    assert decision.statistics["baselines"][0]["passed"] and "no regression" in decision.reasons[-1]


def test_the_first_champion_is_judged_against_the_baselines_alone():
    floor = BaselineSpec(player=BaselinePlayer.GREEDY, games=20, min_win_rate=0.3)
    first = gate.decide_first(READY, GateConfig())
    weak = gate.with_baselines(first, [baseline([0] * 10, None, floor)])  # Wilson upper of 0/20: 0.161
    assert weak.verdict is Verdict.REJECT and weak.reasons[0] == (
        "regressed against baseline greedy: candidate 0.000 in 20 games, Wilson 95% upper bound 0.161 under the "
        "minimum 0.300")
    assert weak.statistics["baselines"][0]["champion_win_rate"] is None
    fine = gate.with_baselines(first, [baseline([1] * 10, None, floor)])  # 0.25, Wilson upper 0.47
    assert fine.verdict is Verdict.PROMOTE and fine.statistics["first_champion"]
    no_floor = gate.with_baselines(first, [baseline([0] * 10, None, floor.model_copy(update={"min_win_rate": 0.0}))])
    assert no_floor.verdict is Verdict.PROMOTE


def test_baselines_never_turn_a_rejection_or_an_inconclusive_gate_into_a_promotion():
    good = baseline([4] * 10, [0] * 10)
    assert gate.with_baselines(gate.decide(WEAK, GateConfig(), READY), [good]).verdict is Verdict.REJECT
    undecided = gate.decide(EVEN, GateConfig(max_games=400), READY)
    assert undecided.verdict is Verdict.INCONCLUSIVE
    assert gate.with_baselines(undecided, [good]).verdict is Verdict.INCONCLUSIVE


@pytest.mark.parametrize(("candidate", "champion", "message"), [
    ([], None, "no games played"),
    ([5], None, "must lie in 0..4"),
    ([2, 2], [2], "both must play the same seeds"),
])
def test_baseline_results_that_cannot_be_compared_are_refused(candidate, champion, message):
    with pytest.raises(ValueError, match=message):
        baseline(candidate, champion)
