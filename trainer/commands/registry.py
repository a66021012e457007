"""`ouro registry`: list, show, add, verify, promote, roll back and pin model versions.

Thin wiring over :mod:`ouroboros.trainer.artifacts.registry` and the one
promotion path, :mod:`ouroboros.trainer.evaluation.promotion`: parse, call,
print. Every verb that puts a version in force (promote, rollback, pin) goes
through a registry that refuses models that do not load. Humans get rich
tables; ``--json`` prints one JSON document for scripts and the operator. Exit
codes: see :mod:`._common` (3 for a corrupt or unloadable model).
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ouroboros.contract.game import GameKey
from ouroboros.contract.promotion import (
    BaselineSpec,
    GateMethod,
    GatePlayer,
    PromotionSpec,
    ReadinessSpec,
)
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.commands import _common
from ouroboros.trainer.commands._common import EXIT_REFUSED


def _user() -> str:
    try:
        return os.environ.get("OURO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _pairs(items: list[str], what: str, number: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} must look like NAME=VALUE, got {item!r}")
        if number:
            try:
                out[key] = float(value)
            except ValueError:
                raise ValueError(f"{what} {key!r} must be a number, got {value!r}") from None
            if not math.isfinite(out[key]):  # no JSON can hold NaN or Infinity: the record would not be JSON
                raise ValueError(f"{what} {key!r} must be a finite number, got {value!r}")
        else:
            out[key] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    common = argparse.ArgumentParser(add_help=False)
    _common.add_store_option(common, default=argparse.SUPPRESS)  # else the verb's default hides a --store given before it
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--by", default=_user(), help="who makes the change (default: $OURO_USER)")
    who.add_argument("--reason", default="", help="why, recorded in the champion's history")

    parser = argparse.ArgumentParser(
        prog="ouro registry",
        description="Model versions and champions in an artifact store.",
        epilog=_common.EXIT_CODES_EPILOG,
    )
    _common.add_store_option(parser)  # before the verb (`ouro registry --store URL list`) or after it
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", parents=[common], help="list versions (and champions)")
    p.add_argument("--game", help="only versions for this game configuration")

    p = sub.add_parser("show", parents=[common], help="show a version, or a game's champion")
    p.add_argument("version", nargs="?", help="version id (omit with --game for the champion)")
    p.add_argument("--game", help="game configuration, e.g. standard-11x11-2p")

    p = sub.add_parser("add", parents=[common], help="register a model file as a new version")
    p.add_argument("file", type=Path, help="the model artifact (e.g. an ONNX file)")
    p.add_argument("--arch", required=True, help="architecture name")
    p.add_argument("--run", required=True, help="training run that produced it")
    p.add_argument("--phase", required=True, help="training phase that produced it")
    p.add_argument("--game", help="game configuration it was trained for")
    p.add_argument("--id", dest="version_id", help="version id (default: time and run)")
    p.add_argument("--metric", action="append", default=[], help="NAME=NUMBER (repeatable)")
    p.add_argument("--meta", action="append", default=[], help="NAME=TEXT (repeatable)")

    p = sub.add_parser("verify", parents=[common], help="check a version's sha256")
    p.add_argument("version")

    p = sub.add_parser("promote", parents=[common, who], help="make a version the champion")
    p.add_argument("version")
    p.add_argument("--game", required=True)
    p.add_argument("--run", help="training run (default: the version's)")
    p.add_argument("--stats", type=Path, help="JSON file of gate statistics to record")
    g = p.add_argument_group("promotion gate (--gate): a tournament against the champion and a readiness check")
    g.add_argument("--gate", action="store_true",
                   help="promote only if the candidate beats the champion and is production-ready")
    g.add_argument("--sprt", metavar="ELO0,ELO1[,ALPHA,BETA]", default="0,35",
                   help="the SPRT the candidate must pass (default: %(default)s)")
    g.add_argument("--min-win-rate", type=float, default=None,
                   help="instead of the SPRT: a fixed-budget score with its Wilson lower bound >= 0.5")
    g.add_argument("--games", type=int, default=400, help="game budget (default: %(default)s)")
    g.add_argument("--min-games", type=int, default=100, help="no SPRT decision before (default: %(default)s)")
    g.add_argument("--workers", type=int, default=1, help="tournament worker processes (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the first pair (default: %(default)s)")
    g.add_argument("--max-p99-ms", type=float, default=10.0, help="readiness: p99 latency limit (default: %(default)s)")
    g.add_argument("--max-memory-mb", type=float, default=50.0,
                   help="readiness: session peak memory limit (default: %(default)s)")
    g.add_argument("--latency-calls", type=int, default=1000, help="readiness: timed calls per round")
    g.add_argument("--baseline", action="append", default=[], metavar="PLAYER[:GAMES[:MAX_REGRESSION[:MIN_WIN_RATE]]]",
                   help="a fixed opponent (random-safe, greedy, heuristic, search) that candidate and champion "
                   "both play on the same seeds; a significant regression rejects (repeatable; defaults 100 games, "
                   "0.05, no floor)")
    g.add_argument("--player", default=GatePlayer.POLICY.value, metavar="PLAYER",
                   help="how both sides play, as they are served: policy (`ouro serve --player champion`) or "
                   "nsearch[:ms=N,visits=N,endgame=X] (`champion+nsearch:ms=N`), the options overriding --move-budget-ms "
                   "and --max-visits (default: %(default)s)")
    g.add_argument("--move-budget-ms", type=float, default=100.0,
                   help="--player nsearch: milliseconds per move (default: %(default)s)")
    g.add_argument("--max-visits", type=int, default=0,
                   help="--player nsearch: most descents per move, 0 for none (default: %(default)s)")
    g.add_argument("--game-logs", metavar="PREFIX",
                   help="keep every gate game in the store under PREFIX as an official-CLI JSONL log")

    p = sub.add_parser("rollback", parents=[common, who], help="return to an earlier champion")
    p.add_argument("version", nargs="?", default=reg.PREVIOUS, help="version id or 'previous'")
    p.add_argument("--game", required=True)

    p = sub.add_parser("pin", parents=[common, who], help="install a version and freeze it")
    p.add_argument("version")
    p.add_argument("--game", required=True)

    p = sub.add_parser("unpin", parents=[common, who], help="lift a pin")
    p.add_argument("--game", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `ouro registry ...`; returns the exit code."""
    args = _common.parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    from ouroboros.trainer.evaluation import promotion

    try:  # a bad flag is a usage error (2), found before the registry is opened
        _read_flags(args)
    except ValueError as err:
        _common.error("ouro registry", err)
        return _common.EXIT_USAGE
    return _common.guarded("ouro registry",
                           lambda: _COMMANDS[args.command](promotion.open_registry(args.store), args))


