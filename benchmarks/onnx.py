"""Serving speed: ONNX latency and memory per architecture, fp32 and int8, against torch.

    python -m benchmarks.onnx [--nets default,simple,attention-10x64] [--calls 1000] [--rounds 5]

For each network (seeded random weights: latency and memory do not depend on
the values), export fp32 (onnxruntime-optimised) and int8 (static, calibrated
on 2,000 real positions), then measure what a game server pays per move:

- ONNX: p50 / p99 of one position at batch 1 on one thread, and the peak
  memory the inference session adds, in a fresh subprocess
  (:func:`ouroboros.trainer.evaluation.readiness.measure_serving`, the same
  probe the promotion gate's readiness check runs).
- the peer: the same network in torch on the CPU, batch 1, one thread,
  ``inference_mode``, in this process; the ratio is torch p50 / ONNX p50.
- the encoding a server runs before each call: batch 1 latency, and positions
  per second at B = 4,096 (11x11, 4 snakes, 40 turns into random-safe games).

The CPU is shared: percentiles are medians over rounds (see readiness). The
goal for the default network is p99 <= 1 ms and <= 20 MB.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import readiness
from ouroboros.trainer.learning import networks, onnx_export
from ouroboros.trainer.learning.networks import Architecture, NetworkConfig
from ouroboros.trainer.observation import encoding

GAME = GameConfig(11, 11, 4)
NETS = {
    "default": NetworkConfig(),
    "simple": NetworkConfig(architecture=Architecture.CNN_SIMPLE),
    "attention-4x32": NetworkConfig(blocks=4),
    "attention-12x32": NetworkConfig(blocks=12, attention_layers=2),
    "attention-6x64": NetworkConfig(channels=64),
    "attention-10x64": NetworkConfig(blocks=10, channels=64, attention_layers=2),
    "simple-10x64": NetworkConfig(architecture=Architecture.CNN_SIMPLE, blocks=10, channels=64),
}


def torch_latency(net: networks.PolicyValueNet, planes: np.ndarray, calls: int, rounds: int) -> tuple[float, float]:
    """(p50, p99) ms of torch at batch 1 on one thread, medians over rounds."""
    torch.set_num_threads(1)
    net.eval()
    samples = [torch.from_numpy(planes[i : i + 1]) for i in range(min(len(planes), 512))]
    p50s, p99s = [], []
    with torch.inference_mode():
        for i in range(50):
            net(samples[i % len(samples)])
        for _ in range(rounds):
            times = np.empty(calls)
            for i in range(calls):
                start = time.perf_counter_ns()
                net(samples[i % len(samples)])
                times[i] = time.perf_counter_ns() - start
            p50s.append(np.percentile(times, 50) / 1e6)
            p99s.append(np.percentile(times, 99) / 1e6)
    return statistics.median(p50s), statistics.median(p99s)


def encoding_rates(repeats: int = 7) -> tuple[float, float, float, float]:
    """(batch-1 encode ms, positions/s at B=4096 fresh arrays, with a reused buffer, share of the
    reused-buffer time spent on the territory planes)."""
    state = maps.new_games(GAME, np.arange(4096))
    rng = np.random.default_rng(0)
    player = RandomSafe()
    for _ in range(40):
        rules.advance(GAME, state, player.act_all(GAME, state, rng))
    one = state.select([0])
    single = []
    for _ in range(300):
        start = time.perf_counter_ns()
        encoding.encode(GAME, one, 0)
        single.append(time.perf_counter_ns() - start)
    fresh, reused, territory = [], [], []
    buffer = np.empty((4096, encoding.N_CHANNELS, 11, 11), np.float32)
    for _ in range(repeats):
        start = time.perf_counter()
        encoding.encode(GAME, state, 0)
        fresh.append(4096 / (time.perf_counter() - start))
        start = time.perf_counter()
        encoding.encode(GAME, state, 0, out=buffer)
        reused.append(4096 / (time.perf_counter() - start))
        start = time.perf_counter()
        encoding._territory(buffer)  # the flood fill alone, on the planes just made
        territory.append(4096 / (time.perf_counter() - start))
    share = statistics.median(reused) / statistics.median(territory)
    return float(np.median(single)) / 1e6, statistics.median(fresh), statistics.median(reused), share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.onnx", description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="default,simple,attention-10x64",
                        help=f"comma-separated, from: {', '.join(NETS)}")
    parser.add_argument("--calls", type=int, default=1000, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (percentiles are their medians)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETS]
    if unknown:
        parser.error(f"unknown nets {unknown}; choose from {', '.join(NETS)}")

    planes = readiness.real_positions(GAME, 2000, seed=11)
    calibration = readiness.real_positions(GAME, 2000, seed=12)
    probe = readiness.ReadinessConfig(latency_calls=args.calls, latency_rounds=args.rounds)
    header = (f"{'network':<30} {'params':>8} {'prec':>5} {'MB file':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'MB peak':>8} {'torch p50':>10} {'torch p99':>10} {'torch/onnx':>10}")
    print("ONNX at batch 1, one thread (medians of rounds); torch CPU, batch 1, one thread, same positions")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            config = NETS[name]
            net = networks.build_network(config, seed=0).eval()
            result = onnx_export.export(net, Path(tmp) / f"{name}.onnx", int8=True, calibration=calibration)
            t50, t99 = torch_latency(net, planes, args.calls, args.rounds)
            for precision, info in (("fp32", result.optimised), ("int8", result.int8)):
                assert info is not None
                s = readiness.measure_serving(Path(tmp) / info.key, planes, probe)
                print(f"{config.name:<30} {networks.count_parameters(net):>8,} {precision:>5} "
                      f"{s.model_size_mb:>8.2f} {s.p50_latency_ms:>8.3f} {s.p99_latency_ms:>8.3f} "
                      f"{s.peak_memory_mb:>8.1f} {t50:>10.3f} {t99:>10.3f} {t50 / s.p50_latency_ms:>9.1f}x",
                      flush=True)
    one_ms, fresh, reused, share = encoding_rates()
    print()
    print(f"encoding (11x11, 4 snakes): batch 1 {one_ms:.3f} ms; B=4096 {fresh:,.0f} positions/s "
          f"(new arrays), {reused:,.0f} positions/s (reused buffer), {share:.0%} of it the territory planes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
