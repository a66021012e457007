"""How often does the alpha-beta's root score two or more moves exactly alike?

    python -m benchmarks.ties [--games 6] [--ms 20] [--depths 2,4,6] [--every 3]
    python -m benchmarks.ties --model M.onnx --margins 0,10,20,40 [--depths 5]

Where it does, the move played is decided by something other than the
evaluation: `search` keeps its previous iteration's order, nsearch's hand-off
asks the network's policy (``search.choose``'s ``prior``). This plays
``--games`` 11x11 duels of the compiled ``search`` against itself at ``--ms``
per move (seeds from ``--seed``, ``--max-turns`` cap), takes every
``--every``-th turn's positions, and for each living snake with two or more
safe moves searches each ``--depths`` depth to completion four times, with a
prior favouring each move in turn: the position has a tie at the top when the
prior changes the move played (the prior decides only exact ties, so no tie,
no change). Prints, per depth, the positions searched and the share with a
tie, with a 95% Wilson interval (positions of one game are correlated: read
the interval as a lower bound on the uncertainty), then the commit, CPUs and
load before and after.

With ``--model``, it measures instead how often nsearch's hand-off plays
another move than ``search`` would: for each depth, tiebreak (``policy``, the
network's logits; ``value``, its worst value over the rival's replies,
``NeuralSearch.value_prior``) and ``--margins`` value (points; 0: exact ties
only), the share of positions with a choice where ``search.choose`` with that
prior and margin changes the move (the network's reach over the game).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks import commit
from ouroboros.trainer.agents import arena, compact, search
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import stats


def positions(games: int, ms: float, seed: int, max_turns: int, every: int) -> list:
    """(rules, position, seat) of each living snake every `every` turns of `games` search duels."""
    config = GameConfig(11, 11, 2)
    taken: list = []

    def observe(state, live):
        over = state.game_over(False)
        for g in live:
            g = int(g)
            if state.turn[g] % every or over[g]:
                continue
            rules_ = compact.Rules.of(config, state, g)
            pos = compact.from_batch(state, g)
            taken.extend((rules_, pos, seat) for seat in np.flatnonzero(state.alive[g]))

    players = [search.Search(ms=ms), search.Search(ms=ms)]
    arena.play_match(config, players, list(range(seed, seed + games)), np.random.default_rng(seed),
                     max_turns=max_turns, observer=observe)
    return taken


def tied(rules_, pos, seat: int, depth: int) -> bool | None:
    """Whether a prior changes the move `depth` turns deep (None: one or no safe move)."""
    chosen = set()
    for favourite in range(4):
        prior = [0.0] * 4
        prior[favourite] = 1.0
        decision = search.choose_compiled(rules_, pos, int(seat), 1e6, max_depth=depth, prior=prior)
        if decision.depth == 0:
            return None
        chosen.add(decision.move)
    return len(chosen) > 1


def changed(taken: list, model: str, depth: int, margins: list[float]) -> dict[tuple[str, float], list[bool]]:
    """Per (tiebreak, margin), whether the network's prior changed the move of each position with a
    choice (searched `depth` turns deep, not proven)."""
    from ouroboros.trainer.agents import nsearch

    player = nsearch.from_spec(f"model={model},ms=50,endgame=0.01")
    config = GameConfig(11, 11, 2)
    networked = [t for t in nsearch.TIEBREAKS if t != "search"]  # `search`: the alpha-beta's own order, no prior
    out: dict[tuple[str, float], list[bool]] = {(t, m): [] for t in networked for m in margins}
    for rules_, pos, seat in taken:
        seat = int(seat)
        plain = search.choose_compiled(rules_, pos, seat, 1e6, max_depth=depth)
        if plain.depth == 0 or abs(plain.score) >= search.PROVEN:
            continue
        state = compact.to_batch(rules_, [pos], [0])
        priors = {t: player.root_prior(config, state, 0, rules_, pos, seat, t) for t in networked}
        for (tiebreak, margin), seen in out.items():
            decision = search.choose_compiled(rules_, pos, seat, 1e6, max_depth=depth, prior=priors[tiebreak],
                                              margin=margin)
            seen.append(decision.move != plain.move)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=6)
    parser.add_argument("--ms", type=float, default=20.0)
    parser.add_argument("--depths", default="2,4,6")
    parser.add_argument("--every", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-turns", type=int, default=300)
    parser.add_argument("--model", default=None, help="an ONNX network: measure how often its prior changes the move")
    parser.add_argument("--margins", default="0,10,20,40", help="with --model: margins in points")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    start = time.perf_counter()
    search.compiled_available()
    taken = positions(args.games, args.ms, args.seed, args.max_turns, args.every)
    print(f"{len(taken)} snake-positions from {args.games} duels of search:ms={args.ms:g} "
          f"(one turn in {args.every}, seeds {args.seed}..{args.seed + args.games - 1})")
    for depth in (int(d) for d in args.depths.split(",")):
        if args.model:
            for (tiebreak, margin), seen in changed(taken, args.model, depth,
                                                    [float(m) for m in args.margins.split(",")]).items():
                share = stats.wilson_interval(sum(seen), max(len(seen), 1))
                print(f"depth {depth}: tiebreak={tiebreak} margin={margin:g}: the network changed "
                      f"{sum(seen)} of {len(seen)} moves, {share.estimate:.1%} [{share.lower:.1%}, {share.upper:.1%}]")
            continue
        results = [r for r in (tied(rules_, pos, seat, depth) for rules_, pos, seat in taken) if r is not None]
        if not results:
            print(f"depth {depth}: no position with a choice")
            continue
        share = stats.wilson_interval(sum(results), len(results))
        print(f"depth {depth}: {len(results)} positions with a choice, tie at the top in "
              f"{share.estimate:.1%} [{share.lower:.1%}, {share.upper:.1%}]")
    print(f"{time.perf_counter() - start:.0f} s; commit {commit()}; {os.cpu_count()} CPUs; "
          f"load {load:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
