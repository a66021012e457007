"""Expert iteration: the neural search improves the network's moves, and the network learns them.

The network is the *apprentice*; the neural search (``agents/nsearch.py``,
decoupled PUCT MCTS) guided by that same network is the *expert*. In
self-play the expert decides a share of the learner's moves, and its root
statistics become training targets (Anthony, Tian and Barber 2017, "Thinking
Fast and Slow with Deep Learning and Tree Search"; AlphaZero, Silver et al.
2018; KataGo, Wu 2019):

* **policy target**: the root's visit counts over the moves that do not lose
  at once, normalised: ``pi(a) = N(a) / sum_b N(b)`` (AlphaZero's target at
  temperature 1). Visits on a move the safety mask forbids are dropped (the
  policy never ranks those moves), and a position whose search visited none
  of the allowed moves, or had a single move to make, gets no target.
* **value target**: ``(1 - w) * z + w * v_search`` where ``z`` is what the
  game gave (PPO's GAE return) and ``v_search`` the root's visit-weighted
  mean value; ``w = 0`` is AlphaZero's outcome-only target, a mix is what
  KataGo and later AlphaZero reproductions found steadier on short budgets.
* **the move played**: drawn from ``N(a) ** (1 / T)`` (``T = 0``: the most
  visited move), so self-play follows the stronger expert.

Only a share (``fraction``) of the learner's moves is searched: KataGo's
*playout cap randomisation* (Wu 2019, section 3.1): full searches where the
targets are recorded, the network's own cheap samples elsewhere. Here those
other rows keep training by PPO (:mod:`.ppo`), so one knob runs from plain
PPO to AlphaZero-style training.

The search runs with a simulation cap and no clock, so the same seeds give the
same games on any machine, and from the frozen rollout copy of the network
(``inference``), the weights that played the rollout. A turn's searches run in
lockstep (``NeuralSearch.search_many``): each round, one network call for the
new leaves of every searched row of every game, not one small call per tree.
They reach exactly the results of searches run one after another
(``benchmarks/expert_search.py`` checks it); on this CPU with one onnxruntime
thread that saves little (1.05x less CPU per 32-descent search), with two
threads 1.46x, and a GPU, where each call costs a launch, is what it is for.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ouroboros.contract.run import ExpertIterationSpec
from ouroboros.trainer.agents import nsearch
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.learning import device

TARGET_COLUMNS = ("search_policy", "search_value", "searched")
"""The replay columns expert iteration adds (absent from shards written without it)."""


class Evaluator:
    """A rollout forward (torch module or ``inference.OnnxRuntimeForward``) behind the
    evaluator interface nsearch calls: ``evaluate(planes float32 [N, C, H, W]) ->
    (logits float32 [N, 4], value float32 [N, 1])``."""

    input_size = None

    def __init__(self, forward) -> None:
        self.forward = forward
        # a rollout's forward takes CPU tensors (inference.DeviceForward moves them to a GPU itself);
        # a bare torch module is fed on its own device
        self.device = device.device_of(forward)

    @torch.no_grad()
    def evaluate(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        board = torch.from_numpy(np.ascontiguousarray(planes, np.float32)).to(self.device)
        logits, value = self.forward(board)
        return logits.float().cpu().numpy(), value.float().cpu().numpy()


@dataclasses.dataclass(frozen=True)
class SearchTargets:
    """The expert's decisions and targets for N (game, seat) rows."""

    moves: np.ndarray
    """int8 [N]: the searched move to play (meaningful where ``searched``)."""
    policy: np.ndarray
    """float32 [N, 4]: the visit distribution over allowed moves (zeros where not searched)."""
    value: np.ndarray
    """float32 [N]: the search's root value for the row's snake, in [-1, 1] (0 where not searched)."""
    searched: np.ndarray
    """bool [N]: the row carries search targets."""

    def columns(self) -> dict[str, np.ndarray]:
        """The replay columns :data:`TARGET_COLUMNS`."""
        return {"search_policy": self.policy, "search_value": self.value, "searched": self.searched}

    @classmethod
    def empty(cls, n: int) -> SearchTargets:
        return cls(np.zeros(n, np.int8), np.zeros((n, 4), np.float32), np.zeros(n, np.float32), np.zeros(n, bool))


def visit_policy(visits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The policy target of root visit counts: visits int [N, 4] and the safety mask bool
    [N, 4] -> float32 [N, 4], each row the visits on allowed moves normalised to sum 1, or
    all zeros where no allowed move was visited (no target)."""
    kept = np.where(mask, np.asarray(visits, np.float64), 0.0)
    total = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, total, out=np.zeros_like(kept), where=total > 0).astype(np.float32)


def sample_moves(policy: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Moves int8 [N] drawn from policy [N, 4] sharpened to ``p ** (1 / temperature)``
    (argmax, first of ties, at temperature 0). Rows must have some mass."""
    if temperature <= 0:
        return np.argmax(policy, axis=1).astype(np.int8)
    p = np.where(policy > 0, policy.astype(np.float64) ** (1.0 / temperature), 0.0)
    cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
    return np.minimum((cdf < rng.random((len(cdf), 1))).sum(axis=1), 3).astype(np.int8)


def value_target(outcome: np.ndarray, search_value: np.ndarray, searched: np.ndarray, weight: float) -> np.ndarray:
    """float32 [N]: ``(1 - weight) * outcome + weight * search_value`` where ``searched``,
    the outcome (e.g. PPO's return) elsewhere (module docstring)."""
    mixed = (1.0 - weight) * outcome + weight * search_value
    return np.where(searched, mixed, outcome).astype(np.float32)


@dataclasses.dataclass
class Expert:
    """The search that decides and labels a share of the learner's moves in a rollout."""

    spec: ExpertIterationSpec
    forward: object
    """The rollout's frozen network (what the learner's moves come from)."""

    def __post_init__(self) -> None:
        # reuse off: a share of moves is searched at random, so a kept tree would rarely be met again, and
        # each target is the visits of exactly spec.visits fresh descents
        self._search = nsearch.NeuralSearch(Evaluator(self.forward), ms=0, visits=self.spec.visits,
                                            c_puct=self.spec.c_puct, reuse=False, name="expert")

    def decide(self, config: GameConfig, state: BatchState, games: np.ndarray, seats: np.ndarray,
               mask: np.ndarray, rng: np.random.Generator) -> SearchTargets:
        """Search a ``fraction`` of the rows (games [N], seats [N] of ``state``; safety mask
        bool [N, 4]), drawn with ``rng``; the targets of every row (unsearched rows empty)."""
        n = len(games)
        out = SearchTargets.empty(n)
        chosen = np.flatnonzero(rng.random(n) < self.spec.fraction)
        if not chosen.size:
            return out
        # the chosen rows' trees searched together: one network call per round for all of them
        results = self._search.search_many(config, state, games[chosen], seats[chosen])
        visits = np.array([r.visits for r in results], np.int64).reshape(-1, 4)
        values = np.array([r.value for r in results], np.float32)
        policy = visit_policy(visits, mask[chosen])
        ok = policy.sum(axis=1) > 0
        rows = chosen[ok]
        out.policy[rows] = policy[ok]
        out.value[rows] = values[ok]
        out.searched[rows] = True
        out.moves[rows] = sample_moves(policy[ok], self.spec.temperature, rng)
        return out
