"""`ouro train --preset quick`: the main job: bootstrap -> hybrid -> self_play (-> distill) on this machine.

``--distill GAMES`` ends the run with a distill phase (DAgger: the self_play network's own games inside
the neural search, labelled by the search; ``phases.bootstrap``); the smoke preset has a tiny one.

The phases run in-process through the same ``phases.execute`` that a
Kubernetes Job's ``ouro phase`` runs, on a local artifact store (default
``./runs/registry``, the model registry's default too). At the end the final
network is measured against random-safe and the heuristic teacher
(seat-swapped pairs, Wilson 95% intervals), played the way the preset's gate
plays it and so the way it will be served (the bare policy, or with
``--gate-player nsearch:ms=N`` inside the neural search at that budget, gate
included; the summary and ``strength.json`` name the player), registered, and gated against the
current champion of its game through the one promotion path
(``evaluation.promotion``, the preset's ``promotion`` spec): a first run becomes
champion; a later run replaces the champion only if the gate says PROMOTE, and
the summary says why not otherwise. ``--force-promote`` overrides the gate and
is recorded in the champion's history as a manual promotion. Progress bars
(rich) cover every long step on a terminal; to a pipe or a log file it prints a
progress line every ``--progress-every`` seconds instead, and every phase
writes its progress record into the store (``observability.progress``).
Scalars go to TensorBoard event files under ``--logdir``. Before the first
phase it checks available memory and free disk under a local store against
``--min-free-memory`` and ``--min-free-disk`` and refuses to start (exit 1)
below them.

Run the same command with the same ``--run`` again to resume an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ouroboros.contract.game import GameSpec
from ouroboros.contract.promotion import GateVerdict, PromotionSpec, ReadinessSpec
from ouroboros.contract.run import ExpertIterationSpec, InitialModelSpec
from ouroboros.contract.vocabulary import (
    EXPERT_ITERATION_PHASES,
    BootstrapPositions,
    PhaseName,
    win_rate_vs,
)
from ouroboros.trainer.commands import _common
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import networks
from ouroboros.trainer.learning.phases import config as pc

DEFAULT_LOGDIR = "./runs/tensorboard"


class Preset(BaseModel):
    """A named training budget: the game, the network, and each phase's settings."""

    model_config = ConfigDict(frozen=True)

    description: str = Field(description="What the preset is for, and its measured (or, where said, estimated) wall time here.")
    game: GameSpec = Field(default_factory=GameSpec, description="The game.")
    network: networks.NetworkConfig = Field(description="The network.")
    phases: list[pc.PhaseSettings] = Field(description="Phases, in order.")
    eval_games: int = Field(200, ge=2, description="Duels against each baseline at the end.")
    promotion: PromotionSpec = Field(default_factory=PromotionSpec,
                                     description="The gate against the current champion (a TrainingRun's spec.promotion).")


