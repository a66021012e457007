"""Training the search's leaf net (:mod:`..agents.leafnet`) on the outcomes of search games.

The data is what the leaf net will see: at every turn of duels between compiled `search`
players, each living snake's count (the hand-made leaf score, in points) and its sparse leaf
inputs (``search_kernel.leaf_inputs``, the same function the tree evaluates), labelled with
that snake's result (1 won, 0.5 drawn, 0 lost). The model is the kernel's net plus the count
as a skip input, a logistic model of the outcome:

    P(win) = sigmoid(a * count / 100 + net(inputs))

so the net learns what the count misses and `a` its scale; the kernel adds ``net * 100 / a``
points to the count (`nn[0]`). Trained by Adam on binary cross-entropy with the board's
eight symmetries as augmentation (a position's outcome does not change under them), cosine
learning-rate decay, L2 weight decay. This is the "learn the evaluation from game outcomes"
step that Texel's tuning (``benchmarks.eval_fit``) does for the count's linear weights, with a
network: NNUE's evaluation trained on search games' results (Nasu 2018; Stockfish's nets
are trained on search-labelled positions).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import typing
import zipfile

import numpy as np
import torch

from ouroboros.trainer.agents import arena, compact, leafnet, search
from ouroboros.trainer.engine.types import GameConfig, Ruleset

RESULT = {arena.WIN: 1.0, arena.DRAW: 0.5, arena.LOSS: 0.0}
COUNT_CLIP = 20_000.0
"""Counts are clipped to +-this (proven wins and losses are 1e6) before they enter the model."""


@dataclasses.dataclass
class LeafData:
    """Positions of search games, one row per living snake per turn."""

    inputs: np.ndarray
    """float16 [N, 7P + 5]: dense leaf inputs (cell channels, then scalars)."""
    count: np.ndarray
    """float64 [N]: the count (points) of that snake there."""
    result: np.ndarray
    """float64 [N]: that snake's result, 1 / 0.5 / 0."""
    game: np.ndarray
    """int64 [N]: the game's seed (held-out splits go by game, never by position)."""
    left: np.ndarray
    """int64 [N]: turns from this position to its game's end."""
    searched: np.ndarray
    """float64 [N]: the score (points) of a fixed-depth search of that snake there (`collect`'s
    `label_depth`); NaN where none ran (depth 0, or one safe move: nothing to search)."""

    @staticmethod
    def concat(parts: list[LeafData]) -> LeafData:
        return LeafData(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(LeafData)))

    def save(self, file: str | os.PathLike | typing.BinaryIO) -> None:
        """Writes the arrays as an ``.npz`` (one ``NAME.npy`` per field), deflated at zlib's level 1:
        the inputs are mostly zeros, so 100 11x11 duels' 171 MB of inputs become a 9.4 MB file in
        0.5 s (numpy's own compressed writer has zlib's default level, 6, and no way to lower it)."""
        with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for field in dataclasses.fields(self):
                with archive.open(f"{field.name}.npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.ascontiguousarray(getattr(self, field.name)),
                                              allow_pickle=False)

    @staticmethod
    def load(file: str | os.PathLike | typing.BinaryIO, label: str = "") -> LeafData:
        """Reads what :meth:`save` wrote (a file without ``searched``, written before it existed, gets
        NaN there); ValueError naming the file (`label` when given) and what is wrong, OSError when it
        cannot be opened."""
        label = label or str(file)
        names = [f.name for f in dataclasses.fields(LeafData)]
        try:
            z = np.load(file, allow_pickle=False)
        except OSError:
            raise
        except Exception as err:  # numpy's errors for what is not an archive vary (EOFError, ValueError...)
            raise ValueError(f"{label}: not leaf data: not an .npz archive ({type(err).__name__})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{label}: not leaf data: a single .npy array, not an .npz archive")
        with z:
            missing = [k for k in names if k not in z.files and k != "searched"]
            if missing:
                raise ValueError(f"{label}: not leaf data: missing {', '.join(missing)}")
            try:
                arrays = {k: z[k] for k in names if k in z.files}
            except Exception as err:  # a damaged member (zlib.error, BadZipFile, ValueError...)
                raise ValueError(f"{label}: not leaf data: a damaged array ({type(err).__name__})") from None
        arrays.setdefault("searched", np.full(len(arrays["result"]), np.nan))
        rows = {len(v) for v in arrays.values()}
        if len(rows) != 1:
            raise ValueError(f"{label}: not leaf data: its arrays have {sorted(rows)} rows, not one count")
        return LeafData(**arrays)


