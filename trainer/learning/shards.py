"""Replay shards: the on-store format of recorded positions, and the writer that makes them.

Self-play workers (one process each, possibly one pod each in an Indexed Job)
and the trainer never talk to each other: they meet in the artifact store,
KataGo-style. A worker appends positions to a :class:`ReplayWriter`, which
cuts them into *shards*::

    runs/<run>/replay/<phase>/shard-<worker:04d>-<seq:08d>.npz   (+ .meta.json sidecar)

Why shards rather than one growing file: a shard is written once, atomically,
through :class:`~ouroboros.trainer.artifacts.store.ArtifactStore` (temp file +
rename, then the sha256 sidecar), so a reader sees a shard whole or not at
all, a SIGKILL loses at most the positions still buffered, and any number of
workers write without coordination (each owns its ``worker`` number).

**Contents.** A shard is a compressed ``.npz`` of named arrays, all with the
same first dimension ``N`` (positions). Required columns (:data:`REQUIRED`):

=========  ==========  ==========================================================
value      float32 [N]  outcome for the recorded seat in [-1, 1] (value target)
game_id    int64 [N]    the game the position comes from (unique within a run)
turn       int32 [N]    turn of the position
seat       int8 [N]     which snake the position is encoded for
quality    float32 [N]  in [0, 1], see :func:`ouroboros.trainer.learning.replay.position_quality`
created    float64 [N]  unix time the position was recorded (filled by the writer)
producer   uint8 [N]    index into the shard's ``producers`` (filled by the writer)
=========  ==========  ==========================================================

Anything else is the producer's choice and is kept as is, e.g. ``planes``
uint8/float16 [N, C, H, W] (the layout of :mod:`ouroboros.trainer.observation.encoding`,
whose version the producer puts in ``extra``), ``policy`` float32 [N, 4] or
``move`` int8 [N]. This module never interprets them, so the shard format does
not change when the encoding does.

**Metadata.** The sidecar carries a :class:`ShardMeta` (schema version, run,
phase, worker, sequence, rows, games, producers with their row/game/quality
counts, creation times, column dtypes and shapes, and the producer's resume
*cursor*), so ``ouro data stats`` and window planning read sidecars only,
never the arrays.

**Restart safety.** A writer lists its own complete shards when it opens and
continues after the highest sequence number, so a restart never overwrites a
shard; the last shard's ``cursor`` tells the producer where to resume (the
positions after it were lost with the process and are played again). A shard
holds whole ``add`` calls: a producer that adds each game at its end never
has a game split across shards. One writer per (run, phase, worker) at a time.
"""

from __future__ import annotations

import io
import logging
import re
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field, JsonValue, ValidationError

from ouroboros.trainer.artifacts.store import ArtifactError, ArtifactInfo, ArtifactStore

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REQUIRED: dict[str, np.dtype] = {
    "value": np.dtype(np.float32),
    "game_id": np.dtype(np.int64),
    "turn": np.dtype(np.int32),
    "seat": np.dtype(np.int8),
    "quality": np.dtype(np.float32),
    "created": np.dtype(np.float64),
    "producer": np.dtype(np.uint8),
}
MAX_PRODUCERS = 255  # `producer` is uint8

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SHARD = re.compile(
    r"^runs/(?P<run>[^/]+)/replay/(?P<phase>[^/]+)/shard-(?P<worker>\d{4,})-(?P<seq>\d{8,})\.npz$"
)


class ShardError(ArtifactError):
    """A shard's bytes check out but its contents do not match its metadata (or the format)."""


class ProducerStats(BaseModel):
    """What one producer (a player name such as ``heuristic``) contributed to a shard."""

    rows: int = Field(ge=0, description="Positions recorded for this producer.")
    games: int = Field(ge=0, description="Distinct games these positions come from.")
    quality_sum: float = Field(description="Sum of the positions' quality (mean = sum / rows).")