def _read_flags(args: argparse.Namespace) -> None:
    """Check the verb's flags and read the files they name into ``args`` (``metrics``, ``metadata``,
    ``statistics``); ValueError naming the flag."""
    if args.command == "add":
        if not args.file.exists():
            raise ValueError(f"no such file: {args.file}")
        if not args.file.is_file():  # a directory, or a device or pipe that may never end
            raise ValueError(f"{args.file} is not a regular file (a model artifact is one file)")
        if args.version_id is not None:
            try:
                reg.check_version_id(args.version_id)
            except ValueError as err:
                raise ValueError(f"--id: {err}") from None
        args.metrics = _pairs(args.metric, "--metric", number=True)
        args.metadata = _pairs(args.meta, "--meta", number=False)
    if args.command == "promote":
        if args.gate and args.stats is not None:  # the gate records the statistics it measured
            raise ValueError("--stats records the statistics of a manual promotion; with --gate the gate's own "
                             "are recorded: pass one or the other")
        if args.gate:
            promotion_spec(args)
        args.statistics = {} if args.stats is None else _statistics(args.stats)
    game = getattr(args, "game", None)
    if game is not None:
        try:
            GameKey.parse(game)
        except ValueError as err:
            raise ValueError(f"--game: {err}") from None


def _finite(text: str) -> float:
    """A JSON number as a float; ValueError for one no JSON document can hold (1e999, NaN, Infinity)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # past Python's 4,300-digit limit
        raise ValueError(f"an integer of {len(text)} digits is too long") from None


def _statistics(path: Path) -> dict[str, Any]:
    """The JSON object of ``--stats PATH``, every number finite; ValueError naming --stats."""
    if path.exists() and not path.is_file():  # a directory, or a device or pipe that may never end
        raise ValueError(f"--stats: cannot read {path}: not a regular file")
    try:
        statistics = json.loads(path.read_text(), parse_float=_finite, parse_int=_integer, parse_constant=_finite)
    except OSError as err:
        raise ValueError(f"--stats: cannot read {path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"--stats: {path} is not JSON: {err}") from None
    except ValueError as err:
        raise ValueError(f"--stats: {path}: {err}") from None
    except RecursionError:
        raise ValueError(f"--stats: {path} is nested too deeply") from None
    if not isinstance(statistics, dict):
        raise ValueError(f"--stats: {path} must hold a JSON object, not {type(statistics).__name__}")
    return statistics


def _emit(args: argparse.Namespace, document: Any, human: Any) -> int:
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True, default=str))
    else:
        _console().print(human)
    return 0


def _console():  # type: ignore[no-untyped-def]
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200, soft_wrap=False)


def _champions(registry: reg.Registry) -> dict[str, list[str]]:
    """version id -> the games it is champion of."""
    out: dict[str, list[str]] = {}
    for game in registry.games():
        version = registry.champion(game).version
        if version:
            out.setdefault(version, []).append(game)
    return out


def _cmd_list(registry: reg.Registry, args: argparse.Namespace) -> int:
    from rich.table import Table

    versions = registry.versions(args.game)
    champions = _champions(registry)
    doc = [{**v.model_dump(mode="json"), "champion_of": champions.get(v.id, [])} for v in versions]
    table = Table(title=f"model versions in {registry.store.url}")
    for col in (
        "id",
        "architecture",
        "run",
        "phase",
        "game",
        "size",
        "sha256",
        "created",
        "champion of",
    ):
        table.add_column(col, no_wrap=col in ("id", "sha256"))
    for v in versions:
        table.add_row(
            v.id,
            v.architecture,
            v.run,
            v.phase,
            v.game or "-",
            f"{v.size:,}",
            v.sha256[:12],
            f"{v.created_at:%Y-%m-%d %H:%M:%S}",
            ", ".join(champions.get(v.id, [])),
        )
    return _emit(args, doc, table if versions else "no model versions")


def _cmd_show(registry: reg.Registry, args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.version:
        v = registry.get(args.version)
        table = Table(title=f"version {v.id}", show_header=False)
        for name, value in v.model_dump(mode="json").items():
            shown = json.dumps(value) if isinstance(value, dict) else str(value)
            table.add_row(name, "-" if value is None else shown)
        return _emit(args, v.model_dump(mode="json"), table)
    if not args.game:
        raise ValueError("show needs a VERSION or --game KEY")
    state = registry.champion(args.game)
    table = Table(
        title=f"champion of {state.game}: {state.version or 'none'}"
        + (f" (pinned to {state.pinned_version})" if state.pinned_version else "")
    )
    for col in ("when", "action", "version", "previous", "by", "run", "reason"):
        table.add_column(col)
    for r in state.history:
        table.add_row(
            f"{r.at:%Y-%m-%d %H:%M:%S}",
            r.action.value,
            r.version or "-",
            r.previous or "-",
            r.by,
            r.run or "-",
            r.reason,
        )
    return _emit(args, state.model_dump(mode="json"), table)


def _cmd_add(registry: reg.Registry, args: argparse.Namespace) -> int:
    from ouroboros.trainer.agents import neural

    neural.check_model(args.file.read_bytes(), args.game)  # one no server could load, or too small for --game: exit 3
    v = registry.register(
        args.file,
        architecture=args.arch,
        run=args.run,
        phase=args.phase,
        game=args.game,
        metrics=args.metrics,
        metadata={"source": str(args.file), **args.metadata},
        version_id=args.version_id,
        filename=args.file.name,
    )
    return _emit(args, v.model_dump(mode="json"), f"registered [bold]{v.id}[/] sha256 {v.sha256}")


def _cmd_verify(registry: reg.Registry, args: argparse.Namespace) -> int:
    v = registry.verify(args.version)
    return _emit(args, {"id": v.id, "sha256": v.sha256, "ok": True}, f"{v.id}: sha256 ok")


def _state_out(args: argparse.Namespace, state: reg.ChampionState, before: int, verb: str) -> int:
    changed = state.generation != before
    doc = {**state.model_dump(mode="json"), "changed": changed}
    msg = (
        f"{state.game}: champion is now [bold]{state.version}[/]"
        if changed
        else f"{state.game}: nothing to {verb}, champion is {state.version}"
    )
    return _emit(args, doc, msg)


def _cmd_promote(registry: reg.Registry, args: argparse.Namespace) -> int:
    from ouroboros.trainer.evaluation import promotion

    if args.gate:
        return _gated_promote(registry, args)
    before = registry.champion(args.game).generation
    state = promotion.promote_manually(registry, args.game, args.version, by=args.by, run=args.run,
                                       reason=args.reason, statistics=args.statistics)
    return _state_out(args, state, before, "promote")


def promotion_spec(args: argparse.Namespace) -> PromotionSpec:
    """The gate the options describe (the same PromotionSpec a TrainingRun carries)."""
    from ouroboros.trainer.commands import evaluate

    games = args.games + args.games % 2
    try:
        readiness = ReadinessSpec(max_p99_latency_ms=args.max_p99_ms, max_peak_memory_mb=args.max_memory_mb)
        play = {"move_budget_ms": args.move_budget_ms, "max_visits": args.max_visits,
                "baselines": [parse_baseline(b) for b in args.baseline]}
        if args.min_win_rate is not None:
            spec = PromotionSpec(method=GateMethod.WIN_RATE, games=games, min_games=min(args.min_games, games),
                                 min_win_rate=args.min_win_rate, readiness=readiness, seed=args.seed, **play)
        else:
            spec = PromotionSpec(method=GateMethod.SPRT, sprt=evaluate.parse_sprt(args.sprt), games=games,
                                 min_games=min(args.min_games, games), readiness=readiness, seed=args.seed, **play)
    except ValidationError as err:  # one line naming the flag, not pydantic's report on the field
        raise _common.flag_error(err, _GATE_FLAGS) from None
    return spec.with_served_player(args.player, "--player")


_GATE_FLAGS = {"games": "--games", "min_games": "--min-games", "min_win_rate": "--min-win-rate", "seed": "--seed",
               "max_p99_latency_ms": "--max-p99-ms", "max_peak_memory_mb": "--max-memory-mb",
               "move_budget_ms": "--move-budget-ms", "max_visits": "--max-visits", "sprt": "--sprt"}
"""The flag of each PromotionSpec / ReadinessSpec field that `promote --gate` sets, for its errors."""


def parse_baseline(text: str) -> BaselineSpec:
    """``PLAYER[:GAMES[:MAX_REGRESSION[:MIN_WIN_RATE]]]`` -> BaselineSpec; ValueError naming --baseline."""
    parts = text.split(":")
    keys = ("player", "games", "max_regression", "min_win_rate")
    if len(parts) > len(keys) or not parts[0]:
        raise ValueError(f"--baseline expects PLAYER[:GAMES[:MAX_REGRESSION[:MIN_WIN_RATE]]], got {text!r}")
    try:
        return BaselineSpec(**dict(zip(keys, parts, strict=False)))
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(map(str, problem["loc"]))
        message = problem["msg"].removeprefix("Value error, ")
        raise ValueError(f"--baseline {text!r}: {where + ': ' if where else ''}{message}") from None


def _gated_promote(registry: reg.Registry, args: argparse.Namespace) -> int:
    """Promote only on the gate's PROMOTE (evaluation.promotion): candidate vs champion on paired
    seeds (SPRT or win rate), plus the candidate's production readiness; the first champion
    needs only readiness. A refusal exits 1 with the gate's reasons; a corrupt or unloadable
    model exits 3."""
    from ouroboros.trainer.evaluation import promotion

    game = GameKey.parse(args.game)
    state = registry.champion(game)
    if state.version == args.version:
        return _state_out(args, state, state.generation, "promote")
    judgement = promotion.judge(registry, game, args.version, promotion_spec(args),
                                promotion.GateRun(workers=args.workers, latency_calls=args.latency_calls),
                                evidence=args.game_logs)
    try:
        new = promotion.put_in_force(registry, judgement, by=args.by, run=args.run, reason=args.reason)
    except promotion.NotPromotedError:
        doc = {"verdict": judgement.verdict.value, "reasons": judgement.reasons,
               "statistics": judgement.statistics(), "changed": False, "champion": state.version}
        _emit(args, doc, "\n".join([f"{args.game}: {args.version} NOT promoted ({judgement.verdict.value}); "
                                    f"champion stays {state.version or 'none'}"]
                                   + [f"  - {r}" for r in judgement.reasons]))
        return EXIT_REFUSED
    return _state_out(args, new, state.generation, "promote")


def _cmd_rollback(registry: reg.Registry, args: argparse.Namespace) -> int:
    before = registry.champion(args.game).generation
    state = registry.rollback(args.game, args.version, by=args.by, reason=args.reason)
    return _state_out(args, state, before, "roll back")


def _cmd_pin(registry: reg.Registry, args: argparse.Namespace) -> int:
    before = registry.champion(args.game).generation
    state = registry.pin(args.game, args.version, by=args.by, reason=args.reason)
    return _state_out(args, state, before, "pin")


def _cmd_unpin(registry: reg.Registry, args: argparse.Namespace) -> int:
    before = registry.champion(args.game).generation
    state = registry.unpin(args.game, by=args.by, reason=args.reason)
    return _state_out(args, state, before, "unpin")


_COMMANDS = {
    "list": _cmd_list,
    "show": _cmd_show,
    "add": _cmd_add,
    "verify": _cmd_verify,
    "promote": _cmd_promote,
    "rollback": _cmd_rollback,
    "pin": _cmd_pin,
    "unpin": _cmd_unpin,
}
