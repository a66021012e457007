"""Batched rollouts: many games advance together, one network forward per turn.

Every seat of every game has a *controller* (:class:`Seat`): the learner (the
network being trained; its positions are recorded), the heuristic teacher,
random-safe, or a frozen league snapshot. Each turn the learner's living seats of all games
are encoded into one batch and decided by one forward pass; the teacher
scores all its games in one vectorised call; each snapshot gets one forward
(snapshots are other weights, so they cannot share the learner's). Finished
games are replaced by new ones until the budget is played, so the batch stays
full. A network on a GPU plays there (`inference.DeviceForward`: one pinned
copy of the turn's planes to the device, one copy of logits and values back),
under the run's autocast.

:func:`play` is a loop over turns (cleanrl's rollout loop, batched over
games), one named stage a line::

    while (live := slots.live(solo, max_turns)).size:   # the games that go on
        moves, rows = _choose_moves(...)    # every seat, one batch per kind of controller
        record.add(rows, slots)             # the positions, as seen before the turn
        slots.state = _step(...)            # the engine plays the turn
        finished = _settle(...)             # rewards of ended trajectories, results of ended games
        slots.refill(...)                   # the next games into the finished slots

Each recorded (game, seat) is an independent agent's trajectory (the snakes
share the network but not their rewards): reward +1 when the game ends with
the snake alive and alone, -1 when it dies while another lives on, 0 for a
draw (all die together, or the turn limit). Rows come out in time order with
their trajectory id, so :func:`.ppo.gae` can scan them backwards.

In bootstrap the teacher's seats are recorded instead, with the teacher's
move as the label; with probability ``explore`` the move actually played is a
random safe one, so the data also shows the teacher's answer in positions its
own play would not reach (DAgger's point, cheaply). A teacher that scores its
decisions (``act_scored`` and ``values``: the search, whose values are its
score's squashed lead over the best rival, :func:`.search.values`; the neural
search, whose values are its root values) also labels each position with its
value for the recorded snake, in the expert's columns below
(the policy column one-hot on the teacher's move).

With a ``student_player`` the learner's seats are played by that player (the
bootstrap's starting network inside the neural search) and, recording the
teacher, the teacher labels the student's positions too: the student's own
state distribution with the expert's labels, which is DAgger proper (Ross,
Gordon and Bagnell 2011).

With an ``expert`` (expert iteration, :mod:`.expert`) a share of the learner's
moves is decided by the neural search over the rollout's network instead; those
rows carry the search's visit distribution and value (columns
``search_policy``, ``search_value``, ``searched``) as training targets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.learning import inference, networks, replay
from ouroboros.trainer.learning.phases import expert, policy
from ouroboros.trainer.observation import safety

if TYPE_CHECKING:
    import torch


class Seat(IntEnum):
    """Controller codes; a league snapshot k is ``SNAPSHOT + k``."""

    LEARNER = 0
    TEACHER = 1
    RANDOM = 2
    SNAPSHOT = 3


Assign = Callable[[int, np.random.Generator], Sequence[int]]
"""(game index, rng) -> the controller of each seat of that game."""


@dataclasses.dataclass
class Rollout:
    """Recorded rows, in time order, and the learner's results per opponent."""

    columns: dict[str, np.ndarray]
    """planes float16 [N, C, H, W], move int8 [N], logp / v_old float32 [N], mask uint8 [N, 4],
    reward float32 [N] (nonzero only on a trajectory's last row), done bool [N], traj int64 [N],
    value float32 [N] (the trajectory's final reward: the outcome), game_id int64, turn int32,
    seat int8, quality float32; with an expert also search_policy float32 [N, 4], search_value
    float32 [N] and searched bool [N] (:data:`.expert.TARGET_COLUMNS`)."""
    results: dict[str, list[int]]
    """opponent label -> [wins, draws, losses] of the learner (games with one opponent kind)."""
    games: int
    turns: int
    """Game turns played in total (all games)."""

    @property
    def rows(self) -> int:
        return len(self.columns["move"])


