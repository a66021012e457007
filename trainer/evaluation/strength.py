"""How strong a trained network is: batched duels against the built-in players.

Games are played in seat-swapped pairs (the same seed twice, the arena rotating
the start positions), so neither side profits from a lucky corner; the score
counts a draw as half a win and comes with its Wilson 95% interval. The
network plays greedily (temperature 0) with the safety mask, as a served
champion does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from ouroboros.contract.vocabulary import elo_vs
from ouroboros.trainer.agents import arena, neural
from ouroboros.trainer.agents import registry as players
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import stats
from ouroboros.trainer.learning import networks


def elo_metrics(records: Mapping[str, tuple[int, int, int]], confidence: float = 0.95) -> dict[str, float]:
    """Per-opponent Elo metrics from (wins, draws, losses) records: ``eloVs<Opponent>`` and the ends
    of its ``confidence`` interval, ``eloVs<Opponent>Lower`` and ``eloVs<Opponent>Upper``.

    Logistic Elo of the mean score, the interval mapped from ``score ± z·σ/√n`` (``stats.elo_estimate``,
    as fishtest's ``get_elo``). A bound that is infinite (a record of only losses has Elo -inf, and an
    interval reaching score 0 or 1 is unbounded on that side) is left out rather than reported as a
    made-up number; an opponent with no games gives nothing.
    """
    out: dict[str, float] = {}
    for opponent, (wins, draws, losses) in sorted(records.items()):
        if wins + draws + losses == 0:
            continue
        est = stats.elo_estimate(stats.WDL(wins, draws, losses), confidence)
        for bound, value in (("", est.elo), ("Lower", est.lower), ("Upper", est.upper)):
            if math.isfinite(value):
                out[elo_vs(opponent, bound)] = round(value, 3)
    return out


@dataclasses.dataclass(frozen=True)
class Duel:
    """The network's record against one opponent."""

    opponent: str
    games: int
    wins: int
    draws: int
    losses: int

    @property
    def record(self) -> tuple[int, int, int]:
        """(wins, draws, losses), as ``elo_metrics`` reads it."""
        return self.wins, self.draws, self.losses

    @property
    def score(self) -> float:
        """(wins + draws / 2) / games."""
        return (self.wins + self.draws / 2) / self.games

    def interval(self) -> stats.Interval:
        """Wilson 95% interval of the score."""
        return stats.wilson_interval(self.wins + self.draws / 2, self.games)

    def describe(self) -> str:
        ci = self.interval()
        return (f"vs {self.opponent}: {self.score:.1%} over {self.games} games "
                f"(W{self.wins} D{self.draws} L{self.losses}), Wilson 95% [{ci.lower:.1%}, {ci.upper:.1%}]")


def duel(net: networks.PolicyValueNet, opponent: str, config: GameConfig, games: int,
         seed: int = 12345, max_turns: int = 500) -> Duel:
    """Play ``games`` (rounded up to even) duels of ``net`` against the player spec ``opponent``."""
    if config.n_snakes != 2:
        raise ValueError("duels need a two-snake game")
    pairs = (games + 1) // 2
    seeds = seed + np.repeat(np.arange(pairs), 2)
    net.eval()
    me = neural.TorchPlayer(module=net, temperature=0.0, name="network")
    result = arena.play_match(config, [me, players.make_player(opponent)], seeds,
                              np.random.default_rng(seed), max_turns=max_turns)
    outcome = result.outcome[:, 0]
    return Duel(opponent, len(seeds), int((outcome == arena.WIN).sum()),
                int((outcome == arena.DRAW).sum()), int((outcome == arena.LOSS).sum()))
