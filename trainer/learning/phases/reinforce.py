"""The RL phases (hybrid, self_play, continuous): rounds of batched rollouts and PPO updates.

Each iteration ``i``:

1. **rollout** (:mod:`.selfplay`): ``games`` games with the current network
   (with ``expert_iteration``, a share of its moves decided and labelled by the
   neural search over it, :mod:`.expert`);
   each game's opponents are drawn by :func:`opponents`: the heuristic teacher
   (``heuristic_ratio``), random-safe (``random_ratio``), a frozen league
   snapshot (``league_ratio``), else the network itself on every seat. The rows are written as one replay shard
   whose cursor names the iteration and the optimiser step it starts at.
2. **update** (:mod:`.ppo`): ``epochs`` passes of minibatch PPO (cross-entropy
   to the search's visits on searched rows) over those
   rows, in a ResumableLoop (:func:`train`); after the iteration's last step
   the network is saved to the league, then a checkpoint records the
   iteration as done (``TrainState.iteration``).

A restart reads the checkpoint (step, iteration) and, if the iteration's shard
exists, trains on it instead of playing again: no rollout is lost or played
twice and no step is repeated. The league is every snapshot of the run
(``runs/<run>/league/``), so self_play meets hybrid's and its own earlier
selves: play cannot collapse into one narrow strategy that only beats itself.

With ``workers > 1`` (an Indexed Job), workers other than 0 only play one
round of games into their own shards (data for later phases); worker 0 trains.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ouroboros.contract.vocabulary import Metric, PhaseName, win_rate_vs
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import shards
from ouroboros.trainer.learning.checkpoint import Checkpointer, ResumableLoop, TrainState
from ouroboros.trainer.learning.phases import expert, ppo, runner, selfplay

LEAGUE_SIZE = 6
SHARD_COLUMNS = ("planes", "move", "logp", "v_old", "mask", "reward", "done", "traj", "value",
                 "game_id", "turn", "seat", "quality")


def league(ctx: runner.Context) -> tuple[list, list[str]]:
    """The newest LEAGUE_SIZE snapshots of the run (networks, names)."""
    keys = sorted(k for k in ctx.store.list(ctx.key("league")) if k.endswith(".pt"))
    keys = sorted(keys, key=lambda k: ctx.store.info(k).created_at)[-LEAGUE_SIZE:]
    return [runner.load_weights(ctx.store, k) for k in keys], [k.rsplit("/", 1)[-1][:-3] for k in keys]


def opponents(ctx: runner.Context, n_league: int):
    """assign(game, rng) -> controllers per seat (module docstring)."""
    s = ctx.run.game.snakes
    h, r = ctx.phase.heuristic_ratio, ctx.phase.random_ratio
    lg = ctx.phase.league_ratio if n_league else 0.0

    def assign(game: int, rng: np.random.Generator) -> list[int]:
        u = rng.random()
        if s == 1 or u >= h + r + lg:
            return [selfplay.Seat.LEARNER] * s
        if u < h:
            other = selfplay.Seat.TEACHER
        elif u < h + r:
            other = selfplay.Seat.RANDOM
        else:  # newer snapshots more often
            other = selfplay.Seat.SNAPSHOT + int(min(n_league - 1, n_league * rng.random() ** 0.5))
        seats = [other] * s
        seats[game % s] = selfplay.Seat.LEARNER
        return seats

    return assign


def rollout(ctx: runner.Context, net, it: int, start_step: int) -> tuple[dict, dict, float]:
    """The rows of iteration ``it``: from its shard if one exists, else played and written.
    Returns (columns, results per opponent, seconds spent playing)."""
    run, phase = ctx.run, ctx.phase
    for ref in shards.list_shards(ctx.store, run.run, ctx.name):
        cursor = ref.meta.cursor
        if ref.meta.worker == run.worker and isinstance(cursor, dict) and cursor.get("iteration") == it:
            return shards.read_shard(ctx.store, ref), dict(cursor.get("results", {})), 0.0
    snaps, names = league(ctx)
    started = time.monotonic()
    advance = ctx.reporter.task(f"{ctx.name} {it + 1}/{phase.iterations}: games", phase.games)
    salt = list(PhaseName).index(phase.kind)
    seed = (run.seed * 7919 + it * 104_729 + run.worker * 15_485_863 + salt * 1009) % 2**31
    result = selfplay.play(
        game_config(run.game), games=phase.games, parallel=phase.parallel_games, max_turns=run.game.max_turns,
        seed=seed, assign=opponents(ctx, len(snaps) if snaps else 0),
        rng=np.random.default_rng([run.seed, it, run.worker, 1]), learner=net, snapshots=snaps,
        labels=names, temperature=phase.temperature, progress=advance, expert_iteration=phase.expert_iteration)
    kept = SHARD_COLUMNS + tuple(k for k in expert.TARGET_COLUMNS if k in result.columns)
    cols = {k: result.columns[k] for k in kept} if result.rows else {}
    if cols:
        cols["game_id"] = cols["game_id"] + (it * 1_000_000 + run.worker) * 1_000
        producer = "network+search" if phase.expert_iteration is not None else "network"
        writer = shards.ReplayWriter(ctx.store, run.run, ctx.name, worker=run.worker, shard_rows=1 << 30,
                                     extra={"encoding": "planes-v1", "producer": producer})
        writer.add(producer, cols, cursor={"iteration": it, "start_step": start_step,
                                            "results": {k: v for k, v in result.results.items()}})
        writer.flush()
    return cols, result.results, time.monotonic() - started


def run(ctx: runner.Context) -> runner.PhaseOutcome:
    """All iterations of an RL phase; returns its outcome (weights and ONNX candidate saved)."""
    started = time.monotonic()
    phase = ctx.phase
    net = runner.start_network(ctx)
    if not ctx.store.list(ctx.key("league")):  # the league starts with where this run's RL started
        runner.save_weights(ctx.store, ctx.key("league", f"{ctx.name}-0000.pt"), net)
    checkpointer = Checkpointer(ctx.store, ctx.key("checkpoints", ctx.name))
    loop = ResumableLoop(checkpointer, lambda st, data, _: ppo.step(st, data, phase, ctx.run.seed),
                         every=phase.checkpoint_every, config=phase)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=phase.learning_rate))
    if ctx.run.worker == 0:
        state = loop.restore(state)
    iterations = 1 if ctx.run.worker > 0 else phase.iterations
    tally = _Tally()
    for it in range(state.iteration, iterations):
        cols, results, seconds = rollout(ctx, net, it, state.step)
        tally.played(ctx, it, results, len(cols.get("move", ())), seconds)
        tally.count_searched(cols)
        if ctx.run.worker > 0:
            break
        t0, s0 = time.monotonic(), state.step
        state = train(ctx, loop, state, cols, it)
        tally.trained((state.step - s0) * phase.batch_size, time.monotonic() - t0)
    metrics: dict[str, float] = {
        Metric.GAMES: float(phase.games * iterations), Metric.STEPS: float(state.step), **tally.speeds(),
        **{m: state.metrics[m] for m in (Metric.POLICY_LOSS, Metric.VALUE_LOSS, Metric.ENTROPY,
                                         Metric.SEARCH_POLICY_LOSS) if m in state.metrics},
        **({Metric.SEARCHED_FRACTION: tally.searched / tally.rows} if tally.rows and phase.expert_iteration else {}),
        **win_rates(tally.results),
    }
    ckpt = checkpointer.list()
    files = {"checkpoint": ctx.store.info(ckpt[-1][1])} if ckpt else {}
    message = f"{ctx.name}: {iterations} iterations of {phase.games} games, {state.step} PPO steps"
    if phase.expert_iteration is not None:
        message += (f", expert iteration ({tally.searched} of {tally.rows} positions searched at "
                    f"{phase.expert_iteration.visits} visits)")
    return runner.finish(ctx, net, metrics, files, message, started)


def win_rates(totals: dict[str, list[int]]) -> dict[str, float]:
    """Scores (wins + draws/2 per game) from W-D-L counts per opponent: one ``winRateVs<Opponent>``
    each, and ``winRate`` over all of them pooled (the learner's games against anyone but itself)."""
    def score(w: int, d: int, lost: int) -> float:
        return (w + d / 2) / max(1, w + d + lost)

    out = {win_rate_vs(name): score(*wdl) for name, wdl in totals.items()}
    if totals:
        out[Metric.WIN_RATE] = score(*(sum(t[i] for t in totals.values()) for i in range(3)))
    return out


def train(ctx: runner.Context, loop: ResumableLoop, state: TrainState, cols: dict, it: int) -> TrainState:
    """PPO on iteration ``it``'s rows up to its last step, then its league snapshot, then the
    checkpoint that marks it done (``state.iteration = it + 1``).

    Idempotent across a kill at any point: steps resume from the last checkpoint (the data
    and each step's minibatch are the same again), and a snapshot written twice holds the
    same weights."""
    data = ppo.RolloutData(cols, ctx.phase)
    target = _start_step(ctx, it, state.step) + ppo.steps_per_iteration(data.rows, ctx.phase)
    advance = ctx.reporter.task(f"{ctx.name} {it + 1}/{ctx.phase.iterations}: PPO steps", target - state.step)
    state = loop.run(state, data, target, hook=runner.StepReport(ctx.reporter, ctx.name, advance, every=5))
    runner.save_weights(ctx.store, ctx.key("league", f"{ctx.name}-{it + 1:04d}.pt"), state.model)
    state.iteration = it + 1
    loop.save(state)
    return state


@dataclasses.dataclass
class _Tally:
    """What the phase reports at its end: results per opponent and its speeds."""

    results: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    """opponent -> [wins, draws, losses] of the learner over the iterations played or read."""
    positions: int = 0
    play_seconds: float = 0.0
    samples: int = 0
    train_seconds: float = 0.0
    rows: int = 0
    """Learner rows of the iterations played or read."""
    searched: int = 0
    """Of them, rows with search targets (expert iteration)."""

    def count_searched(self, cols: dict) -> None:
        """Count an iteration's rows and those that carry search targets."""
        self.rows += len(cols.get("move", ()))
        self.searched += int(np.count_nonzero(cols["searched"])) if "searched" in cols else 0

    def played(self, ctx: runner.Context, it: int, results: dict[str, list[int]], rows: int,
               seconds: float) -> None:
        """Count iteration ``it``'s results (and its rows, if it was played now, not read)."""
        if seconds:
            self.positions += rows
            self.play_seconds += seconds
        ctx.reporter.scalar(f"{ctx.name}/positions", self.positions, it)
        for name, (w, d, lost) in results.items():
            total = self.results.setdefault(name, [0, 0, 0])
            total[0], total[1], total[2] = total[0] + w, total[1] + d, total[2] + lost
            ctx.reporter.scalar(f"{ctx.name}/win_rate/{name}", (w + d / 2) / max(1, w + d + lost), it)

    def trained(self, samples: int, seconds: float) -> None:
        self.samples += samples
        self.train_seconds += seconds

    def speeds(self) -> dict[str, float]:
        """positionsPerSecond (self-play played now) and samplesPerSecond (PPO)."""
        return {
            Metric.POSITIONS_PER_SECOND: self.positions / self.play_seconds if self.play_seconds else 0.0,
            Metric.SAMPLES_PER_SECOND: self.samples / self.train_seconds if self.train_seconds else 0.0,
        }


def _start_step(ctx: runner.Context, it: int, fallback: int) -> int:
    """The optimiser step iteration ``it`` started at (from its shard's cursor)."""
    for ref in shards.list_shards(ctx.store, ctx.run.run, ctx.name):
        cursor = ref.meta.cursor
        if ref.meta.worker == ctx.run.worker and isinstance(cursor, dict) and cursor.get("iteration") == it:
            return int(cursor.get("start_step", fallback))
    return fallback