def collect(seed: int, games: int, ms: float, max_turns: int = 500,
            weights: search.SearchWeights | None = None, label_depth: int = 0,
            config: GameConfig | None = None) -> LeafData:
    """Plays `games` games of compiled `search` against itself (`ms` per move, seeds from `seed`;
    `config`'s board and snakes, 11x11 duels by default) and records every living snake's leaf
    inputs at every turn, and with `label_depth` the score of a search of that many turns from
    there (a second label: what a deeper look says, as chess nets are trained on search scores).
    RuntimeError without numba (the inputs are the compiled kernel's)."""
    if not search.compiled_available():
        raise RuntimeError("leaf data needs the compiled search kernel (numba)")
    config = config or GameConfig()
    w = weights or search.SearchWeights()
    players = [search.Search(ms=ms, weights=w) for _ in range(config.n_snakes)]
    rows: list[tuple[int, int, int]] = []
    inputs, counts, searched = [], [], []

    def observe(state, live) -> None:
        over = state.game_over(False)
        for g in map(int, live):
            if over[g]:
                continue
            rules = compact.Rules.of(config, state, g)
            pos = compact.from_batch(state, g)
            for seat in np.flatnonzero(state.alive[g]):
                count, dense = search.leaf_inputs(rules, pos, int(seat), w)
                counts.append(count)
                if label_depth:
                    looked = search.choose_compiled(rules, pos, int(seat), 1e6, max_depth=label_depth, weights=w)
                    searched.append(looked.score if looked.depth == label_depth else np.nan)
                else:
                    searched.append(np.nan)
                inputs.append(dense.astype(np.float16))
                rows.append((g, int(state.turn[g]), int(seat)))

    played = arena.play_match(config, players, list(range(seed, seed + games)), np.random.default_rng(seed),
                              max_turns=max_turns, observer=observe)
    meta = np.array(rows, np.int64).reshape(-1, 3)
    return LeafData(np.stack(inputs), np.array(counts, np.float64),
                    np.array([RESULT[arena.Outcome(int(played.outcome[g, s]))] for g, _, s in meta]),
                    meta[:, 0] + seed, np.array([played.turns[g] - t for g, t, _ in meta], np.int64),
                    np.array(searched, np.float64))


class LeafModel(torch.nn.Module):
    """The leaf net with the count as a skip input: logit = a * count / 100 + net(inputs)."""

    def __init__(self, n_inputs: int, hidden: int):
        super().__init__()
        self.l1 = torch.nn.Linear(n_inputs, hidden)
        self.l2 = torch.nn.Linear(hidden, hidden)
        self.l3 = torch.nn.Linear(hidden, 1)
        self.a = torch.nn.Parameter(torch.tensor(0.5))

    def net(self, inputs: torch.Tensor) -> torch.Tensor:
        z = torch.clamp(self.l1(inputs), 0, 1)
        return self.l3(torch.clamp(self.l2(z), 0, 1))[:, 0]

    def skip(self, count: torch.Tensor) -> torch.Tensor:
        """The count's part of the logit (count in points)."""
        return self.a * count / 100.0

    def forward(self, inputs: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
        return self.skip(count) + self.net(inputs)

    def export(self) -> leafnet.LeafNet:
        """The kernel's arrays (points per logit = 100 / a)."""
        cells = self.l1.in_features - len(leafnet.SCALARS)
        w1 = self.l1.weight.detach().double().numpy()
        a = float(self.a.detach())
        if a <= 0:
            raise ValueError(f"leaf model: the count's scale came out {a:.4f} (not above 0): no points per logit")
        return leafnet.LeafNet(w1[:, :cells].T.copy(), self.l1.bias.detach().double().numpy(),
                               self.l2.weight.detach().double().numpy(), self.l2.bias.detach().double().numpy(),
                               self.l3.weight.detach().double().numpy()[0], w1[:, cells:].T.copy(),
                               np.array([100.0 / a, float(self.l3.bias.detach()[0])]))


def _symmetry(inputs: torch.Tensor, cells: int, t: int) -> torch.Tensor:
    """One of the square board's 8 symmetries applied to the cell channels of `inputs` [B, 7P + 5]."""
    side = int(round(cells ** 0.5))
    grid = inputs[:, : len(leafnet.CHANNELS) * cells].reshape(-1, len(leafnet.CHANNELS), side, side)
    if t & 4:
        grid = grid.transpose(-1, -2)
    if t & 1:
        grid = grid.flip(-1)
    if t & 2:
        grid = grid.flip(-2)
    return torch.cat([grid.flatten(1), inputs[:, len(leafnet.CHANNELS) * cells:]], 1)


def targets(data: LeafData, rows: np.ndarray, outcome_weight: float = 1.0) -> np.ndarray:
    """What :func:`fit` trains toward at `rows`, float64 in [0, 1]: `outcome_weight` x the result +
    (1 - it) x sigmoid(s x searched / 100), with s the count's logistic scale fitted to the results
    of those rows (so search scores and counts speak the same units); the result alone where no
    search score was recorded. The blend of game result and search score is the `lambda` of
    Stockfish's NNUE trainer."""
    result = data.result[rows]
    if outcome_weight >= 1.0:
        return result
    count = np.clip(data.count[rows], -COUNT_CLIP, COUNT_CLIP) / 100.0
    s = _scale(count, result)
    searched = np.clip(data.searched[rows], -COUNT_CLIP, COUNT_CLIP) / 100.0
    soft = np.where(np.isnan(searched), result, 1.0 / (1.0 + np.exp(-s * np.nan_to_num(searched))))
    return outcome_weight * result + (1.0 - outcome_weight) * soft


def _scale(x: np.ndarray, y: np.ndarray, steps: int = 50) -> float:
    """The logistic scale s of P(y) = sigmoid(s x), no intercept, by Newton's method."""
    s = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-s * x))
        s -= float(np.sum((p - y) * x)) / max(float(np.sum(p * (1 - p) * x * x)), 1e-12)
    return s


