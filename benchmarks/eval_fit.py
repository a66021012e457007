"""Does refitting the search's leaf-evaluation weights to game outcomes predict them better?

    python -m benchmarks.eval_fit [--games 300] [--ms 10] [--workers 2] [--last 10,30,60,120,0] [--tails]

Texel's tuning method (P. Texel, 2014; chessprogramming.org "Texel's Tuning
Method"), the classical first step of learning an alpha-beta's evaluation:
plays ``--games`` 11x11 duels of the compiled ``search`` against itself at
``--ms`` per move (seeds from ``--seed``, the arena rotating the start
positions, ``--max-turns`` cap: the survivors draw), in ``--workers``
processes, and records at every turn each living snake's leaf-evaluation
terms (``search.evaluation_terms``) and its game's result (1 won, 0.5 drawn,
0 lost). The kill term is left out: in a duel every evaluated position has
exactly one rival, so it is a constant.

Then, for each window of ``--last`` turns before each game's end (0: every
turn), a logistic model P(win) = sigmoid(terms @ w) without intercept (the
duel is symmetric) is fitted by Newton's method (L2 1e-3) on the odd games and
scored on the even ones, and the other way round. Prints the held-out log
loss (nats per position, the mean of the two halves) of a constant 0.5, of the
default ``SearchWeights`` with only their scale fitted (one parameter), and
of the refitted weights (one per term), then the refitted weights of each
half scaled to ``area = 10`` (the defaults' scale) beside the defaults:
how far apart the halves' weights lie is how little the games pin them down.
Records the games, positions, time, commit, CPUs and load before and after.
Positions of one game are strongly correlated: the number of games, not of
positions, sets how much the figures can be trusted. ``--tails`` plays and fits with
the `tails` count (``SearchWeights.tails``: bodies free as they move off), whose
area and trapped terms count different cells.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time

import numpy as np

from benchmarks import commit
from ouroboros.trainer.agents import arena, compact, search
from ouroboros.trainer.engine.types import GameConfig

TERMS = [name for name in search.LINEAR_TERMS if name != "kill"]
"""The terms fitted: `kill` is constant in a duel (one rival at every evaluated position)."""
COLUMNS = [search.LINEAR_TERMS.index(name) for name in TERMS]
RESULT = {arena.WIN: 1.0, arena.DRAW: 0.5, arena.LOSS: 0.0}


def play(seed: int, games: int, ms: float, max_turns: int,
         tails: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Plays `games` duels from `seed` (both sides the default weights, with the `tails` gate as
    given); returns (rows float64 [N, 3 + len(TERMS)]: game index, turns left to the game's end,
    seat, then the seat's terms; results float64 [N] in {0, 0.5, 1})."""
    config = GameConfig()
    weights = search.SearchWeights(tails=tails)
    players = [search.Search(ms=ms, weights=weights), search.Search(ms=ms, weights=weights)]
    seen: list[tuple[int, int, int, np.ndarray]] = []

    def observe(state, live) -> None:
        over = state.game_over(False)
        for g in map(int, live):
            if over[g]:
                continue
            rules = compact.Rules.of(config, state, g)
            pos = compact.from_batch(state, g)
            for seat in np.flatnonzero(state.alive[g]):
                terms = search.evaluation_terms(rules, pos, int(seat), weights)
                seen.append((g, int(state.turn[g]), int(seat), terms[COLUMNS]))

    result = arena.play_match(config, players, list(range(seed, seed + games)), np.random.default_rng(seed),
                              max_turns=max_turns, observer=observe)
    rows = np.array([[g, result.turns[g] - turn, seat, *terms] for g, turn, seat, terms in seen], np.float64)
    results = np.array([RESULT[arena.Outcome(int(result.outcome[g, seat]))] for g, _, seat, _ in seen])
    return rows.reshape(-1, 3 + len(TERMS)), results


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Logistic regression without intercept by Newton's method: x [N, K], y [N] in [0, 1]
    (soft labels allowed) -> w [K] minimising mean cross-entropy + l2/2 |w|^2."""
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) / len(y) + l2 * w
        hess = (x * (p * (1.0 - p))[:, None]).T @ x / len(y) + l2 * np.eye(x.shape[1])
        w -= np.linalg.solve(hess, grad)
    return w


def log_loss(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Mean cross-entropy (nats) of sigmoid(x @ w) against y."""
    p = np.clip(1.0 / (1.0 + np.exp(-(x @ w))), 1e-12, 1.0 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


def compare(rows: np.ndarray, results: np.ndarray, last: int) -> dict:
    """Held-out losses and each half's refitted weights (area = 10) over the positions within `last`
    turns of their game's end (0: all). Halves: odd and even game indices."""
    keep = (rows[:, 1] <= last) if last else np.ones(len(rows), bool)
    x, y, odd = rows[keep, 3:], results[keep], rows[keep, 0] % 2 == 1
    hand = np.array([getattr(search.SearchWeights(), name) for name in TERMS])
    losses = {"constant": [], "hand": [], "refit": []}
    halves = []
    for train in (odd, ~odd):
        test = ~train
        losses["constant"].append(log_loss(x[test, :1], y[test], np.zeros(1)))
        scale = fit((x[train] @ hand)[:, None], y[train])
        losses["hand"].append(log_loss((x[test] @ hand)[:, None], y[test], scale))
        w = fit(x[train], y[train])
        losses["refit"].append(log_loss(x[test], y[test], w))
        halves.append(w * 10.0 / w[0] if w[0] else w)
    return {"positions": int(keep.sum()), **{k: float(np.mean(v)) for k, v in losses.items()}, "halves": halves}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=300, help="duels to play (split over the workers)")
    parser.add_argument("--ms", type=float, default=10.0, help="search budget per move, both sides")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=6000)
    parser.add_argument("--max-turns", type=int, default=500)
    parser.add_argument("--last", default="10,30,60,120,0",
                        help="windows: positions within this many turns of their game's end (0: all)")
    parser.add_argument("--tails", action="store_true", help="play and fit with the tails count (search:tails=1)")
    args = parser.parse_args(argv)
    if args.games < 2 or args.workers < 1 or args.ms <= 0:
        parser.error("--games must be at least 2 (two halves), --workers at least 1, --ms above 0")
    windows = [int(v) for v in args.last.split(",")]
    print(f"commit {commit()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} before", flush=True)
    start = time.perf_counter()
    shares = np.array_split(np.arange(args.games), min(args.workers, args.games))
    with concurrent.futures.ProcessPoolExecutor(len(shares)) as pool:
        parts = list(pool.map(play, [args.seed + int(s[0]) for s in shares], [len(s) for s in shares],
                              [args.ms] * len(shares), [args.max_turns] * len(shares),
                              [args.tails] * len(shares)))
    rows, results = [], []
    for share, (r, y) in zip(shares, parts, strict=True):
        r[:, 0] += share[0]  # game index over all workers
        rows.append(r)
        results.append(y)
    rows, results = np.concatenate(rows), np.concatenate(results)
    games = np.unique(rows[:, 0]).size
    decisive = int(np.unique(rows[results != 0.5, 0]).size)
    print(f"{games} duels (11x11, search:ms={args.ms:g}{',tails=1' if args.tails else ''} both sides, --max-turns {args.max_turns}), "
          f"{len(rows):,} positions, {decisive} decisive, {time.perf_counter() - start:.0f} s", flush=True)
    hand = [getattr(search.SearchWeights(), name) for name in TERMS]
    print("held-out log loss (nats/position): constant | default weights, scale fitted | refitted")
    print(f"weights (area = 10): {', '.join(TERMS)}; default {hand}")
    for last in windows:
        got = compare(rows, results, last)
        label = f"last {last} turns" if last else "every turn"
        halves = "; ".join(np.array2string(h, precision=1, suppress_small=True) for h in got["halves"])
        print(f"{label:>15}: {got['positions']:>8,} positions  {got['constant']:.4f} | {got['hand']:.4f} | "
              f"{got['refit']:.4f}   refitted on each half: {halves}", flush=True)
    print(f"load {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
