"""What keeping a gate's games as evidence costs: a duel with and without official-CLI game logs.

    python -m benchmarks.gate_logs [--games 64] [--line-up random-safe,greedy] [--repeats 3]

Plays the same duel (11x11 standard, paired seeds, one worker) three ways and
prints the median wall clock of each over ``--repeats`` runs: without logs
(the peer), with ``log_games`` (a JSON line per game and turn, collected in
memory), and with the logs also written to a local artifact store, one file
and one sha256 sidecar per game, as the evaluate phase does
(``evaluation.promotion.GameLogFolders``). Ratios are against the peer. The
machine is shared, so expect noise; the ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import promotion
from ouroboros.trainer.evaluation import tournament as tm


def play(line_up: list[str], games: int, log: bool, store: ArtifactStore | None,
         prefix: str = "bench") -> tuple[float, int]:
    """Seconds for one duel (and the logs' bytes), logs written to ``store`` under ``prefix`` when given."""
    started = time.perf_counter()
    report = tm.run(line_up, GameConfig(width=11, height=11, n_snakes=2),
                    tm.TournamentConfig(games=games, seed=1, log_games=log))
    size = sum(len(line) + 1 for game in report.game_logs for line in game)
    if store is not None:
        promotion.GameLogFolders(store, prefix).write("opponent", "candidate", report)
    return time.perf_counter() - started, size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", type=int, default=64, help="games per duel (default: %(default)s)")
    p.add_argument("--line-up", default="random-safe,greedy", help="two players (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each way; the median is printed")
    args = p.parse_args(argv)
    line_up = args.line_up.split(",")
    times: dict[str, list[float]] = {"no logs": [], "logs in memory": [], "logs written": []}
    size = 0
    with tempfile.TemporaryDirectory() as folder:
        store = ArtifactStore(folder)
        play(line_up, 2, True, None)  # warm-up: compiled kernels and imports are not what is measured
        for repeat in range(args.repeats):  # a fresh prefix each time: a first attempt, nothing to clear
            times["no logs"].append(play(line_up, args.games, False, None)[0])
            times["logs in memory"].append(play(line_up, args.games, True, None)[0])
            seconds, size = play(line_up, args.games, True, store, f"bench-{repeat}")
            times["logs written"].append(seconds)
    peer = statistics.median(times["no logs"])
    print(f"{' vs '.join(line_up)}, {args.games} games, 11x11, medians of {args.repeats}; logs {size / 1e6:.2f} MB "
          f"({size / args.games / 1e3:.1f} kB a game)")
    for way, values in times.items():
        median = statistics.median(values)
        print(f"  {way:15s} {median:7.2f} s  {args.games / median:7.1f} games/s  x{median / peer:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
