"""Batched rollouts: many games advance together, one network forward per turn.

Every seat of every game has a *controller* (:class:`Seat`): the learner (the
network being trained; its positions are recorded), the heuristic teacher,
random-safe, or a frozen league snapshot. Each turn the learner's living seats of all games
are encoded into one batch and decided by one forward pass; the teacher
scores all its games in one vectorised call; each snapshot gets one forward.
Finished games are replaced by new ones until the budget is played, so the
batch stays full.

Each recorded (game, seat) is an independent agent's trajectory (the snakes
share the network but not their rewards): reward +1 when the game ends with
the snake alive and alone, -1 when it dies while another lives on, 0 for a
draw (all die together, or the turn limit). Rows come out in time order with
their trajectory id, so :func:`.ppo.gae` can scan them backwards.

In bootstrap the teacher's seats are recorded instead, with the teacher's
move as the label; with probability ``explore`` the move actually played is a
random safe one, so the data also shows the teacher's answer in positions its
own play would not reach (DAgger's point, cheaply).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from enum import IntEnum

import numpy as np

from ouroboros.trainer.agents import safety
from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.learning import networks, replay
from ouroboros.trainer.learning.phases import policy


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
    seat int8, quality float32."""
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
    teacher_player: Player | None = None,
) -> Rollout:
    """Play ``games`` games (seeds ``seed + i``), ``parallel`` at a time; record the learner's
    rows (the teacher's with ``record_teacher``). ``labels[k]`` names snapshot k in results.
    ``teacher_player`` replaces the heuristic on the teacher's seats (any `Player`, e.g. the
    search: its move, asked seat by seat, is the label)."""
    solo = config.ruleset is Ruleset.SOLO
    n_slots = min(parallel, games)
    state = maps.new_games(config, seed + np.arange(n_slots))
    codes = np.array([assign(i, rng) for i in range(n_slots)], np.int64).reshape(n_slots, -1)
    game_of = np.arange(n_slots)
    active = np.ones(n_slots, bool)
    started = n_slots
    teacher = Heuristic()
    record_code = Seat.TEACHER if record_teacher else Seat.LEARNER
    traj = np.arange(n_slots * config.n_snakes).reshape(n_slots, -1)
    next_traj = traj.size
    chunks: list[dict[str, np.ndarray]] = []
    last_row: dict[int, int] = {}
    rows = 0
    ends: dict[int, float] = {}  # row -> reward, for the last row of each finished trajectory
    traj_reward: dict[int, float] = {}
    game_len: dict[int, tuple[int, bool]] = {}
    results: dict[str, list[int]] = {}
    turns = 0
    if learner is not None:
        learner.eval()
    for net in snapshots:
        net.eval()

    while active.any():
        over = state.game_over(solo) | (state.turn >= max_turns)
        live = np.flatnonzero(active & ~over)
        if live.size:
            safe = safety.safe_moves(config, state)
            alive = state.alive.copy()
            moves = np.zeros((n_slots, config.n_snakes), np.int8)
            label = np.zeros((n_slots, config.n_snakes), np.int8)
            sel = np.zeros((n_slots, config.n_snakes), bool)
            sel[live] = True
            rec_g, rec_s = np.nonzero(sel & alive & (codes == record_code))
            row_logp = row_v = None
            if learner is not None:
                g, s = np.nonzero(sel & alive & (codes == Seat.LEARNER))
                if g.size:
                    planes, mask = policy.observe(config, state, g, s, safe)
                    d = policy.decide(learner, planes, mask, rng, temperature)
                    moves[g, s] = d.moves
                    if not record_teacher:
                        rec_planes, rec_mask, row_logp, row_v = planes, mask, d.logp, d.value
            for k, net in enumerate(snapshots):
                g, s = np.nonzero(sel & alive & (codes == Seat.SNAPSHOT + k))
                if g.size:
                    planes, mask = policy.observe(config, state, g, s, safe)
                    moves[g, s] = policy.decide(net, planes, mask, rng, temperature).moves
            rg, rs = np.nonzero(sel & alive & (codes == Seat.RANDOM))
            if rg.size:
                moves[rg, rs] = safety.choose(safe[rg, rs].astype(np.float64), rng)
            tg = np.flatnonzero((sel & alive & (codes == Seat.TEACHER)).any(axis=1))
            if tg.size:
                if teacher_player is None:
                    best = safety.choose(teacher.scores(config, state.select(tg)), rng)  # [n, S]
                else:
                    sub_t = state.select(tg)
                    best = np.stack([teacher_player.act(config, sub_t, s, rng) if (codes[tg, s] == Seat.TEACHER).any()
                                     else np.zeros(tg.size, np.int8) for s in range(config.n_snakes)], axis=1)
                is_t = codes[tg] == Seat.TEACHER
                label[tg] = np.where(is_t, best, 0)
                played = best.copy()
                if explore > 0:
                    rand = safety.choose(safe[tg].astype(np.float64), rng)
                    flip = rng.random(best.shape) < explore
                    played = np.where(flip, rand, best)
                moves[tg] = np.where(is_t, played, moves[tg])
            if record_teacher and rec_g.size:
                rec_planes, rec_mask = policy.observe(config, state, rec_g, rec_s, safe)
                row_logp = np.zeros(rec_g.size, np.float32)
                row_v = np.zeros(rec_g.size, np.float32)
            if rec_g.size:
                ids = traj[rec_g, rec_s]
                chunks.append({
                    "planes": rec_planes.astype(np.float16),
                    "move": (label if record_teacher else moves)[rec_g, rec_s].astype(np.int8),
                    "logp": row_logp, "v_old": row_v, "mask": rec_mask.astype(np.uint8),
                    "traj": ids, "game_id": game_of[rec_g].astype(np.int64),
                    "turn": state.turn[rec_g].astype(np.int32), "seat": rec_s.astype(np.int8),
                })
                for i, t in enumerate(ids.tolist()):
                    last_row[t] = rows + i
                rows += rec_g.size
            sub = state.select(live)
            rules.advance(config, sub, moves[live])
            if sub.capacity > state.capacity:  # a snake outgrew the ring buffers this turn
                state = state.with_capacity(sub.capacity)
            state.assign(live, sub)
            turns += live.size
            # rewards of the trajectories that ended this turn
            now_over = state.game_over(solo) | (state.turn >= max_turns)
            died = alive & ~state.alive & sel
            living = state.alive.sum(axis=1)
            for g, s in zip(*np.nonzero(died | (sel & now_over[:, None] & state.alive)), strict=True):
                if not state.alive[g, s]:
                    r = 0.0 if (now_over[g] and living[g] == 0) else -1.0
                else:
                    r = 1.0 if (living[g] == 1 and state.game_over(solo)[g]) else 0.0
                t = int(traj[g, s])
                traj_reward[t] = r
                if t in last_row:
                    ends[last_row[t]] = r
            for g in np.flatnonzero(now_over & sel[:, 0]):
                decisive = bool(state.game_over(solo)[g] and living[g] == 1)
                game_len[int(game_of[g])] = (int(state.turn[g]), decisive)
                _tally(results, codes[g], state.alive[g], living[g], labels, decisive)
            finished = np.flatnonzero(now_over & sel[:, 0])
            if progress is not None and finished.size:
                progress(int(finished.size))
            for g in finished:
                if started >= games:
                    active[g] = False
                    continue
                state.assign([g], maps.new_games(config, [seed + started]))
                codes[g] = assign(started, rng)
                game_of[g] = started
                traj[g] = next_traj + np.arange(config.n_snakes)
                next_traj += config.n_snakes
                started += 1
        else:
            break
    return Rollout(_finish(chunks, ends, traj_reward, game_len), results, games, turns)


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


def _finish(chunks, ends, traj_reward, game_len) -> dict[str, np.ndarray]:
    if not chunks:
        return {}
    cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    n = len(cols["move"])
    cols["reward"] = np.zeros(n, np.float32)
    cols["done"] = np.zeros(n, bool)
    idx = np.fromiter(ends, np.int64, len(ends))
    cols["reward"][idx] = np.fromiter(ends.values(), np.float32, len(ends))
    cols["done"][idx] = True
    cols["value"] = np.array([traj_reward.get(int(t), 0.0) for t in cols["traj"]], np.float32)
    length = np.array([game_len.get(int(g), (0, False))[0] for g in cols["game_id"]])
    decisive = np.array([game_len.get(int(g), (0, False))[1] for g in cols["game_id"]])
    mask = cols["mask"].astype(bool)
    blunder = ~mask[np.arange(n), cols["move"]] & mask.any(axis=1)
    cols["quality"] = replay.position_quality(length, decisive, 0.5, blunder)
    return cols
