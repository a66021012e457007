"""Tree reuse in the neural search: what it buys per move, and in games, at the same budget.

    python -m benchmarks.nsearch_reuse --model runs/registry/models/V/model.onnx [--ms 40] [--games 20]

Plays ``--games`` 11x11 duels (seat-swapped pairs on paired seeds: each seed
twice, the arena rotating the start positions) between the same network inside
``nsearch`` at the same ``--ms`` per move, once with tree reuse (the subtree of
the joint move played becomes the next root, ``reuse=1``) and once without
(``reuse=0``), in one process, one onnxruntime thread each. Prints, for each
side, the median new descents per searched move, the median root visits per
move (inherited plus new: what the decision rests on) and the share of moves
that inherited a tree; then the reuse side's W-D-L with its Wilson 95% interval
and Elo with its 95% interval, the games' mean length, the commit and the
load before and after. A time budget on a loaded machine is noisy: compare only
runs on similar load, and read the interval.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np

from benchmarks import commit
from ouroboros.trainer.agents import arena, nsearch, puct
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import stats


def _describe(name: str, results: list[puct.SearchResult]) -> str:
    searched = [r for r in results if r.simulations or r.reused]
    new = statistics.median(r.simulations for r in searched)
    total = statistics.median(r.reused + r.simulations for r in searched)
    share = sum(1 for r in searched if r.reused) / len(searched)
    return (f"{name:>8}: {len(searched)} searched moves, median {new:.0f} new descents and {total:.0f} root "
            f"visits per move, {share:.0%} of moves inherited a tree")


def _kept_nodes(player: nsearch.NeuralSearch) -> int:
    """Nodes in the subtrees a reusing player keeps."""
    stack = [child for _, child in player.kept._children.values()]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node.children.values())
    return count


def tree_memory(model: str, visits: int, seed: int) -> tuple[int, int]:
    """(nodes, bytes) a reusing player keeps after one ``visits``-descent search of an 11x11 duel position
    40 turns into a heuristic game (bytes traced by tracemalloc; onnxruntime warmed up first)."""
    from benchmarks.players import midgame_states

    config = GameConfig(11, 11, 2)
    state = midgame_states(config, 2, 40, seed)
    player = nsearch.NeuralSearch(model, ms=0, visits=visits, reuse=True)
    player.search(config, state, 1, 0)  # warm-up: the session's buffers
    player.kept = type(player.kept)(puct.MAX_KEPT_ROOTS, puct.MAX_KEPT_NODES)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    player.search(config, state, 0, 0)
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return _kept_nodes(player), kept


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.nsearch_reuse", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="an ONNX file with the contract (an 11x11 network)")
    p.add_argument("--ms", type=float, default=40.0, help="budget per move of both sides (default %(default)s)")
    p.add_argument("--games", type=int, default=20, help="duels, rounded up to seat-swapped pairs (default %(default)s)")
    p.add_argument("--seed", type=int, default=500, help="first seed (default %(default)s)")
    p.add_argument("--max-turns", type=int, default=300, help="a game reaching it is a draw (default %(default)s)")
    p.add_argument("--memory-visits", type=int, default=256,
                   help="descents of the search whose kept tree is weighed (default %(default)s)")
    args = p.parse_args(argv)

    config = GameConfig(11, 11, 2)
    reuse = nsearch.NeuralSearch(args.model, ms=args.ms, reuse=True, name="reuse")
    fresh = nsearch.NeuralSearch(args.model, ms=args.ms, reuse=False, name="no-reuse")
    pairs = (args.games + 1) // 2
    seeds = args.seed + np.repeat(np.arange(pairs), 2)
    print(f"nsearch tree reuse: {args.model}, {args.ms:g} ms per move, {len(seeds)} seat-swapped 11x11 duels, "
          f"commit {commit()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} before")
    nodes, kept = tree_memory(args.model, args.memory_visits, args.seed)
    print(f"memory: one {args.memory_visits}-descent search keeps {nodes} nodes, {kept / 1e6:.2f} MB "
          f"({kept / max(nodes, 1) / 1e3:.2f} kB a node); a player keeps at most {puct.MAX_KEPT_ROOTS} "
          f"searches and {puct.MAX_KEPT_NODES} nodes")
    if args.games <= 0:
        return 0
    started = time.monotonic()
    result = arena.play_match(config, [reuse, fresh], seeds, np.random.default_rng(args.seed),
                              max_turns=args.max_turns)
    seconds = time.monotonic() - started
    outcome = result.outcome[:, 0]
    wdl = stats.WDL(int((outcome == arena.WIN).sum()), int((outcome == arena.DRAW).sum()),
                    int((outcome == arena.LOSS).sum()))
    ci = stats.wilson_interval(wdl.wins + wdl.draws / 2, len(seeds))
    elo = stats.elo_estimate(wdl)
    print(_describe("reuse", reuse.results))
    print(_describe("no-reuse", fresh.results))
    print(f"reuse vs no-reuse: W{wdl.wins} D{wdl.draws} L{wdl.losses}, score {ci.estimate:.1%} "
          f"[{ci.lower:.1%}, {ci.upper:.1%}] Wilson 95%, Elo {elo.elo:+.0f} [{elo.lower:+.0f}, {elo.upper:+.0f}]; "
          f"mean game {result.turns.mean():.0f} turns, {int(result.truncated.sum())} at the cap; {seconds:.0f} s, "
          f"load {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
