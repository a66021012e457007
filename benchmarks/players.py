"""Players: teacher labelling speed, search depth under its budget, and win rates.

    python -m benchmarks.players [teacher] [depth] [matches] [--repeats 5] [--core 0]

- teacher: positions labelled per second by the heuristic teacher (`act_all`:
  every living snake of every game in one call) at B = 256, 1024, 4096 on
  11x11 with 4 snakes, standard rules. Positions are the states after 40 and
  120 turns of the teacher's own games (finished games restarted), so bodies have
  grown and games have thinned out as in a real bootstrap phase. A position is
  one living snake in one game: one move label. Median of the repeats.
- depth: the search player's completed depth (turns) at its default 400 ms per
  move on 11x11 duels and 4-player positions, sampled from heuristic games at
  turns 5..120, for both kernels (python = search-v1, numba = search) on the
  same positions, one after the other, and the compiled one with the `tails`
  count (`numba+tails`: bodies free as they move off, `SearchWeights.tails`);
  positions with a single safe move (no search) are left out.
- matches: win rates with Wilson 95% intervals: heuristic vs greedy and vs
  random-safe (duels, seats rotated), and search vs heuristic (duels at the
  search's `--match-ms` budget).

Prints one line per measurement; `--json FILE` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import time

import numpy as np

from ouroboros.trainer.agents import arena, compact, search
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.agents.simple import Greedy, RandomSafe
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import stats


def midgame_states(config: GameConfig, batch: int, turns: int, seed: int):
    """A batch of positions reached by the teacher after `turns` turns (finished games restarted)."""
    rng = np.random.default_rng(seed)
    teacher = Heuristic()
    state = maps.new_games(config, np.arange(batch) + seed)
    fresh = seed + batch
    for _ in range(turns):
        rules.advance(config, state, teacher.act_all(config, state, rng))
        over = np.flatnonzero(state.game_over(False))
        if over.size:
            state.assign(over, maps.new_games(config, np.arange(fresh, fresh + over.size)))
            fresh += over.size
    return state


def bench_teacher(batches: list[int], turns: list[int], repeats: int) -> list[dict]:
    config = GameConfig(11, 11, 4)
    teacher = Heuristic()
    rng = np.random.default_rng(0)
    out = []
    for turn, batch in itertools.product(turns, batches):
        state = midgame_states(config, batch, turn, seed=1000)
        positions = int(state.alive.sum())
        teacher.act_all(config, state, rng)  # warm caches
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            teacher.act_all(config, state, rng)
            times.append(time.perf_counter() - start)
        t = statistics.median(times)
        row = {"bench": "teacher", "batch": batch, "turns": turn, "positions": positions, "seconds": t,
               "positions_per_s": positions / t, "mean_length": float(state.length[state.alive].mean())}
        print(f"teacher  B={batch:5d} after {turn:3d} turns: {positions:6d} positions in {t * 1e3:7.1f} ms  "
              f"-> {positions / t:9.0f} positions/s  (mean length {row['mean_length']:.1f})", flush=True)
        out.append(row)
    return out


def bench_depth(n_positions: int, ms: float) -> list[dict]:
    """Both search kernels on the same positions: the compiled one against its Python peer, and the
    compiled one with the `tails` count against both."""
    out = []
    kernels = {"python": search.choose}
    if search.compiled_available():
        kernels["numba"] = search.choose_compiled
        tails = search.SearchWeights(tails=True)
        kernels["numba+tails"] = lambda *args: search.choose_compiled(*args, weights=tails)
    for snakes in (2, 4):
        config = GameConfig(11, 11, snakes)
        found = {k: ([], [], []) for k in kernels}  # depths, nodes, seconds
        rng = np.random.default_rng(snakes)
        turns = rng.integers(5, 120, size=4 * n_positions)
        kept = 0
        for k, turn in enumerate(turns):
            state = midgame_states(config, 1, int(turn), seed=5000 + k)
            if state.game_over(False)[0]:
                continue
            seat = int(np.flatnonzero(state.alive[0])[0])
            rules_, pos = compact.Rules.of(config, state, 0), compact.from_batch(state, 0)
            decisions = {}
            for kernel, choose in kernels.items():
                start = time.perf_counter()
                decisions[kernel] = (choose(rules_, pos, seat, ms / 1000.0), time.perf_counter() - start)
            if any(d.depth == 0 for d, _ in decisions.values()):
                continue
            for kernel, (d, sec) in decisions.items():
                found[kernel][0].append(d.depth)
                found[kernel][1].append(d.nodes)
                found[kernel][2].append(sec)
            kept += 1
            if kept == n_positions:
                break
        for kernel, (depths, nodes, seconds) in found.items():
            row = {"bench": "search_depth", "kernel": kernel, "snakes": snakes, "ms": ms,
                   "positions": len(depths), "mean_depth": float(np.mean(depths)),
                   "median_depth": float(np.median(depths)), "min_depth": int(min(depths)),
                   "max_depth": int(max(depths)), "nodes_per_s": float(sum(nodes) / sum(seconds)),
                   "mean_seconds": float(np.mean(seconds))}
            if kernel != "python":
                python = next(r for r in out if r["snakes"] == snakes and r["kernel"] == "python")
                row["nodes_per_s_vs_python"] = row["nodes_per_s"] / python["nodes_per_s"]
            print(f"search   {kernel:<11} {snakes} snakes @ {ms:.0f} ms: mean depth {row['mean_depth']:.2f} "
                  f"(median {row['median_depth']:.0f}, {row['min_depth']}..{row['max_depth']}) over "
                  f"{len(depths)} positions, {row['nodes_per_s']:.0f} nodes/s"
                  + (f" ({row['nodes_per_s_vs_python']:.1f}x python)" if kernel != "python" else "")
                  + f", {row['mean_seconds'] * 1e3:.0f} ms used per move", flush=True)
            out.append(row)
    return out


def _match(label: str, players, games: int, seed: int) -> dict:
    config = GameConfig(11, 11, len(players))
    start = time.perf_counter()
    result = arena.play_match(config, players, np.arange(games) + seed, np.random.default_rng(seed))
    o = result.outcome[:, 0]
    wins, draws, losses = int((o == arena.WIN).sum()), int((o == arena.DRAW).sum()), int((o == arena.LOSS).sum())
    ci = stats.wilson_interval(wins + 0.5 * draws, games)
    row = {"bench": "match", "match": label, "games": games, "wins": wins, "draws": draws, "losses": losses,
           "score": ci.estimate, "lower": ci.lower, "upper": ci.upper,
           "mean_turns": float(result.turns.mean()), "seconds": time.perf_counter() - start}
    print(f"match    {label:32s} W/D/L {wins}/{draws}/{losses} of {games}: score {ci.estimate:.3f} "
          f"[{ci.lower:.3f}, {ci.upper:.3f}]  mean {row['mean_turns']:.0f} turns, {row['seconds']:.0f} s",
          flush=True)
    return row


def bench_matches(games: int, search_games: int, match_ms: float) -> list[dict]:
    return [
        _match("heuristic vs greedy", [Heuristic(), Greedy()], games, 0),
        _match("heuristic vs random-safe", [Heuristic(), RandomSafe()], games, 0),
        _match("heuristic vs 3 greedy (4-player)", [Heuristic(), Greedy(), Greedy(), Greedy()], games, 0),
        _match(f"search@{match_ms:.0f}ms vs heuristic", [search.Search(ms=match_ms), Heuristic()],
               search_games, 0),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sections", nargs="*", choices=["teacher", "depth", "matches", []], default=[])
    p.add_argument("--batches", default="256,1024,4096")
    p.add_argument("--turns", default="40,120", help="teacher positions: turns played before measuring")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--positions", type=int, default=20, help="search positions per snake count")
    p.add_argument("--ms", type=float, default=400.0, help="search budget for the depth benchmark")
    p.add_argument("--games", type=int, default=400, help="games per teacher match")
    p.add_argument("--search-games", type=int, default=20)
    p.add_argument("--match-ms", type=float, default=100.0, help="search budget in the search match")
    p.add_argument("--core", type=int, default=None, help="pin to this CPU core")
    p.add_argument("--json", default=None, help="also write the rows to this file")
    args = p.parse_args(argv)
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    sections = args.sections or ["teacher", "depth", "matches"]
    rows = []
    if "teacher" in sections:
        rows += bench_teacher([int(b) for b in args.batches.split(",")], [int(t) for t in args.turns.split(",")],
                              args.repeats)
    if "depth" in sections:
        rows += bench_depth(args.positions, args.ms)
    if "matches" in sections:
        rows += bench_matches(args.games, args.search_games, args.match_ms)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