def play(
    config: GameConfig,
    *,
    games: int,
    parallel: int,
    max_turns: int,
    seed: int,
    assign: Assign,
    rng: np.random.Generator,
    learner: networks.PolicyValueNet | None = None,
    snapshots: Sequence[networks.PolicyValueNet] = (),
    labels: Sequence[str] = (),
    temperature: float = 1.0,
    record_teacher: bool = False,
    explore: float = 0.0,
    progress: Callable[[int], None] | None = None,
    forward: inference.InferenceBackend = inference.InferenceBackend.ONNXRUNTIME,
    teacher_player: Player | None = None,
    student_player: Player | None = None,
    expert_iteration: expert.ExpertIterationSpec | None = None,
    autocast: torch.dtype | None = None,
) -> Rollout:
    """Play ``games`` games (seeds ``seed + i``), ``parallel`` at a time; record the learner's
    rows (the teacher's with ``record_teacher``). ``labels[k]`` names snapshot k in results.

    ``rng`` is the only source of randomness (moves, exploration, ``assign``): the same
    seeds give the same rows and results. ``progress(n)`` is called with the number of
    games that ended on a turn. ``forward``: what runs the networks (see `inference`: a
    frozen onnxruntime copy on the CPU by default; torch for networks on a GPU).
    ``teacher_player`` replaces the heuristic on the teacher's seats (any `Player`, e.g. the
    search: its move, asked seat by seat, is the label). ``student_player`` plays the learner's
    seats instead of a network (asked seat by seat; no ``learner`` then), and with ``record_teacher``
    the teacher labels the student's positions as well as its own. ``expert_iteration``: the learner's
    moves are searched at that share, with targets recorded (:mod:`.expert`). Networks on a
    GPU play there (`inference.DeviceForward`), under ``autocast`` (torch.bfloat16 or None)."""
    solo = config.ruleset is Ruleset.SOLO
    if learner is not None:
        learner = inference.for_rollout(learner, config.height, config.width, forward, autocast)
    snapshots = [inference.for_rollout(net, config.height, config.width, forward, autocast) for net in snapshots]
    searcher = None
    if expert_iteration is not None and learner is not None:
        searcher = expert.Expert(expert_iteration, learner)
    if student_player is not None and learner is not None:
        raise ValueError("play: the learner's seats take a learner network or a student player, not both")
    deciders = _Deciders(learner, tuple(snapshots), Heuristic(), temperature, explore, record_teacher,
                         teacher_player, searcher, student_player)
    assign = _checked(assign, config.n_snakes, deciders)
    slots = _Slots.open(config, min(parallel, games), seed, assign, rng)
    record = _Record()
    results: dict[str, list[int]] = {}
    turns = 0
    while (live := slots.live(solo, max_turns)).size:
        alive = slots.state.alive.copy()  # [G, S] before the turn: who can die in it
        moves, rows = _choose_moves(config, slots, live, deciders, rng)
        if rows is not None:
            record.add(rows, slots)
        slots.state = _step(config, slots.state, live, moves)
        turns += live.size
        finished = _settle(slots, live, alive, solo, max_turns, record, results, labels)
        if progress is not None and finished.size:
            progress(int(finished.size))
        slots.refill(config, finished, games, seed, assign, rng)
    return Rollout(record.columns(), results, games, turns)


@dataclasses.dataclass(frozen=True)
class _Deciders:
    """Who decides the moves of each kind of seat, and how."""

    learner: networks.PolicyValueNet | None
    snapshots: tuple[networks.PolicyValueNet, ...]
    teacher: Heuristic
    temperature: float
    """Sampling temperature of the networks (0: argmax)."""
    explore: float
    """Probability that a teacher's seat plays a random safe move instead of its own."""
    record_teacher: bool
    """Record the teacher's seats (its own move as the label) instead of the learner's."""
    teacher_player: Player | None = None
    """Plays the teacher's seats instead of the batched heuristic (asked seat by seat)."""
    expert: expert.Expert | None = None
    """Decides a share of the learner's moves by search and labels them (expert iteration)."""
    student: Player | None = None
    """Plays the learner's seats instead of a network (asked seat by seat); with ``record_teacher`` the
    teacher labels them too (DAgger)."""

    @property
    def labelled(self) -> tuple[int, ...]:
        """The controllers whose positions the teacher labels (with ``record_teacher``)."""
        return (Seat.TEACHER, Seat.LEARNER) if self.student is not None else (Seat.TEACHER,)


