"""Match statistics: how sure are we that a candidate is stronger?

A champion is only worth promoting on sound evidence, so everything the gate
and the tournament tables report is computed here, engine-independently:
win/draw/loss records, Wilson score intervals, Elo differences with confidence
intervals, league ratings (Bradley–Terry maximum likelihood) and the SPRT as
chess engines' testing frameworks (fishtest, fastchess) run it.

Conventions. A *score* is points per game with a win 1, a draw 1/2 and a loss 0,
seen from the candidate. Paired games (the same seed played twice with the
seats swapped) are counted as a *pentanomial*: the number of pairs that scored
0, 1/2, 1, 3/2 and 2 points, i.e. LL, LD+DL, LW+DD+WL, DW+WD, WW. Pairing
cancels the seed's bias, and counting pairs (not games) keeps the variance
honest because the two games of a pair are correlated.

Elo scales. *Logistic Elo*: ``score = 1 / (1 + 10^(-elo/400))``. *Normalised
Elo* (fishtest, Van den Bergh): ``nElo = (score - 1/2) / sigma_game * 800/ln 10``
with ``sigma_game`` the standard deviation of one game's score; it measures
how quickly a match separates the players, independent of the draw rate.

SPRT. The log-likelihood ratio is fishtest's *generalised* LLR: the data's
likelihood under the maximum-likelihood distribution that satisfies H1 over
the one that satisfies H0 (M. Van den Bergh, cantate.be/Fishtest), in
logistic or normalised Elo, for games or pairs; its closed-form Brownian
approximations are alongside (:func:`sprt_llr_approx`).

All functions are pure; inputs are validated and bad input raises ValueError
with a message naming the offending value.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

NELO_PER_T = 800 / math.log(10)
"""Normalised Elo per unit of t = (score - 1/2) / sigma_game (about 347.436)."""


class Outcome(StrEnum):
    """One game's result from the candidate's seat."""

    WIN = "win"
    DRAW = "draw"
    LOSS = "loss"

    @property
    def points(self) -> float:
        """1, 1/2 or 0."""
        return {Outcome.WIN: 1.0, Outcome.DRAW: 0.5, Outcome.LOSS: 0.0}[self]


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer count, got {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be a non-negative count, got {value}")


@dataclass(frozen=True, slots=True)
class WDL:
    """Trinomial record: wins, draws and losses of the candidate (one sample per game)."""

    wins: int = 0
    draws: int = 0
    losses: int = 0

    def __post_init__(self) -> None:
        _check_counts(wins=self.wins, draws=self.draws, losses=self.losses)

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[Outcome]) -> WDL:
        """Count a sequence of outcomes."""
        seen = list(outcomes)
        return cls(seen.count(Outcome.WIN), seen.count(Outcome.DRAW), seen.count(Outcome.LOSS))

    def __add__(self, other: WDL) -> WDL:
        return WDL(self.wins + other.wins, self.draws + other.draws, self.losses + other.losses)

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def points(self) -> float:
        """wins + draws / 2."""
        return self.wins + 0.5 * self.draws

    @property
    def score(self) -> float:
        """points / games; ValueError on an empty record."""
        if self.games == 0:
            raise ValueError("the score of an empty record is undefined (0 games)")
        return self.points / self.games

    def samples(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """(values, counts) of the per-game score distribution: values 0, 1/2, 1."""
        return (0.0, 0.5, 1.0), (self.losses, self.draws, self.wins)


@dataclass(frozen=True, slots=True)
class Pentanomial:
    """Paired record: how many seat-swapped pairs scored 0, 1/2, 1, 3/2, 2 points."""

    ll: int = 0
    ld_dl: int = 0
    lw_dd_wl: int = 0
    dw_wd: int = 0
    ww: int = 0

    def __post_init__(self) -> None:
        _check_counts(
            ll=self.ll, ld_dl=self.ld_dl, lw_dd_wl=self.lw_dd_wl, dw_wd=self.dw_wd, ww=self.ww
        )

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[Outcome, Outcome]]) -> Pentanomial:
        """Count pairs of outcomes (first seat, swapped seat) of the same seed."""
        counts = [0] * 5
        for first, second in pairs:
            counts[round(2 * (first.points + second.points))] += 1
        return cls(*counts)

    def __add__(self, other: Pentanomial) -> Pentanomial:
        return Pentanomial(*(a + b for a, b in zip(self.counts, other.counts, strict=True)))

    @property
    def counts(self) -> tuple[int, int, int, int, int]:
        """(LL, LD+DL, LW+DD+WL, DW+WD, WW)."""
        return (self.ll, self.ld_dl, self.lw_dd_wl, self.dw_wd, self.ww)

    @property
    def pairs(self) -> int:
        return sum(self.counts)

    @property
    def games(self) -> int:
        return 2 * self.pairs

    @property
    def points(self) -> float:
        return sum(k * 0.5 * c for k, c in enumerate(self.counts))

    @property
    def score(self) -> float:
        """points / games; ValueError on an empty record."""
        if self.pairs == 0:
            raise ValueError("the score of an empty record is undefined (0 pairs)")
        return self.points / self.games

    def samples(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """(values, counts) of the per-pair score distribution: values 0, 1/4, ..., 1."""
        return (0.0, 0.25, 0.5, 0.75, 1.0), self.counts


Record = WDL | Pentanomial


def _moments(record: Record) -> tuple[float, float, int]:
    """(mean, variance, n) of the per-sample score; a sample is a game (WDL) or a pair."""
    values, counts = record.samples()
    n = sum(counts)
    if n == 0:
        raise ValueError("statistics of an empty record are undefined (0 games)")
    mean = sum(v * c for v, c in zip(values, counts, strict=True)) / n
    var = sum(c * (v - mean) ** 2 for v, c in zip(values, counts, strict=True)) / n
    return mean, var, n


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile: 1.959964 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    lower: float
    upper: float
    confidence: float


def wilson_interval(successes: float, trials: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a proportion (draws may count as half successes).

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = successes/trials``.
    Unlike the normal interval it stays inside [0, 1] and is sensible at 0/n and n/n.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials <= 0:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials={trials}], got {successes}")
    z = z_value(confidence)
    p, n = successes / trials, trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lower = 0.0 if successes == 0 else max(0.0, centre - half)
    upper = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(p, lower, upper, confidence)


def elo_from_score(score: float) -> float:
    """Logistic Elo difference of an expected score: ``-400·log10(1/score - 1)``.

    0.75 -> 190.85; 0 and 1 give -inf and +inf.
    """
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {score}")
    if score == 0.0:
        return -math.inf
    if score == 1.0:
        return math.inf
    return 400.0 * math.log10(score / (1.0 - score))


def score_from_elo(elo: float) -> float:
    """Expected score of a logistic Elo difference: ``1 / (1 + 10^(-elo/400))``."""
    return 1.0 / (1.0 + 10.0 ** (-elo / 400.0))


@dataclass(frozen=True, slots=True)
class EloEstimate:
    """An Elo difference with its confidence interval and the score it came from."""

    elo: float
    lower: float
    upper: float
    score: Interval
    stderr: float
    """Standard error of the mean score."""


def elo_estimate(record: Record, confidence: float = 0.95) -> EloEstimate:
    """Logistic Elo difference with a confidence interval.

    As fishtest's ``stat_util.get_elo``: the mean score ``s`` and the empirical
    variance ``σ²`` of one sample (a game for WDL, a pair for a pentanomial)
    give the standard error ``σ/√n``; the interval ``s ± z·σ/√n`` (clipped to
    [0, 1]) is mapped through the monotone ``elo_from_score``, so the Elo
    interval is asymmetric where the logistic curve is.
    """
    mean, var, n = _moments(record)
    se = math.sqrt(var / n)
    z = z_value(confidence)
    lo, hi = max(0.0, mean - z * se), min(1.0, mean + z * se)
    return EloEstimate(
        elo=elo_from_score(mean),
        lower=elo_from_score(lo),
        upper=elo_from_score(hi),
        score=Interval(mean, lo, hi, confidence),
        stderr=se,
    )


def normalized_elo_estimate(record: Record, confidence: float = 0.95) -> EloEstimate:
    """Normalised Elo ``(s - 1/2)/σ_game · 800/ln10`` with a confidence interval.

    ``σ_game`` is the per-game standard deviation: ``σ`` for WDL and ``√2·σ_pair``
    for a pentanomial (a pair's score is the mean of two games). A record without
    variance (all wins, say) has an infinite normalised Elo.
    """
    mean, var, n = _moments(record)
    sigma_game = math.sqrt(var) if isinstance(record, WDL) else math.sqrt(2 * var)
    se = math.sqrt(var / n)
    z = z_value(confidence)

    def nelo(s: float) -> float:
        if sigma_game == 0:
            return 0.0 if s == 0.5 else math.copysign(math.inf, s - 0.5)
        return (s - 0.5) / sigma_game * NELO_PER_T

    lo, hi = max(0.0, mean - z * se), min(1.0, mean + z * se)
    return EloEstimate(nelo(mean), nelo(lo), nelo(hi), Interval(mean, lo, hi, confidence), se)


# --------------------------------------------------------------------------- league


@dataclass(frozen=True, slots=True)
class PairResult:
    """All games between two players, as ``player``'s record against ``opponent``."""

    player: str
    opponent: str
    record: WDL


@dataclass(frozen=True, slots=True)
class Rating:
    """One player's league rating (logistic Elo, relative to the anchor)."""

    player: str
    elo: float
    stderr: float
    """Standard error from the Fisher information; 0 for an anchor player."""
    games: int
    score: float


def league_ratings(
    results: Iterable[PairResult],
    anchor: str | None = None,
    anchor_elo: float = 0.0,
    prior_draws: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> list[Rating]:
    """Maximum-likelihood Bradley–Terry (logistic Elo) ratings of a league.

    Model: player i scores against j with probability ``1/(1 + 10^((r_j - r_i)/400))``;
    a draw is half a win and half a loss. The MLE is found by Hunter's (2004)
    minorise–maximise iteration ``γ_i ← S_i / Σ_j n_ij/(γ_i + γ_j)`` with
    ``γ = 10^(r/400)``, ``S_i`` the points of i and ``n_ij`` the games between them.
    Ratings are anchored: ``anchor`` is fixed at ``anchor_elo``, or without an
    anchor the mean rating is ``anchor_elo``.

    ``prior_draws`` adds that many virtual draws to every pair that met (as
    BayesElo does), so that a player who won every game still gets a finite
    rating. With ``prior_draws=0`` this is the plain MLE, which exists only if
    every split of the league into two groups has each group scoring against
    the other; otherwise ValueError. Standard errors come from the inverse
    Fisher information (pseudo-inverse when anchored on the mean).
    """
    if prior_draws < 0:
        raise ValueError(f"prior_draws must be >= 0, got {prior_draws}")
    results = [r for r in results if r.record.games > 0]
    players = sorted({r.player for r in results} | {r.opponent for r in results})
    if not players:
        raise ValueError("no games: cannot rate an empty league")
    if anchor is not None and anchor not in players:
        raise ValueError(f"anchor {anchor!r} played no games in this league")
    index = {p: i for i, p in enumerate(players)}
    k = len(players)
    n = np.zeros((k, k))
    s = np.zeros((k, k))  # s[i, j]: points of i against j
    for r in results:
        if r.player == r.opponent:
            raise ValueError(f"player {r.player!r} cannot play itself in a league")
        i, j = index[r.player], index[r.opponent]
        n[i, j] += r.record.games
        n[j, i] += r.record.games
        s[i, j] += r.record.points
        s[j, i] += r.record.games - r.record.points
    met = n > 0
    n = n + prior_draws * met
    s = s + 0.5 * prior_draws * met
    _check_identifiable(players, s > 0)

    gamma = np.ones(k)
    points = s.sum(axis=1)
    for _ in range(max_iter):
        denom = (n / (gamma[:, None] + gamma[None, :])).sum(axis=1)
        new = points / denom
        new /= np.exp(np.log(new).mean())
        done = np.max(np.abs(np.log(new) - np.log(gamma))) < tol
        gamma = new
        if done:
            break
    elo = 400.0 * np.log10(gamma)
    elo += anchor_elo - (elo[index[anchor]] if anchor is not None else elo.mean())

    # Fisher information in Elo units: c² n_ij p_ij (1 - p_ij), c = ln10/400.
    p = 1.0 / (1.0 + 10.0 ** ((elo[None, :] - elo[:, None]) / 400.0))
    w = (math.log(10) / 400.0) ** 2 * n * p * (1.0 - p)
    info = np.diag(w.sum(axis=1)) - w
    if anchor is not None:
        keep = [i for i in range(k) if i != index[anchor]]
        cov = np.zeros((k, k))
        if keep:
            cov[np.ix_(keep, keep)] = np.linalg.inv(info[np.ix_(keep, keep)])
    else:
        cov = np.linalg.pinv(info)
    games = (n - prior_draws * met).sum(axis=1)
    real_points = (s - 0.5 * prior_draws * met).sum(axis=1)
    ratings = [
        Rating(
            player=pl,
            elo=float(elo[i]),
            stderr=float(math.sqrt(max(cov[i, i], 0.0))),
            games=int(round(games[i])),
            score=float(real_points[i] / games[i]),
        )
        for pl, i in index.items()
    ]
    return sorted(ratings, key=lambda r: (-r.elo, r.player))


def _check_identifiable(players: list[str], scored: object) -> None:
    """Raise unless the 'scored against' graph is strongly connected (MLE exists)."""

    def reach(adj) -> set[int]:
        seen, todo = {0}, [0]
        while todo:
            i = todo.pop()
            for j in range(len(players)):
                if adj(i, j) and j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    forward = reach(lambda i, j: bool(scored[i, j]))  # type: ignore[index]
    backward = reach(lambda i, j: bool(scored[j, i]))  # type: ignore[index]
    if len(forward) < len(players) or len(backward) < len(players):
        cut = sorted(set(range(len(players))) - (forward & backward))
        names = ", ".join(players[i] for i in cut)
        raise ValueError(
            "ratings are not identifiable: the league splits into groups where one group "
            f"never scored against the other (around: {names}); "
            "connect the league with more games or use prior_draws > 0"
        )


# --------------------------------------------------------------------------- SPRT


class EloModel(StrEnum):
    """Which Elo scale the SPRT hypotheses elo0/elo1 are written in."""

    LOGISTIC = "logistic"
    NORMALIZED = "normalized"


class SprtDecision(StrEnum):
    """The test's state: keep playing, or stop with H1 (stronger) or H0 (not stronger)."""

    CONTINUE = "continue"
    ACCEPT_H1 = "accept_h1"
    ACCEPT_H0 = "accept_h0"


class SprtConfig(BaseModel):
    """Sequential probability ratio test of H0: elo = elo0 against H1: elo = elo1."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    elo0: float = Field(0.0, description="Elo difference under H0 (candidate not better).")
    elo1: float = Field(
        35.0, description="Elo difference under H1 (candidate better); Leela Zero's gate uses 35."
    )
    alpha: float = Field(0.05, description="False-positive rate: P(accept H1 | H0).")
    beta: float = Field(0.05, description="False-negative rate: P(accept H0 | H1).")
    model: EloModel = Field(
        EloModel.LOGISTIC, description="Scale of elo0/elo1: logistic or normalised Elo."
    )

    @model_validator(mode="after")
    def _check(self) -> SprtConfig:
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.alpha + self.beta >= 1.0:
            raise ValueError(f"alpha + beta must be < 1, got {self.alpha + self.beta}")
        if not self.elo0 < self.elo1:
            raise ValueError(f"elo0 ({self.elo0}) must be less than elo1 ({self.elo1})")
        return self

    @property
    def lower_bound(self) -> float:
        """``ln(β/(1-α))``: at or below it, accept H0 (-2.944 for α = β = 0.05)."""
        return math.log(self.beta / (1.0 - self.alpha))

    @property
    def upper_bound(self) -> float:
        """``ln((1-β)/α)``: at or above it, accept H1 (+2.944 for α = β = 0.05)."""
        return math.log((1.0 - self.beta) / self.alpha)


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


def sprt(record: Record, config: SprtConfig) -> SprtResult:
    """Evaluate the SPRT on the results so far: stop when the LLR leaves the bounds.

    Call it after every finished game (WDL) or pair (pentanomial); the first
    call that returns ACCEPT_H1 or ACCEPT_H0 is the early stop. Accepting H1
    means the candidate is at least ``elo1`` stronger with error rate α.
    """
    llr = sprt_llr(record, config.elo0, config.elo1, config.model)
    if llr >= config.upper_bound:
        decision = SprtDecision.ACCEPT_H1
    elif llr <= config.lower_bound:
        decision = SprtDecision.ACCEPT_H0
    else:
        decision = SprtDecision.CONTINUE
    return SprtResult(llr, config.lower_bound, config.upper_bound, decision, record.games)


def sprt_stopping_point(records: Iterable[Record], config: SprtConfig) -> tuple[int, SprtResult]:
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
