"""The training numbers phases report, mapped to Prometheus series in one place.

Phases report two kinds of keys today: result metrics in a phase's
`status.phases[i].metrics` (`policyLoss`, `winRateVsHeuristic`,
`positionsPerSecond`, ...) and live scalars in progress records and
TensorBoard (`loss/policy`, `win_rate/heuristic`, `entropy`, ...). This module
is the only place that knows those spellings: `classify` turns either into a
`(TrainingSeries, label)` pair, which the operator's metrics, the dashboard
and `ouro report` use. When the metric names become one enum in the shared
contract package, only this module changes.
"""

from __future__ import annotations

import re
from enum import StrEnum


class TrainingSeries(StrEnum):
    """A training quantity, named as its Prometheus family after `ouroboros_trainingrun_`."""

    LOSS = "loss"
    """Training loss; label `loss` = policy | value | total."""
    WIN_RATE = "win_rate"
    """Score (wins + draws/2) / games, 0..1; label `opponent`."""
    ENTROPY = "policy_entropy_nats"
    """Mean policy entropy, nats."""
    ACCURACY = "imitation_accuracy_ratio"
    """Share of positions where the network picks the teacher's move, 0..1."""
    POSITIONS_PER_SECOND = "positions_per_second"
    """Self-play positions (one snake's decision) recorded per second."""
    SAMPLES_PER_SECOND = "samples_per_second"
    """Training samples per second."""
    ELO = "elo"
    """Logistic Elo difference against an opponent (from the score); label `opponent`."""
    ELO_LOWER = "elo_lower"
    """Lower end of the Elo difference's 95% interval; label `opponent`."""
    ELO_UPPER = "elo_upper"
    """Upper end of the Elo difference's 95% interval; label `opponent`."""


_WIN_RATE = re.compile(r"^(?:winRateVs|scoreVs)(?P<opponent>[A-Za-z0-9_]+)$")
_ELO = re.compile(r"^eloVs(?P<opponent>[A-Za-z0-9_]+?)(?P<bound>Lower|Upper)?$")
_ELO_SERIES = {None: "ELO", "Lower": "ELO_LOWER", "Upper": "ELO_UPPER"}


def opponent_label(camel: str) -> str:
    """`RandomSafe` -> `random_safe`, `Heuristic` -> `heuristic`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def classify(key: str) -> tuple[TrainingSeries, str] | None:
    """The series a phase metric or scalar key belongs to, and its label value ('' if none).

    >>> classify("policyLoss"), classify("loss/value"), classify("winRateVsRandomSafe")
    ((TrainingSeries.LOSS, 'policy'), (TrainingSeries.LOSS, 'value'), (TrainingSeries.WIN_RATE, 'random_safe'))
    >>> classify("eloVsHeuristic"), classify("eloVsSelfPlay0003Lower")
    ((TrainingSeries.ELO, 'heuristic'), (TrainingSeries.ELO_LOWER, 'self_play0003'))

    Keys that are no training curve (`games`, `steps`, `seconds`) give None.
    """
    if key.startswith("loss/"):
        return TrainingSeries.LOSS, key.removeprefix("loss/")
    if key.endswith("Loss"):
        return TrainingSeries.LOSS, key.removesuffix("Loss")
    if key.startswith("win_rate/"):
        return TrainingSeries.WIN_RATE, key.removeprefix("win_rate/").replace("-", "_")
    if m := _WIN_RATE.match(key):
        return TrainingSeries.WIN_RATE, opponent_label(m["opponent"])
    if m := _ELO.match(key):
        return TrainingSeries[_ELO_SERIES[m["bound"]]], opponent_label(m["opponent"])
    simple = {
        "entropy": TrainingSeries.ENTROPY,
        "accuracy": TrainingSeries.ACCURACY,
        "positionsPerSecond": TrainingSeries.POSITIONS_PER_SECOND,
        "samplesPerSecond": TrainingSeries.SAMPLES_PER_SECOND,
    }
    if key in simple:
        return simple[key], ""
    return None
