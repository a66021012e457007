"""Experience replay: the newest window of recorded positions, filtered by quality, sampled by priority.

Training never reads "all the data": old positions were played by weaker
networks and teach yesterday's mistakes, and the store grows without bound.
:meth:`ReplayBuffer.load` takes the **newest window** of a run's shards
(``window_positions`` and/or ``window_games``, whichever is reached first;
newest = most recently committed shard) and loads only those shards, newest
first, so memory holds the window (at peak, plus one shard while reading and one
column while joining), never the whole store.
A shard that fails its sha256 or does not match its metadata is skipped with a
warning and listed in ``buffer.skipped``; it never reaches a batch, and the
window then reaches one shard further back. So is a shard whose ``planes``
have another shape per row than the newest shard's. Planes of encoding version
1 (17, before the territory planes) are completed to the current encoding as
they are read (:func:`current_planes`), so replay recorded before an upgrade
still trains; a phase checks the window's planes against its network
(:func:`check_planes`) before it trains.

**Quality.** :func:`position_quality` scores every position in [0, 1] when the
producer records it (it knows how the game ended)::

    quality = (1 - blunder) * (0.3 * length + 0.3 * decisive + 0.4 * strength)

* ``length = min(1, game_length / full_length)``: very short games are mostly
  early collisions between weak players; they carry little strategy and would
  flood the window with openings.
* ``decisive``: 1 if the game ended by eliminations, 0 if it was truncated at
  the turn limit or everyone died together. A truncated game's value target is
  not a real outcome, so it is noise for the value head.
* ``strength``: the expected score of the player that made the recorded move
  against the current reference (champion), from Elo
  (:func:`strength_from_elo`). Imitating a weak player teaches weakness; the
  largest weight, because the policy target is only as good as its player.
* ``blunder``: the recorded move lost at once although a safe move existed
  (``observation.safety.safe_moves``). Such a policy target is never worth learning,
  so the position scores 0 whatever else is true.

``quality_threshold`` drops positions below it *inside* the window: the window
says how much recent play to look at, the threshold which of it to learn
from, so raising the threshold never makes the data older.

**Prioritised sampling** (Schaul et al., 2016, "Prioritized Experience Replay",
with a recency factor): position ``i`` (0 = oldest in the window, ``N-1`` =
newest) is drawn with probability ::

    P(i) ∝ recency_i * priority_i ** alpha,   recency_i = 0.5 ** ((N - 1 - i) / half_life)

``priority_i`` starts at the largest priority seen so far (so a new position
is drawn soon) and becomes ``|value error| + eps`` after a training step
reports it through :meth:`ReplayBuffer.update_priorities`. Samples carry
importance weights ``w_i = (P_min / P(i)) ** beta`` (at most 1) that undo the
bias in the loss. ``alpha = 0`` and no half-life give uniform sampling.
Priorities are training state: :meth:`ReplayBuffer.state_dict` goes into the
checkpoint and :meth:`ReplayBuffer.load` takes it back (rows still in the new
window keep their priorities), so a resumed phase samples exactly as an
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel, Field

from ouroboros.trainer.artifacts.store import ArtifactError, ArtifactStore
from ouroboros.trainer.learning import shards
from ouroboros.trainer.observation import encoding

log = logging.getLogger(__name__)

ReplayWriter = shards.ReplayWriter
"""The writer lives with the shard format (:mod:`.shards`); named here for discoverability."""


class QualityWeights(BaseModel):
    """How :func:`position_quality` weighs its terms (see the module docstring)."""

    length: float = Field(0.3, ge=0, description="Weight of the game-length term.")
    decisive: float = Field(0.3, ge=0, description="Weight of 'the game ended by eliminations'.")
    strength: float = Field(0.4, ge=0, description="Weight of the producer's strength.")
    full_length: int = Field(
        50, ge=1, description="Game length (turns) from which the length term is 1."
    )


class ReplayConfig(BaseModel):
    """The replay section of a phase's config."""

    shard_rows: int = Field(4096, ge=1, description="Positions per shard the writer aims for.")
    window_positions: int | None = Field(
        100_000,
        ge=1,
        description="Newest recorded positions to consider (None: no limit). Memory is about "
        "this times one position's bytes: 100,000 float16 19x11x11 planes take 0.46 GB.",
    )
    window_games: int | None = Field(
        None, ge=1, description="Newest games to consider (None: no limit); whichever window is smaller wins."
    )
    quality_threshold: float = Field(
        0.3, ge=0, le=1, description="Positions with quality below this are not trained on."
    )
    priority_alpha: float = Field(
        0.6, ge=0, description="How strongly |value error| skews sampling (0: not at all)."
    )
    priority_beta: float = Field(
        0.4, ge=0, le=1, description="Importance-weight exponent (1: fully unbiased)."
    )
    priority_eps: float = Field(1e-3, gt=0, description="Added to |error| so no position starves.")
    recency_half_life: int | None = Field(
        None, ge=1, description="Positions after which the recency factor halves (None: off)."
    )


