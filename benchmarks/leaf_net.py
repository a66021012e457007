"""Does a leaf net trained on search games' outcomes predict them better than the count? And write one.

    python -m benchmarks.leaf_net [--games 320] [--ms 10] [--workers 2] [--seed 9000] [--max-turns 500]
                                  [--label-depth 0] [--outcome-weight 1] [--hidden 16] [--epochs 20]
                                  [--spread 0]
                                  [--last 10,30,60,120,0] [--out leaf.npz] [--data DIR]

Plays ``--games`` 11x11 duels of the compiled ``search`` against itself at ``--ms`` a move in
``--workers`` processes (``trainer.learning.leaf.collect``: every living snake's leaf inputs and
count at every turn, and its result; games that reach ``--max-turns`` are draws, 0.5), or reads
them back from ``--data`` (``parts-*.npz`` written there by an earlier run with the same option;
the game options are then ignored: the data says what was played). Then, held out by game parity (trained on the odd
games and scored on the even ones, and the other way round), for windows of ``--last`` turns
before each game's end (0: every turn), prints the log loss (nats per position, mean of the two
halves) of the count with its logistic scale fitted and of the leaf model (count + net,
``leaf.fit``; ``--spread``: its penalty on the corrections' size), raw and with its scale
refitted, and the spread of the held-out corrections in points (what the search would add to
the count). With ``--out``, trains on every game and writes the net
(:mod:`trainer.agents.leafnet`'s ``.npz``), which ``search:leafnet=PATH`` plays; whether it wins is for a match (``ouro evaluate --players "search:leafnet=PATH,search"``), not
for this log loss. Records the games, positions, time, commit, CPUs and load.
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np

from benchmarks import commit
from benchmarks.eval_fit import fit as fit_scale
from benchmarks.eval_fit import log_loss
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.learning import leaf


def _load(paths: list[str]) -> leaf.LeafData:
    try:
        return leaf.LeafData.concat([leaf.LeafData.load(path) for path in paths])
    except ValueError as err:
        raise SystemExit(f"python -m benchmarks.leaf_net: {err}") from None


def _windows(text: str) -> list[int]:
    try:
        windows = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole turns") from None
    if any(w < 0 for w in windows):
        raise argparse.ArgumentTypeError(f"{text!r}: windows are turns >= 0 (0: every turn)")
    return windows


def _windowed(score: np.ndarray, data: leaf.LeafData, last: int) -> float:
    """Held-out log loss of sigmoid(s * score), s fitted on the other half, over the window."""
    keep = (data.left <= last) if last else np.ones(len(score), bool)
    odd = data.game % 2 == 1
    losses = []
    for train in (odd, ~odd):
        s = fit_scale(score[keep & train][:, None], data.result[keep & train])
        losses.append(log_loss(score[keep & ~train][:, None], data.result[keep & ~train], s))
    return float(np.mean(losses))


def _raw(logit: np.ndarray, data: leaf.LeafData, last: int) -> float:
    keep = (data.left <= last) if last else np.ones(len(logit), bool)
    return log_loss(logit[keep][:, None], data.result[keep], np.ones(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leaf_net", description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=320, help="duels to play (split over the workers)")
    parser.add_argument("--ms", type=float, default=10.0, help="search budget per move, both sides")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=9000)
    parser.add_argument("--max-turns", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=16, help="the net's hidden width (both layers)")
    parser.add_argument("--epochs", type=float, default=20.0)
    parser.add_argument("--spread", type=float, default=0.0,
                        help="penalty on the mean squared correction (logits^2) while training")
    parser.add_argument("--label-depth", type=int, default=0,
                        help="also score every position by a search this many turns deep (a second label)")
    parser.add_argument("--outcome-weight", type=float, default=1.0,
                        help="train toward this x the result + the rest x the search score (needs --label-depth)")
    parser.add_argument("--last", type=_windows, default="10,30,60,120,0",
                        help="windows: positions within this many turns of their game's end (0: all)")
    parser.add_argument("--data", default="", help="a folder: reuse its parts-*.npz, or write the games' there")
    parser.add_argument("--out", default="", help="train on every game and write the net here (.npz)")
    args = parser.parse_args(argv)
    if args.games < 2 or args.workers < 1 or args.ms <= 0 or args.hidden < 1 or args.epochs <= 0 \
            or args.spread < 0:
        parser.error("--games must be at least 2 (two halves), --workers and --hidden at least 1, "
                     "--ms and --epochs above 0, --spread at least 0")
    if not 0.0 <= args.outcome_weight <= 1.0 or args.label_depth < 0:
        parser.error("--outcome-weight must lie in [0, 1] and --label-depth be at least 0")
    if args.outcome_weight < 1.0 and not args.label_depth and not args.data:
        parser.error("--outcome-weight below 1 needs --label-depth (search scores to blend with the results)")
    windows = args.last
    print(f"commit {commit()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} before", flush=True)
    start = time.perf_counter()
    saved = sorted(glob.glob(os.path.join(args.data, "parts-*.npz"))) if args.data else []
    if saved:
        data = _load(saved)
        print(f"read {len(saved)} parts from {args.data} (--games, --seed, --ms, --max-turns and "
              f"--label-depth are what they were played with, not these flags)", flush=True)
    else:
        folder = args.data or os.path.join(os.environ.get("TMPDIR", "/tmp"), f"leaf-net-{os.getpid()}")
        os.makedirs(folder, exist_ok=True)
        parts = leaf.play(GameConfig(), args.games, args.seed, ms=args.ms, max_turns=args.max_turns,
                          workers=args.workers, label_depth=args.label_depth)
        for part in parts:  # named by their first game's seed, as --data reads them back
            part.save(os.path.join(folder, f"parts-{int(part.game.min())}.npz"))
        data = leaf.LeafData.concat(parts)
    games = np.unique(data.game).size
    played = "read back" if saved else f"search:ms={args.ms:g} both sides, --max-turns {args.max_turns}"
    print(f"{games} duels (11x11, {played}), "
          f"{int(np.sum(~np.isnan(data.searched))):,} positions scored by a search, "
          f"{len(data.result):,} positions, {time.perf_counter() - start:.0f} s", flush=True)
    if args.outcome_weight < 1.0 and np.isnan(data.searched).all():
        raise SystemExit("python -m benchmarks.leaf_net: --outcome-weight below 1, but no position carries a "
                         "search score (the data was played without --label-depth)")
    if np.all(data.result == 0.5):
        print("warning: every game was drawn (the turn cap?): the outcomes teach the net nothing", flush=True)
    odd = data.game % 2 == 1
    held = np.zeros(len(data.result))
    points = np.zeros(len(data.result))
    count = np.clip(data.count, -leaf.COUNT_CLIP, leaf.COUNT_CLIP)
    for train in (odd, ~odd):
        model = leaf.fit(data, np.flatnonzero(train), hidden=args.hidden, epochs=args.epochs,
                         outcome_weight=args.outcome_weight, spread=args.spread)
        held[~train] = leaf.logits(model, data, np.flatnonzero(~train))
        points[~train] = leaf.corrections(model, data, np.flatnonzero(~train))
    print(f"held-out log loss (nats/position): count, scale fitted | leaf model raw | leaf model, scale "
          f"refitted ({time.perf_counter() - start:.0f} s)")
    for last in windows:
        label = f"last {last} turns" if last else "every turn"
        print(f"{label:>15}: {_windowed(count, data, last):.4f} | {_raw(held, data, last):.4f} | "
              f"{_windowed(held, data, last):.4f}", flush=True)
    p5, p50, p95 = np.percentile(points, [5, 50, 95])
    print(f"held-out correction (what the search adds to the count): sd {points.std():.0f} points, "
          f"p5 {p5:.0f}, median {p50:.0f}, p95 {p95:.0f}", flush=True)
    if args.out:
        net = leaf.fit(data, hidden=args.hidden, epochs=args.epochs, outcome_weight=args.outcome_weight,
                       spread=args.spread).export()
        net.save(args.out)
        print(f"wrote {args.out}: hidden {args.hidden}, spread penalty {args.spread:g}, {net.nn[0]:.0f} points per "
              f"logit", flush=True)
    print(f"load {os.getloadavg()[0]:.1f} after, {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
