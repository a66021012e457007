"""Tournament throughput: games per second with 1 and 2 worker processes.

    python -m benchmarks.tournament [--games 128] [--workers 1,2] [--model PATH] [--json FILE]

Line-ups (11x11 standard duels on paired seeds, chunks of 8 seeds = 16 games
per batch): random-safe vs greedy, heuristic vs heuristic, and a neural model
(ONNX) vs heuristic when one is at hand: ``--model``, else the local
registry's champion of standard-11x11-2p (``$OURO_STORE`` or
./runs/registry), else that line is skipped. The time is the whole
tournament's wall clock, worker start-up (a spawned interpreter that imports
the engine, and onnxruntime for neural players) included, because that is what
a gate or an ``ouro evaluate`` pays. The machine is shared, so expect noise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import tournament


def champion_model(folder: str) -> str | None:
    """The local registry's champion written to ``folder`` (None when there is none)."""
    from ouroboros.trainer.artifacts import registry

    store = os.environ.get("OURO_STORE", "./runs/registry")
    if not os.path.isdir(store):
        return None
    try:
        version, data = registry.Registry.open(store).load_champion("standard-11x11-2p")
    except registry.RegistryError:
        return None
    path = os.path.join(folder, f"{version.id}.onnx")
    with open(path, "wb") as out:
        out.write(data)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", type=int, default=128, help="games per line-up (default: %(default)s)")
    p.add_argument("--workers", default="1,2", help="worker counts to compare (default: %(default)s)")
    p.add_argument("--model", help="an ONNX model for the neural line-up")
    p.add_argument("--json", help="also write the figures as JSON")
    args = p.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or champion_model(folder)
        line_ups = [("random-safe", "greedy"), ("heuristic", "heuristic")]
        if model:
            line_ups.append((f"onnx:{model}", "heuristic"))
        else:
            print("neural: skipped (no --model and no champion in the local registry)")
        for line_up in line_ups:
            for n in workers:
                settings = tournament.TournamentConfig(games=args.games, workers=n, seed=0)
                report = tournament.run(list(line_up), GameConfig(), settings)
                label = " vs ".join(os.path.basename(s) for s in line_up)
                rows.append({"line_up": label, "workers": n, "games": report.games,
                             "seconds": round(report.seconds, 3),
                             "games_per_second": round(report.games_per_second, 1),
                             "mean_turns": round(report.mean_turns, 1)})
                print(f"{label:<40} workers {n}: {report.games} games in {report.seconds:6.2f} s = "
                      f"{report.games_per_second:7.1f} games/s (mean {report.mean_turns:.0f} turns)", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