def strength_from_elo(elo: np.ndarray | float, reference: float) -> np.ndarray:
    """Expected score against a player rated ``reference``, in (0, 1): [N] -> float32 [N]."""
    return (1.0 / (1.0 + 10.0 ** ((reference - np.asarray(elo, np.float64)) / 400.0))).astype(np.float32)


def position_quality(
    game_length: np.ndarray,
    decisive: np.ndarray,
    strength: np.ndarray,
    blunder: np.ndarray,
    weights: QualityWeights | None = None,
) -> np.ndarray:
    """Quality of each position in [0, 1] (module docstring): arrays [N] (or broadcastable
    scalars) of turns the game lasted, bool decisive, strength in [0, 1], bool blunder
    -> float32 [N]."""
    w = weights or QualityWeights()
    total = w.length + w.decisive + w.strength
    if total <= 0:
        raise ValueError("quality weights must not all be 0")
    length = np.minimum(np.asarray(game_length, np.float64) / w.full_length, 1.0)
    score = (
        w.length * length
        + w.decisive * np.asarray(decisive, np.float64)
        + w.strength * np.clip(np.asarray(strength, np.float64), 0.0, 1.0)
    ) / total
    return np.where(np.asarray(blunder, bool), 0.0, score).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Batch:
    """One sampled batch."""

    indices: np.ndarray
    """int64 [B]: rows of the buffer (for :meth:`ReplayBuffer.update_priorities`)."""
    columns: dict[str, np.ndarray]
    """The requested columns, each [B, ...]."""
    weights: np.ndarray
    """float32 [B]: importance weights in (0, 1]; multiply the per-sample loss by them."""


def _full(rows: int, games: int, config: ReplayConfig) -> bool:
    return (config.window_positions is not None and rows >= config.window_positions) or (
        config.window_games is not None and games >= config.window_games
    )


def current_planes(columns: dict[str, np.ndarray], key: str) -> dict[str, np.ndarray]:
    """``columns`` of the shard at ``key`` with planes [N, 17, H, W] of encoding version 1 (a
    prefix of the current planes) completed in place to the current encoding
    (``encoding.add_territory``, same dtype), for replay recorded before an upgrade; any other
    columns, and planes of another layout, as they are (the buffer holds any producer's
    columns; :func:`check_planes` is where a network's phase insists on its planes)."""
    planes = columns.get("planes")
    if planes is not None and planes.ndim == 4 and planes.shape[1] == encoding.VERSION_CHANNELS[1]:
        columns["planes"] = encoding.add_territory(planes).astype(planes.dtype)
    return columns


def _same_layout(columns: dict[str, np.ndarray], chunks: list, key: str) -> None:
    """ShardError when the shard's ``planes`` have another shape per row than the window's
    newest shard's (a window cannot hold both: another encoding or board, or a foreign producer)."""
    if "planes" not in columns:
        return
    for _, kept, _ in chunks:
        if "planes" in kept and kept["planes"].shape[1:] != columns["planes"].shape[1:]:
            raise shards.ShardError(f"shard {key}: planes [N, {', '.join(map(str, columns['planes'].shape[1:]))}] "
                                    f"differ from the window's newest shard's "
                                    f"[N, {', '.join(map(str, kept['planes'].shape[1:]))}]")
        return