def _checked(assign: Assign, n_snakes: int, deciders: _Deciders) -> Assign:
    """``assign`` with every answer checked: one controller per seat, each one given to
    :func:`play` (ValueError naming the game and seat otherwise)."""

    def checked(game: int, rng: np.random.Generator) -> Sequence[int]:
        seats = list(assign(game, rng))
        if len(seats) != n_snakes:
            raise ValueError(f"assign({game}) gave {len(seats)} controllers for {n_snakes} seats")
        for seat, code in enumerate(seats):
            if code == Seat.LEARNER and deciders.learner is None and deciders.student is None:
                raise ValueError(f"assign({game}): seat {seat} is the learner's, but no learner network or "
                                 "student player was given")
            if not 0 <= code < Seat.SNAPSHOT + len(deciders.snapshots):
                raise ValueError(f"assign({game}): seat {seat} has controller {code}, but only "
                                 f"{len(deciders.snapshots)} snapshots were given (snapshot k is {Seat.SNAPSHOT} + k)")
        return seats

    return checked


@dataclasses.dataclass
class _Slots:
    """The games being played, one per slot: arrays over G slots and S seats."""

    state: BatchState
    codes: np.ndarray
    """int64 [G, S]: the controller of each seat (:class:`Seat`, ``SNAPSHOT + k``)."""
    game: np.ndarray
    """int64 [G]: the index of the slot's game (its seed is ``seed + game``)."""
    traj: np.ndarray
    """int64 [G, S]: the trajectory id of each seat's snake."""
    active: np.ndarray
    """bool [G]: False once the slot's game has ended and no game is left to start."""
    started: int
    """Games started so far."""

    @classmethod
    def open(cls, config: GameConfig, n: int, seed: int, assign: Assign, rng: np.random.Generator) -> _Slots:
        """Games ``0 .. n-1`` in slots ``0 .. n-1``."""
        codes = np.array([assign(i, rng) for i in range(n)], np.int64).reshape(n, -1)
        return cls(state=maps.new_games(config, seed + np.arange(n)), codes=codes, game=np.arange(n),
                   traj=np.arange(n * config.n_snakes).reshape(n, -1), active=np.ones(n, bool), started=n)

    def live(self, solo: bool, max_turns: int) -> np.ndarray:
        """int64 [L]: the slots whose game goes on this turn."""
        over = self.state.game_over(solo) | (self.state.turn >= max_turns)
        return np.flatnonzero(self.active & ~over)

    def refill(self, config: GameConfig, finished: np.ndarray, games: int, seed: int, assign: Assign,
               rng: np.random.Generator) -> None:
        """Start the next games in the ``finished`` slots; close them once all have started."""
        for g in finished:
            if self.started >= games:
                self.active[g] = False
                continue
            self.state.assign([g], maps.new_games(config, [seed + self.started]))
            self.codes[g] = assign(self.started, rng)
            self.game[g] = self.started
            self.traj[g] = self.traj.max() + 1 + np.arange(config.n_snakes)
            self.started += 1


