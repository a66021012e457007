"""Local matches between players: all games of a match in one batch, seats rotated.

`play_match` is what `ouro play` and the player benchmarks run. Player p of n
plays snake p in every game, but the start positions rotate: game g gives
player p the start that seat (p + g) mod n would get from the map's setup, so
no player keeps the same corner across games. Finished games are frozen (the
engine would otherwise keep spawning food and counting turns on them, which the
official CLI does not do), and every player is only asked about games still on.

An optional `observer(turn_states)` sees each new state with the indices of the
games that were played this turn; the game log writer and the renderer hook in
there instead of the match loop knowing about them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from enum import IntEnum

import numpy as np

from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig, Ruleset

Observer = Callable[[BatchState, np.ndarray], None]


class Outcome(IntEnum):
    """A player's result in one game (stored as int8 in `MatchResult.outcome`)."""

    LOSS = -1
    DRAW = 0
    WIN = 1


WIN, DRAW, LOSS = Outcome.WIN, Outcome.DRAW, Outcome.LOSS


@dataclasses.dataclass
class MatchResult:
    """Everything a results table needs. Shapes: [G] per game, [G, n] per game and player."""

    config: GameConfig
    names: list[str]
    seeds: np.ndarray  # [G]
    final: BatchState  # the last state of every game (turn = game length)
    outcome: np.ndarray  # [G, n] int8: WIN / DRAW / LOSS (solo: WIN while alive at the end)
    winner: np.ndarray  # [G] int: snake index of the winner, -1 for a draw or no winner
    truncated: np.ndarray  # [G] bool: stopped by max_turns before the game was over

    @property
    def turns(self) -> np.ndarray:
        """Turns played per game. Shape [G]."""
        return self.final.turn

    def survived(self) -> np.ndarray:
        """Turns each snake stayed in the game. Shape [G, n]."""
        t = self.final.turn[:, None]
        return np.where(self.final.alive, t, self.final.eliminated_turn)


def rotate_seats(state: BatchState, shift: np.ndarray) -> None:
    """In place: snake p of game g takes what snake (p + shift[g]) mod n had (fresh games only:
    the elimination records, which name snake indices, must still be empty)."""
    n = state.n_snakes
    order = (np.arange(n)[None, :] + np.asarray(shift)[:, None]) % n  # [G, n]
    for name in ("body", "head_ptr", "length", "health", "alive", "cause", "eliminated_by", "eliminated_turn"):
        value = getattr(state, name)
        idx = order.reshape(order.shape + (1,) * (value.ndim - 2))
        setattr(state, name, np.take_along_axis(value, idx, axis=1))


def play_match(config: GameConfig, players: Sequence[Player], seeds: Sequence[int],
               rng: np.random.Generator, max_turns: int = 0,
               observer: Observer | None = None) -> MatchResult:
    """Plays one game per seed with `players[p]` as snake p (len(players) == config.n_snakes).

    max_turns > 0 stops games still running after that many turns (marked truncated; the
    survivors draw). The observer is called with the starting state (all games) and after
    every turn with the games that moved.
    """
    if len(players) != config.n_snakes:
        raise ValueError(f"{len(players)} players for {config.n_snakes} snakes")
    seeds = np.asarray(seeds, np.int64)
    state = maps.new_games(config, seeds)
    rotate_seats(state, np.arange(seeds.size) % config.n_snakes)
    solo = config.ruleset is Ruleset.SOLO
    if observer:
        observer(state, np.arange(seeds.size))
    while True:
        live = np.flatnonzero(~state.game_over(solo))
        if max_turns:
            live = live[state.turn[live] < max_turns]
        if live.size == 0:
            break
        sub = state.select(live) if live.size < state.batch_size else state
        moves = np.empty((sub.batch_size, sub.n_snakes), np.int8)
        for seat, player in enumerate(players):
            moves[:, seat] = player.act(config, sub, seat, rng)
        rules.advance(config, sub, moves)
        if sub is not state:
            if sub.capacity > state.capacity:  # a snake outgrew the ring buffers
                state = state.with_capacity(sub.capacity)
            state.assign(live, sub)
        if observer:
            observer(state, live)
    return _result(config, players, seeds, state, solo)


def _result(config: GameConfig, players, seeds, state: BatchState, solo: bool) -> MatchResult:
    """Outcomes as the official CLI reports them: the one snake left wins; none left is a draw
    between the snakes eliminated on the last turn; everyone else loses."""
    n = config.n_snakes
    alive = state.alive
    living = alive.sum(axis=1)
    over = state.game_over(solo)
    winner = np.where(over & (living == 1) & (n > 1), np.argmax(alive, axis=1), -1)
    last = state.eliminated_turn == state.turn[:, None]
    outcome = np.full(alive.shape, LOSS, np.int8)
    if solo:
        outcome[alive] = WIN
    else:
        outcome[np.arange(len(seeds)), np.maximum(winner, 0)] = np.where(winner >= 0, WIN, LOSS)
        draw_all = over & (living == 0)
        outcome[draw_all[:, None] & last & ~alive] = DRAW
        outcome[~over[:, None] & alive] = DRAW  # truncated: the survivors share the game
    return MatchResult(config=config, names=[p.name for p in players], seeds=seeds, final=state,
                       outcome=outcome, winner=winner, truncated=~over)
