"""The bootstrap and distill phases: a teacher plays (the heuristic, or any player spec such as the search), the network imitates it.

Two restartable stages that meet in the store:

1. **generate**: teacher-vs-teacher games, ``parallel_games`` at a time, each
   batch written as one replay shard whose cursor is the number of games
   done. With ``positions: student`` (DAgger) the run's starting network,
   inside the neural search at ``student_visits`` descents a move, takes one
   seat of each game (seat ``k mod snakes`` in game ``k``) and the teacher the
   others, with no random moves; the teacher labels every seat's position, the
   student's included, so the network learns the teacher's answers in the
   positions its own play reaches (where the teacher's own games never go).
   The distill phase is this loop with ``positions: student`` after the
   phases it distils the search into: its student is the network they left
   (``runner.start_network``). A restart continues after the last complete
   shard (game ``k`` always has seed ``seed + k``), so no game is lost or
   recorded twice.
2. **train**: imitation steps (:mod:`.imitation`) over the newest window of
   the phase's shards (and of ``imitate_phases``, e.g. games brought in by
   ``ouro data import``), ``epochs`` passes, checkpointed by a ResumableLoop: a
   restart resumes at the checkpoint's step with the same priorities. With
   ``teacher_policy_weight`` below 1 a frozen copy of the starting network
   supplies the rest of each policy target.

3. **leaf net** (``leaf_games`` > 0): ``leaf_games`` games of the compiled
   search against itself at ``leaf.MOVE_MS`` a move, in one process per CPU
   this process may use (joblib's count: the pod's CPU limit included), and a
   leaf net fitted to their outcomes (:func:`..leaf.adopt`, which makes none
   when, held out, it predicts no better than the count), written to
   ``runs/R/models/leaf.npz``; from then on every model the run exports
   carries it (``runner.finish``). The games are stored 100 at a time as they
   are played (``runs/R/leaf/``, deflated: about 9 MB a hundred 11x11 duels),
   so a restart replays at most one chunk; one after the net was written
   keeps it. The positions take memory while the net is fitted: 2.4 kB each
   on 11x11, 1.6 GB for the measured 1,000 duels, twice that while they are
   joined. A board that is not square, or a solo game, is refused before the
   teacher's games.

With a learner group (``learner.replicas`` > 1, :mod:`..distributed`), rank 0 plays
the games while the other ranks wait; then every rank loads the same window and the
imitation steps run data-parallel, rank 0 alone writing checkpoints and the model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import time

import numpy as np
import torch

from ouroboros.contract.vocabulary import BootstrapPositions, Metric, PhaseName
from ouroboros.trainer.agents import nsearch
from ouroboros.trainer.agents import registry as agents
from ouroboros.trainer.artifacts.store import ArtifactError
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import (
    device,
    distributed,
    leaf,
    networks,
    onnx_export,
    replay,
    shards,
)
from ouroboros.trainer.learning.checkpoint import ResumableLoop, TrainState
from ouroboros.trainer.learning.phases import expert, imitation, runner, selfplay
from ouroboros.trainer.observation import encoding

log = logging.getLogger(__name__)

SHARD_COLUMNS = ("planes", "move", "mask", "value", "game_id", "turn", "seat", "quality")


def student(ctx: runner.Context, net: networks.PolicyValueNet) -> nsearch.NeuralSearch:
    """The player of ``positions: student`` (and of distill): ``net``, the phase's starting network (bootstrap:
    the run's initial model; distill: the previous phase's network), exported to ONNX in memory, inside the
    neural search at ``student_visits`` descents a move and no clock. ValueError for a bootstrap phase
    without an initial model."""
    if ctx.phase.kind is PhaseName.BOOTSTRAP and ctx.run.initial_model is None:
        raise ValueError("bootstrap: positions student needs the run's initial model (spec.initialModel, "
                         "--initial-model): the student whose games the teacher labels")
    net = device.cpu_copy(net).eval()
    config = game_config(ctx.run.game)
    model = onnx_export.optimise(onnx_export.to_onnx(net, config.height, config.width))
    return nsearch.NeuralSearch(model, ms=0.0, visits=ctx.phase.student_visits, name="student")


def generate(ctx: runner.Context, net: networks.PolicyValueNet) -> tuple[int, int, float, list[int]]:
    """Play the games not yet in shards (``net``: the starting network, the student with ``positions:
    student``); returns (games, positions, seconds) played now and the student's
    [wins, draws, losses] against the teacher in them (zeros with the teacher's own games)."""
    config = game_config(ctx.run.game)
    phase = ctx.phase
    producer = phase.teacher
    teacher = None if producer == "heuristic" else agents.make_player(producer)
    pupil = student(ctx, net) if phase.positions is BootstrapPositions.STUDENT else None
    writer = shards.ReplayWriter(ctx.store, ctx.run.run, ctx.name, worker=ctx.run.worker,
                                 shard_rows=1 << 30, extra={"encoding": encoding.SHARD_LABEL, "producer": producer})
    done = int((writer.cursor or {}).get("games", 0)) if isinstance(writer.cursor, dict) else 0
    advance = ctx.reporter.task(f"{ctx.name}: teacher games", phase.games)
    advance(done)
    games = positions = 0
    record = [0, 0, 0]
    started = time.monotonic()
    teachers = [selfplay.Seat.TEACHER] * config.n_snakes

    def seats(game: int, rng: np.random.Generator) -> list[int]:
        if pupil is None:
            return teachers
        return [selfplay.Seat.LEARNER if s == (done + game) % config.n_snakes else selfplay.Seat.TEACHER
                for s in range(config.n_snakes)]

    while done < phase.games:
        n = min(phase.parallel_games, phase.games - done)
        rollout = selfplay.play(
            config, games=n, parallel=n, max_turns=ctx.run.game.max_turns,
            seed=ctx.run.seed * 1_000_003 + done, assign=seats,
            rng=np.random.default_rng([ctx.run.seed, 0, done]), record_teacher=True,
            explore=0.1 if pupil is None else 0.0, progress=advance, teacher_player=teacher,
            student_player=pupil)
        for result in rollout.results.values():  # the student's, against the teacher (none in its own games)
            record = [a + b for a, b in zip(record, result, strict=True)]
        # a scoring teacher (the search) adds its values of the positions (imitation's value targets)
        cols = {k: rollout.columns[k] for k in SHARD_COLUMNS + expert.TARGET_COLUMNS if k in rollout.columns}
        cols["game_id"] = cols["game_id"] + done
        writer.add(producer, cols, cursor={"games": done + n})
        writer.flush()
        done += n
        games += n
        positions += rollout.rows
        ctx.reporter.scalar(f"{ctx.name}/positions", positions, done)
    return games, positions, time.monotonic() - started, record


def run(ctx: runner.Context) -> runner.PhaseOutcome:
    """Generate, then train; returns the phase's outcome (weights and ONNX candidate saved)."""
    started = time.monotonic()
    group = ctx.group
    if ctx.phase.leaf_games:  # refused now, not after the teacher's games and the imitation
        leaf.check_game(game_config(ctx.run.game))
    # In a learner group rank 0 plays the teacher's games; the others wait, then read its shards.
    net = runner.start_network(ctx)
    games, positions, gen_seconds, record = generate(ctx, net) if group.writes else (0, 0, 0.0, [0, 0, 0])
    group.barrier()
    phase = ctx.phase
    window = replay.ReplayConfig(window_positions=phase.replay_window, quality_threshold=0.0,
                                 priority_alpha=0.3)
    sources = [ctx.name, *(shards.check_name(p, "imitate phase") for p in phase.imitate_phases)]
    buffer = replay.ReplayBuffer.load(ctx.store, ctx.run.run, sources, window)
    # the rest of a policy target below teacher_policy_weight: the starting network's own policy, frozen
    reference = copy.deepcopy(net).eval().requires_grad_(False) if phase.teacher_policy_weight < 1 else None
    replay.check_planes(buffer.columns, net.config.in_channels, f"{ctx.name} (replay of {', '.join(sources)})")
    optimizer = torch.optim.Adam(net.parameters(), lr=phase.learning_rate)
    steps = max(1, math.ceil(phase.epochs * len(buffer) / phase.batch_size))

    model = distributed.data_parallel(net, group)
    loop = ResumableLoop(
        ctx.checkpointer(),
        lambda state, data, _: imitation.step(state, data, phase, ctx.run.seed, group, model, ctx.placement,
                                              reference),
        every=phase.checkpoint_every, config=phase)
    state = loop.restore(TrainState(net, optimizer))
    if state.data_state:
        buffer.load_state_dict(state.data_state)
    advance = ctx.reporter.task(f"{ctx.name}: imitation steps", steps)
    advance(state.step)
    train_started = time.monotonic()
    first = state.step
    state = loop.run(state, buffer, steps, hook=runner.StepReport(ctx.reporter, ctx.name, advance, every=10, last=steps))
    train_seconds = time.monotonic() - train_started
    metrics = {
        Metric.GAMES: float(games), Metric.POSITIONS: float(len(buffer)),
        Metric.POSITIONS_PER_SECOND: positions / gen_seconds if gen_seconds > 0 else 0.0,
        Metric.STEPS: float(state.step),
        Metric.SAMPLES_PER_SECOND: (state.step - first) * phase.batch_size / train_seconds if train_seconds > 0 else 0.0,
        **{m: state.metrics.get(m, 0.0) for m in (Metric.POLICY_LOSS, Metric.VALUE_LOSS, Metric.ACCURACY)},
    }
    ckpt = ctx.checkpointer().list()
    files = {"checkpoint": ctx.store.info(ckpt[-1][1])} if ckpt else {}
    labelled = "teacher positions" if phase.positions is BootstrapPositions.TEACHER else \
        "positions of the student's games labelled by the teacher"
    message = (f"{ctx.name}: {len(buffer)} {labelled}, {state.step} imitation steps, "
               f"accuracy {metrics[Metric.ACCURACY]:.2f}")
    if phase.leaf_games and group.writes and ctx.run.worker == 0:
        del buffer, reference  # the replay window's memory, before the leaf games take theirs
        message += "; " + train_leaf_net(ctx)
    records = {}
    if phase.positions is BootstrapPositions.STUDENT and sum(record):
        message += f"; the student against the teacher {record[0]}-{record[1]}-{record[2]} (W-D-L, games played now)"
        records[phase.teacher] = (record[0], record[1], record[2])
        metrics.update(runner.win_rates({phase.teacher: record}))
    return runner.finish(ctx, net, metrics, files, message, started, records)


LEAF_CHUNK = 100
"""Leaf-net games played and stored together (``runs/R/leaf/games-FIRST.npz``): what a restart
replays at most (about 4 minutes at 10 ms a move on 2 cores: 1,000 took 2,347 s)."""


def train_leaf_net(ctx: runner.Context) -> str:
    """Step 3 of the module docstring: the run's leaf net, unless the store holds it already; returns
    what was done, for the phase's message."""
    key = ctx.key("models", runner.LEAF_NET)
    if ctx.store.exists(key):
        try:
            net = runner.leaf_net(ctx)
            return f"leaf net kept from an earlier attempt ({net.nn[0]:.0f} points per logit)"
        except (ArtifactError, ValueError) as err:  # corrupt or not a net: made again, never carried
            log.warning("%s: the stored leaf net does not load (%s); making it again", ctx.name, err)
    started = time.monotonic()
    data = _leaf_games(ctx)
    net, held, why = leaf.adopt(data, seed=ctx.run.seed)
    if net is None:
        log.warning("%s: no leaf net: %s", ctx.name, why)
        inherited = "; the initial model's is handed on" if runner.leaf_net(ctx) is not None else ""
        return f"no leaf net from {ctx.phase.leaf_games} search games: {why}{inherited}"
    buffer = io.BytesIO()
    net.save(buffer)
    ctx.store.put_bytes(key, buffer.getvalue(), {
        "run": ctx.run.run, "phase": ctx.name, "games": ctx.phase.leaf_games, "positions": len(data.result),
        "move_ms": leaf.MOVE_MS, **({"held_out_log_loss": {"count": held[0], "net": held[1]}} if held else {})})
    scored = "" if held is None else f"held-out log loss {held[1]:.4f} against the count's {held[0]:.4f}, "
    return (f"leaf net from {ctx.phase.leaf_games} search games ({len(data.result)} positions, {scored}"
            f"{time.monotonic() - started:.0f} s, {net.nn[0]:.0f} points per logit)")


def _leaf_games(ctx: runner.Context) -> leaf.LeafData:
    """The run's leaf-net games, :data:`LEAF_CHUNK` at a time, each chunk stored as it is played
    (``runs/R/leaf/games-FIRST.npz``, :meth:`..leaf.LeafData.save`) and read back instead of played
    again on a restart (a chunk that does not load is played again). Game k has seed
    ``run seed x 1,000,003 + 900,000,000 + k``; a chunk's games run in one process per CPU this
    process may use (joblib's count: a pod's CPU limit included), one pool kept for all the chunks."""
    import joblib

    games, config = ctx.phase.leaf_games, game_config(ctx.run.game)
    seed = ctx.run.seed * 1_000_003 + 900_000_000
    workers = max(1, min(joblib.cpu_count(), games))
    advance = ctx.reporter.task(f"{ctx.name}: leaf net games", games)
    parts = []
    with contextlib.ExitStack() as stack:  # one pool for every chunk, started when a chunk must be played
        pool = None
        for first in range(0, games, LEAF_CHUNK):
            n = min(LEAF_CHUNK, games - first)
            key = ctx.key("leaf", f"games-{first:07d}.npz")
            if ctx.store.exists(key):
                try:
                    parts.append(leaf.LeafData.load(io.BytesIO(ctx.store.get_bytes(key)), label=ctx.store.uri(key)))
                    advance(n)
                    continue
                except (ArtifactError, ValueError) as err:
                    log.warning("%s: %s does not load (%s); playing its games again", ctx.name, key, err)
            if pool is None and workers > 1:
                pool = stack.enter_context(leaf.processes(workers))
            part = leaf.LeafData.concat(leaf.play(config, n, seed + first, max_turns=ctx.run.game.max_turns,
                                                  workers=workers, pool=pool))
            stored = io.BytesIO()
            part.save(stored)
            ctx.store.put_bytes(key, stored.getvalue(), {"run": ctx.run.run, "games": n,
                                                         "first_seed": seed + first, "move_ms": leaf.MOVE_MS})
            parts.append(part)
            advance(n)
    return leaf.LeafData.concat(parts)
