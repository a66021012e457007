"""The promotion gate's decision: promote, reject, or keep testing.

A candidate becomes champion only when two independent checks pass:

1. **Strength**, from a tournament against the current champion, by one of
   * ``sprt`` (default): the sequential test of :mod:`.sprt` on paired games
     (pentanomial) when available, else on games (trinomial). It may stop as
     soon as the LLR leaves its bounds, but not before ``min_games`` (Leela
     Zero: at least 100, at most 400 games). Running out of ``max_games``
     without a decision is *inconclusive*: not enough evidence to promote.
   * ``winRate``: a fixed-budget test (KataGo's gatekeeper style). After
     ``max_games`` the score (draws half) must reach ``min_win_rate`` and its
     Wilson lower bound must reach ``min_lower_bound``. It does not stop
     early, because looking at a fixed-sample interval after every game
     inflates its error rate; use the SPRT for early stopping.
2. **Production readiness**: p99 latency and peak memory of an inference
   session under their thresholds (the guide's 10 ms and 50 MB by default),
   and, when measured, ONNX/torch move parity. A model that fails is rejected
   whatever its strength: it is not promotable.
3. **No regression against fixed baselines** (optional, :func:`with_baselines`):
   the candidate and the champion each play every baseline of the spec on the
   same seeds; the paired score difference (candidate minus champion, one value
   per seat-swapped pair, so the seeds' luck cancels) must not be significantly
   below ``-maxRegression`` (one-sided 95% upper confidence bound, normal
   approximation with the pairs' sample variance), and the candidate's own
   score must not be significantly under ``minWinRate`` (Wilson 95% upper
   bound). Only evidence of a regression rejects: too few games never do. This
   is fishtest's non-regression idea with a fixed sample instead of an SPRT.

This module decides and does nothing else: the tournament runner feeds it
counts, the registry records its ``statistics`` in the champion's history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from ouroboros.contract.promotion import (
    BaselineSpec,
    BaselineStatistics,
    GateMethod,
    GateVerdict,
    ReadinessSpec,
    SprtSpec,
)
from ouroboros.trainer.evaluation import sprt as sequential
from ouroboros.trainer.evaluation import stats


class WinRateConfig(BaseModel):
    """Fixed-budget win-rate test."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_win_rate: float = Field(
        0.55, ge=0.0, le=1.0, description="Score (draws half) the candidate must reach."
    )
    min_lower_bound: float = Field(
        0.5, ge=0.0, le=1.0, description="Wilson lower bound of the score it must reach."
    )
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence of the Wilson bound.")


class GateConfig(BaseModel):
    """The promotion policy (``evaluation.promotion.policy_from_spec`` builds it from a ``PromotionSpec``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: GateMethod = Field(GateMethod.SPRT, description="sprt or winRate.")
    sprt: SprtSpec = Field(default_factory=SprtSpec, description="SPRT test.")
    win_rate: WinRateConfig = Field(default_factory=WinRateConfig, description="Win-rate test.")
    min_games: int = Field(100, ge=0, description="No strength decision before this many games.")
    max_games: int = Field(400, gt=0, description="Game budget of the tournament.")
    readiness: ReadinessSpec = Field(default_factory=ReadinessSpec, description="Serving limits.")
    require_readiness: bool = Field(
        True, description="Without a readiness report the candidate cannot be promoted."
    )

    @model_validator(mode="after")
    def _check(self) -> GateConfig:
        if self.min_games > self.max_games:
            raise ValueError(
                f"min_games ({self.min_games}) must not exceed max_games ({self.max_games})"
            )
        return self


@dataclass(frozen=True, slots=True)
class TournamentResult:
    """Candidate-vs-champion counts from the candidate's seat.

    ``pentanomial`` counts the same games by seat-swapped pairs; when given it
    must cover exactly the games of ``wdl`` (2 games per pair).
    """

    wdl: stats.WDL
    pentanomial: stats.Pentanomial | None = None

    def __post_init__(self) -> None:
        if self.pentanomial is not None and self.pentanomial.games != self.wdl.games:
            raise ValueError(
                f"pentanomial covers {self.pentanomial.games} games but the record has "
                f"{self.wdl.games}; both must count the same games"
            )


class ReadinessReport(BaseModel):
    """Measured serving figures of the candidate's exported model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    p50_latency_ms: float | None = Field(None, ge=0, description="Median latency, batch 1.")
    p99_latency_ms: float = Field(ge=0, description="p99 latency, batch 1, one thread.")
    peak_memory_mb: float = Field(ge=0, description="Peak memory of an inference session.")
    parity_ok: bool | None = Field(None, description="ONNX picks the torch model's moves.")