@dataclasses.dataclass
class _Rows:
    """The positions recorded on one turn: N (game slot, seat) pairs."""

    g: np.ndarray
    """int64 [N]: slots."""
    s: np.ndarray
    """int64 [N]: seats."""
    planes: np.ndarray
    """float32 [N, C, H, W]."""
    mask: np.ndarray
    """bool [N, 4]: the safe moves."""
    move: np.ndarray
    """int8 [N]: the label (the move played, or the teacher's own move)."""
    logp: np.ndarray
    """float32 [N]: log-probability of the move (0 for the teacher)."""
    value: np.ndarray
    """float32 [N]: the network's value estimate (0 for the teacher)."""
    search: expert.SearchTargets | None = None
    """The expert's targets of the rows (expert iteration only)."""


def _choose_moves(config: GameConfig, slots: _Slots, live: np.ndarray, deciders: _Deciders,
                  rng: np.random.Generator) -> tuple[np.ndarray, _Rows | None]:
    """The moves int8 [G, S] of every living seat of the ``live`` games, each kind of seat
    decided in one batch (learner, snapshots, random-safe, teacher: the order of draws from
    ``rng``), and the rows to record (None when there are none)."""
    state, codes = slots.state, slots.codes
    safe = safety.safe_moves(config, state)
    seated = np.zeros(codes.shape, bool)
    seated[live] = True
    seated &= state.alive
    moves = np.zeros(codes.shape, np.int8)
    rows = None
    if deciders.learner is not None:
        g, s = np.nonzero(seated & (codes == Seat.LEARNER))
        if g.size:
            planes, mask = policy.observe(config, state, g, s, safe)
            d = policy.decide(deciders.learner, planes, mask, rng, deciders.temperature)
            chosen, logp, targets = d.moves, d.logp, None
            if deciders.expert is not None:
                targets = deciders.expert.decide(config, state, g, s, mask, rng)
                chosen = np.where(targets.searched, targets.moves, d.moves).astype(np.int8)
                logp = d.log_probs[np.arange(g.size), chosen].astype(np.float32)
            moves[g, s] = chosen
            if not deciders.record_teacher:
                rows = _Rows(g, s, planes, mask, chosen, logp, d.value, targets)
    if deciders.student is not None:
        student = codes == Seat.LEARNER
        sg = np.flatnonzero((seated & student).any(axis=1))
        if sg.size:
            moves[sg] = np.where(student[sg], _seat_moves(config, state.select(sg), student[sg],
                                                          deciders.student, rng), moves[sg])
    for k, net in enumerate(deciders.snapshots):
        g, s = np.nonzero(seated & (codes == Seat.SNAPSHOT + k))
        if g.size:
            planes, mask = policy.observe(config, state, g, s, safe)
            moves[g, s] = policy.decide(net, planes, mask, rng, deciders.temperature).moves
    g, s = np.nonzero(seated & (codes == Seat.RANDOM))
    if g.size:
        moves[g, s] = safety.choose(safe[g, s].astype(np.float64), rng)
    teacher = codes == Seat.TEACHER
    # the seats the teacher decides: its own, and with a student recorded, the student's (labels only)
    asked = np.isin(codes, deciders.labelled) if deciders.record_teacher else teacher
    tg = np.flatnonzero((seated & asked).any(axis=1))
    if tg.size:
        valued = None
        if deciders.teacher_player is None:
            best = safety.choose(deciders.teacher.scores(config, state.select(tg)), rng)  # [n, S]
        else:
            best, valued = _teacher_moves(config, state.select(tg), asked[tg], deciders.teacher_player, rng)
        played = best
        if deciders.explore > 0:
            rand = safety.choose(safe[tg].astype(np.float64), rng)
            played = np.where(rng.random(best.shape) < deciders.explore, rand, best)
        moves[tg] = np.where(teacher[tg], played, moves[tg])
        if deciders.record_teacher:
            g, s = np.nonzero(seated & asked)
            planes, mask = policy.observe(config, state, g, s, safe)
            label = np.zeros(codes.shape, np.int8)
            label[tg] = best
            zero = np.zeros(g.size, np.float32)
            targets = None if valued is None else _teacher_targets(codes.shape, tg, valued, g, s, label[g, s])
            rows = _Rows(g, s, planes, mask, label[g, s], zero, zero, targets)
    return moves, rows