_SIMPLE = dict(architecture="cnn_simple", attention_layers=0)

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        description="seconds: every phase end to end on a 7x7 board (tests)",
        game=GameSpec(width=7, height=7, max_turns=60),
        network=networks.NetworkConfig(**_SIMPLE, blocks=2, channels=16),
        phases=[
            pc.phase_settings(PhaseName.BOOTSTRAP, games=8, parallel_games=8, batch_size=64, epochs=1),
            pc.phase_settings(PhaseName.HYBRID, games=8, parallel_games=8, batch_size=64, epochs=1),
            pc.phase_settings(PhaseName.SELF_PLAY, games=8, parallel_games=8, batch_size=64, epochs=1),
            pc.phase_settings(PhaseName.DISTILL, games=2, parallel_games=2, batch_size=64, epochs=1,
                              teacher="search:ms=5", student_visits=8),
        ],
        eval_games=8,
        # tests: a short gate, and serving limits a loaded CI machine always meets
        promotion=PromotionSpec(games=8, min_games=4,
                                readiness=ReadinessSpec(max_p99_latency_ms=1000, max_peak_memory_mb=1000)),
    ),
    "quick": Preset(
        description="10 to 20 minutes on 2 shared CPU cores: a champion that beats random-safe",
        network=networks.NetworkConfig(**_SIMPLE, blocks=6, channels=32),
        phases=[
            pc.phase_settings(PhaseName.BOOTSTRAP, games=800, parallel_games=200, epochs=2,
                              batch_size=256, learning_rate=2e-3, replay_window=200_000),
            pc.phase_settings(PhaseName.HYBRID, games=128, iterations=4, parallel_games=128,
                              heuristic_ratio=0.5),
            pc.phase_settings(PhaseName.SELF_PLAY, games=128, iterations=6, parallel_games=128),
        ],
    ),
    "medium": Preset(
        description="60 to 120 minutes on 2 shared CPU cores: the quick network with 2.5x the teacher "
                    "games and 2.5x the reinforcement learning, aiming past the heuristic teacher, and "
                    "the search's leaf net from 1,000 search duels (about 40 minutes of them)",
        network=networks.NetworkConfig(**_SIMPLE, blocks=6, channels=32),
        phases=[
            pc.phase_settings(PhaseName.BOOTSTRAP, games=2000, parallel_games=250, epochs=2,
                              batch_size=256, learning_rate=2e-3, replay_window=400_000, leaf_games=1000),
            pc.phase_settings(PhaseName.HYBRID, games=128, iterations=10, parallel_games=128,
                              heuristic_ratio=0.5),
            pc.phase_settings(PhaseName.SELF_PLAY, games=128, iterations=16, parallel_games=128),
        ],
        eval_games=400,
    ),
    "long": Preset(
        description="about 8 hours on 2 CPU cores (estimated from benchmarks.training, not run): "
                    "the default attention network, aiming past the heuristic teacher",
        network=networks.NetworkConfig(),
        phases=[
            pc.phase_settings(PhaseName.BOOTSTRAP, games=4000, parallel_games=256, epochs=3),
            pc.phase_settings(PhaseName.HYBRID, games=256, iterations=20, parallel_games=256,
                              heuristic_ratio=0.5),
            pc.phase_settings(PhaseName.SELF_PLAY, games=256, iterations=40, parallel_games=256),
        ],
        eval_games=400,
    ),
}


