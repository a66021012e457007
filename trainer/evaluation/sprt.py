"""The sequential probability ratio test that decides a gating match as it is played.

SPRT. The log-likelihood ratio is fishtest's *generalised* LLR: the data's
likelihood under the maximum-likelihood distribution that satisfies H1 over
the one that satisfies H0 (M. Van den Bergh, cantate.be/Fishtest), in
logistic or normalised Elo, for games or pairs; its closed-form Brownian
approximations are alongside (:func:`sprt_llr_approx`).

Leela Zero gates with elo0 0, elo1 35, alpha = beta = 0.05; fishtest uses the
same bounds, ln(beta / (1 - alpha)) and ln((1 - beta) / alpha). The test's
settings are the contract's ``SprtSpec`` (the TrainingRun's ``promotion.sprt``). Records and
Elo conversions come from `stats`. Pure functions; bad input raises ValueError.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ouroboros.contract.promotion import EloModel, SprtSpec
from ouroboros.trainer.evaluation.stats import NELO_PER_T, WDL, Pentanomial, Record, score_from_elo


class SprtDecision(StrEnum):
    """The test's state: keep playing, or stop with H1 (stronger) or H0 (not stronger)."""

    CONTINUE = "continue"
    ACCEPT_H1 = "accept_h1"
    ACCEPT_H0 = "accept_h0"


@dataclass(frozen=True, slots=True)
class SprtResult:
    """The LLR so far, the bounds it is compared with, and the decision."""

    llr: float
    lower_bound: float
    upper_bound: float
    decision: SprtDecision
    games: int


def _empirical(record: Record) -> tuple[list[float], list[float], float]:
    """(values, probabilities, N): zero counts replaced by 1e-3 as fishtest's ``regularize``."""
    values, counts = record.samples()
    reg = [float(c) if c > 0 else 1e-3 for c in counts]
    total = sum(reg)
    return list(values), [c / total for c in reg], total


def _secular(a: list[float], p: list[float]) -> float:
    """Solve ``Σ p_i a_i / (1 + x a_i) = 0`` for x in (-1/max a, -1/min a) by bisection.

    The left side decreases strictly in x on that interval, from +inf to -inf.
    """
    lo, hi = -1.0 / max(a), -1.0 / min(a)
    if not (min(a) < 0.0 < max(a)):
        raise ValueError("the hypothesis lies outside the range of possible scores")
    for _ in range(300):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        f = sum(pi * ai / (1.0 + mid * ai) for ai, pi in zip(a, p, strict=True))
        if f > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _mle_mean(values: list[float], p: list[float], s: float) -> list[float]:
    """MLE of the distribution on ``values`` with mean ``s`` (Van den Bergh, Prop. 1.1)."""
    shifted = [v - s for v in values]
    x = _secular(shifted, p)
    return [pi / (1.0 + x * ai) for ai, pi in zip(shifted, p, strict=True)]


def _t_value(values: list[float], q: list[float], ref: float) -> float:
    mu = sum(v * qi for v, qi in zip(values, q, strict=True))
    var = sum(qi * (v - mu) ** 2 for v, qi in zip(values, q, strict=True))
    return (mu - ref) / math.sqrt(var)


def _mle_t(values: list[float], p: list[float], ref: float, t: float) -> list[float]:
    """MLE of the distribution with ``(mean - ref)/σ = t`` (normalized_elo_practical §4.1).

    Van den Bergh's fixed-point iteration: linearise the constraint at the
    current guess ``q`` (``φ_i = a_i - ref - t·σ·(1 + ((μ - a_i)/σ)²)/2``) and solve
    the secular equation. Like fishtest we start from the uniform distribution;
    from there the linearised problem has no solution once ``|t|`` is large
    (about 400 normalised Elo), and then we restart from a distribution that
    already meets the constraint: the mean-constrained MLE whose t-value is
    ``t``, found by bisection on the mean. Both reach the same fixed point.
    """

    def iterate(q: list[float], first_may_fail: bool) -> list[float]:
        for i in range(100):
            mu = sum(v * qi for v, qi in zip(values, q, strict=True))
            sigma = math.sqrt(sum(qi * (v - mu) ** 2 for v, qi in zip(values, q, strict=True)))
            phi = [v - ref - t * sigma * (1.0 + ((mu - v) / sigma) ** 2) / 2.0 for v in values]
            try:
                x = _secular(phi, p)
            except ValueError:
                if first_may_fail and i == 0:
                    raise
                break  # keep the last feasible guess
            new = [pi / (1.0 + x * fi) for fi, pi in zip(phi, p, strict=True)]
            done = max(abs(a - b) for a, b in zip(new, q, strict=True)) < 1e-12
            q = new
            if done:
                break
        return q

    with contextlib.suppress(ValueError):
        return iterate([1.0 / len(values)] * len(values), first_may_fail=True)
    lo, hi = min(values), max(values)
    q = p
    while hi - lo > 1e-12:
        s = 0.5 * (lo + hi)
        q = _mle_mean(values, p, s)
        if _t_value(values, q, ref) < t:
            lo = s
        else:
            hi = s
    return iterate(q, first_may_fail=False)


