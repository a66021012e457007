"""Match statistics: how sure are we that a candidate is stronger?

A champion is only worth promoting on sound evidence, so everything the gate
and the tournament tables report is computed here, engine-independently:
win/draw/loss records, Wilson score intervals, Elo differences with confidence
intervals and league ratings (Bradley–Terry maximum likelihood); the SPRT
built on these records lives in `sprt`.

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

All functions are pure; inputs are validated and bad input raises ValueError
with a message naming the offending value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

import numpy as np

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

    A record without variance (every game won, or lost, or drawn) has a
    standard error of 0, and ``s ± z·σ/√n`` would claim certainty after two
    games (+inf [+inf, +inf] for 2-0). There the score interval is the
    Wilson interval of ``s·n`` successes in ``n`` samples instead, which
    narrows with n as a record of that many games should (10-0-0:
    [0.722, 1], Elo [+166, +inf]; 0-2-0: [0.095, 0.905], Elo [-393, +393]).
    """
    mean, var, n = _moments(record)
    se = math.sqrt(var / n)
    z = z_value(confidence)
    if var == 0.0:
        wilson = wilson_interval(mean * n, n, confidence)
        lo, hi = wilson.lower, wilson.upper
    else:
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