class RichReporter:
    """Progress bars (rich) and TensorBoard scalars for the phases."""

    def __init__(self, progress, writer) -> None:
        self.progress, self.writer = progress, writer

    def task(self, description: str, total: int):
        task = self.progress.add_task(description, total=max(1, total))
        return lambda n: self.progress.advance(task, n)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouro train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="quick", help="training budget (default quick)")
    _common.add_store_option(p)
    p.add_argument("--run", default=None, help="run id; the same id resumes (default: local-PRESET-TIME)")
    p.add_argument("--logdir", default=DEFAULT_LOGDIR, help="TensorBoard event files go to LOGDIR/RUN")
    p.add_argument("--seed", type=int, default=0, help="root seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's choice)")
    p.add_argument("--device", default="auto", metavar="DEVICE",
                   help="where the networks train and play: auto (default: a CUDA GPU when torch sees one, "
                        "else the CPU), cpu, cuda or cuda:N")
    p.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto",
                   help="bf16 autocast of the forward passes (default auto: on a GPU with bf16, off on the CPU)")
    p.add_argument("--eval-games", type=int, default=None, help="duels per baseline at the end")
    p.add_argument("--gate-player", default=None, metavar="PLAYER",
                   help="how the final duels and the gate play the network, as it will be served: policy "
                        "(`ouro serve --player champion`) or nsearch[:ms=N,visits=N,endgame=X] (`champion+nsearch:ms=N`); "
                        "default: the preset's promotion.player (policy)")
    promote = p.add_mutually_exclusive_group()
    promote.add_argument("--no-promote", action="store_true", help="register the model but leave the champion alone")
    promote.add_argument("--force-promote", action="store_true",
                         help="make the model champion even if the gate does not say PROMOTE (recorded as manual)")
    p.add_argument("--teacher", default=None,
                   help="bootstrap teacher as a player spec (default heuristic; e.g. search:ms=20)")
    p.add_argument("--teacher-value-weight", type=float, default=None, metavar="W",
                   help="with a search teacher (search, search-v1, nsearch): the share of the search's value of a "
                        "position in bootstrap's value target, the rest the game's outcome (default 0.5; 0: the "
                        "outcome alone)")
    p.add_argument("--positions", choices=[p.value for p in BootstrapPositions], default=None,
                   help="whose games bootstrap's teacher labels: teacher (its own, the default) or student (the "
                        "--initial-model inside the neural search against the teacher, every seat labelled by "
                        "the teacher: DAgger)")
    p.add_argument("--student-visits", type=int, default=None, metavar="N",
                   help=f"with --positions student: the student's descents per move (default "
                        f"{pc.DEFAULT_STUDENT_VISITS}; no clock)")
    p.add_argument("--teacher-policy-weight", type=float, default=None, metavar="W",
                   help="bootstrap's policy target: this share of the teacher's move, the rest the starting "
                        "network's own policy (default 1; 0: hold the policy, teach the value alone)")
    p.add_argument("--imitate", default=None, metavar="PHASES",
                   help="comma-separated replay folders of the run that bootstrap also imitates "
                        "(e.g. imported, after `ouro data import --run RUN`)")
    p.add_argument("--expert-iteration", nargs="?", const="", default=None, metavar="OPTIONS",
                   help="train self_play and continuous from search: the neural search decides a share of the "
                        "learner's moves and its visits and values become targets; OPTIONS as "
                        "fraction=0.25,visits=32,value_weight=0.5,c_puct=1.5,temperature=1 (those are the defaults)")
    p.add_argument("--initial-model", default=None, metavar="MODEL",
                   help="start from an existing network instead of a fresh one: registry:VERSION (in --store), "
                        "an ONNX file with the contract (.onnx), or a checkpoint (.pt); a path or a URL")
    p.add_argument("--distill", type=int, default=None, metavar="GAMES",
                   help="end with a distill phase of GAMES games (DAgger: the network's own games inside the "
                        "neural search, labelled by search:ms=10; 96 in the README's measurements); 0: none "
                        "(default: the preset's, a tiny one in smoke)")
    p.add_argument("--leaf-games", type=int, default=None, metavar="GAMES",
                   help="bootstrap also plays GAMES duels of the compiled search (10 ms a move) and fits the "
                        "search's leaf net, which every later model carries and champion+nsearch:endgame=X "
                        "plays in the moves it hands to the alpha-beta (endgame=0.01: every move); 0: none "
                        "(default: the preset's, 1000 in medium)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _common.add_preflight_options(p)
    p.add_argument("--progress-every", type=float, default=15.0, metavar="SECONDS",
                   help="progress record (and, off a terminal, progress line) interval (default %(default)s, max 30)")
    return p


def expert_iteration(text: str | None) -> ExpertIterationSpec | None:
    """The ``--expert-iteration`` options (``key=value,...``, snake_case or camelCase) as a spec;
    None when the flag is absent. ValueError naming the option otherwise."""
    if text is None:
        return None
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--expert-iteration: expected key=value, got {item!r}")
        options[key.strip()] = value.strip()
    try:
        return ExpertIterationSpec.model_validate(options)
    except ValueError as exc:
        errors = getattr(exc, "errors", lambda: [])()
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) or str(exc)
        raise ValueError(f"--expert-iteration: {detail}") from None