def _seat_moves(config: GameConfig, sub: BatchState, seats: np.ndarray, player: Player,
                rng: np.random.Generator) -> np.ndarray:
    """A player's moves int8 [n, S] for the games of ``sub`` on its ``seats`` bool [n, S], asked seat by seat
    (0 elsewhere)."""
    moves = np.zeros(seats.shape, np.int8)
    for seat in np.flatnonzero(seats.any(axis=0)):
        games = np.flatnonzero(seats[:, seat])
        moves[games, seat] = player.act(config, sub.select(games), int(seat), rng)
    return moves


def _teacher_moves(config: GameConfig, sub: BatchState, seats: np.ndarray, player: Player,
                   rng: np.random.Generator) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """A teacher player's moves int8 [n, S] for the games of ``sub`` on its ``seats`` bool [n, S],
    asked seat by seat, and, from a player that scores its decisions (``act_scored`` and ``values``:
    the search, the neural search), each seat's value of the position with where it is valid
    (float32 [n, S], bool [n, S]), else None."""
    scored = getattr(player, "act_scored", None)
    moves = np.zeros(seats.shape, np.int8)
    scores = None if scored is None else np.full(seats.shape, np.nan)
    for seat in np.flatnonzero(seats.any(axis=0)):
        if scores is None:
            moves[:, seat] = player.act(config, sub, int(seat), rng)
        else:
            moves[:, seat], scores[:, seat] = scored(config, sub, int(seat), rng)
    return moves, (None if scores is None else player.values(scores))


def _teacher_targets(shape: tuple[int, int], tg: np.ndarray, valued: tuple[np.ndarray, np.ndarray], g: np.ndarray,
                     s: np.ndarray, label: np.ndarray) -> expert.SearchTargets:
    """The scoring teacher's targets for the recorded rows (g, s): its move (one-hot) and its value of
    the position (``valued``: values [len(tg), S] and where valid, of the games ``tg``), where it searched."""
    value, valid = np.zeros(shape, np.float32), np.zeros(shape, bool)
    value[tg], valid[tg] = valued
    searched = valid[g, s]
    policy = np.zeros((g.size, 4), np.float32)
    policy[np.flatnonzero(searched), label[searched]] = 1.0
    return expert.SearchTargets(label, policy, np.where(searched, value[g, s], 0.0).astype(np.float32), searched)


def _step(config: GameConfig, state: BatchState, live: np.ndarray, moves: np.ndarray) -> BatchState:
    """``state`` after one turn of the ``live`` games (the others untouched)."""
    sub = state.select(live)
    rules.advance(config, sub, moves[live])
    if sub.capacity > state.capacity:  # a snake outgrew the ring buffers this turn
        state = state.with_capacity(sub.capacity)
    state.assign(live, sub)
    return state


def _settle(slots: _Slots, live: np.ndarray, alive: np.ndarray, solo: bool, max_turns: int,
            record: _Record, results: dict[str, list[int]], labels: Sequence[str]) -> np.ndarray:
    """Reward the trajectories that ended this turn (module docstring), score the learner in
    the games that ended; returns int64 [F]: the slots whose game ended."""
    state = slots.state
    decided = state.game_over(solo)
    over = decided | (state.turn >= max_turns)
    living = state.alive.sum(axis=1)
    played = np.zeros(len(over), bool)
    played[live] = True
    ended = played[:, None] & ((alive & ~state.alive) | (over[:, None] & state.alive))
    g, s = np.nonzero(ended)
    winner = (living[g] == 1) & decided[g]
    reward = np.where(state.alive[g, s], np.where(winner, 1.0, 0.0),
                      np.where(over[g] & (living[g] == 0), 0.0, -1.0))
    record.end(slots.traj[g, s], reward)
    finished = np.flatnonzero(played & over)
    for g in finished:
        decisive = bool(decided[g] and living[g] == 1)
        record.outcome[int(slots.game[g])] = (int(state.turn[g]), decisive)
        _tally(results, slots.codes[g], state.alive[g], living[g], labels, decisive)
    return finished