class ShardMeta(BaseModel):
    """The sidecar metadata of one shard: everything stats and window planning need."""

    schema_version: int = Field(SCHEMA_VERSION, description="Shard format version.")
    run: str = Field(description="Training run the positions belong to.")
    phase: str = Field(description="Phase that produced them (bootstrap, hybrid, ...).")
    worker: int = Field(ge=0, description="Producing worker (Indexed Job completion index).")
    seq: int = Field(ge=0, description="Sequence number of the shard within its worker.")
    rows: int = Field(ge=1, description="Positions in the shard (N).")
    games: int = Field(ge=1, description="Distinct game_id values in the shard.")
    producers: list[str] = Field(description="Player names; the `producer` column indexes this.")
    by_producer: dict[str, ProducerStats] = Field(description="Counts per producer name.")
    quality_mean: float = Field(description="Mean of the quality column.")
    created_min: float = Field(description="Oldest `created` value (unix seconds).")
    created_max: float = Field(description="Newest `created` value (unix seconds).")
    columns: dict[str, tuple[str, list[int]]] = Field(
        description="Column name -> (numpy dtype string, shape after the first dimension)."
    )
    cursor: JsonValue = Field(None, description="Producer's resume point after this shard.")
    extra: dict[str, JsonValue] = Field(
        default_factory=dict, description="Producer-defined (encoding version, board size ...)."
    )


@dataclass(frozen=True)
class ShardRef:
    """A complete shard found in a store: its key, sidecar and metadata (no arrays loaded)."""

    key: str
    info: ArtifactInfo
    meta: ShardMeta

    @property
    def committed(self) -> float:
        """When the shard was committed (unix seconds): the order of "newest"."""
        return self.info.created_at.timestamp()


def check_name(name: str, what: str) -> str:
    """A run or phase name usable as one key segment (lowercase, digits, '.', '_', '-')."""
    if not _NAME.match(name):
        raise ValueError(f"invalid {what} {name!r}: lowercase letters, digits, '.', '_', '-'")
    return name


def replay_prefix(run: str, phase: str | None = None) -> str:
    """``runs/<run>/replay/`` or ``runs/<run>/replay/<phase>/``."""
    base = f"runs/{check_name(run, 'run')}/replay/"
    return base if phase is None else f"{base}{check_name(phase, 'phase')}/"


def shard_key(run: str, phase: str, worker: int, seq: int) -> str:
    """The key of shard ``seq`` of ``worker``; zero-padded so keys sort numerically."""
    return f"{replay_prefix(run, phase)}shard-{worker:04d}-{seq:08d}.npz"


def parse_shard_key(key: str) -> tuple[str, str, int, int] | None:
    """(run, phase, worker, seq) of a shard key, or None if ``key`` is not one."""
    m = _SHARD.match(key)
    if m is None:
        return None
    return m["run"], m["phase"], int(m["worker"]), int(m["seq"])