def fit(data: LeafData, rows: np.ndarray | None = None, hidden: int = 16, epochs: float = 20.0,
        lr: float = 1e-3, weight_decay: float = 1e-3, batch: int = 512, seed: int = 0,
        outcome_weight: float = 1.0, spread: float = 0.0) -> LeafModel:
    """Trains a :class:`LeafModel` on `rows` of `data` (all when None); epochs over those rows,
    toward :func:`targets`. The board must be square (the symmetries).

    `spread`: a penalty of `spread` x the mean squared correction (logits^2) added to the loss, so
    the net keeps a correction only where it pays for itself in log loss (a search maximises over
    its leaves' errors: the corrections it does not need are noise it will exploit)."""
    if spread < 0:
        raise ValueError(f"leaf fit: spread {spread} is a penalty's weight and must be at least 0")
    torch.manual_seed(seed)
    rows = np.arange(len(data.result)) if rows is None else np.asarray(rows)
    n_inputs = data.inputs.shape[1]
    cells = (n_inputs - len(leafnet.SCALARS)) // len(leafnet.CHANNELS)
    if int(round(cells ** 0.5)) ** 2 != cells:
        raise ValueError(f"leaf data of {cells} padded cells: the symmetries need a square board")
    model = LeafModel(n_inputs, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, int(epochs * len(rows) / batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(seed)
    count = torch.from_numpy(np.clip(data.count, -COUNT_CLIP, COUNT_CLIP).astype(np.float32))
    result = torch.zeros(len(data.result))
    result[torch.from_numpy(rows)] = torch.from_numpy(targets(data, rows, outcome_weight).astype(np.float32))
    for _ in range(steps):
        b = rng.choice(rows, min(batch, len(rows)), replace=False)
        x = _symmetry(torch.from_numpy(data.inputs[b].astype(np.float32)), cells, int(rng.integers(8)))
        correction = model.net(x)
        logit = model.skip(count[b]) + correction
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, result[b])
        if spread:
            loss = loss + spread * torch.mean(correction * correction)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model


def logits(model: LeafModel, data: LeafData, rows: np.ndarray) -> np.ndarray:
    """The model's logit of a win at `rows` of `data`, float64 [len(rows)]."""
    return _by_parts(rows, lambda part: model(*_tensors(data, part)))


def corrections(model: LeafModel, data: LeafData, rows: np.ndarray) -> np.ndarray:
    """What the search would add to the count at `rows` of `data`: the net's output in points
    (x 100 / a, as the kernel adds it), float64 [len(rows)]."""
    points = 100.0 / float(model.a.detach())
    return _by_parts(rows, lambda part: model.net(_tensors(data, part)[0])) * points


def _tensors(data: LeafData, part: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and clipped counts of rows `part`, float32."""
    return (torch.from_numpy(data.inputs[part].astype(np.float32)),
            torch.from_numpy(np.clip(data.count[part], -COUNT_CLIP, COUNT_CLIP).astype(np.float32)))


def _by_parts(rows: np.ndarray, compute) -> np.ndarray:
    """`compute(part)` over `rows` in parts of about 8,192, float64, concatenated."""
    out = []
    with torch.no_grad():
        for part in np.array_split(np.asarray(rows), max(1, len(rows) // 8192)):
            out.append(compute(part).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


MOVE_MS = 10.0
"""The search's budget per move in the games a run's leaf net learns from (the bootstrap phase's
``leaf_games``), the budget of the data behind the measured net. The measured recipe: 1,000 11x11
duels at 10 ms a move (:func:`play`), hidden 16, 20 epochs (:func:`adopt`): 677,304 positions,
2,347 s of games on 2 cores and 215 s a fit; held out, every turn, log loss 0.6614 against the
count's 0.6773 (README, *Strength*)."""


def adopt(data: LeafData, *, hidden: int = 16, epochs: float = 20.0,
          seed: int = 0) -> tuple[leafnet.LeafNet | None, tuple[float, float] | None, str]:
    """The leaf net fitted on all of `data` (:func:`fit`), if it is worth carrying: (net, held-out
    log losses of the count and of count + net, why there is no net). First held out by game
    parity: fitted on the odd games, count + net must predict the even games' outcomes better than
    the count alone with its scale fitted on the same games (log loss), else no net (a net that
    predicts no better only adds noise the search will exploit). No net either when every position
    has the same result (every game drawn: the turn cap) or the count's fitted scale is not
    positive. With games of one parity only, no held-out check (held-out losses None)."""
    if np.all(data.result == data.result[0]):
        return None, None, f"every game ended alike (result {data.result[0]:g} for every snake): nothing to learn"
    held = None
    odd = data.game % 2 == 1
    if odd.any() and (~odd).any():
        train_rows, test_rows = np.flatnonzero(odd), np.flatnonzero(~odd)
        model = fit(data, train_rows, hidden=hidden, epochs=epochs, seed=seed)
        count = np.clip(data.count, -COUNT_CLIP, COUNT_CLIP) / 100.0
        scale = _scale(count[train_rows], data.result[train_rows])
        held = (_log_loss(scale * count[test_rows], data.result[test_rows]),
                _log_loss(logits(model, data, test_rows), data.result[test_rows]))
        if not held[1] < held[0]:
            return None, held, (f"count + net predicted the held-out games no better than the count alone "
                                f"(log loss {held[1]:.4f} against {held[0]:.4f})")
    try:
        return fit(data, hidden=hidden, epochs=epochs, seed=seed).export(), held, ""
    except ValueError as err:  # the count's scale came out <= 0
        return None, held, str(err)


def check_game(config: GameConfig) -> None:
    """ValueError unless a leaf net can be trained for `config`'s game: a square board (the fit's
    symmetries) and rivals to win against (not solo); RuntimeError without numba."""
    if config.width != config.height:
        raise ValueError(f"leaf net: the board is {config.width}x{config.height}; its training needs a square "
                         "board (the eight symmetries)")
    if config.n_snakes < 2 or config.ruleset is Ruleset.SOLO:
        raise ValueError("leaf net: a solo game has no outcome to learn (it needs 2 or more snakes)")
    if not search.compiled_available():
        raise RuntimeError("leaf net: its games need the compiled search kernel (numba)")


def _log_loss(logit: np.ndarray, result: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logit) against results in [0, 1], nats."""
    return float(np.mean(result * np.logaddexp(0.0, -logit) + (1.0 - result) * np.logaddexp(0.0, logit)))


def play(config: GameConfig, games: int, seed: int, *, ms: float = MOVE_MS, max_turns: int = 500,
         workers: int = 1, label_depth: int = 0,
         pool: concurrent.futures.Executor | None = None) -> list[LeafData]:
    """:func:`collect`'s games 0 to `games` - 1 (seeds from `seed`) split over `workers` processes
    (this one alone when 1): one LeafData per process, in game order. `pool`: an executor of at
    least `workers` processes to run them in (a caller that plays in chunks keeps one, so each
    chunk does not spawn and import torch and numba again: :func:`processes`); else a pool is
    spawned for this call."""
    shares = [s for s in np.array_split(np.arange(games), min(workers, games)) if len(s)]
    jobs = [(seed + int(s[0]), len(s), ms, max_turns, label_depth, config) for s in shares]
    if len(jobs) == 1:
        return [_collect_share(jobs[0])]
    if pool is not None:
        return list(pool.map(_collect_share, jobs))
    with processes(len(jobs)) as own:
        return list(own.map(_collect_share, jobs))


def processes(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of `workers` spawned processes for :func:`play` (spawn: no forked torch or numba state)."""
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _collect_share(job: tuple) -> LeafData:
    seed, games, ms, max_turns, label_depth, config = job
    return collect(seed, games, ms, max_turns, label_depth=label_depth, config=config)