def initial_model(text: str | None) -> InitialModelSpec | None:
    """The ``--initial-model`` argument as a spec: ``registry:VERSION``, else an ONNX file
    (``.onnx``) or a checkpoint; a local path becomes a file:// URL."""
    if not text:
        return None
    if text.startswith("registry:"):
        return InitialModelSpec(registry_version=text.partition(":")[2])
    url = text if "://" in text else Path(text).resolve().as_uri()
    if "://" not in text and not Path(text).is_file():
        raise ValueError(f"--initial-model: no such file: {text}")
    return InitialModelSpec(onnx=url) if text.endswith(".onnx") else InitialModelSpec(checkpoint=url)


def _student_options(args: argparse.Namespace) -> dict:
    """The bootstrap settings of --positions, --student-visits and --teacher-policy-weight (only those
    given); ValueError naming the option at the first problem."""
    options: dict = {}
    if args.positions is not None:
        options["positions"] = BootstrapPositions(args.positions)
        if options["positions"] is BootstrapPositions.STUDENT and not args.initial_model:
            raise ValueError("--positions student: needs --initial-model (the student whose games the teacher labels)")
    if args.student_visits is not None:
        if options.get("positions") is not BootstrapPositions.STUDENT:
            raise ValueError("--student-visits: needs --positions student (the teacher's own games have no student)")
        if not 1 <= args.student_visits <= 4096:
            raise ValueError(f"--student-visits: between 1 and 4096 descents a move, got {args.student_visits}")
        options["student_visits"] = args.student_visits
    if args.teacher_policy_weight is not None:
        if not 0.0 <= args.teacher_policy_weight <= 1.0:  # NaN fails too
            raise ValueError(f"--teacher-policy-weight: a share between 0 and 1, got {args.teacher_policy_weight}")
        options["teacher_policy_weight"] = args.teacher_policy_weight
    return options


class _Usage(ValueError):
    """A problem with the command line or what it names: printed as ``ouro train: MESSAGE``, exit 2."""


class _Plan(BaseModel):
    """What the command line asks for, checked before anything runs."""

    model_config = ConfigDict(frozen=True)

    preset_name: str = Field(description="The preset's name (--preset).")
    preset: Preset = Field(description="The preset.")
    run: pc.RunSettings = Field(description="What every phase shares: run id, store, game, network, seed, device.")
    phases: list[pc.PhaseSettings] = Field(description="The preset's phases with the command line's options applied.")
    gate: PromotionSpec = Field(description="How the final duels and the gate play the network.")
    eval_games: int = Field(description="Duels per baseline at the end.")