@dataclasses.dataclass
class _Record:
    """The recorded rows, in time order, and how their trajectories and games ended."""

    chunks: list[dict[str, np.ndarray]] = dataclasses.field(default_factory=list)
    rows: int = 0
    last_row: dict[int, int] = dataclasses.field(default_factory=dict)
    """trajectory -> its latest row."""
    ends: dict[int, float] = dataclasses.field(default_factory=dict)
    """row -> reward, for the last row of each ended trajectory."""
    reward: dict[int, float] = dataclasses.field(default_factory=dict)
    """trajectory -> its final reward."""
    outcome: dict[int, tuple[int, bool]] = dataclasses.field(default_factory=dict)
    """game -> (turns it lasted, whether one snake won)."""

    def add(self, rows: _Rows, slots: _Slots) -> None:
        """Append one turn's rows (before the turn is played)."""
        ids = slots.traj[rows.g, rows.s]
        self.chunks.append({
            "planes": rows.planes.astype(np.float16), "move": rows.move.astype(np.int8),
            "logp": rows.logp, "v_old": rows.value, "mask": rows.mask.astype(np.uint8),
            "traj": ids, "game_id": slots.game[rows.g].astype(np.int64),
            "turn": slots.state.turn[rows.g].astype(np.int32), "seat": rows.s.astype(np.int8),
            **(rows.search.columns() if rows.search is not None else {}),
        })
        self.last_row.update(zip(ids.tolist(), range(self.rows, self.rows + ids.size), strict=True))
        self.rows += ids.size

    def end(self, traj: np.ndarray, reward: np.ndarray) -> None:
        """Trajectories traj [N] ended with reward [N]."""
        for t, r in zip(traj.tolist(), reward.tolist(), strict=True):
            self.reward[t] = r
            if t in self.last_row:
                self.ends[self.last_row[t]] = r

    def columns(self) -> dict[str, np.ndarray]:
        """The rows as :attr:`Rollout.columns` ({} when nothing was recorded)."""
        if not self.chunks:
            return {}
        cols = {k: np.concatenate([c[k] for c in self.chunks]) for k in self.chunks[0]}
        n = len(cols["move"])
        cols["reward"] = np.zeros(n, np.float32)
        cols["done"] = np.zeros(n, bool)
        idx = np.fromiter(self.ends, np.int64, len(self.ends))
        cols["reward"][idx] = np.fromiter(self.ends.values(), np.float32, len(self.ends))
        cols["done"][idx] = True
        cols["value"] = np.array([self.reward.get(int(t), 0.0) for t in cols["traj"]], np.float32)
        length = np.array([self.outcome.get(int(g), (0, False))[0] for g in cols["game_id"]])
        decisive = np.array([self.outcome.get(int(g), (0, False))[1] for g in cols["game_id"]])
        mask = cols["mask"].astype(bool)
        blunder = ~mask[np.arange(n), cols["move"]] & mask.any(axis=1)
        cols["quality"] = replay.position_quality(length, decisive, 0.5, blunder)
        return cols


def _tally(results: dict[str, list[int]], codes: np.ndarray, alive: np.ndarray, living: int,
           labels: Sequence[str], decisive: bool) -> None:
    """Count the learner's result in a game against exactly one kind of opponent."""
    mine = codes == Seat.LEARNER
    others = set(codes[~mine].tolist())
    if not mine.any() or len(others) != 1:
        return
    other = others.pop()
    name = "heuristic" if other == Seat.TEACHER else "random-safe" if other == Seat.RANDOM else (
        labels[other - Seat.SNAPSHOT] if other - Seat.SNAPSHOT < len(labels) else "league")
    score = results.setdefault(name, [0, 0, 0])
    if alive[mine].any() and decisive:
        score[0] += 1
    elif living == 0 or not decisive and alive[mine].any():
        score[1] += 1
    else:
        score[2] += 1
