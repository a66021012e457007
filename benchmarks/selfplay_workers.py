"""Self-play scaling with workers: games per second with 1 and 2 worker processes.

    python -m benchmarks.selfplay_workers [--games 64] [--workers 1,2] [--repeats 3] [--network quick]

What ``selfPlayWorkers`` buys: each worker of a phase's Indexed Job is a process
(a pod) that plays its own games with its own seed into its own shard. Here
each worker is a process playing ``--games`` 11x11 duels at once with the
phase's rollout (``selfplay.play``: onnxruntime forward, export included), one
torch thread each, as the phases run. The clock starts when every worker is
ready (imports and network built, behind a barrier) and stops when the last
one has finished; games/s = workers x games / that time. The peer is one
worker in the same run; runs alternate between worker counts, median of
``--repeats``. On a machine with fewer free cores than workers the ratio says
so: the workers share the cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

NETWORKS = ("default", "quick")


def _worker(index: int, games: int, network: str, ready, start, done) -> None:
    import numpy as np
    import torch

    from benchmarks.training import NETWORKS as CONFIGS
    from ouroboros.contract.game import GameSpec
    from ouroboros.trainer.engine.types import game_config
    from ouroboros.trainer.learning import networks
    from ouroboros.trainer.learning.phases import selfplay

    torch.set_num_threads(1)
    net = networks.build_network(CONFIGS[network], seed=1)
    game = GameSpec()
    learner = [selfplay.Seat.LEARNER] * game.snakes
    ready.wait()
    start.wait()
    rollout = selfplay.play(game_config(game), games=games, parallel=games, max_turns=game.max_turns,
                            seed=1000 + index * 7919, assign=lambda i, rng: learner,
                            rng=np.random.default_rng(index), learner=net)
    done.put((index, rollout.rows, time.perf_counter()))


def games_per_second(workers: int, games: int, network: str) -> tuple[float, float]:
    """(games per second, positions per second) of ``workers`` processes playing ``games`` each."""
    ctx = mp.get_context("spawn")
    ready, start, done = ctx.Barrier(workers + 1), ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, games, network, ready, start, done)) for i in range(workers)]
    for p in procs:
        p.start()
    ready.wait()
    t0 = time.perf_counter()
    start.wait()
    results = [done.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    wall = max(t for _, _, t in results) - t0
    return workers * games / wall, sum(rows for _, rows, _ in results) / wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=64, help="games per worker, all at once")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, the first is the peer")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--network", choices=NETWORKS, default="quick")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",")]
    rates: dict[int, list[tuple[float, float]]] = {n: [] for n in counts}
    for _ in range(args.repeats):
        for n in counts:
            rates[n].append(games_per_second(n, args.games, args.network))
    load = os.getloadavg()[0]
    print(f"self-play workers: {args.network} network, 11x11 duels, {args.games} games per worker, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}, median of {args.repeats}")
    peer = statistics.median(g for g, _ in rates[counts[0]])
    for n in counts:
        g = statistics.median(x for x, _ in rates[n])
        p = statistics.median(y for _, y in rates[n])
        print(f"  {n} worker(s): {g:7.2f} games/s  {p:8.0f} positions/s  {g / peer:.2f}x {counts[0]} worker(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
