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
round of games into their own shards; worker 0 trains, and each of its
iterations appends every other worker's shard that no earlier iteration used
(:func:`merge_workers`; the keys go into its own shard's cursor, so a restart
merges the same ones and no shard is used twice). Its last iteration waits for
a shard from every worker, so every worker's games are trained on.

With a learner group (``learner.replicas`` > 1, :mod:`..distributed`), rank 0 plays
each iteration's rollout while the other ranks wait at a barrier, then every rank
reads that shard and the PPO steps run data-parallel; rank 0 alone writes the
league snapshots, checkpoints and the model.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import torch

from ouroboros.contract.vocabulary import Metric, PhaseName
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import distributed, replay, shards
from ouroboros.trainer.learning.checkpoint import ResumableLoop, TrainState
from ouroboros.trainer.learning.phases import expert, ppo, runner, selfplay
from ouroboros.trainer.observation import encoding

log = logging.getLogger(__name__)

LEAGUE_SIZE = 6
SHARD_COLUMNS = ("planes", "move", "logp", "v_old", "mask", "reward", "done", "traj", "value",
                 "game_id", "turn", "seat", "quality")


def league(ctx: runner.Context) -> tuple[list, list[str]]:
    """The newest LEAGUE_SIZE snapshots of the run (networks, names)."""
    keys = sorted(k for k in ctx.store.list(ctx.key("league")) if k.endswith(".pt"))
    keys = sorted(keys, key=lambda k: ctx.store.info(k).created_at)[-LEAGUE_SIZE:]
    nets = [runner.load_weights(ctx.store, k).to(ctx.placement.device) for k in keys]  # they play where the learner does
    return nets, [k.rsplit("/", 1)[-1][:-3] for k in keys]


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


def rollout(ctx: runner.Context, net, it: int, start_step: int, play: bool = True) -> tuple[dict, dict, float, int]:
    """The rows of iteration ``it``: from its shard if one exists, else played and written
    (``play=False``: a reader that never plays, RuntimeError when the shard is missing); with
    the other self-play workers' shards it merges (:func:`merge_workers`) appended.
    Returns (columns, results per opponent, seconds spent playing, rows this worker played)."""
    run, phase = ctx.run, ctx.phase
    found = shards.list_shards(ctx.store, run.run, ctx.name)
    for ref in found:
        cursor = ref.meta.cursor
        if ref.meta.worker == run.worker and isinstance(cursor, dict) and cursor.get("iteration") == it:
            own = replay.current_planes(shards.read_shard(ctx.store, ref), ref.key)
            by_key = {r.key: r for r in found}
            lost = [key for key in cursor.get("merged", []) if key not in by_key]
            if lost:
                raise shards.ShardError(f"{ctx.name}: iteration {it} trained on shards that are gone: {lost}")
            merged = [by_key[key] for key in cursor.get("merged", [])]
            cols, results = _join(ctx, [(own, dict(cursor.get("results", {}))), *merged])
            return cols, results, 0.0, len(own["move"])
    if not play:
        raise RuntimeError(f"{ctx.name}: no replay shard of iteration {it} from worker {run.worker} in "
                           f"{ctx.store.url} although learner rank 0 has written it")
    snaps, names = league(ctx)
    started = time.monotonic()
    advance = ctx.reporter.task(f"{ctx.name} {it + 1}/{phase.iterations}: games", phase.games)
    salt = list(PhaseName).index(phase.kind)
    seed = (run.seed * 7919 + it * 104_729 + run.worker * 15_485_863 + salt * 1009) % 2**31
    result = selfplay.play(
        game_config(run.game), games=phase.games, parallel=phase.parallel_games, max_turns=run.game.max_turns,
        seed=seed, assign=opponents(ctx, len(snaps) if snaps else 0),
        rng=np.random.default_rng([run.seed, it, run.worker, 1]), learner=net, snapshots=snaps,
        labels=names, temperature=phase.temperature, progress=advance, expert_iteration=phase.expert_iteration,
        autocast=ctx.placement.autocast)
    seconds = time.monotonic() - started
    kept = SHARD_COLUMNS + tuple(k for k in expert.TARGET_COLUMNS if k in result.columns)
    cols = {k: result.columns[k] for k in kept} if result.rows else {}
    merged = merge_workers(ctx, last=it == phase.iterations - 1) if run.worker == 0 and run.workers > 1 else []
    if cols:
        cols["game_id"] = cols["game_id"] + (it * 1_000_000 + run.worker) * 1_000
        producer = "network+search" if phase.expert_iteration is not None else "network"
        writer = shards.ReplayWriter(ctx.store, run.run, ctx.name, worker=run.worker, shard_rows=1 << 30,
                                     extra={"encoding": encoding.SHARD_LABEL, "producer": producer})
        writer.add(producer, cols, cursor={"iteration": it, "start_step": start_step,
                                           "results": {k: v for k, v in result.results.items()},
                                           "merged": [ref.key for ref in merged]})
        writer.flush()
    joined, results = _join(ctx, [(cols, dict(result.results)), *merged])
    return joined, results, seconds, len(cols.get("move", ()))


