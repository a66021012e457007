"""The `ouro` console script.

Each verb lives in its own module under `ouroboros.trainer.commands` with a
`main(argv) -> int`; this file only maps verb names to those modules, imported
lazily so that `ouro rules step` never pays for torch or kopf imports.
"""

from __future__ import annotations

import importlib
import sys

# verb -> (module under ouroboros.trainer.commands, one-line help)
VERBS: dict[str, tuple[str, str]] = {
    "rules": ("rules", "the rules engine as a JSON-lines tool: `rules step`, `rules init`"),
    "play": ("play", "play local games between built-in players, render, write logs"),
    "phase": ("phase", "run one training phase from a run config (what a Kubernetes Job runs)"),
    "train": ("train", "train a champion on this machine: bootstrap -> hybrid -> self_play (--preset quick)"),
    "evaluate": ("evaluate", "tournaments: paired duels with SPRT, leagues with Elo, free-for-alls"),
    "registry": ("registry", "list, show, promote and roll back model versions"),
    "champion": ("champion", "the Champion resource: approve, reject, rollback, unpin; its registry Jobs"),
    "export": ("export", "a network to ONNX (contract, optimised, int8) with a readiness check"),
    "data": ("data", "replay data: `data stats` (games, positions, quality, age), `data import` (official-CLI game logs)"),
    "serve": ("serve", "play real Battlesnake games: an API v1 server for any player"),
    "schedule": ("schedule", "TrainingSchedules on this machine (run, status, history) and `trigger` (here or in-cluster)"),
    "report": ("report", "a run's self-contained HTML report: training curves, strength, champion history"),
    "debug-info": ("debuginfo", "the support bundle for a bug report: versions, config, store, system, errors"),
}


def _usage() -> str:
    lines = ["usage: ouro VERB [ARGS...]", "", "verbs:"]
    lines += [f"  {verb:<10} {help_}" for verb, (_, help_) in VERBS.items()]
    lines.append("")
    lines.append("`ouro VERB --help` describes a verb.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch `ouro VERB ...` to the verb's module; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"ouro: unknown verb {verb!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"ouroboros.trainer.commands.{VERBS[verb][0]}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