def _plan(args: argparse.Namespace) -> _Plan:
    """The run the arguments describe; _Usage naming the option at the first problem."""
    from ouroboros.trainer.agents import registry as agents
    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning import shards

    preset = PRESETS[args.preset]
    try:
        if args.eval_games is not None and args.eval_games < 1:
            raise ValueError(f"--eval-games: at least 1 duel per baseline, got {args.eval_games}")
        teacher = None
        if args.teacher is not None:  # refused now, not as a traceback once bootstrap starts
            try:
                teacher = agents.make_player(args.teacher)
            except (ValueError, FileNotFoundError) as exc:
                raise ValueError(f"--teacher: {exc}") from None
        weight = args.teacher_value_weight
        if weight is not None and not 0.0 <= weight <= 1.0:  # NaN fails too
            raise ValueError(f"--teacher-value-weight: a share between 0 and 1, got {weight}")
        if weight is not None and not hasattr(teacher, "act_scored"):  # it would change nothing, silently
            raise ValueError("--teacher-value-weight: the teacher scores no position; it needs a search teacher "
                             "(--teacher search:ms=N, search-v1:ms=N or nsearch:model=M,ms=N)")
        student = _student_options(args)
        imitated = tuple(shards.check_name(p.strip(), "--imitate folder")
                         for p in (args.imitate or "").split(",") if p.strip())
        expert_spec = expert_iteration(args.expert_iteration)
        if args.distill is not None and not 0 <= args.distill <= 10_000_000:
            raise ValueError(f"--distill: games between 0 and 10000000, got {args.distill}")
        if args.leaf_games is not None and not 0 <= args.leaf_games <= 100_000:
            raise ValueError(f"--leaf-games: games between 0 and 100000, got {args.leaf_games}")
        initial = initial_model(args.initial_model)
        gate_spec = preset.promotion if args.gate_player is None else \
            preset.promotion.with_served_player(args.gate_player, "--gate-player")
    except ValueError as exc:
        raise _Usage(str(exc)) from None
    run_name = args.run or f"local-{args.preset}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    store_url = str(Path(args.store).resolve()) if "://" not in args.store else args.store
    try:
        run = pc.RunSettings(run=pc.run_id(run_name), store=store_url, game=preset.game,
                             network=preset.network, seed=args.seed, threads=args.threads, initial_model=initial,
                             device=args.device.strip().lower(),
                             mixed_precision={"auto": None, "on": True, "off": False}[args.mixed_precision])
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = str(problem["loc"][0]) if problem["loc"] else ""
        why = f"{args.device!r} is not auto, cpu, cuda or cuda:N" if field == "device" else problem["msg"]
        raise _Usage(f"--{field.replace('_', '-')}: {why}") from None
    if initial is not None:  # a model of another board or architecture: refused now, not as a traceback later
        from ouroboros.trainer.learning import initial as starting

        try:
            starting.load(ArtifactStore(store_url), initial, preset.network, preset.game)
            starting.leaf_net(ArtifactStore(store_url), initial, preset.game)  # the net it would hand on
        except starting.InitialModelError as exc:
            raise _Usage(f"--initial-model: {exc}") from None
    missing = [p for p in imitated if not shards.list_shards(ArtifactStore(store_url), run.run, p)]
    if missing:  # a typo would otherwise imitate nothing extra, silently
        raise _Usage(f"--imitate: no replay shards under runs/{run.run}/replay/{missing[0]}/ in {store_url} "
                     "(bring games in first: `ouro data import --run RUN`)")
    phases = []
    for phase in preset.phases:
        if phase.kind is PhaseName.BOOTSTRAP and (args.teacher or args.imitate or weight is not None or student):
            phase = phase.model_copy(update={"teacher": args.teacher or phase.teacher,
                                             "imitate_phases": imitated or phase.imitate_phases,
                                             "teacher_value_weight": phase.teacher_value_weight
                                             if weight is None else weight, **student})
        if phase.kind is PhaseName.BOOTSTRAP and args.leaf_games is not None:
            phase = phase.model_copy(update={"leaf_games": args.leaf_games})
        if expert_spec is not None and phase.kind in EXPERT_ITERATION_PHASES:
            phase = phase.model_copy(update={"expert_iteration": expert_spec})
        phases.append(phase)
    if args.distill is not None:  # the preset's own distill phase is replaced (0: dropped)
        phases = [p for p in phases if p.kind is not PhaseName.DISTILL]
        if args.distill:
            phases.append(pc.phase_settings(PhaseName.DISTILL, games=args.distill,
                                            parallel_games=min(256, args.distill)))
    return _Plan(preset_name=args.preset, preset=preset, run=run, phases=phases, gate=gate_spec,
                 eval_games=args.eval_games or preset.eval_games)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro train`; returns the exit code."""
    args = _parser().parse_args(argv)
    from rich.console import Console

    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning.phases import execute
    from ouroboros.trainer.observability import preflight

    logging.basicConfig(level=logging.WARNING)
    try:
        if not 0 < args.progress_every <= 30:
            raise _Usage(f"--progress-every: {args.progress_every} is not in (0, 30] seconds")
        try:
            thresholds = _common.preflight_thresholds(args)
        except ValueError as exc:
            raise _Usage(str(exc)) from None
        plan = _plan(args)
        try:
            placement = execute.configure_process(plan.run)
        except ValueError as exc:  # e.g. cuda asked for where torch sees no GPU
            field, _, why = str(exc).partition(": ")
            raise _Usage(f"--{field.replace('_', '-')}: {why}") from None
    except _Usage as exc:
        print(f"ouro train: {exc}", file=sys.stderr)
        return 2
    run, store_url = plan.run, plan.run.store
    console = Console(stderr=True)
    shortfalls = preflight.check(preflight.measure(store_url if "://" not in store_url else None), thresholds)
    if shortfalls:
        console.print(f"ouro train: {preflight.describe(shortfalls)}", markup=False, highlight=False)
        return 1
    writer = _tensorboard(Path(args.logdir) / run.run, console)
    console.print(f"[bold]ouro train[/] preset {args.preset} ({plan.preset.description}); run {run.run}; "
                  f"network {plan.preset.network.name}; {placement.describe()}; store {store_url}")
    started = time.monotonic()
    outcomes, duels = _train_and_measure(plan, placement, writer, console, args.progress_every)
    store = ArtifactStore(store_url)
    # the final duels, for `ouro report` (the strength table with its intervals)
    store.write_json(f"runs/{run.run}/strength.json", {
        "player": plan.gate.served_player,
        "opponents": [{"opponent": d.opponent, "games": d.games, "wins": d.wins, "draws": d.draws,
                       "losses": d.losses, "player": d.player} for d in duels]})
    version, champion, judgement = _register_and_gate(plan, store, outcomes[-1], duels, args, console)
    if writer is not None:
        writer.close()
    summary = _summary(plan, outcomes, duels, version, champion, judgement, store,
                       seconds=time.monotonic() - started,
                       tensorboard=str(Path(args.logdir) / run.run) if writer is not None else None)
    _print_summary(summary, duels, args.json)
    return 0


def _train_and_measure(plan: _Plan, placement, writer, console, interval: float):
    """Run the plan's phases in order, then the final duels of the last phase's network against
    random-safe and the heuristic, played as the gate plays it. Returns (phase outcomes, duels)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.evaluation import strength
    from ouroboros.trainer.learning.phases import execute, runner
    from ouroboros.trainer.observability import progress

    run = plan.run
    outcomes: list[runner.PhaseOutcome] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # On a terminal, rich bars; to a pipe or a log file, a progress line every --progress-every seconds.
    tty = console.is_terminal
    lines = () if tty else (progress.line_sink(lambda text: print(text, file=sys.stderr, flush=True)),)
    with Progress(*columns, console=console, disable=not tty) as bars:
        reporter = RichReporter(bars, writer)
        for phase in plan.phases:
            outcome = execute.execute(run, phase, reporter, sinks=lines, interval=interval, placement=placement)
            outcomes.append(outcome)
            bars.console.print(f"[green]{phase.kind.value}[/] {outcome.seconds:.0f} s: {outcome.message}")
        store = ArtifactStore(run.store)
        net = runner.load_weights(store, outcomes[-1].artifacts["weights"].key)
        duels = []
        with tempfile.TemporaryDirectory(prefix="ouro-train-") as folder:
            model = Path(folder) / "candidate.onnx"
            candidate = outcomes[-1].candidate
            model.write_bytes(store.get_bytes(candidate.key, expected_sha256=candidate.sha256))
            me = strength.served_player(net, model, plan.gate)
            for opponent in ("random-safe", "heuristic"):
                task = bars.add_task(f"evaluate {me.name} vs {opponent}", total=1)
                duels.append(strength.duel(me, opponent, game_config(run.game), plan.eval_games,
                                           max_turns=run.game.max_turns))
                bars.advance(task)
    for d in duels:
        if writer is not None:
            writer.add_scalar(f"strength/vs_{d.opponent}", d.score, 0)
    return outcomes, duels


def _register_and_gate(plan: _Plan, store, last, duels, args, console):
    """Register the last phase's candidate with the final duels' metrics, then (unless --no-promote) gate it
    against its game's champion through the one promotion path. Returns (version, champion or None,
    judgement or None)."""
    from ouroboros.trainer.evaluation import promotion, strength
    from ouroboros.trainer.learning.phases import runner

    run = plan.run
    metrics = {win_rate_vs(d.opponent): d.score for d in duels}
    metrics.update(strength.elo_metrics({d.opponent: d.record for d in duels}))
    version = runner.register_candidate(store, last.candidate, run, {**last.metrics, **metrics})
    champion, judgement = None, None
    if not args.no_promote:
        console.print(f"gate: {version.id} against the champion of {run.game.key} ...")
        registry = promotion.open_registry(store)
        judgement = promotion.judge(registry, run.game.key, version.id, plan.gate,
                                    promotion.GateRun(max_turns=run.game.max_turns), run.game)
        if judgement.verdict is GateVerdict.PROMOTE or args.force_promote:
            champion = promotion.put_in_force(
                registry, judgement, by="ouro train", run=run.run, force=args.force_promote,
                reason="" if judgement.verdict is GateVerdict.PROMOTE else
                f"ouro train --force-promote (gate: {judgement.verdict.value})")
    return version, champion, judgement


def _summary(plan: _Plan, outcomes, duels, version, champion, judgement, store, *, seconds: float,
             tensorboard: str | None) -> dict:
    """The run's summary: what `--json` prints and the table shows."""
    from ouroboros.trainer.evaluation import strength

    return {
        "run": plan.run.run, "preset": plan.preset_name, "seconds": round(seconds, 1),
        "phases": [{"phase": o.kind.value, "seconds": round(o.seconds, 1), "message": o.message,
                    "metrics": {k: round(v, 4) for k, v in {**o.metrics,
                                                            **strength.elo_metrics(o.records)}.items()}}
                   for o in outcomes],
        "player": plan.gate.served_player,
        "strength": [{"opponent": d.opponent, "player": d.player, "games": d.games, "wins": d.wins, "draws": d.draws,
                      "losses": d.losses, "score": round(d.score, 4),
                      "wilson95": [round(d.interval().lower, 4), round(d.interval().upper, 4)]} for d in duels],
        "version": version.id, "champion": champion.version if champion else None,
        "gate": None if judgement is None else {"verdict": judgement.verdict.value, "reasons": judgement.reasons,
                                                "champion_before": judgement.champion},
        "onnx": store.path(version.artifact), "sha256": version.sha256,
        "tensorboard": tensorboard,
    }


def _tensorboard(logdir: Path, console):
    """A SummaryWriter, or None (with a note) when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        console.print("[yellow]tensorboard is not installed: no scalar logs (pip install tensorboard)[/]")
        return None
    return SummaryWriter(log_dir=str(logdir))


def _print_summary(summary: dict, duels, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ouro train: run {summary['run']} ({summary['preset']}), {summary['seconds']:.0f} s")
    table.add_column("phase")
    table.add_column("time", justify="right")
    table.add_column("result")
    for p in summary["phases"]:
        table.add_row(p["phase"], f"{p['seconds']:.0f} s", p["message"])
    for d in duels:
        table.add_row("strength", "", d.describe())
    out = Console()
    out.print(table)
    if summary["gate"] is not None and summary["champion"] is None:
        out.print(f"gate: {summary['gate']['verdict']}: champion stays {summary['gate']['champion_before']}")
        for reason in summary["gate"]["reasons"]:
            out.print(f"  - {reason}")
    out.print(f"champion {summary['champion'] or '(not promoted)'}: version {summary['version']}\n"
              f"  onnx   {summary['onnx']}\n  sha256 {summary['sha256']}")
    if summary["tensorboard"]:
        out.print(f"  {_beside_python('tensorboard')} --logdir {summary['tensorboard']}")


def _beside_python(tool: str) -> str:
    """``tool``'s script as this interpreter's environment installed it (``.venv/bin/tensorboard``), where it
    exists: a virtual environment's scripts are not on the PATH unless it is activated."""
    script = Path(sys.executable).parent / tool
    return str(script) if script.exists() else tool


if __name__ == "__main__":
    sys.exit(main())
