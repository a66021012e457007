"""`ouro champion`: the Champion resource's verbs, and the registry Jobs its controller runs.

For people (they change the Champion resource with `kubectl`, which must be on
PATH and configured; the operator does the rest):

    ouro champion approve NAME [--run RUN] [--by USER] [-n NAMESPACE]   # promote the pending candidate
    ouro champion reject NAME [--run RUN] [--by USER] [-n NAMESPACE]    # refuse it
    ouro champion rollback NAME [VERSION] [-n NAMESPACE]                # pin VERSION (default: the previous one)
    ouro champion unpin NAME [-n NAMESPACE]                             # follow promotions again

For the operator's Jobs (`contract.champion`):

    ouro champion job sync|promote|pin|unpin|check --game KEY --store URL --result PATH [...]

`job` changes the registry through `evaluation.champion_jobs` and writes the
pointer afterwards as a RegistryReport to PATH (the pod's termination log).
Exit codes: 0 done, 1 refused (pinned, unknown version, corrupt model), 2 bad
arguments or kubectl failing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pydantic import ValidationError

from ouroboros.contract.champion import ChampionOperation
from ouroboros.contract.promotion import GateStatistics, PromotionSpec
from ouroboros.trainer.agents.neural import ModelContractError
from ouroboros.trainer.artifacts.registry import RegistryError
from ouroboros.trainer.artifacts.store import ArtifactError

ANNOTATION_APPROVE = "ouroboros.dev/approve"
ANNOTATION_REJECT = "ouroboros.dev/reject"
ANNOTATION_BY = "ouroboros.dev/decided-by"
"""The same words as ``operator.championing`` (the trainer does not import the operator)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ouro champion", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb, help_ in (("approve", "promote the candidate awaiting approval"),
                        ("reject", "refuse the candidate awaiting approval")):
        p = sub.add_parser(verb, help=help_)
        p.add_argument("name", help="Champion resource name")
        p.add_argument("--run", help="the pending run (default: status.pending.run)")
        p.add_argument("--by", default=None, help="who decides (default: $USER)")
        p.add_argument("-n", "--namespace", default=None)
    p = sub.add_parser("rollback", help="pin a version from the history (spec.pinnedVersion)")
    p.add_argument("name")
    p.add_argument("version", nargs="?", help="version to put in force (default: the one before the current)")
    p.add_argument("-n", "--namespace", default=None)
    p = sub.add_parser("unpin", help="unset spec.pinnedVersion: promotions take effect again")
    p.add_argument("name")
    p.add_argument("-n", "--namespace", default=None)
    p = sub.add_parser("job", help="a registry operation (what the operator's Jobs run)")
    p.add_argument("operation", choices=[o.value for o in ChampionOperation])
    p.add_argument("--game", required=True, help="game key, e.g. standard-11x11-2p")
    p.add_argument("--store", default=None, help="artifact store URL ($OURO_STORAGE_URL overrides)")
    p.add_argument("--result", type=Path, required=True, help="where to write the RegistryReport JSON")
    p.add_argument("--version")
    p.add_argument("--run")
    p.add_argument("--by", default="ouroboros-operator")
    p.add_argument("--reason", default="")
    p.add_argument("--against", help="check: the previous champion")
    p.add_argument("--games", type=int, default=20, help="check: smoke games")
    p.add_argument("--min-win-rate", type=float, default=0.45, help="check: roll back under this score")
    p.add_argument("--player", default="policy", metavar="PLAYER",
                   help="check: how both versions play, as the Champion's gate plays them: policy or "
                        "nsearch:ms=N[,visits=N] (default: %(default)s)")
    p.add_argument("--statistics", help="promote: the gate's statistics (GateStatistics JSON)")
    return parser


def _kubectl(*args: str, namespace: str | None) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is not on PATH")
    line = [kubectl, *args] + (["-n", namespace] if namespace else [])
    out = subprocess.run(line, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def _champion(name: str, namespace: str | None) -> dict:
    return json.loads(_kubectl("get", "champion", name, "-o", "json", namespace=namespace))


def _decide(args: argparse.Namespace, annotation: str) -> int:
    run = args.run
    if run is None:
        pending = (_champion(args.name, args.namespace).get("status") or {}).get("pending")
        if not pending:
            print(f"ouro champion {args.verb}: champion {args.name} has no candidate awaiting approval",
                  file=sys.stderr)
            return 1
        run = pending["run"]
    by = args.by or os.environ.get("USER") or getpass.getuser()
    _kubectl("annotate", "--overwrite", "champion", args.name, f"{annotation}={run}", f"{ANNOTATION_BY}={by}",
             namespace=args.namespace)
    print(f"champion {args.name}: candidate of run {run} {args.verb}d by {by}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    version = args.version
    if version is None:
        status = _champion(args.name, args.namespace).get("status") or {}
        current = status.get("version")
        history = status.get("history") or []
        version = next((e.get("previous") for e in history if e.get("version") == current and e.get("previous")
                        and e.get("reason") in ("Initial", "Promoted", "RolledBack", "Pinned")), None)
        if version is None:
            print(f"ouro champion rollback: champion {args.name} has no previous version in its history",
                  file=sys.stderr)
            return 1
    patch = json.dumps({"spec": {"pinnedVersion": version}})
    _kubectl("patch", "champion", args.name, "--type=merge", "-p", patch, namespace=args.namespace)
    print(f"champion {args.name}: spec.pinnedVersion = {version}")
    return 0


def _job(args: argparse.Namespace) -> int:
    from ouroboros.trainer.evaluation import champion_jobs

    # the Champion's CRD bounds these (games 0 means no check Job at all); the command line must too: a
    # threshold above 1 would roll back every champion, a count under 1 play a silent 2 games
    if not 1 <= args.games <= 100_000:
        raise ValueError(f"--games: 1 to 100,000 smoke games (spec.check.games), got {args.games}")
    if not 0 <= args.min_win_rate <= 1:
        raise ValueError(f"--min-win-rate: a score between 0 and 1, got {args.min_win_rate:g}")
    statistics = GateStatistics.model_validate_json(args.statistics) if args.statistics else None
    request = champion_jobs.Request(
        operation=ChampionOperation(args.operation), game=args.game, version=args.version, run=args.run,
        by=args.by, reason=args.reason, against=args.against, games=args.games,
        min_win_rate=args.min_win_rate, statistics=statistics,
        gate=PromotionSpec().with_served_player(args.player, "--player"))
    store = os.environ.get("OURO_STORAGE_URL") or args.store
    if not store:
        raise ValueError("--store: required (or $OURO_STORAGE_URL)")
    report = champion_jobs.perform(request, store)
    text = champion_jobs.encode(report)
    args.result.write_bytes(text)
    print(report.message)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro champion`; returns the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.verb == "job":
            return _job(args)
        if args.verb in ("approve", "reject"):
            return _decide(args, ANNOTATION_APPROVE if args.verb == "approve" else ANNOTATION_REJECT)
        if args.verb == "rollback":
            return _rollback(args)
        _kubectl("patch", "champion", args.name, "--type=merge", "-p", '{"spec":{"pinnedVersion":null}}',
                 namespace=args.namespace)
        print(f"champion {args.name}: unpinned")
        return 0
    except (RegistryError, ArtifactError, ModelContractError) as exc:
        print(f"ouro champion {args.verb}: {exc}", file=sys.stderr)
        return 1
    except (ValueError, ValidationError, RuntimeError) as exc:
        print(f"ouro champion {args.verb}: {exc}", file=sys.stderr)
        return 2
