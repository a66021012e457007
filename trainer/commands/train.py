"""`ouro train --preset quick`: the main job: bootstrap -> hybrid -> self_play on this machine.

The phases run in-process through the same ``phases.execute`` that a
Kubernetes Job's ``ouro phase`` runs, on a local artifact store (default
``./runs/registry``, the model registry's default too). At the end the final
network is measured against random-safe and the heuristic teacher
(seat-swapped pairs, Wilson 95% intervals), registered, and promoted to
champion of its game in the registry. Progress bars (rich) cover every long
step; scalars go to TensorBoard event files under ``--logdir``.

Run the same command with the same ``--run`` again to resume an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.learning import networks
from ouroboros.trainer.learning.phases import config as pc

DEFAULT_LOGDIR = "./runs/tensorboard"


class Preset(BaseModel):
    """A named training budget: the game, the network, and each phase's settings."""

    model_config = ConfigDict(frozen=True)

    description: str = Field(description="What the preset is for.")
    expected_minutes: float = Field(description="Measured (or, where said, estimated) wall time here.")
    game: pc.GameSettings = Field(default_factory=pc.GameSettings, description="The game.")
    network: networks.NetworkConfig = Field(description="The network.")
    phases: list[pc.PhaseSettings] = Field(description="Phases, in order.")
    eval_games: int = Field(200, ge=2, description="Duels against each baseline at the end.")