def check_planes(columns: dict[str, np.ndarray], in_channels: int, what: str) -> None:
    """ValueError unless ``columns["planes"]`` is [N, ``in_channels``, H, W], naming ``what``
    (the phase and its sources): a network must never train on planes it does not read."""
    planes = columns.get("planes")
    if planes is not None and len(planes) and (planes.ndim != 4 or planes.shape[1] != in_channels):
        counts = ", ".join(f"{c} for version {v}" for v, c in encoding.VERSION_CHANNELS.items())
        raise ValueError(f"{what}: replay planes {tuple(planes.shape)} do not fit the network's {in_channels} "
                         f"input planes (encoding versions: {counts})")


class ReplayBuffer:
    """The loaded window: columns oldest first, with per-row priorities. Build with :meth:`load`."""

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        shard_keys: list[str],
        shard_of: np.ndarray,
        row: np.ndarray,
        config: ReplayConfig,
        skipped: list[str] | None = None,
    ) -> None:
        self.columns = columns
        self.shard_keys = shard_keys
        self.shard_of = shard_of
        """int32 [N]: index into ``shard_keys`` of each row's shard."""
        self.row = row
        """int32 [N]: each row's index within its shard."""
        self.config = config
        self.skipped = skipped or []
        """Keys of shards in the window that failed verification and were not used."""
        n = len(row)
        self.priority = np.ones(n, np.float64)
        self.max_priority = 1.0
        age = (n - 1 - np.arange(n, dtype=np.float64))
        half = config.recency_half_life
        self._recency = np.ones(n) if half is None else 0.5 ** (age / half)
        self._cdf: np.ndarray | None = None  # cumulative sampling weights, rebuilt after updates
        self._p_min = 0.0

    def __len__(self) -> int:
        return len(self.row)

    @property
    def games(self) -> int:
        """Distinct games with at least one position in the buffer."""
        return len(np.unique(self.columns["game_id"])) if len(self) else 0

    @classmethod
    def load(
        cls,
        store: ArtifactStore,
        run: str,
        phases: Iterable[str],
        config: ReplayConfig,
        state: dict | None = None,
    ) -> ReplayBuffer:
        """The newest window of ``run``'s shards in ``phases``; ``state`` is a previous
        buffer's :meth:`state_dict` whose priorities carry over to rows still here."""
        refs = sorted(
            (r for p in phases for r in shards.list_shards(store, run, p)),
            key=lambda r: (r.committed, r.key),
        )
        chunks: list[tuple[shards.ShardRef, dict[str, np.ndarray], np.ndarray]] = []
        skipped: list[str] = []
        rows = games = 0
        for ref in reversed(refs):  # newest first; stop as soon as the window is full
            if _full(rows, games, config):
                break
            try:
                cols = current_planes(shards.read_shard(store, ref), ref.key)
                _same_layout(cols, chunks, ref.key)
            except (ArtifactError, OSError) as e:
                log.warning("replay: skipping corrupt shard %s: %s", ref.key, e)
                skipped.append(ref.key)
                continue
            keep = _window_rows(cols["game_id"], rows, games, config)
            rows += int(keep.sum())
            games += len(np.unique(cols["game_id"][keep]))
            keep &= cols["quality"] >= config.quality_threshold
            idx = np.flatnonzero(keep).astype(np.int32)
            chunks.append((ref, {k: v[idx] for k, v in cols.items()}, idx))
            del cols
        chunks.reverse()  # oldest first, so a row's index grows with its recency
        buffer = cls._concat(chunks, config, skipped)
        if state is not None:
            buffer.load_state_dict(state)
        return buffer

    @classmethod
    def _concat(cls, chunks, config: ReplayConfig, skipped: list[str]) -> ReplayBuffer:
        keys = [ref.key for ref, _, _ in chunks]
        # Producers add columns of their own (PPO's logp, expert iteration's search targets): a
        # window that spans producers keeps the columns they all have.
        names = [n for n in chunks[0][1] if all(n in c for _, c, _ in chunks)] if chunks else list(shards.REQUIRED)
        columns = {}
        for name in names:  # one column at a time: peak memory is the window plus one column
            parts = [c[name] for _, c, _ in chunks]
            columns[name] = (
                np.concatenate(parts) if parts else np.empty(0, shards.REQUIRED.get(name, np.float32))
            )
            for _, c, _ in chunks:
                del c[name]
        for _, c, _ in chunks:  # the columns not every producer wrote
            c.clear()
        shard_of = np.concatenate(
            [np.full(len(idx), i, np.int32) for i, (_, _, idx) in enumerate(chunks)] or [np.empty(0, np.int32)]
        )
        row = np.concatenate([idx for _, _, idx in chunks] or [np.empty(0, np.int32)])
        return cls(columns, keys, shard_of, row, config, skipped)

    # ------------------------------------------------------------------ sampling

    def probabilities(self) -> np.ndarray:
        """float64 [N]: the probability of drawing each row (module docstring)."""
        p = self._recency * self.priority**self.config.priority_alpha
        return p / p.sum()

    def sample(self, batch_size: int, rng: np.random.Generator, names: Sequence[str] | None = None) -> Batch:
        """``batch_size`` rows drawn with replacement by priority, with importance weights."""
        if not len(self):
            raise ValueError("cannot sample from an empty replay buffer (no shards, or all filtered)")
        if self._cdf is None:
            p = self._recency * self.priority**self.config.priority_alpha
            self._cdf = np.cumsum(p)
            self._p_min = float(p.min() / self._cdf[-1])
        cdf = self._cdf
        idx = np.searchsorted(cdf, rng.random(batch_size) * cdf[-1], side="right")
        idx = np.minimum(idx, len(cdf) - 1)
        p = (cdf[idx] - np.where(idx > 0, cdf[idx - 1], 0.0)) / cdf[-1]
        weights = (self._p_min / p) ** self.config.priority_beta
        names = list(self.columns) if names is None else names
        return Batch(idx.astype(np.int64), {n: self.columns[n][idx] for n in names}, weights.astype(np.float32))

    def update_priorities(self, indices: np.ndarray, errors: np.ndarray) -> None:
        """Set the priority of rows ``indices`` [B] to ``|errors| + eps`` [B] (e.g. value error)."""
        new = np.abs(np.asarray(errors, np.float64)) + self.config.priority_eps
        self.priority[np.asarray(indices)] = new
        self.max_priority = max(self.max_priority, float(new.max(initial=0.0)))
        self._cdf = None

    # ------------------------------------------------------------------ checkpointing

    def state_dict(self) -> dict:
        """Priorities keyed by (shard, row): numpy arrays and plain values, for a checkpoint."""
        return {
            "shard_keys": list(self.shard_keys),
            "shard_of": self.shard_of.copy(),
            "row": self.row.copy(),
            "priority": self.priority.copy(),
            "max_priority": self.max_priority,
        }

    def load_state_dict(self, state: dict) -> None:
        """Take priorities from ``state`` for every (shard, row) present in both; new rows
        start at the largest priority seen."""
        old_keys = list(state["shard_keys"])
        old_shard = np.asarray(state["shard_of"])
        old_row = np.asarray(state["row"])
        old_priority = np.asarray(state["priority"], np.float64)
        self.max_priority = max(1.0, float(state["max_priority"]))
        self.priority[:] = self.max_priority
        where = {k: i for i, k in enumerate(old_keys)}
        for i, key in enumerate(self.shard_keys):
            if key not in where:
                continue
            mine = np.flatnonzero(self.shard_of == i)
            theirs = np.flatnonzero(old_shard == where[key])
            order = np.argsort(old_row[theirs])
            sorted_rows = old_row[theirs][order]
            pos = np.searchsorted(sorted_rows, self.row[mine])
            pos = np.minimum(pos, max(len(sorted_rows) - 1, 0))
            hit = (sorted_rows[pos] == self.row[mine]) if len(sorted_rows) else np.zeros(len(mine), bool)
            self.priority[mine[hit]] = old_priority[theirs][order][pos[hit]]
        self._cdf = None


def _window_rows(game_id: np.ndarray, rows: int, games: int, config: ReplayConfig) -> np.ndarray:
    """bool [n]: the rows of a shard (newest last) that still fit in the window."""
    n = len(game_id)
    keep = np.ones(n, bool)
    if config.window_positions is not None and rows + n > config.window_positions:
        keep[: n - (config.window_positions - rows)] = False
    if config.window_games is not None:
        ids, first = np.unique(game_id, return_index=True)
        room = config.window_games - games
        if len(ids) > room:  # keep the games that started last in the shard
            newest = ids[np.argsort(first)[len(ids) - room :]]
            keep &= np.isin(game_id, newest)
    return keep
