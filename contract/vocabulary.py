"""The fixed words both images use: phases, rulesets, maps, networks, metrics.

Standard library only (the engine imports it). Values are the wire spelling:
Battlesnake's ruleset and map names as the official rules engine writes them,
the trainer's network family names, and camelCase metric names as they appear
in a phase result, in ``TrainingRun.status.phases[].metrics`` and (snake_case,
via :func:`prometheus_name`) in Prometheus.
"""

from __future__ import annotations

import re
from enum import StrEnum


class PhaseName(StrEnum):
    """The phases a run can list, in the order they usually come."""

    BOOTSTRAP = "bootstrap"
    HYBRID = "hybrid"
    SELF_PLAY = "self_play"
    DISTILL = "distill"
    """The previous phase's network (or the run's initial model) plays inside the neural search against a
    teacher (the search by default) that labels every seat's positions; the network learns those labels:
    bootstrap's loop with ``positions: student`` (DAgger), after the phases it distils the search into."""
    CONTINUOUS = "continuous"
    EVALUATE = "evaluate"

    @property
    def trains(self) -> bool:
        """True for the phases that train a network (all but ``evaluate``)."""
        return self is not PhaseName.EVALUATE


TRAINING_PHASES: tuple[PhaseName, ...] = tuple(p for p in PhaseName if p.trains)
"""bootstrap, hybrid, self_play, distill, continuous."""

HEURISTIC_PHASES: tuple[PhaseName, ...] = (PhaseName.BOOTSTRAP, PhaseName.HYBRID)
"""Phases where the heuristic teacher plays (``heuristicRatio`` applies)."""

EXPERT_ITERATION_PHASES: tuple[PhaseName, ...] = (PhaseName.SELF_PLAY, PhaseName.CONTINUOUS)
"""Phases that can train from search (``expertIteration`` applies)."""

TEACHER_PHASES: tuple[PhaseName, ...] = (PhaseName.BOOTSTRAP, PhaseName.DISTILL)
"""Phases whose network learns a teacher's labels (``teacher``, ``teacherMoveMs``, ``teacherPolicyWeight``
apply): bootstrap (the teacher's own games, or with ``positions: student`` the initial model's) and distill
(the previous phase's network's own games: DAgger)."""


class BootstrapTeacher(StrEnum):
    """Whose moves the bootstrap phase imitates."""

    HEURISTIC = "heuristic"
    """The batched rule-based heuristic (``agents/heuristic.py``)."""
    SEARCH = "search"
    """The compiled alpha-beta search player (``agents/search.py``), with a budget per move."""


class BootstrapPositions(StrEnum):
    """Whose games give the positions a bootstrap teacher labels."""

    TEACHER = "teacher"
    """The teacher's games against itself, 10% of its moves random (behaviour cloning)."""
    STUDENT = "student"
    """The run's starting network inside the neural search against the teacher, the teacher labelling every
    seat: the student's own state distribution with the expert's labels (DAgger; Ross, Gordon and Bagnell,
    "A Reduction of Imitation Learning and Structured Prediction to No-Regret Online Learning", 2011)."""


class ApprovalMode(StrEnum):
    """Whether a candidate that passes the gate becomes champion at once or waits for a person
    (``Champion.spec.policy.approval``, copied into the run config)."""

    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


class Ruleset(StrEnum):
    """Rulesets of the official rules engine (github.com/BattlesnakeOfficial/rules) that we reproduce."""

    STANDARD = "standard"
    ROYALE = "royale"
    CONSTRICTOR = "constrictor"
    WRAPPED = "wrapped"
    WRAPPED_CONSTRICTOR = "wrapped_constrictor"
    SOLO = "solo"

    @property
    def wraps(self) -> bool:
        """Moving off one edge enters on the opposite one."""
        return self in (Ruleset.WRAPPED, Ruleset.WRAPPED_CONSTRICTOR)

    @property
    def constricts(self) -> bool:
        """Snakes grow every turn (no tail moves)."""
        return self in (Ruleset.CONSTRICTOR, Ruleset.WRAPPED_CONSTRICTOR)


class GameMap(StrEnum):
    """Maps: ``standard`` places snakes and food and spawns food each turn; ``empty`` never spawns food."""

    STANDARD = "standard"
    EMPTY = "empty"