@dataclass(frozen=True, slots=True)
class GateDecision:
    """The verdict, every reason behind it, and statistics to record with a promotion."""

    verdict: GateVerdict
    reasons: list[str]
    statistics: dict[str, JsonValue] = field(default_factory=dict)
    continue_testing: bool = False
    """True when more games could still settle an inconclusive strength test."""


def readiness_failures(report: ReadinessReport, limits: ReadinessSpec) -> list[str]:
    """Why a model is not production-ready (empty when it is)."""
    failures = []
    if report.p99_latency_ms > limits.max_p99_latency_ms:
        failures.append(
            f"p99 latency {report.p99_latency_ms:g} ms exceeds {limits.max_p99_latency_ms:g} ms"
        )
    if report.peak_memory_mb > limits.max_peak_memory_mb:
        failures.append(
            f"peak memory {report.peak_memory_mb:g} MB exceeds {limits.max_peak_memory_mb:g} MB"
        )
    if report.parity_ok is False:
        failures.append("the ONNX model does not pick the same moves as the torch model")
    return failures


def _finite(x: float) -> float | None:
    """JSON has no infinity: an unbounded Elo is recorded as null."""
    return x if math.isfinite(x) else None


def _strength(
    result: TournamentResult, config: GateConfig, out: dict[str, JsonValue]
) -> tuple[GateVerdict | None, str, bool]:
    """(PROMOTE-able / REJECT / None for undecided, reason, worth continuing)."""
    games = result.wdl.games
    if config.method is GateMethod.SPRT:
        paired = result.pentanomial is not None and result.pentanomial.pairs > 0
        record = result.pentanomial if paired else result.wdl
        assert record is not None
        outcome = sequential.sprt(record, config.sprt)
        out.update(
            method="sprt",
            counting="pentanomial" if paired else "trinomial",
            llr=outcome.llr,
            llr_lower_bound=outcome.lower_bound,
            llr_upper_bound=outcome.upper_bound,
            sprt_decision=outcome.decision.value,
            elo0=config.sprt.elo0,
            elo1=config.sprt.elo1,
            alpha=config.sprt.alpha,
            beta=config.sprt.beta,
            elo_model=config.sprt.elo_model.value,
        )
        test = (
            f"SPRT [{config.sprt.elo0:g}, {config.sprt.elo1:g}] ({config.sprt.elo_model.value}) "
            f"LLR {outcome.llr:.2f} in ({outcome.lower_bound:.2f}, {outcome.upper_bound:.2f})"
        )
        if outcome.decision is not sequential.SprtDecision.CONTINUE and games < config.min_games:
            return None, f"{test} decided, but only {games} < {config.min_games} games", True
        if outcome.decision is sequential.SprtDecision.ACCEPT_H1:
            return GateVerdict.PROMOTE, f"{test}: accepted H1, candidate is stronger", False
        if outcome.decision is sequential.SprtDecision.ACCEPT_H0:
            return GateVerdict.REJECT, f"{test}: accepted H0, candidate is not stronger", False
        if games >= config.max_games:
            return None, f"{test}: undecided after the {config.max_games}-game budget", False
        return None, f"{test}: undecided after {games} games", True

    rule = config.win_rate
    wilson = stats.wilson_interval(result.wdl.points, games, rule.confidence)
    out.update(
        method=GateMethod.WIN_RATE.value,
        wilson_lower=wilson.lower,
        wilson_upper=wilson.upper,
        min_win_rate=rule.min_win_rate,
        min_lower_bound=rule.min_lower_bound,
    )
    test = (
        f"score {wilson.estimate:.3f} (Wilson {rule.confidence:.0%} lower bound "
        f"{wilson.lower:.3f}) against {rule.min_win_rate:.3f} / {rule.min_lower_bound:.3f}"
    )
    if games < config.max_games:
        return None, f"{test}: {games} of {config.max_games} games played", True
    if wilson.estimate >= rule.min_win_rate and wilson.lower >= rule.min_lower_bound:
        return GateVerdict.PROMOTE, f"{test}: passed", False
    return GateVerdict.REJECT, f"{test}: failed", False