def _t_bounds(record: Record, elo0: float, elo1: float) -> tuple[float, float]:
    """Normalised Elo -> t of one sample: a pair's t is √2 times a game's."""
    scale = 1.0 if isinstance(record, WDL) else math.sqrt(2.0)
    return scale * elo0 / NELO_PER_T, scale * elo1 / NELO_PER_T


def sprt_llr(record: Record, elo0: float, elo1: float, model: EloModel) -> float:
    """Generalised log-likelihood ratio of H1 (elo1) against H0 (elo0), as fishtest.

    ``LLR = N · Σ_i p̂_i · ln(p1_i / p0_i)`` where ``p̂`` is the empirical
    distribution of the per-sample score (3 values for WDL, 5 for pairs; empty
    cells regularised to 1e-3 counts) and ``p0``, ``p1`` are the maximum-likelihood
    distributions subject to H0 and H1: mean ``score_from_elo(elo)`` for the
    logistic model, t-value ``(mean - 1/2)/σ = elo/(800/ln10)`` (times √2 for a
    pair) for the normalised model. Reference: M. Van den Bergh, "Comments on
    normalized Elo" (cantate.be/Fishtest/normalized_elo_practical.pdf), and
    fishtest's ``LLRcalc.LLR_logistic`` / ``LLR_normalized``. An empty record has LLR 0.
    """
    if not elo0 < elo1:
        raise ValueError(f"elo0 ({elo0}) must be less than elo1 ({elo1})")
    if sum(record.samples()[1]) == 0:
        return 0.0
    values, p, total = _empirical(record)
    if EloModel(model) is EloModel.LOGISTIC:
        p0 = _mle_mean(values, p, score_from_elo(elo0))
        p1 = _mle_mean(values, p, score_from_elo(elo1))
    else:
        t0, t1 = _t_bounds(record, elo0, elo1)
        p0, p1 = _mle_t(values, p, 0.5, t0), _mle_t(values, p, 0.5, t1)
    return total * sum(pi * math.log(b / a) for pi, a, b in zip(p, p0, p1, strict=True))


def sprt_llr_approx(record: Record, elo0: float, elo1: float, model: EloModel) -> float:
    """Closed-form approximation of :func:`sprt_llr` (Brownian-motion limit).

    Logistic: ``N (s1 - s0)(2ŝ - s0 - s1) / (2σ̂²)`` (Van den Bergh, "A simple
    approximation of the generalized LLR", cantate.be/Fishtest/GSPRT_approximation.pdf).
    Normalised: ``(games/2) · ln((1 + (t̂ - t0)²) / (1 + (t̂ - t1)²))`` with ``t̂`` the
    per-game t-value (normalized_elo_practical.pdf §4.2). Good when elo0 and elo1
    are close; used to cross-check the exact form and to plan budgets.
    """
    if not elo0 < elo1:
        raise ValueError(f"elo0 ({elo0}) must be less than elo1 ({elo1})")
    if sum(record.samples()[1]) == 0:
        return 0.0
    values, p, total = _empirical(record)
    mean = sum(v * q for v, q in zip(values, p, strict=True))
    var = sum(q * (v - mean) ** 2 for v, q in zip(values, p, strict=True))
    if EloModel(model) is EloModel.LOGISTIC:
        s0, s1 = score_from_elo(elo0), score_from_elo(elo1)
        return total * (s1 - s0) * (2 * mean - s0 - s1) / (2 * var)
    pair = isinstance(record, Pentanomial)
    sigma_game = math.sqrt(2 * var) if pair else math.sqrt(var)
    games = 2 * total if pair else total
    t = (mean - 0.5) / sigma_game
    t0, t1 = elo0 / NELO_PER_T, elo1 / NELO_PER_T
    return games / 2 * math.log((1 + (t - t0) ** 2) / (1 + (t - t1) ** 2))


def sprt(record: Record, config: SprtSpec) -> SprtResult:
    """Evaluate the SPRT on the results so far: stop when the LLR leaves the bounds.

    Call it after every finished game (WDL) or pair (pentanomial); the first
    call that returns ACCEPT_H1 or ACCEPT_H0 is the early stop. Accepting H1
    means the candidate is at least ``elo1`` stronger with error rate α.
    """
    llr = sprt_llr(record, config.elo0, config.elo1, config.elo_model)
    if llr >= config.upper_bound:
        decision = SprtDecision.ACCEPT_H1
    elif llr <= config.lower_bound:
        decision = SprtDecision.ACCEPT_H0
    else:
        decision = SprtDecision.CONTINUE
    return SprtResult(llr, config.lower_bound, config.upper_bound, decision, record.games)


def sprt_stopping_point(records: Iterable[Record], config: SprtSpec) -> tuple[int, SprtResult]:
    """Replay cumulative records in order; return (index, result) of the first stop.

    If the test never stops, the index is that of the last record (CONTINUE);
    an empty sequence is a ValueError.
    """
    last: tuple[int, SprtResult] | None = None
    for i, record in enumerate(records):
        last = (i, sprt(record, config))
        if last[1].decision is not SprtDecision.CONTINUE:
            return last
    if last is None:
        raise ValueError("no records to test")
    return last
