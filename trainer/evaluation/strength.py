"""How strong a trained network is: batched duels against the built-in players.

Games are played in seat-swapped pairs (the same seed twice, the arena rotating
the start positions), so neither side profits from a lucky corner; the score
counts a draw as half a win and comes with its Wilson 95% interval. The
network plays the way it will be served (:func:`served_player`): as a
promotion spec's gate plays it, greedily over its policy (temperature 0,
with the safety mask) by default, or inside the neural search at the gate's
budget when the gate's ``player`` is ``nsearch``; each :class:`Duel` names
the player that played it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ouroboros.contract.promotion import GatePlayer, PromotionSpec
from ouroboros.contract.vocabulary import elo_vs
from ouroboros.trainer.agents import arena, neural
from ouroboros.trainer.agents import registry as players
from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import promotion, stats
from ouroboros.trainer.learning import networks


def elo_metrics(records: Mapping[str, tuple[int, int, int]], confidence: float = 0.95) -> dict[str, float]:
    """Per-opponent Elo metrics from (wins, draws, losses) records: ``eloVs<Opponent>`` and the ends
    of its ``confidence`` interval, ``eloVs<Opponent>Lower`` and ``eloVs<Opponent>Upper``.

    Logistic Elo of the mean score, the interval mapped from ``score ± z·σ/√n`` (``stats.elo_estimate``,
    as fishtest's ``get_elo``; Wilson's interval for a record without variance). A bound that is infinite (a record of only losses has Elo -inf, and an
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
    player: str = GatePlayer.POLICY.value
    """How the network played: ``policy`` or ``nsearch:ms=N[,visits=N]`` (``PromotionSpec.served_player``)."""

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
        return (f"{self.player} vs {self.opponent}: {self.score:.1%} over {self.games} games "
                f"(W{self.wins} D{self.draws} L{self.losses}), Wilson 95% [{ci.lower:.1%}, {ci.upper:.1%}]")


def served_player(net: networks.PolicyValueNet, model: Path, spec: PromotionSpec) -> Player:
    """The network as ``spec``'s gate plays it, hence as it will be served.

    ``net`` (in-process torch weights) plays the ``policy`` player greedily; an
    ``nsearch`` gate's player is the neural search over ``model``, the same
    network's exported ONNX file (the search runs from the file alone, as a
    server does), at the gate's ``moveBudgetMs`` and ``maxVisits``
    (``promotion.player_spec``). The player's ``name`` is ``spec.served_player``.
    """
    if spec.player is GatePlayer.POLICY:
        return _greedy(net)
    player = players.make_player(promotion.player_spec(model, spec))
    player.name = spec.served_player
    return player


def _greedy(net: networks.PolicyValueNet) -> Player:
    """The network's most probable safe move, named as the ``policy`` player."""
    net.eval()
    return neural.TorchPlayer(module=net, temperature=0.0, name=GatePlayer.POLICY.value)


def duel(me: Player | networks.PolicyValueNet, opponent: str, config: GameConfig, games: int,
         seed: int = 12345, max_turns: int = 500) -> Duel:
    """Play ``games`` (rounded up to even) duels of ``me`` against the player spec ``opponent``.

    ``me`` is a player (e.g. :func:`served_player`; its ``name`` becomes the
    duel's ``player``) or a network, played greedily over its policy.
    Raises ValueError for a game of other than two snakes.
    """
    if config.n_snakes != 2:
        raise ValueError("duels need a two-snake game")
    if isinstance(me, networks.PolicyValueNet):
        me = _greedy(me)
    pairs = (games + 1) // 2
    seeds = seed + np.repeat(np.arange(pairs), 2)
    result = arena.play_match(config, [me, players.make_player(opponent)], seeds,
                              np.random.default_rng(seed), max_turns=max_turns)
    outcome = result.outcome[:, 0]
    return Duel(opponent, len(seeds), int((outcome == arena.WIN).sum()),
                int((outcome == arena.DRAW).sum()), int((outcome == arena.LOSS).sum()), player=me.name)