MERGE_WAIT_SECONDS = 3600.0
"""How long worker 0 waits, at its last iteration, for a self-play worker that has not
written its shard yet (its pod runs in the same Job, so it is normally done by then)."""
MERGE_POLL_SECONDS = 2.0
_sleep = time.sleep  # the tests make a worker finish while worker 0 waits


def merge_workers(ctx: runner.Context, last: bool, wait_seconds: float | None = None) -> list:
    """The other self-play workers' shards of this phase that worker 0 trains on now: every one
    that no earlier iteration of worker 0 merged (their keys are in its shards' cursors, so a
    shard is used once, also across restarts). At the ``last`` iteration it first waits up to
    ``wait_seconds`` for a shard from every worker (1..workers-1), so every worker's games are used.
    Returns ShardRefs, oldest first."""
    run = ctx.run
    wait_seconds = MERGE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + (wait_seconds if last else 0.0)
    while True:
        found = shards.list_shards(ctx.store, run.run, ctx.name)
        used = {key for ref in found if ref.meta.worker == run.worker and isinstance(ref.meta.cursor, dict)
                for key in ref.meta.cursor.get("merged", [])}
        missing = set(range(run.workers)) - {run.worker} - {ref.meta.worker for ref in found}
        if not last or not missing or time.monotonic() >= deadline:
            break
        _sleep(MERGE_POLL_SECONDS)
    if last and missing:
        log.warning("%s: no shard from self-play worker(s) %s after %.0f s; training without them",
                    ctx.name, sorted(missing), wait_seconds)
    return [ref for ref in found if ref.meta.worker != run.worker and ref.key not in used]


def _join(ctx: runner.Context, parts: list) -> tuple[dict, dict]:
    """One iteration's rows from (columns, results) pairs or ShardRefs of other workers: the
    columns concatenated with trajectory ids made distinct (GAE follows them), the W-D-L per
    opponent summed."""
    loaded = []
    for part in parts:
        if isinstance(part, shards.ShardRef):
            cursor = part.meta.cursor if isinstance(part.meta.cursor, dict) else {}
            cols = replay.current_planes(shards.read_shard(ctx.store, part), part.key)
            loaded.append((cols, dict(cursor.get("results", {}))))
        else:
            loaded.append(part)
    loaded = [(cols, results) for cols, results in loaded if cols or results]
    if len(loaded) <= 1:
        return loaded[0] if loaded else ({}, {})
    results: dict[str, list[int]] = {}
    for _, part in loaded:
        for name, wdl in part.items():
            total = results.setdefault(name, [0, 0, 0])
            for i in range(3):
                total[i] += int(wdl[i])
    offset, columns = 0, []
    for cols, _ in loaded:
        if not cols:
            continue
        cols = dict(cols)
        _, local = np.unique(cols["traj"], return_inverse=True)
        cols["traj"] = local.astype(np.int64) + offset
        offset += int(local.max(initial=-1)) + 1
        columns.append(cols)
    keys = [k for k in SHARD_COLUMNS if all(k in c for c in columns)]
    return {k: np.concatenate([c[k] for c in columns]) for k in keys}, results


def run(ctx: runner.Context) -> runner.PhaseOutcome:
    """All iterations of an RL phase; returns its outcome (weights and ONNX candidate saved)."""
    started = time.monotonic()
    phase = ctx.phase
    group = ctx.group
    net = runner.start_network(ctx)
    if group.writes and ctx.run.worker == 0 and not ctx.store.list(ctx.key("league")):  # where this RL started
        runner.save_weights(ctx.store, ctx.key("league", f"{ctx.name}-0000.pt"), net)
    checkpointer = ctx.checkpointer()
    model = distributed.data_parallel(net, group)
    loop = ResumableLoop(checkpointer,
                         lambda st, data, _: ppo.step(st, data, phase, ctx.run.seed, group, model, ctx.placement),
                         every=phase.checkpoint_every, config=phase)
    state = TrainState(net, torch.optim.Adam(net.parameters(), lr=phase.learning_rate))
    if ctx.run.worker == 0:
        state = loop.restore(state)
    iterations = 1 if ctx.run.worker > 0 else phase.iterations
    tally = _Tally()
    for it in range(state.iteration, iterations):
        if group.writes:  # in a learner group rank 0 plays; the others read its shard
            cols, results, seconds, played = rollout(ctx, net, it, state.step)
        group.barrier()
        if not group.writes:
            cols, results, seconds, played = rollout(ctx, net, it, state.step, play=False)
        replay.check_planes(cols, net.config.in_channels, f"{ctx.name} iteration {it}")
        tally.played(ctx, it, results, played, seconds)
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
        **runner.win_rates(tally.results),
    }
    ckpt = checkpointer.list()
    files = {"checkpoint": ctx.store.info(ckpt[-1][1])} if ckpt else {}
    message = f"{ctx.name}: {iterations} iterations of {phase.games} games, {state.step} PPO steps"
    if phase.expert_iteration is not None:
        message += (f", expert iteration ({tally.searched} of {tally.rows} positions searched at "
                    f"{phase.expert_iteration.visits} visits)")
    records = {name: (w, d, lost) for name, (w, d, lost) in tally.results.items()}
    return runner.finish(ctx, net, metrics, files, message, started, records)


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
    if ctx.group.writes:
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
