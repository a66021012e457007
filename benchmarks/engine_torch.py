"""The torch engine (`engine.torch_rules`) on a device: env-steps per second, against the compiled
NumPy kernel on one CPU core in the same run.

    python -m benchmarks.engine_torch [--device cpu|cuda|cuda:N] [--batches 4096,16384]
                                      [--seconds 5] [--repeats 3]

Workload (the same on both sides): 11x11, 4 snakes, standard ruleset and map,
random-safe moves chosen on the engine's own device (the torch side draws them
with torch from the state's heads and occupancy, the NumPy side with
`agents.simple.RandomSafe`; move choice included in the time). B games start
together; one env-step is one turn of one live game. When half of the batch
has ended, the batch restarts from its starting boards (untimed: the torch
engine takes its boards from NumPy's `maps.new_games`, and replacing single
games is not what is measured here). The torch side counts live games on the
device and synchronises once per timed run. Prints the median of the repeats
and the ratio to the NumPy kernel's median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine import maps, rules, torch_rules
from ouroboros.trainer.engine.types import EngineBackend, GameConfig
from ouroboros.trainer.learning import device

CONFIG = GameConfig(width=11, height=11, n_snakes=4)


def torch_random_safe(state: torch_rules.TorchState, inside: torch.Tensor, delta: torch.Tensor,
                      generator: torch.Generator) -> torch.Tensor:
    """Moves int64 [B, S]: uniformly one of the moves whose cell is on the board and not occupied
    (any move when none is), drawn on the state's device."""
    heads = state.heads()  # [B, S]
    cells = heads.unsqueeze(-1) + delta  # [B, S, 4]; a dead snake's head may lie in the padding
    b, s, _ = cells.shape
    on = (cells >= 0) & (cells < inside.numel())
    cells = cells.clamp(0, inside.numel() - 1)
    free = state.occ.gather(1, cells.reshape(b, -1)).reshape(b, s, 4) == 0
    safe = on & inside[cells] & free
    score = torch.rand((b, s, 4), device=heads.device, generator=generator) + safe
    return score.argmax(-1)


def torch_rate(batch: int, seconds: float, seed: int, where: torch.device) -> float:
    """Env-steps per second of `torch_rules.advance` on ``where`` (see the module docstring)."""
    start_boards = torch_rules.TorchState.from_batch(maps.new_games(CONFIG, np.arange(seed, seed + batch)), where)
    board = start_boards.board
    inside = torch.from_numpy(board.inside).to(where)
    delta = torch.from_numpy(board.move_delta.astype(np.int64)).to(where)
    generator = torch.Generator(device=where).manual_seed(seed)
    placement = device.Placement(where)

    steps = torch.zeros((), dtype=torch.int64, device=where)
    elapsed, state = 0.0, start_boards.clone()
    warm = True
    while elapsed < seconds:
        with device.synchronised(placement):
            t0 = time.perf_counter()
            for _ in range(10):  # ten turns between checks of how many games are left
                live = ~state.game_over(False)
                steps += live.sum()
                torch_rules.advance(CONFIG, state, torch_random_safe(state, inside, delta, generator))
        if warm:  # the first turns pay for kernel launches' first-time costs
            warm, steps = False, torch.zeros_like(steps)
        else:
            elapsed += time.perf_counter() - t0
        if int((~state.game_over(False)).sum()) < batch // 2:
            state = start_boards.clone()
    return int(steps) / elapsed


def numpy_rate(batch: int, seconds: float, seed: int) -> float:
    """Env-steps per second of the compiled NumPy kernel, same protocol, on this core."""
    start_boards = maps.new_games(CONFIG, np.arange(seed, seed + batch))
    rng = np.random.default_rng(seed)
    player = RandomSafe()
    rules.advance(CONFIG, maps.new_games(CONFIG, [0]), np.zeros((1, 4), np.int8), EngineBackend.COMPILED)  # compile
    steps, elapsed, state = 0, 0.0, start_boards.copy()
    while elapsed < seconds:
        t0 = time.perf_counter()
        for _ in range(10):
            steps += int((~state.game_over(False)).sum())
            rules.advance(CONFIG, state, player.act_all(CONFIG, state, rng), EngineBackend.COMPILED)
        elapsed += time.perf_counter() - t0
        if int((~state.game_over(False)).sum()) < batch // 2:
            state = start_boards.copy()
    return steps / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="4096,16384")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    where = device.resolve_device(args.device, gpus, field="--device")
    name = f"{where} ({torch.cuda.get_device_name(where)})" if where.type == "cuda" else "cpu (1 thread)"
    print(f"torch engine on {name} vs the compiled NumPy kernel on 1 core; 11x11, 4 snakes, random-safe moves")
    print(f"{'batch':>7} {'torch env-steps/s':>18} {'numpy env-steps/s':>18} {'ratio':>7}   torch runs")
    for batch in (int(b) for b in args.batches.split(",")):
        runs, peers = [], []
        for r in range(args.repeats):  # alternating, so both see the same machine load
            runs.append(torch_rate(batch, args.seconds, 1 + r, where))
            peers.append(numpy_rate(batch, args.seconds, 1 + r))
        med, peer = statistics.median(runs), statistics.median(peers)
        print(f"{batch:>7} {med:>18,.0f} {peer:>18,.0f} {med / peer:>6.2f}x   {', '.join(f'{x:,.0f}' for x in runs)}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