def decide(
    result: TournamentResult, config: GateConfig, readiness: ReadinessReport | None
) -> GateDecision:
    """Judge a candidate from its tournament counts and its readiness report."""
    out: dict[str, JsonValue] = {
        "games": result.wdl.games,
        "wins": result.wdl.wins,
        "draws": result.wdl.draws,
        "losses": result.wdl.losses,
    }
    if result.pentanomial is not None:
        out["pentanomial"] = list(result.pentanomial.counts)
    reasons: list[str] = []

    failures: list[str] = []
    if readiness is not None:
        out.update(readiness.model_dump(exclude_none=True))
        failures = readiness_failures(readiness, config.readiness)
        reasons += [f"not production-ready: {f}" for f in failures]

    if result.wdl.games == 0:
        reasons.insert(0, "no games played yet")
        verdict = GateVerdict.REJECT if failures else GateVerdict.INCONCLUSIVE
        return GateDecision(verdict, reasons, out, continue_testing=not failures)

    record = result.pentanomial if result.pentanomial and result.pentanomial.pairs else result.wdl
    elo = stats.elo_estimate(record)
    out.update(
        score=elo.score.estimate,
        elo=_finite(elo.elo),
        elo_lower=_finite(elo.lower),
        elo_upper=_finite(elo.upper),
    )
    strength, why, more = _strength(result, config, out)
    reasons.insert(0, why)

    if failures:
        return GateDecision(GateVerdict.REJECT, reasons, out, continue_testing=False)
    if strength is GateVerdict.REJECT:
        return GateDecision(GateVerdict.REJECT, reasons, out)
    if strength is None:
        return GateDecision(GateVerdict.INCONCLUSIVE, reasons, out, continue_testing=more)
    if readiness is None and config.require_readiness:
        reasons.append("no production-readiness report: cannot promote without one")
        return GateDecision(GateVerdict.INCONCLUSIVE, reasons, out)
    if readiness is not None:
        reasons.append(
            f"production-ready: p99 {readiness.p99_latency_ms:g} ms, "
            f"peak memory {readiness.peak_memory_mb:g} MB"
        )
    return GateDecision(GateVerdict.PROMOTE, reasons, out)


def decide_first(readiness: ReadinessReport, config: GateConfig) -> GateDecision:
    """The first champion of a game: with no champion to play, production readiness alone decides."""
    failures = readiness_failures(readiness, config.readiness)
    reasons = ["no champion yet: the first candidate needs production readiness only"]
    reasons += [f"not production-ready: {f}" for f in failures]
    if not failures:
        reasons.append(f"production-ready: p99 {readiness.p99_latency_ms:g} ms, "
                       f"peak memory {readiness.peak_memory_mb:g} MB")
    verdict = GateVerdict.REJECT if failures else GateVerdict.PROMOTE
    return GateDecision(verdict, reasons, {**readiness.model_dump(exclude_none=True), "first_champion": True})