class Architecture(StrEnum):
    """Network families the trainer builds (``learning.networks``)."""

    CNN_SIMPLE = "cnn_simple"
    """A plain convolutional tower with policy and value heads."""
    CNN_ATTENTION_RESIDUAL = "cnn_attention_residual"
    """Residual convolution blocks plus board self-attention (the default)."""


class Metric(StrEnum):
    """Names of the numbers a phase reports (phase result, run status, TensorBoard, Prometheus).

    Per-opponent scores are not members: they are ``winRateVs<Opponent>``, made
    by :func:`win_rate_vs`, and per-opponent Elo differences with their 95%
    interval ends are ``eloVs<Opponent>``, ``eloVs<Opponent>Lower`` and
    ``eloVs<Opponent>Upper``, made by :func:`elo_vs`; a new opponent needs no
    new name here.
    """

    GAMES = "games"
    """Games played by the phase (count)."""
    POSITIONS = "positions"
    """Positions (one living snake's decision) in the phase's training window (count)."""
    STEPS = "steps"
    """Optimiser steps taken so far (count)."""
    POSITIONS_PER_SECOND = "positionsPerSecond"
    """Self-play or teacher-play throughput (positions per second)."""
    SAMPLES_PER_SECOND = "samplesPerSecond"
    """Learner throughput (training samples per second)."""
    POLICY_LOSS = "policyLoss"
    """Cross-entropy (imitation) or clipped surrogate (PPO) loss of the policy head."""
    VALUE_LOSS = "valueLoss"
    """Mean squared error of the value head."""
    ENTROPY = "entropy"
    """Mean policy entropy over legal moves (nats)."""
    ACCURACY = "accuracy"
    """Share of positions where the network's top move is the teacher's (imitation)."""
    APPROX_KL = "approxKl"
    """PPO's approximate KL divergence between the old and new policy."""
    CLIP_FRACTION = "clipFraction"
    """PPO: share of samples whose probability ratio was clipped."""
    SEARCH_POLICY_LOSS = "searchPolicyLoss"
    """Expert iteration: cross-entropy between the search's visit distribution and the policy."""
    SEARCHED_FRACTION = "searchedFraction"
    """Expert iteration: share of the learner's recorded positions that carry search targets."""
    WIN_RATE = "winRate"
    """The learner's score (wins + draws/2 per game) against every opponent that is not
    itself, pooled; for ``evaluate``, against the champion. Drives ``status.bestWinRate``."""
    ELO = "elo"
    """Elo difference against the champion (evaluate)."""
    SECONDS = "seconds"
    """Wall-clock time of the phase (seconds)."""


WIN_RATE_PREFIX = "winRateVs"


ELO_PREFIX = "eloVs"
ELO_BOUNDS = ("Lower", "Upper")
"""Suffixes of the 95% interval ends of an ``eloVs<Opponent>`` metric."""


def _camel(opponent: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", opponent)
    return "".join(w[:1].upper() + w[1:] for w in words if w)[:40]


def win_rate_vs(opponent: str) -> str:
    """The metric name of the score against one opponent: ``heuristic`` -> ``winRateVsHeuristic``,
    ``random-safe`` -> ``winRateVsRandomSafe``, ``self_play-0003`` -> ``winRateVsSelfPlay0003``."""
    return WIN_RATE_PREFIX + _camel(opponent)


def elo_vs(opponent: str, bound: str = "") -> str:
    """The metric name of the logistic Elo difference against one opponent, or (``bound`` ``Lower``
    or ``Upper``) an end of its 95% interval: ``heuristic`` -> ``eloVsHeuristic``,
    (``random-safe``, ``Lower``) -> ``eloVsRandomSafeLower``."""
    if bound not in ("", *ELO_BOUNDS):
        raise ValueError(f"bound must be '', 'Lower' or 'Upper', got {bound!r}")
    return ELO_PREFIX + _camel(opponent) + bound


def prometheus_name(metric: str) -> str:
    """camelCase -> snake_case for Prometheus (``policyLoss`` -> ``policy_loss``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", metric).lower()


def is_metric_name(name: str) -> bool:
    """True for the names a phase may report: a :class:`Metric` value, ``winRateVs<Opponent>`` or
    ``eloVs<Opponent>`` (with an optional ``Lower``/``Upper``)."""
    return name in Metric._value2member_map_ or any(
        name.startswith(prefix) and name[len(prefix):].isalnum() for prefix in (WIN_RATE_PREFIX, ELO_PREFIX))
