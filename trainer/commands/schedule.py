"""`ouro schedule`: TrainingSchedules on one machine, and "run now" in a cluster.

    ouro schedule run nightly.yaml --preset quick        # run `ouro train` whenever the schedule says
    ouro schedule status                                 # each schedule: state, running, next times
    ouro schedule history [--schedule nightly] [--json]  # every execution: trigger, start, end, success, score
    ouro schedule trigger nightly                        # run now (locally: recorded for the runner)
    ouro schedule trigger nightly --cluster -n team-a    # run now in a cluster: sets the annotation

`run` is `trainer/scheduling/runner.py` around the operator's own decision
(`ouroboros.operator.scheduling`); the history lives in SQLite (`--db`,
default ./runs/schedule.db). `--clock-file` reads "now" from a file, for
tests and drills. Before its first pass, `run` checks free memory and free
disk under a local store as `ouro train` does (`--min-free-memory`,
`--min-free-disk`; 0 turns a check off) and refuses to start with both
numbers and the threshold; each execution's `ouro train` gets the same
thresholds, so a schedule that runs for weeks checks before every run.
Exit status: 0, 1 for a refusal (not enough memory or disk), or 2 for a bad
document or argument (`field: reason` on stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path

import yaml
from pydantic import ValidationError

from ouroboros.operator import clock as clocks
from ouroboros.operator.resources.trainingschedule import MANUAL_TRIGGER_ANNOTATION
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.commands import _common
from ouroboros.trainer.scheduling import history as hist
from ouroboros.trainer.scheduling import runner

DEFAULT_DB = "./runs/schedule.db"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouro schedule", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=DEFAULT_DB, help=f"SQLite history (default {DEFAULT_DB})")
    common.add_argument("--clock-file", default=None, help="read 'now' (ISO 8601) from this file (tests, drills)")

    r = sub.add_parser("run", parents=[common], help="run a TrainingSchedule document on this machine")
    r.add_argument("file", type=Path, help="a TrainingSchedule YAML document (what kubectl apply takes)")
    r.add_argument("--store", default=reg.default_store(), help="artifact store of the runs (default ./runs/registry)")
    r.add_argument("--preset", default="quick", help="ouro train --preset of each execution (default quick)")
    r.add_argument("--workdir", type=Path, default=Path("runs/schedule"), help="executions' output and logs")
    r.add_argument("--poll", type=float, default=30.0, help="seconds between passes at most (default 30)")
    r.add_argument("--until-idle", action="store_true", help="exit once nothing is due or running")
    r.add_argument("--max-passes", type=int, default=None, help="exit after this many passes")
    r.add_argument("--train-arg", action="append", default=[], help="extra argument for ouro train (repeatable)")
    _common.add_preflight_options(r)

    s = sub.add_parser("status", parents=[common], help="each schedule: state, running executions, next times")
    s.add_argument("--next", type=int, default=5, help="upcoming times to show (default 5)")

    h = sub.add_parser("history", parents=[common], help="every execution")
    h.add_argument("--schedule", default=None, help="only this schedule")
    h.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    t = sub.add_parser("trigger", parents=[common], help="start a run now")
    t.add_argument("name", help="the schedule's name")
    t.add_argument("--cluster", action="store_true",
                   help=f"set the annotation {MANUAL_TRIGGER_ANNOTATION} in the cluster (kubeconfig or in-cluster)")
    t.add_argument("-n", "--namespace", default="default", help="namespace of the schedule (with --cluster)")
    return p


def _load(path: Path) -> dict:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("kind") != "TrainingSchedule":
        raise ValueError(f"{path}: kind: expected a TrainingSchedule document")
    return document


def _run(args: argparse.Namespace, now_fn) -> int:  # type: ignore[no-untyped-def]
    from ouroboros.trainer.observability import preflight

    thresholds = _common.preflight_thresholds(args)  # ValueError naming the flag: exit 2
    document = _load(args.file)
    store = str(Path(args.store).resolve()) if "://" not in args.store else args.store
    shortfalls = preflight.check(preflight.measure(store if "://" not in store else None), thresholds)
    if shortfalls:
        print(f"ouro schedule run: {preflight.describe(shortfalls)}", file=sys.stderr)
        return 1
    options = runner.RunnerOptions(store=store, preset=args.preset, workdir=args.workdir,
                                   extra_args=(*_common.preflight_args(args), *args.train_arg))
    local = runner.LocalRunner(document, hist.History(args.db), options, now_fn)
    try:
        return local.run(args.poll, until_idle=args.until_idle, max_passes=args.max_passes)
    except KeyboardInterrupt:
        return 0


def _history(args: argparse.Namespace) -> int:
    rows = hist.History(args.db).executions(args.schedule)
    if args.json:
        for ex in rows:
            print(json.dumps(ex.as_dict()))
        return 0
    print(f"{'schedule':<16} {'run':<36} {'trigger':<12} {'start':<20} {'end':<20} {'ok':<4} score")
    for ex in rows:
        ok = "-" if ex.success is None else ("yes" if ex.success else "no")
        score = "-" if ex.champion_score is None else f"{ex.champion_score:.3f}"
        print(f"{ex.schedule:<16} {ex.name:<36} {ex.trigger:<12} {hist.iso(ex.started_at):<20} "
              f"{hist.iso(ex.finished_at) or '(running)':<20} {ok:<4} {score}")
    return 0


def _trigger(args: argparse.Namespace, now: datetime) -> int:
    value = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not args.cluster:
        value = hist.History(args.db).request_manual(args.name, now)
        print(f"schedule {args.name}: manual run requested ({value}); `ouro schedule run` starts it")
        return 0
    try:
        from ouroboros.operator.kube import ApiError, KubeClient
    except ImportError as exc:  # the trainer image has no Kubernetes client
        print(f"ouro schedule trigger --cluster: needs the Kubernetes client (pip install "
              f"'ouroboros[operator]'), or use kubectl annotate trainingschedule {args.name} "
              f"{MANUAL_TRIGGER_ANNOTATION}=$(date -u +%FT%TZ) --overwrite ({exc})", file=sys.stderr)
        return 2
    from ouroboros.operator.resources import GROUP, VERSION

    path = f"/apis/{GROUP}/{VERSION}/namespaces/{args.namespace}/trainingschedules/{args.name}"
    try:
        KubeClient.from_environment().request(
            "PATCH", path, {"metadata": {"annotations": {MANUAL_TRIGGER_ANNOTATION: value}}},
            content_type="application/merge-patch+json")
    except ApiError as exc:
        print(f"ouro schedule trigger: {exc}", file=sys.stderr)
        return 1
    print(f"trainingschedule {args.namespace}/{args.name}: {MANUAL_TRIGGER_ANNOTATION}={value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro schedule`; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    now_fn = clocks.clock(args.clock_file)
    try:
        if args.command == "run":
            return _run(args, now_fn)
        if args.command == "history":
            return _history(args)
        if args.command == "status":
            lines = runner.status_lines(hist.History(args.db), now_fn(), args.next)
            print("\n".join(lines) if lines else f"no schedule has run with --db {args.db}")
            return 0
        return _trigger(args, now_fn())
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"ouro schedule: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ouro schedule: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
