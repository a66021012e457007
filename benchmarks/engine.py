"""Engine throughput: env-steps per second on one core, against the official Go engine.

Workload (the same on both sides): 11x11, 4 snakes, standard ruleset and map,
the CLI's default settings, random-safe moves (move choice included in the
time), finished games replaced by fresh ones (setup included in the time). One
env-step is one turn of one live game. Both engines are pinned to the same
single core; the Go side is `bsoracle bench` (tests/oracle), which drives the
official engine exactly as its CLI does.

    python -m benchmarks.engine [--batches 1,256,4096,16384] [--seconds 5] [--repeats 3]
                                [--backend compiled|numpy]

Prints the median of the repeats for each batch size and the ratio to the
median of the Go runs measured in the same invocation. The default backend is
the compiled kernel (`engine.kernel`, compiled or loaded from numba's cache
before the timed loop); `--backend numpy` times the NumPy reference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import EngineBackend, GameConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle.build import ensure_oracle  # noqa: E402


def _pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


def ours(config: GameConfig, batch: int, seconds: float, seed: int,
         backend: EngineBackend = EngineBackend.COMPILED) -> float:
    """Env-steps per second of our engine at one batch size."""
    rng = np.random.default_rng(seed)
    player = RandomSafe()
    next_seed = seed
    state = maps.new_games(config, np.arange(next_seed, next_seed + batch))
    next_seed += batch
    steps = 0
    start = time.perf_counter()
    warm = start + min(1.0, seconds / 4)
    counting = False
    while True:
        now = time.perf_counter()
        if not counting and now >= warm:
            counting, steps, start = True, 0, now
        elif counting and now - start >= seconds:
            return steps / (now - start)
        over = state.game_over(False)
        if over.any():
            done = np.flatnonzero(over)
            maps.reset_games(config, state, done, np.arange(next_seed, next_seed + done.size), backend)
            next_seed += done.size
        rules.advance(config, state, player.act_all(config, state, rng), backend)
        steps += batch


def official(binary: Path, seconds: float, core: int) -> float:
    """Env-steps per second of the official engine (one core, GOMAXPROCS=1)."""
    out = subprocess.run(
        [str(binary), "bench", "--snakes", "4", "--width", "11", "--height", "11",
         "--seconds", str(seconds), "--games", "100000000"],
        capture_output=True, text=True, check=True, env={**os.environ, "GOMAXPROCS": "1"},
        preexec_fn=lambda: _pin(core),
    )
    return float(json.loads(out.stdout)["env_steps_per_sec"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,256,4096,16384")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--core", type=int, default=0, help="CPU core both engines are pinned to")
    parser.add_argument("--backend", default="compiled", choices=[b.value for b in EngineBackend])
    args = parser.parse_args(argv)
    _pin(args.core)
    config = GameConfig(width=11, height=11, n_snakes=4)
    binary = ensure_oracle()
    ours(config, 2, 0.01, 0, EngineBackend(args.backend))  # compile, or load the kernels from the cache
    go = statistics.median(official(binary, args.seconds, args.core) for _ in range(args.repeats))
    print(f"official Go engine (rules v1.2.3), 1 core: {go:,.0f} env-steps/s (median of {args.repeats})")
    print(f"{'batch':>7} {'env-steps/s':>13} {'vs Go':>7}   runs")
    for batch in (int(b) for b in args.batches.split(",")):
        runs = [ours(config, batch, args.seconds, 1 + r, EngineBackend(args.backend)) for r in range(args.repeats)]
        med = statistics.median(runs)
        print(f"{batch:>7} {med:>13,.0f} {med / go:>6.2f}x   {', '.join(f'{r:,.0f}' for r in runs)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
