"""Match statistics against worked numbers from the literature and by hand.

Every expected number says where it comes from, so that a failing test can be
checked without trusting the code under test.
"""

import math

import pytest

from ouroboros.contract.promotion import EloModel, SprtSpec
from ouroboros.trainer.evaluation import sprt, stats
from ouroboros.trainer.evaluation.sprt import SprtDecision
from ouroboros.trainer.evaluation.stats import WDL, Outcome, PairResult, Pentanomial

pytestmark = pytest.mark.unit

W, D, L = Outcome.WIN, Outcome.DRAW, Outcome.LOSS


# ------------------------------------------------------------------ records


def test_wdl_counts_and_score():
    record = WDL.from_outcomes([W, W, D, L])
    assert record == WDL(2, 1, 1)
    assert record.games == 4
    assert record.points == 2.5
    assert record.score == pytest.approx(0.625)
    assert WDL(1, 0, 0) + WDL(0, 2, 3) == WDL(1, 2, 3)


def test_pentanomial_counts_pairs_by_points():
    # pair points: LL=0, LD=DL=1/2, LW=DD=WL=1, DW=WD=3/2, WW=2
    pairs = [(L, L), (L, D), (D, L), (L, W), (D, D), (W, L), (D, W), (W, D), (W, W)]
    record = Pentanomial.from_pairs(pairs)
    assert record.counts == (1, 2, 3, 2, 1)
    assert record.pairs == 9 and record.games == 18
    assert record.score == pytest.approx(0.5)
    assert record + Pentanomial(ww=1) == Pentanomial(1, 2, 3, 2, 2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: WDL(-1, 0, 0), "wins must be a non-negative count, got -1"),
        (lambda: WDL(0, 1.5, 0), "draws must be an integer count"),
        (lambda: Pentanomial(0, 0, -3, 0, 0), "lw_dd_wl must be a non-negative count"),
        (lambda: WDL().score, "empty record"),
        (lambda: Pentanomial().score, "empty record"),
    ],
)
def test_records_refuse_bad_counts(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ------------------------------------------------------------------ Wilson


@pytest.mark.parametrize(
    "successes, trials, lower, upper",
    [
        # textbook values (e.g. Wikipedia "Binomial proportion confidence interval", z = 1.96)
        (50, 100, 0.4038, 0.5962),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        # Newcombe (1998), Stat. Med. 17:857, Table II, method 3 (Wilson score, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_published_values(successes, trials, lower, upper):
    interval = stats.wilson_interval(successes, trials)
    assert interval.estimate == pytest.approx(successes / trials)
    assert interval.lower == pytest.approx(lower, abs=5e-5)
    assert interval.upper == pytest.approx(upper, abs=5e-5)


def test_wilson_interval_is_exact_at_the_edges_and_narrows_with_games():
    assert stats.wilson_interval(0, 10).lower == 0.0
    assert stats.wilson_interval(10, 10).upper == 1.0
    widths = [stats.wilson_interval(n // 2, n) for n in (10, 100, 1000)]
    assert widths[0].upper - widths[0].lower > widths[1].upper - widths[1].lower
    assert widths[1].upper - widths[1].lower > widths[2].upper - widths[2].lower
    # a higher confidence gives a wider interval around the same estimate
    narrow, wide = stats.wilson_interval(30, 50, 0.9), stats.wilson_interval(30, 50, 0.99)
    assert wide.lower < narrow.lower < narrow.upper < wide.upper


def test_wilson_interval_accepts_half_points_for_draws():
    # 6 wins and 2 draws out of 10 = 7 points; same interval as 7/10
    assert stats.wilson_interval(WDL(6, 2, 2).points, 10) == stats.wilson_interval(7, 10)


@pytest.mark.parametrize(
    "args, message",
    [
        ((5, 0), "trials must be a positive integer"),
        ((11, 10), r"successes must be in \[0, trials=10\]"),
        ((-1, 10), "successes must be in"),
        ((5, 10, 1.0), r"confidence must be in \(0, 1\)"),
        ((5, 10, 0.0), r"confidence must be in \(0, 1\)"),
    ],
)
def test_wilson_interval_refuses_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        stats.wilson_interval(*args)


# ------------------------------------------------------------------ Elo


@pytest.mark.parametrize(
    "score, elo",
    [
        (0.75, 190.85),  # -400·log10(1/0.75 - 1) = 400·log10(3) = 190.849
        (0.5, 0.0),
        (0.25, -190.85),  # symmetry
        (0.9, 381.70),  # 400·log10(9) = 381.697
        (0.64, 99.95),  # 400·log10(0.64/0.36) = 99.95 (the "100 Elo ≈ 64%" rule of thumb)
    ],
)
def test_elo_from_score(score, elo):
    assert stats.elo_from_score(score) == pytest.approx(elo, abs=0.005)
    assert stats.score_from_elo(stats.elo_from_score(score)) == pytest.approx(score)


def test_elo_from_score_edges_and_errors():
    assert stats.elo_from_score(1.0) == math.inf
    assert stats.elo_from_score(0.0) == -math.inf
    with pytest.raises(ValueError, match=r"score must be in \[0, 1\], got 1.5"):
        stats.elo_from_score(1.5)


def test_elo_estimate_trinomial_by_hand():
    # 60 W, 20 D, 20 L: s = 0.7; σ² = 0.6·0.3² + 0.2·0.2² + 0.2·0.7² = 0.16; se = 0.4/√100 = 0.04
    # score CI 0.7 ± 1.959964·0.04 = [0.621601, 0.778399]
    # Elo 400·log10(0.7/0.3) = 147.19, bounds 400·log10(0.621601/0.378399) = 86.23
    # and 400·log10(0.778399/0.221601) = 218.25
    estimate = stats.elo_estimate(WDL(60, 20, 20))
    assert estimate.stderr == pytest.approx(0.04)
    assert estimate.score.lower == pytest.approx(0.621601, abs=1e-6)
    assert estimate.score.upper == pytest.approx(0.778399, abs=1e-6)
    assert estimate.elo == pytest.approx(147.19, abs=0.005)
    assert estimate.lower == pytest.approx(86.23, abs=0.005)
    assert estimate.upper == pytest.approx(218.25, abs=0.005)


def test_elo_estimate_pentanomial_uses_pair_variance():
    # pairs 10,20,40,20,10 at 0, 1/4, 1/2, 3/4, 1: s = 0.5,
    # σ²_pair = (10·0.25 + 20·0.0625 + 0 + 20·0.0625 + 10·0.25)/100 = 0.075, se = √(0.075/100)
    estimate = stats.elo_estimate(Pentanomial(10, 20, 40, 20, 10))
    assert estimate.elo == 0.0
    assert estimate.stderr == pytest.approx(math.sqrt(0.00075))
    # symmetric around 0: bound = 400·log10(0.553676/0.446324) = 37.44
    assert estimate.upper == pytest.approx(37.44, abs=0.005)
    assert estimate.lower == pytest.approx(-estimate.upper)


@pytest.mark.parametrize(("record", "lower", "upper"), [
    # Wilson bounds of 10/10 and 2/2 at 95%: 0.722467 and 0.342380; Elo 400·log10(l/(1-l))
    (WDL(10, 0, 0), 166.2, math.inf),
    (WDL(2, 0, 0), -113.4, math.inf),
    (WDL(0, 0, 10), -math.inf, -166.2),
    # two draws: Wilson of 1 success in 2, [0.094531, 0.905469], +-392.5 Elo
    (WDL(0, 2, 0), -392.5, 392.5),
])
def test_elo_interval_of_a_record_without_variance_is_wilson_not_a_point(record, lower, upper):
    # the normal interval of a zero-variance record is a point (+inf [+inf, +inf] after 2-0):
    # a claim of certainty two games cannot make
    estimate = stats.elo_estimate(record)
    assert estimate.lower == pytest.approx(lower, abs=0.05)
    assert estimate.upper == pytest.approx(upper, abs=0.05)
    assert estimate.lower < estimate.upper
    more = stats.elo_estimate(WDL(10 * record.wins, 10 * record.draws, 10 * record.losses))  # narrower
    assert estimate.lower <= more.lower and more.upper <= estimate.upper


def test_normalized_elo_by_hand():
    # WDL(60,20,20): (0.7 - 0.5)/0.4 · 800/ln10 = 0.5 · 347.4356 = 173.72
    estimate = stats.normalized_elo_estimate(WDL(60, 20, 20))
    assert estimate.elo == pytest.approx(173.72, abs=0.005)
    assert estimate.lower < estimate.elo < estimate.upper
    assert stats.normalized_elo_estimate(WDL(5, 0, 0)).elo == math.inf


def test_elo_interval_shrinks_and_orders_with_more_games():
    small = stats.elo_estimate(WDL(6, 0, 4))
    large = stats.elo_estimate(WDL(600, 0, 400))
    assert small.elo == pytest.approx(large.elo)
    assert small.lower < large.lower < large.elo < large.upper < small.upper


# ------------------------------------------------------------------ league


def test_league_ratings_recover_consistent_results_exactly():
    # 75% ⇔ 190.85 Elo, and 90% ⇔ 381.70 = 2·190.85: the data fit the model exactly,
    # so the MLE reproduces these differences (score equations hold pair by pair).
    results = [
        PairResult("A", "B", WDL(75, 0, 25)),
        PairResult("B", "C", WDL(75, 0, 25)),
        PairResult("A", "C", WDL(90, 0, 10)),
    ]
    ratings = stats.league_ratings(results, anchor="C", prior_draws=0)
    by_name = {r.player: r for r in ratings}
    assert [r.player for r in ratings] == ["A", "B", "C"]
    assert by_name["A"].elo == pytest.approx(381.70, abs=0.01)
    assert by_name["B"].elo == pytest.approx(190.85, abs=0.01)
    assert by_name["C"].elo == 0.0 and by_name["C"].stderr == 0.0
    assert by_name["A"].games == 200 and by_name["A"].score == pytest.approx(0.825)


def test_league_ratings_two_players_mean_anchored_with_fisher_stderr():
    # draws count half: 50 W + 50 D of 100 = 75% -> ±95.42 around a mean of 1500.
    # Var of the difference = 1/(n c² p(1-p)), c = ln10/400: sd = 40.12; each side half: 20.06
    ratings = stats.league_ratings(
        [PairResult("x", "y", WDL(50, 50, 0))], anchor_elo=1500, prior_draws=0
    )
    assert [round(r.elo, 2) for r in ratings] == [1595.42, 1404.58]
    assert ratings[0].stderr == pytest.approx(20.06, abs=0.01)


def test_league_ratings_symmetric_input_is_merged():
    one = stats.league_ratings([PairResult("a", "b", WDL(3, 1, 1))], anchor="b", prior_draws=0)
    two = stats.league_ratings(
        [PairResult("a", "b", WDL(1, 1, 0)), PairResult("b", "a", WDL(1, 0, 2))],
        anchor="b",
        prior_draws=0,
    )
    assert [r.elo for r in one] == pytest.approx([r.elo for r in two])


def test_league_ratings_need_a_prior_when_someone_never_lost():
    results = [PairResult("a", "b", WDL(10, 0, 0)), PairResult("b", "c", WDL(7, 0, 3))]
    with pytest.raises(ValueError, match="not identifiable.*prior_draws"):
        stats.league_ratings(results, prior_draws=0)
    ratings = stats.league_ratings(results, prior_draws=1.0)
    assert [r.player for r in ratings] == ["a", "b", "c"]
    assert all(math.isfinite(r.elo) for r in ratings)
    assert ratings[0].score == 1.0  # the reported score is the real one, without the prior


@pytest.mark.parametrize(
    "results, kwargs, message",
    [
        ([], {}, "empty league"),
        ([PairResult("a", "a", WDL(1, 0, 0))], {}, "cannot play itself"),
        ([PairResult("a", "b", WDL(1, 0, 1))], {"anchor": "z"}, "anchor 'z' played no games"),
        ([PairResult("a", "b", WDL(1, 0, 1))], {"prior_draws": -1}, "prior_draws must be >= 0"),
        (
            [PairResult("a", "b", WDL(1, 0, 1)), PairResult("c", "d", WDL(1, 0, 1))],
            {},
            "not identifiable",
        ),
    ],
)
def test_league_ratings_refuse_bad_input(results, kwargs, message):
    with pytest.raises(ValueError, match=message):
        stats.league_ratings(results, **kwargs)


# ------------------------------------------------------------------ SPRT


def test_sprt_bounds_as_fishtest():
    # α = β = 0.05: ln(0.05/0.95) = -ln 19 = -2.944, ln(0.95/0.05) = +2.944
    config = SprtSpec(elo0=0, elo1=2, alpha=0.05, beta=0.05)
    assert config.lower_bound == pytest.approx(-math.log(19))
    assert config.upper_bound == pytest.approx(2.944, abs=5e-4)
    # α = 0.05, β = 0.1: ln(0.1/0.95) = -2.251, ln(0.9/0.05) = 2.890
    asym = SprtSpec(elo0=0, elo1=5, alpha=0.05, beta=0.1)
    assert (round(asym.lower_bound, 3), round(asym.upper_bound, 3)) == (-2.251, 2.890)


# Worked LLRs from fastchess's SPRT unit tests (tests/sprt.cpp in Disservin/fastchess), which
# check fishtest's GSPRT to two decimals. fastchess's Stats takes (W, L, D) for games and
# (LL, LD, WL, DD, WD, WW) for pairs; here WL and DD are one pentanomial cell.
FASTCHESS_TRINOMIAL = [
    # (wins, losses, draws), elo0, elo1, model, llr
    ((36433, 36027, 68692), 0, 2, EloModel.NORMALIZED, 0.92),
    ((10871, 10650, 20431), -1.75, 0.25, EloModel.NORMALIZED, 2.30),
    ((4250, 0, 0), 0, 10, EloModel.NORMALIZED, 120.56),
    ((21404, 21184, 40708), 0.5, 2.5, EloModel.LOGISTIC, -1.57),
    ((57433, 57030, 106593), 0, 2, EloModel.LOGISTIC, -2.59),
]
FASTCHESS_PENTANOMIAL = [
    # (LL, LD, WL, DD, WD, WW), elo0, elo1, model, llr
    ((365, 16618, 36029, 200, 16974, 390), 0, 2, EloModel.NORMALIZED, 2.25),
    ((127, 4883, 10311, 401, 5150, 104), -1.75, 0.25, EloModel.NORMALIZED, 3.01),
    ((0, 0, 0, 0, 0, 5550), 0, 5, EloModel.NORMALIZED, 111.82),
    ((223, 9863, 20279, 1000, 10037, 246), 0.5, 2.5, EloModel.LOGISTIC, -3.07),
    ((871, 26175, 55003, 980, 26678, 821), 0, 2, EloModel.LOGISTIC, -4.98),
]


@pytest.mark.parametrize("wld, elo0, elo1, model, llr", FASTCHESS_TRINOMIAL)
def test_sprt_llr_trinomial_matches_fastchess(wld, elo0, elo1, model, llr):
    wins, losses, draws = wld
    record = WDL(wins, draws, losses)
    assert sprt.sprt_llr(record, elo0, elo1, model) == pytest.approx(llr, rel=0.01)


@pytest.mark.parametrize("penta, elo0, elo1, model, llr", FASTCHESS_PENTANOMIAL)
def test_sprt_llr_pentanomial_matches_fastchess(penta, elo0, elo1, model, llr):
    ll, ld, wl, dd, wd, ww = penta
    record = Pentanomial(ll, ld, wl + dd, wd, ww)
    assert sprt.sprt_llr(record, elo0, elo1, model) == pytest.approx(llr, rel=0.01)


@pytest.mark.parametrize(
    "case", [c for c in FASTCHESS_TRINOMIAL + FASTCHESS_PENTANOMIAL if c[4] < 100]
)
def test_sprt_llr_approximation_agrees_for_close_hypotheses(case):
    counts, elo0, elo1, model, llr = case
    if len(counts) == 3:
        record = WDL(counts[0], counts[2], counts[1])
    else:
        record = Pentanomial(counts[0], counts[1], counts[2] + counts[3], counts[4], counts[5])
    assert sprt.sprt_llr_approx(record, elo0, elo1, model) == pytest.approx(llr, abs=0.02)


def test_sprt_llr_normalized_with_wide_hypotheses_does_not_fail():
    # fishtest's iteration from the uniform distribution has no solution here (t1 = 1.15);
    # the fallback start must still give the constrained MLE: finite, with the right sign.
    strong = sprt.sprt_llr(WDL(100, 0, 0), 0, 400, EloModel.NORMALIZED)
    weak = sprt.sprt_llr(WDL(50, 10, 40), 0, 400, EloModel.NORMALIZED)
    assert math.isfinite(strong) and strong > 2.944 and weak < -2.944
    # ... and agrees with the closed form where that is accurate (data far from both bounds)
    assert weak == pytest.approx(
        sprt.sprt_llr_approx(WDL(50, 10, 40), 0, 400, "normalized"), rel=0.15
    )


def test_sprt_llr_logistic_approximation_by_hand():
    # WDL(60,20,20), H0 0 Elo, H1 35 Elo: s0 = 0.5, s1 = 1/(1 + 10^-0.0875) = 0.550199,
    # ŝ = 0.7, σ² = 0.16: LLR ≈ 100·0.050199·(1.4 - 1.050199)/(2·0.16) = 5.487
    value = sprt.sprt_llr_approx(WDL(60, 20, 20), 0, 35, EloModel.LOGISTIC)
    assert value == pytest.approx(5.487, abs=1e-3)


def test_sprt_llr_is_monotone_in_results():
    llrs = [
        sprt.sprt_llr(Pentanomial(10, 20, 40, 20 + k, 10), 0, 10, EloModel.LOGISTIC)
        for k in range(0, 30, 5)
    ]
    assert llrs == sorted(llrs) and llrs[0] < 0 < llrs[-1]
    assert sprt.sprt_llr(WDL(), 0, 10, EloModel.NORMALIZED) == 0.0


def test_sprt_decisions_and_early_stopping():
    config = SprtSpec(elo0=0, elo1=35, alpha=0.05, beta=0.05)
    wins = sprt.sprt(WDL(70, 10, 20), config)
    assert wins.decision is SprtDecision.ACCEPT_H1 and wins.llr >= config.upper_bound
    losses = sprt.sprt(WDL(20, 10, 70), config)
    assert losses.decision is SprtDecision.ACCEPT_H0 and losses.llr <= config.lower_bound
    even = sprt.sprt(WDL(5, 0, 5), config)
    assert even.decision is SprtDecision.CONTINUE and even.games == 10

    # A candidate that wins 3 pairs in 4 and splits the 4th stops early with H1,
    # exactly at the first prefix whose LLR crosses ln 19.
    pattern = [Pentanomial(ww=1), Pentanomial(ww=1), Pentanomial(lw_dd_wl=1), Pentanomial(ww=1)]
    prefixes, total = [], Pentanomial()
    for i in range(400):
        total = total + pattern[i % 4]
        prefixes.append(total)
    index, result = sprt.sprt_stopping_point(prefixes, config)
    assert result.decision is SprtDecision.ACCEPT_H1
    assert result.llr >= config.upper_bound
    assert sprt.sprt(prefixes[index - 1], config).decision is SprtDecision.CONTINUE
    assert index < 100  # far fewer pairs than the 400 available

    never = [Pentanomial(lw_dd_wl=k) for k in range(1, 4)]
    index, result = sprt.sprt_stopping_point(never, config)
    assert (index, result.decision) == (2, SprtDecision.CONTINUE)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 0.0}, r"alpha\n  Input should be greater than 0"),
        ({"alpha": 1.2}, r"alpha\n  Input should be less than 1"),
        ({"beta": -0.1}, r"beta\n  Input should be greater than 0"),
        ({"alpha": 0.6, "beta": 0.5}, r"sprt.alpha \+ sprt.beta must be < 1, got 1.1"),
        ({"elo0": 5, "elo1": 5}, r"sprt.elo0 must be less than sprt.elo1 \(elo0 5, elo1 5\)"),
        ({"elo0": 10, "elo1": 0}, "must be less than sprt.elo1"),
    ],
)
def test_sprt_config_refuses_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SprtSpec(**kwargs)


def test_sprt_llr_refuses_inverted_hypotheses_and_empty_stopping_sequence():
    with pytest.raises(ValueError, match="elo0 .* must be less than elo1"):
        sprt.sprt_llr(WDL(1, 1, 1), 5, 0, EloModel.LOGISTIC)
    with pytest.raises(ValueError, match="elo0 .* must be less than elo1"):
        sprt.sprt_llr_approx(WDL(1, 1, 1), 5, 0, EloModel.NORMALIZED)
    with pytest.raises(ValueError, match="no records"):
        sprt.sprt_stopping_point([], SprtSpec())


def test_elo_metrics_per_opponent_name_each_figure_and_leave_out_infinite_ones():
    from ouroboros.trainer.evaluation.strength import elo_metrics

    est = stats.elo_estimate(stats.WDL(6, 2, 2))
    assert est.elo == pytest.approx(147.19, abs=0.01)  # score 0.7
    got = elo_metrics({"heuristic": (6, 2, 2), "random-safe": (0, 0, 4), "nobody": (0, 0, 0), "self_play-0001": (1, 0, 3)})
    assert got["eloVsHeuristic"] == pytest.approx(est.elo, abs=1e-3)
    assert got["eloVsHeuristicLower"] == pytest.approx(est.lower, abs=1e-3)
    assert got["eloVsHeuristicUpper"] == pytest.approx(est.upper, abs=1e-3)
    assert got["eloVsHeuristicLower"] < got["eloVsHeuristic"] < got["eloVsHeuristicUpper"]
    # all losses: Elo -inf and a lower bound of -inf, left out; the upper bound is Wilson's, finite
    assert [k for k in got if k.startswith("eloVsRandomSafe")] == ["eloVsRandomSafeUpper"]
    assert got["eloVsRandomSafeUpper"] < 0
    assert not any(k.startswith("eloVsNobody") for k in got)
    assert "eloVsSelfPlay0001" in got and "eloVsSelfPlay0001Upper" in got