_SIMPLE = dict(architecture="cnn_simple", attention_layers=0)

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        description="seconds: every phase end to end on a 7x7 board (tests)",
        expected_minutes=0.5,
        game=pc.GameSettings(width=7, height=7, max_turns=60),
        network=networks.NetworkConfig(**_SIMPLE, blocks=2, channels=16),
        phases=[
            pc.phase_settings(pc.PhaseKind.BOOTSTRAP, games=8, parallel_games=8, batch_size=64, epochs=1),
            pc.phase_settings(pc.PhaseKind.HYBRID, games=8, parallel_games=8, batch_size=64, epochs=1),
            pc.phase_settings(pc.PhaseKind.SELF_PLAY, games=8, parallel_games=8, batch_size=64, epochs=1),
        ],
        eval_games=8,
    ),
    "quick": Preset(
        description="about 9.5 minutes on 2 shared CPU cores: a champion that beats random-safe",
        expected_minutes=9.5,
        network=networks.NetworkConfig(**_SIMPLE, blocks=6, channels=32),
        phases=[
            pc.phase_settings(pc.PhaseKind.BOOTSTRAP, games=800, parallel_games=200, epochs=2,
                              batch_size=256, learning_rate=2e-3, replay_window=200_000),
            pc.phase_settings(pc.PhaseKind.HYBRID, games=128, iterations=4, parallel_games=128,
                              heuristic_ratio=0.5),
            pc.phase_settings(pc.PhaseKind.SELF_PLAY, games=128, iterations=6, parallel_games=128),
        ],
    ),
    "medium": Preset(
        description="about 35 minutes on 2 shared CPU cores: the quick network with 2.5x the teacher "
                    "games and 2.5x the reinforcement learning, aiming past the heuristic teacher",
        expected_minutes=35,
        network=networks.NetworkConfig(**_SIMPLE, blocks=6, channels=32),
        phases=[
            pc.phase_settings(pc.PhaseKind.BOOTSTRAP, games=2000, parallel_games=250, epochs=2,
                              batch_size=256, learning_rate=2e-3, replay_window=400_000),
            pc.phase_settings(pc.PhaseKind.HYBRID, games=128, iterations=10, parallel_games=128,
                              heuristic_ratio=0.5),
            pc.phase_settings(pc.PhaseKind.SELF_PLAY, games=128, iterations=16, parallel_games=128),
        ],
        eval_games=400,
    ),
    "long": Preset(
        description="about 8 hours on 2 CPU cores (estimated from benchmarks.training, not run): "
                    "the default attention network, aiming past the heuristic teacher",
        expected_minutes=480,
        network=networks.NetworkConfig(),
        phases=[
            pc.phase_settings(pc.PhaseKind.BOOTSTRAP, games=4000, parallel_games=256, epochs=3),
            pc.phase_settings(pc.PhaseKind.HYBRID, games=256, iterations=20, parallel_games=256,
                              heuristic_ratio=0.5),
            pc.phase_settings(pc.PhaseKind.SELF_PLAY, games=256, iterations=40, parallel_games=256),
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
    p.add_argument("--store", default=reg.default_store(),
                   help="artifact store and model registry (default %(default)s)")
    p.add_argument("--run", default=None, help="run id; the same id resumes (default: local-PRESET-TIME)")
    p.add_argument("--logdir", default=DEFAULT_LOGDIR, help="TensorBoard event files go to LOGDIR/RUN")
    p.add_argument("--seed", type=int, default=0, help="root seed")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's choice)")
    p.add_argument("--eval-games", type=int, default=None, help="duels per baseline at the end")
    p.add_argument("--no-promote", action="store_true", help="register the model but leave the champion")
    p.add_argument("--teacher", default=None,
                   help="bootstrap teacher as a player spec (default heuristic; e.g. search:ms=20)")
    p.add_argument("--imitate", default=None, metavar="PHASES",
                   help="comma-separated replay folders of the run that bootstrap also imitates "
                        "(e.g. imported, after `ouro data import --run RUN`)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro train`; returns the exit code."""
    args = _parser().parse_args(argv)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ouroboros.trainer.artifacts import registry as model_registry
    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning.phases import execute, runner, strength

    logging.basicConfig(level=logging.WARNING)
    preset = PRESETS[args.preset]
    run_name = args.run or f"local-{args.preset}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    store_url = str(Path(args.store).resolve()) if "://" not in args.store else args.store
    run = pc.RunSettings(run=pc.run_id(run_name), store=store_url, game=preset.game,
                         network=preset.network, seed=args.seed, threads=args.threads)
    console = Console(stderr=True)
    writer = _tensorboard(Path(args.logdir) / run.run, console)
    console.print(f"[bold]ouro train[/] preset {args.preset} ({preset.description}); run {run.run}; "
                  f"network {preset.network.name}; store {store_url}")
    started = time.monotonic()
    outcomes: list[runner.PhaseOutcome] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        reporter = RichReporter(progress, writer)
        for phase in preset.phases:
            if phase.kind is pc.PhaseKind.BOOTSTRAP and (args.teacher or args.imitate):
                phase = phase.model_copy(update={
                    "teacher": args.teacher or phase.teacher,
                    "imitate_phases": tuple(filter(None, (args.imitate or "").split(","))) or phase.imitate_phases})
            outcome = execute.execute(run, phase, reporter)
            outcomes.append(outcome)
            progress.console.print(f"[green]{phase.kind.value}[/] {outcome.seconds:.0f} s: {outcome.message}")
        net = runner.load_weights(ArtifactStore(store_url), outcomes[-1].artifacts["weights"].key)
        eval_games = args.eval_games or preset.eval_games
        duels = []
        for opponent in ("random-safe", "heuristic"):
            task = progress.add_task(f"evaluate vs {opponent}", total=1)
            duels.append(strength.duel(net, opponent, run.game.engine(), eval_games,
                                       max_turns=run.game.max_turns))
            progress.advance(task)
    for d in duels:
        if writer is not None:
            writer.add_scalar(f"strength/vs_{d.opponent}", d.score, 0)
    metrics = {f"scoreVs{d.opponent.title().replace('-', '')}": d.score for d in duels}
    store = ArtifactStore(store_url)
    version = runner.register_candidate(store, outcomes[-1], run, {**outcomes[-1].metrics, **metrics})
    champion = None
    if not args.no_promote:
        champion = model_registry.Registry(store).promote(
            run.game.key, version.id, by="ouro train", run=run.run,
            reason=f"ouro train --preset {args.preset}: " + "; ".join(d.describe() for d in duels))
    if writer is not None:
        writer.close()
    summary = {
        "run": run.run, "preset": args.preset, "seconds": round(time.monotonic() - started, 1),
        "phases": [{"phase": o.kind.value, "seconds": round(o.seconds, 1), "message": o.message,
                    "metrics": {k: round(v, 4) for k, v in o.metrics.items()}} for o in outcomes],
        "strength": [{"opponent": d.opponent, "games": d.games, "wins": d.wins, "draws": d.draws,
                      "losses": d.losses, "score": round(d.score, 4),
                      "wilson95": [round(d.interval().lower, 4), round(d.interval().upper, 4)]} for d in duels],
        "version": version.id, "champion": champion.version if champion else None,
        "onnx": store.path(version.artifact), "sha256": version.sha256,
        "tensorboard": str(Path(args.logdir) / run.run) if writer is not None else None,
    }
    _print_summary(summary, duels, args.json)
    return 0


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
    out.print(f"champion {summary['champion'] or '(not promoted)'}: version {summary['version']}\n"
              f"  onnx   {summary['onnx']}\n  sha256 {summary['sha256']}")
    if summary["tensorboard"]:
        out.print(f"  tensorboard --logdir {summary['tensorboard']}")


if __name__ == "__main__":
    sys.exit(main())
