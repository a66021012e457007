"""Batched rollouts (`selfplay.play`): pinned output of small seeded runs, and its invariants.

The pins are sha256 digests of everything a run returns (every column,
the results per opponent, games, turns, the progress calls), taken before
`play` was cut into stages: a refactoring that changes a row, a result or
the order in which the run draws from its generator changes a digest. They
were taken again when encoding version 2 added two planes, after checking
that the runs' digests with those two planes cut off were still the old pins.

They hold on any platform because nothing in these runs depends on
floating-point rounding that differs between CPUs: the engine, the
heuristic and the encoding are integer and exact float64 arithmetic, and the
networks have all weights zero, so every logit is exactly 0 and a learner's
move is a uniform draw among its safe moves (decided by the generator
alone). The log-probabilities (log 2, log 3 ...) go through torch's
``log_softmax`` and are rounded to 1e-5 before hashing for that reason.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.learning import networks
from ouroboros.trainer.learning.phases import selfplay
from ouroboros.trainer.learning.phases.selfplay import Seat

pytestmark = pytest.mark.unit

TINY = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=1, channels=4)


def zero_network() -> networks.PolicyValueNet:
    """A network whose every output is 0: a uniform policy over the safe moves, value 0."""
    net = networks.build_network(TINY, seed=0)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    return net


def mixed(game: int, rng: np.random.Generator, n: int = 2) -> list[int]:
    """Seats of game ``game``: the learner against one kind of opponent (self-play, teacher,
    random-safe, snapshot 0 or 1) by turns; the learner's seat is drawn from ``rng``, as
    `reinforce.opponents` draws, so the order of draws is pinned too."""
    kind = game % 5
    if kind == 0:
        return [Seat.LEARNER] * n
    other = [Seat.TEACHER, Seat.RANDOM, Seat.SNAPSHOT, Seat.SNAPSHOT + 1][kind - 1]
    seats = [other] * n
    seats[int(rng.integers(n))] = Seat.LEARNER
    return seats


def fingerprint(rollout: selfplay.Rollout, progress: list[int]) -> str:
    """sha256 of everything the run returned (module docstring)."""
    h = hashlib.sha256()
    for name in sorted(rollout.columns):
        col = rollout.columns[name]
        if name in ("logp", "v_old"):
            col = np.round(col.astype(np.float64), 5) + 0.0  # + 0.0: -0.0 hashes as 0.0
        h.update(f"{name}:{col.dtype.str}:{col.shape}".encode())
        h.update(np.ascontiguousarray(col).tobytes())
    h.update(json.dumps([rollout.results, rollout.games, rollout.turns, progress], sort_keys=True).encode())
    return h.hexdigest()


def run_case(case: str) -> tuple[selfplay.Rollout, list[int]]:
    """One of the pinned runs, with the progress calls it made."""
    progress: list[int] = []
    common = dict(rng=np.random.default_rng(11), progress=progress.append)
    if case == "duels-league":  # every controller kind, slots refilled (12 games, 5 at a time)
        rollout = selfplay.play(
            GameConfig(7, 7, 2), games=12, parallel=5, max_turns=60, seed=100, assign=mixed,
            learner=zero_network(), snapshots=[zero_network(), zero_network()], labels=["old", "older"],
            temperature=1.0, **common)
    elif case == "four-snakes":  # partial deaths, turn limit reached (draws)
        rollout = selfplay.play(
            GameConfig(7, 7, 4), games=7, parallel=3, max_turns=25, seed=7,
            assign=lambda g, rng: mixed(g, rng, 4), learner=zero_network(),
            snapshots=[zero_network(), zero_network()], labels=["old", "older"], **common)
    elif case == "teacher-explore":  # bootstrap: the teacher's rows, a random move 30% of the time
        teachers = [Seat.TEACHER] * 2
        rollout = selfplay.play(
            GameConfig(7, 7, 2), games=6, parallel=4, max_turns=80, seed=3,
            assign=lambda g, rng: teachers, record_teacher=True, explore=0.3, **common)
    elif case == "solo-greedy":  # one snake, argmax at temperature 0
        rollout = selfplay.play(
            GameConfig(7, 7, 1, ruleset=Ruleset.SOLO), games=3, parallel=2, max_turns=40, seed=5,
            assign=lambda g, rng: [Seat.LEARNER], learner=zero_network(), temperature=0.0, **common)
    else:
        raise ValueError(case)
    return rollout, progress


PINNED = {
    "duels-league": "d4648f15d29abe74030373408469473cf213191b7b550290da42c6275fa66c2e",
    "four-snakes": "f548170618275570d4ed3ca7fc2c9e55cb3a1b46986ea9022e49e43310082c76",
    "teacher-explore": "824afd3c625e0724f933d2cbd69f6c98a700bc7b4622864125fac8e7eae6d42e",
    "solo-greedy": "8a87362f422dbc37ac3b92e9a67634af80519abe503ce51737a24301a6a4734c",
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_a_seeded_run_returns_exactly_the_pinned_rows_and_results(case):
    rollout, progress = run_case(case)
    assert fingerprint(rollout, progress) == PINNED[case]


def test_rows_form_trajectories_that_end_in_their_outcome():
    net = networks.build_network(networks.NetworkConfig(architecture="cnn_simple", blocks=2, channels=8), seed=1)
    rollout = selfplay.play(
        GameConfig(7, 7, 3), games=9, parallel=4, max_turns=30, seed=1, assign=lambda g, rng: mixed(g, rng, 3),
        rng=np.random.default_rng(1), learner=net, snapshots=[net, net], labels=["a", "b"])
    cols = rollout.columns
    assert rollout.rows > 0 and set(np.unique(cols["game_id"])) == set(range(9))  # the learner plays every game
    counted = sum(sum(score) for score in rollout.results.values())
    assert counted == sum(1 for g in range(9) if g % 5)  # every game against one kind of opponent
    mask = cols["mask"].astype(bool)
    assert mask[np.arange(rollout.rows), cols["move"]][mask.any(axis=1)].all()  # masked policy: safe moves
    for t in np.unique(cols["traj"]):
        rows = np.flatnonzero(cols["traj"] == t)
        assert len(set(cols["game_id"][rows])) == 1 and len(set(cols["seat"][rows])) == 1
        assert (np.diff(cols["turn"][rows]) == 1).all()  # one row per turn, in time order
        assert cols["done"][rows[-1]] and not cols["done"][rows[:-1]].any()  # every game here ends
        assert (cols["reward"][rows[:-1]] == 0).all() and cols["reward"][rows[-1]] in (-1.0, 0.0, 1.0)
        assert (cols["value"][rows] == cols["reward"][rows[-1]]).all()


@pytest.mark.parametrize(("seats", "learner", "message"), [
    ([Seat.LEARNER, Seat.TEACHER], None, r"assign\(0\): seat 0 is the learner's, but no learner network"),
    ([Seat.TEACHER, Seat.SNAPSHOT + 1], zero_network(), r"seat 1 has controller 4, but only 1 snapshots"),
    ([Seat.TEACHER], None, r"assign\(0\) gave 1 controllers for 2 seats"),
])
def test_seats_without_a_controller_are_refused(seats, learner, message):
    with pytest.raises(ValueError, match=message):
        selfplay.play(GameConfig(7, 7, 2), games=1, parallel=1, max_turns=5, seed=0, assign=lambda g, rng: seats,
                      rng=np.random.default_rng(0), learner=learner, snapshots=[zero_network()])
