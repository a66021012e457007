"""Expert iteration's searches: one tree at a time against all of a turn's trees in lockstep.

    python -m benchmarks.expert_search [--model M.onnx] [--games 64] [--visits 32] [--repeat 3]

Expert iteration searches a share of the learner's moves on every turn of a
batch of self-play games (``learning/phases/expert.py``). Searched one after
another, each tree sends its own small batches (16 leaves x the living snakes)
through the network; ``NeuralSearch.search_many`` runs all of a turn's trees
in lockstep, so each round is one forward of every tree's new leaves
together (AlphaZero's and KataGo's self-play batch many games' searches the
same way). This plays ``--games`` 11x11 duels with the heuristic to turn
``--turn``, then searches every living (game, seat) both ways with the same
network in onnxruntime (``--threads``, default 1) and ``--visits`` descents each, and prints
the median process CPU time per search over ``--repeat`` runs of each, their
ratio, the network calls, whether the two gave identical results, the commit
and the load. CPU time, not wall time: the machine is shared. The network is
``--model`` (an ONNX file with the contract), else a freshly initialised
``cnn_simple`` 6x32 (the ``quick``/``medium`` presets' network; the timing does
not depend on its weights).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from benchmarks import commit
from ouroboros.trainer.agents import nsearch
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig


class _Counting:
    """The model behind nsearch's evaluator interface, counting network calls."""

    def __init__(self, model) -> None:
        self.model, self.input_size, self.calls = model, model.input_size, 0

    def _size(self, config):
        return self.model._size(config)

    def evaluate(self, planes):
        self.calls += 1
        return self.model.evaluate(planes)


def _model_bytes(path: str | None) -> bytes:
    if path:
        with open(path, "rb") as f:
            return f.read()
    from ouroboros.trainer.learning import networks, onnx_export

    net = networks.build_network(networks.NetworkConfig(architecture="cnn_simple", attention_layers=0,
                                                        blocks=6, channels=32), seed=0)
    return onnx_export.to_onnx(net, 11, 11)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.expert_search", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="ONNX file (default: a fresh cnn_simple 6x32)")
    p.add_argument("--games", type=int, default=64, help="11x11 duels searched (default 64)")
    p.add_argument("--turn", type=int, default=40, help="turns the heuristic plays first (default 40)")
    p.add_argument("--visits", type=int, default=32, help="descents per search (default 32, expert's default)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each way (default 3; medians)")
    p.add_argument("--threads", type=int, default=1,
                   help="onnxruntime intra-op threads (default 1, as `ouro train --threads 1` plays)")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    config = GameConfig()
    state = maps.new_games(config, np.arange(args.games) + 500)
    heuristic, rng = Heuristic(), np.random.default_rng(0)
    for _ in range(args.turn):
        rules.advance(config, state, heuristic.act_all(config, state, rng))
    games, seats = np.nonzero(state.alive & ~state.game_over(False)[:, None])
    from ouroboros.trainer.agents import neural

    model = neural.OnnxPlayer(_model_bytes(args.model), name="model", threads=args.threads)

    def lone():
        counting = _Counting(model)
        player = nsearch.NeuralSearch(counting, ms=0, visits=args.visits, reuse=False)
        return [player.search(config, state, int(g), int(s)) for g, s in zip(games, seats, strict=True)], counting

    def lockstep():
        counting = _Counting(model)
        player = nsearch.NeuralSearch(counting, ms=0, visits=args.visits, reuse=False)
        return player.search_many(config, state, games, seats), counting

    lone()  # warm: numba kernels, onnxruntime's first runs
    timings: dict[str, list[float]] = {"one at a time": [], "lockstep": []}
    outcome = {}
    for _ in range(args.repeat):
        for name, way in (("one at a time", lone), ("lockstep", lockstep)):
            start = time.process_time()
            outcome[name] = way()
            timings[name].append((time.process_time() - start) / len(games))
    print(f"{len(games)} searches of {args.visits} descents ({args.games} 11x11 duels at turn {args.turn}; "
          f"network {args.model or 'fresh cnn_simple 6x32'}; onnxruntime, {args.threads} thread(s))")
    for name, values in timings.items():
        print(f"  {name:>13}: median {1000 * statistics.median(values):.2f} CPU ms per search "
              f"(runs: {', '.join(f'{1000 * v:.2f}' for v in values)}), {outcome[name][1].calls} network calls")
    ratio = statistics.median(timings["one at a time"]) / statistics.median(timings["lockstep"])
    same = outcome["one at a time"][0] == outcome["lockstep"][0]
    print(f"  lockstep is {ratio:.2f}x faster per search; identical results: {same}")
    print(f"commit {commit()}, {os.cpu_count()} CPUs, load {load_before:.2f} before and {os.getloadavg()[0]:.2f} after")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