def encode(columns: Mapping[str, np.ndarray]) -> bytes:
    """The npz bytes of ``columns`` (compressed; no pickled objects)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.ascontiguousarray(v) for k, v in columns.items()})
    return buf.getvalue()


def decode(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of npz bytes; ShardError if they are not a readable npz."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ShardError(f"unreadable shard data: {e}") from e


def list_shards(store: ArtifactStore, run: str | None = None, phase: str | None = None) -> list[ShardRef]:
    """Complete shards of a run (one phase, or all) or of the whole store, oldest first.

    Reads sidecars only. A shard whose sidecar does not parse is left out with a
    warning (it cannot be verified, so it is never used).
    """
    prefix = "runs/" if run is None else replay_prefix(run, phase)
    if not store.fs.exists(f"{store.root}/{prefix.rstrip('/')}"):
        return []
    refs = []
    for key in store.list(prefix):
        parsed = parse_shard_key(key)
        if parsed is None or (phase is not None and parsed[1] != phase):
            continue
        try:
            info = store.info(key)
            meta = ShardMeta.model_validate(info.metadata)
        except (ArtifactError, ValidationError) as e:
            log.warning("skipping shard %s: unreadable metadata (%s)", key, e)
            continue
        refs.append(ShardRef(key, info, meta))
    refs.sort(key=lambda r: (r.committed, r.key))
    return refs


def read_shard(store: ArtifactStore, ref: ShardRef) -> dict[str, np.ndarray]:
    """The verified arrays of a shard: ChecksumError if the bytes changed, ShardError if
    the arrays disagree with the metadata (rows, columns, dtypes)."""
    columns = decode(store.get_bytes(ref.key))
    expected = {k: (np.dtype(d), tuple(s)) for k, (d, s) in ref.meta.columns.items()}
    actual = {k: (v.dtype, v.shape[1:]) for k, v in columns.items()}
    if actual != expected or any(len(v) != ref.meta.rows for v in columns.values()):
        raise ShardError(f"shard {ref.info.uri} does not match its metadata")
    return columns


def _validate(columns: Mapping[str, np.ndarray]) -> int:
    """Rows of a batch of columns; ValueError naming the offending column otherwise."""
    rows = {len(np.asarray(v)) if np.ndim(v) else -1 for v in columns.values()}
    if len(rows) != 1 or -1 in rows:
        sizes = {k: np.shape(v) for k, v in columns.items()}
        raise ValueError(f"every column needs the same first dimension, got {sizes}")
    for name, arr in columns.items():
        if np.asarray(arr).dtype.hasobject:
            raise ValueError(f"column {name!r} has object dtype; shards hold plain arrays")
    missing = set(REQUIRED) - {"created", "producer"} - set(columns)
    if missing:
        raise ValueError(f"missing required columns {sorted(missing)}")
    return rows.pop()


class ReplayWriter:
    """Buffers positions of one worker and writes them as shards of about ``shard_rows``.

    ``add`` whole games (all positions of a game in one call); a shard is cut
    when the buffer reaches ``shard_rows`` after an ``add``, so shards hold whole
    games and may run over ``shard_rows`` by one call's positions. Call
    :meth:`flush` at the end (and wherever the producer wants a resume point).
    """

    def __init__(
        self,
        store: ArtifactStore,
        run: str,
        phase: str,
        worker: int = 0,
        shard_rows: int = 4096,
        extra: dict[str, JsonValue] | None = None,
        clock=time.time,
    ) -> None:
        if shard_rows < 1:
            raise ValueError(f"shard_rows must be >= 1, got {shard_rows}")
        if worker < 0:
            raise ValueError(f"worker must be >= 0, got {worker}")
        self.store, self.run, self.phase, self.worker = store, run, phase, worker
        self.shard_rows, self.extra, self._clock = shard_rows, dict(extra or {}), clock
        # our own leftovers only: another worker's temp file may be a write in progress
        store.remove_temp_files(replay_prefix(run, phase), f"shard-{worker:04d}-")
        mine = [r for r in list_shards(store, run, phase) if r.meta.worker == worker]
        mine.sort(key=lambda r: r.meta.seq)
        self.next_seq = mine[-1].meta.seq + 1 if mine else 0
        self.cursor: JsonValue = mine[-1].meta.cursor if mine else None
        """Where the producer resumes: the cursor of the last shard written (None at first)."""
        self._buffer: list[dict[str, np.ndarray]] = []
        self._rows = 0
        self._producers: list[str] = []
        self._pending_cursor: JsonValue = self.cursor

    @property
    def buffered_rows(self) -> int:
        """Positions added but not yet in a shard (lost if the process dies now)."""
        return self._rows

    def add(self, producer: str, columns: Mapping[str, np.ndarray], cursor: JsonValue = None) -> ShardMeta | None:
        """Buffer positions recorded by ``producer``; columns as in the module docstring.

        ``cursor`` (any JSON) is the producer's resume point once these positions
        are durable, e.g. the number of games played. Returns the metadata of the
        shard this call completed, if any.
        """
        rows = _validate(columns)
        if rows == 0:
            return None
        if self._buffer and set(columns) - {"created"} != set(self._buffer[0]) - {"created", "producer"}:
            raise ValueError(
                f"columns {sorted(columns)} differ from earlier ones {sorted(self._buffer[0])}"
            )
        if producer not in self._producers:
            if len(self._producers) == MAX_PRODUCERS:
                raise ValueError(f"more than {MAX_PRODUCERS} producers in one shard")
            self._producers.append(producer)
        batch = {k: np.asarray(v) for k, v in columns.items()}
        for name in ("value", "game_id", "turn", "seat", "quality"):
            batch[name] = batch[name].astype(REQUIRED[name], copy=False)
        if "created" not in batch:
            batch["created"] = np.full(rows, self._clock(), np.float64)
        batch["producer"] = np.full(rows, self._producers.index(producer), np.uint8)
        self._buffer.append(batch)
        self._rows += rows
        if cursor is not None:
            self._pending_cursor = cursor
        return self.flush() if self._rows >= self.shard_rows else None

    def flush(self, cursor: JsonValue = None) -> ShardMeta | None:
        """Write the buffered positions as one shard (atomically, with sha256); returns its
        metadata, or None if nothing was buffered. ``cursor`` overrides the last one added."""
        if cursor is not None:
            self._pending_cursor = cursor
        if not self._rows:
            return None
        columns = {k: np.concatenate([b[k] for b in self._buffer]) for k in self._buffer[0]}
        while self.store.exists(shard_key(self.run, self.phase, self.worker, self.next_seq)):
            self.next_seq += 1  # someone wrote it since we listed: never overwrite
        meta = describe(columns, self._producers, self.run, self.phase, self.worker, self.next_seq,
                        self._pending_cursor, self.extra)
        key = shard_key(self.run, self.phase, self.worker, self.next_seq)
        self.store.put_bytes(key, encode(columns), metadata=meta.model_dump(mode="json"))
        self.next_seq += 1
        self.cursor = self._pending_cursor
        self._buffer, self._rows, self._producers = [], 0, []
        return meta


def describe(
    columns: Mapping[str, np.ndarray],
    producers: list[str],
    run: str,
    phase: str,
    worker: int,
    seq: int,
    cursor: JsonValue = None,
    extra: dict[str, JsonValue] | None = None,
) -> ShardMeta:
    """The metadata of a shard holding ``columns`` (computed, not trusted from the caller)."""
    game_id, quality, producer = columns["game_id"], columns["quality"], columns["producer"]
    by_producer = {}
    for i, name in enumerate(producers):
        mask = producer == i
        by_producer[name] = ProducerStats(
            rows=int(mask.sum()),
            games=len(np.unique(game_id[mask])),
            quality_sum=float(quality[mask].sum(dtype=np.float64)),
        )
    return ShardMeta(
        run=run,
        phase=phase,
        worker=worker,
        seq=seq,
        rows=len(game_id),
        games=len(np.unique(game_id)),
        producers=list(producers),
        by_producer=by_producer,
        quality_mean=float(quality.mean(dtype=np.float64)),
        created_min=float(columns["created"].min()),
        created_max=float(columns["created"].max()),
        columns={k: (v.dtype.str, list(v.shape[1:])) for k, v in columns.items()},
        cursor=cursor,
        extra=dict(extra or {}),
    )


class DataSummary(BaseModel):
    """Totals over a set of shards (one row of ``ouro data stats``)."""

    run: str | None = Field(None, description="Run, or None for a total over runs.")
    phase: str | None = Field(None, description="Phase, or None for a total over phases.")
    producer: str | None = Field(None, description="Producer, or None for all producers.")
    shards: int = Field(0, description="Shards holding these positions.")
    games: int = Field(0, description="Games (summed per shard; shards hold whole games).")
    positions: int = Field(0, description="Recorded positions.")
    quality_mean: float | None = Field(None, description="Mean position quality.")
    oldest: float | None = Field(None, description="Oldest position (unix seconds).")
    newest: float | None = Field(None, description="Newest position (unix seconds).")
    bytes: int = Field(0, description="Compressed size on the store.")


def summarize(refs: list[ShardRef]) -> dict[str, list[DataSummary]]:
    """Totals of ``refs`` from their sidecars: ``{"total": [one row], "phases": [per (run,
    phase)], "producers": [per (run, phase, producer)]}``, each sorted by its key."""
    rows: dict[tuple[str | None, str | None, str | None], DataSummary] = {}
    quality: dict[tuple[str | None, str | None, str | None], float] = {}

    def add(key, games: int, positions: int, quality_sum: float, meta: ShardMeta, size: int) -> None:
        s = rows.setdefault(key, DataSummary(run=key[0], phase=key[1], producer=key[2]))
        s.shards += 1
        s.games += games
        s.positions += positions
        s.bytes += size
        s.oldest = meta.created_min if s.oldest is None else min(s.oldest, meta.created_min)
        s.newest = meta.created_max if s.newest is None else max(s.newest, meta.created_max)
        quality[key] = quality.get(key, 0.0) + quality_sum

    for ref in refs:
        m = ref.meta
        for key in ((None, None, None), (m.run, m.phase, None)):
            add(key, m.games, m.rows, m.quality_mean * m.rows, m, ref.info.size)
        for name, p in m.by_producer.items():
            add((m.run, m.phase, name), p.games, p.rows, p.quality_sum, m, 0)
    for key, s in rows.items():
        s.quality_mean = quality[key] / s.positions if s.positions else None
    total = rows.pop((None, None, None), DataSummary())
    ordered = [s for _, s in sorted(rows.items(), key=lambda kv: tuple(k or "" for k in kv[0]))]
    return {
        "total": [total],
        "phases": [s for s in ordered if s.producer is None],
        "producers": [s for s in ordered if s.producer is not None],
    }