REGRESSION_CONFIDENCE = 0.90
"""Two-sided level whose upper end is the one-sided 95% bound of the baseline test (z = 1.645)."""


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """Half-points (0 to 4) of each seat-swapped pair against one baseline, seed by seed."""

    spec: BaselineSpec
    candidate: Sequence[int]
    """The candidate's pairs. Shape [P]."""
    champion: Sequence[int] | None = None
    """The champion's pairs on the same seeds (None: there is no champion). Shape [P]."""

    def __post_init__(self) -> None:
        if not self.candidate:
            raise ValueError(f"baseline {self.spec.player.value}: no games played")
        if any(not 0 <= p <= 4 for p in self.candidate) or any(not 0 <= p <= 4 for p in self.champion or ()):
            raise ValueError(f"baseline {self.spec.player.value}: pair half-points must lie in 0..4")
        if self.champion is not None and len(self.champion) != len(self.candidate):
            raise ValueError(f"baseline {self.spec.player.value}: the champion played {len(self.champion)} "
                             f"pairs and the candidate {len(self.candidate)}; both must play the same seeds")


def judge_baseline(result: BaselineResult) -> tuple[BaselineStatistics, str]:
    """The non-regression check against one baseline (module docstring, point 3): statistics and one reason."""
    spec, pairs = result.spec, len(result.candidate)
    games = 2 * pairs
    points = sum(result.candidate) / 2
    score = points / games
    wilson = stats.wilson_interval(points, games)
    out = BaselineStatistics(player=spec.player.value, games=games, win_rate=round(score, 4),
                             win_rate_upper=round(wilson.upper, 4), passed=True)
    text = f"baseline {spec.player.value}: candidate {score:.3f}"
    problems = []
    if result.champion is not None:
        diffs = [(c - h) / 4 for c, h in zip(result.candidate, result.champion, strict=True)]
        mean = math.fsum(diffs) / pairs
        champion = sum(result.champion) / 2 / games
        upper = None
        if pairs >= 2:
            var = math.fsum((d - mean) ** 2 for d in diffs) / (pairs - 1)
            upper = mean + stats.z_value(REGRESSION_CONFIDENCE) * math.sqrt(var / pairs)
        out = out.model_copy(update={"champion_win_rate": round(champion, 4), "difference": round(mean, 4),
                                     "difference_upper": None if upper is None else round(upper, 4)})
        text += f", champion {champion:.3f} on the same seeds ({games} games): difference {mean:+.3f}"
        if upper is None:
            text += " (one pair: no variance to test)"
        elif upper < -spec.max_regression:
            problems.append(f"one-sided 95% upper bound {upper:+.3f} < -{spec.max_regression:.3f} allowed")
        else:
            text += f", one-sided 95% upper bound {upper:+.3f} >= -{spec.max_regression:.3f}"
    else:
        text += f" in {games} games"
    if wilson.upper < spec.min_win_rate:
        problems.append(f"Wilson 95% upper bound {wilson.upper:.3f} under the minimum {spec.min_win_rate:.3f}")
    if problems:
        return out.model_copy(update={"passed": False}), "regressed against " + text + ", " + "; ".join(problems)
    return out, text + ": no regression"


def with_baselines(decision: GateDecision, results: Sequence[BaselineResult]) -> GateDecision:
    """``decision`` with the baseline checks added: a PROMOTE becomes REJECT when any baseline shows a
    regression; every check's statistics go under ``statistics["baselines"]`` and its reason is appended."""
    checks = [judge_baseline(r) for r in results]
    if not checks:
        return decision
    failed = [why for s, why in checks if not s.passed]
    reasons = [*failed, *decision.reasons, *(why for s, why in checks if s.passed)]
    statistics = {**decision.statistics, "baselines": [s.model_dump(mode="json") for s, _ in checks]}
    verdict = GateVerdict.REJECT if failed else decision.verdict
    return GateDecision(verdict, reasons, statistics, continue_testing=decision.continue_testing and not failed)
