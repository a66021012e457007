"""Does the search player answer within its budget on a loaded machine?

    python -m benchmarks.search_deadline [--ms 100] [--positions 40] [--repeat 3]

The search player thinks on 11x11 positions with 2 and 4 snakes (from random-safe
games, as `benchmarks.server` makes them) with a budget of `--ms`; each move's
wall-clock time from the call to the answer is one sample. Two runs over the same
positions, alternated: the clock checked at every node (`search.CLOCK_EVERY = 1`,
what the server runs) and every 128 nodes (the peer: what it did before). Prints,
per setting, the median over the repeats of p50, p99 and max of the move time, and
of how many moves went past the budget by more than 10% and by more than 50 ms (the
network's share of a 500 ms game timeout is 150 ms). Run it on a machine as loaded
as the one it serves on: the point is how the deadline holds under load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks.server import positions
from ouroboros.trainer.agents import search
from ouroboros.trainer.serving import protocol


def _moves_ms(states, ms: float, clock_every: int) -> list[float]:
    search.CLOCK_EVERY = clock_every
    player = search.Search(ms=ms)
    rng = np.random.default_rng(0)
    samples = []
    for request in states:
        t0 = time.perf_counter()
        player.act(request.game.config, request.game.state, request.seat, rng)
        samples.append((time.perf_counter() - t0) * 1e3)
    search.CLOCK_EVERY = 1
    return samples


def _summary(samples: list[float], ms: float) -> dict:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": statistics.median(samples), "p99": q[98], "max": max(samples),
            "over10pct": sum(s > ms * 1.1 for s in samples), "over50ms": sum(s > ms + 50 for s in samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ms", type=float, default=100.0, help="search budget per move (default %(default)s)")
    parser.add_argument("--positions", type=int, default=40, help="positions per snake count")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (median reported)")
    args = parser.parse_args(argv)
    bodies = positions(2, 4)[5::7][:args.positions] + positions(4, 4)[5::7][:args.positions]
    states = [protocol.parse_move_request(b) for b in bodies]
    runs: dict[int, list[dict]] = {1: [], 128: []}
    for _ in range(args.repeat):
        for every in runs:
            runs[every].append(_summary(_moves_ms(states, args.ms, every), args.ms))
    print(f"search budget {args.ms:g} ms, {len(states)} positions (11x11, 2 and 4 snakes), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {args.repeat} runs")
    print(f"{'clock every':>12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'>+10%':>6} {'>+50ms':>7}")
    for every, summaries in runs.items():
        m = {k: statistics.median(s[k] for s in summaries) for k in summaries[0]}
        print(f"{every:>8} node {m['p50']:8.1f} {m['p99']:8.1f} {m['max']:8.1f} {m['over10pct']:6.0f} "
              f"{m['over50ms']:7.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
