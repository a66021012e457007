"""What the operator reads of replay shards: new games for the schedule's data trigger, a run's buffer.

Two readers of the same sidecars: `new_games_since` (games committed to a
store's replay shards since a time, for the TrainingSchedule's data trigger)
and `ReplayReader.usage` (the size and age of one run's replay buffer, for the
TrainingRun's `status.progress.replay` and its metrics).

The trainer writes each replay shard (``runs/<run>/replay/<phase>/shard-WWWW-SSSSSSSS.npz``,
see ``ouroboros.trainer.learning.shards``) with a JSON sidecar beside it
(``<shard>.meta.json``: ``created_at`` and, under ``metadata``, ``games``). The
operator never imports the trainer (an import-linter contract), so it reads those
sidecars here with fsspec alone; tests/unit/test_operator_scheduling.py checks that
this count equals the trainer's ``scheduling.data.new_games_since`` on the same store.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

import fsspec

from ouroboros.contract.progress import ReplayUsage
from ouroboros.contract.run import STORE_FILESYSTEM_OPTIONS

log = logging.getLogger(__name__)

SHARD_SIDECAR = re.compile(r"runs/[^/]+/replay/[^/]+/shard-\d{4,}-\d{8,}\.npz\.meta\.json$")


def new_games_since(url: str, since: datetime | None) -> int:
    """Games in every run's replay shards in the store at ``url`` committed after ``since``
    (all when None). Sidecars that do not parse are skipped with a warning, as the trainer does."""
    fs, root = fsspec.core.url_to_fs(url, **STORE_FILESYSTEM_OPTIONS)
    base = f"{root.rstrip('/')}/runs"
    if not fs.exists(base):
        return 0
    cutoff = since.timestamp() if since is not None else float("-inf")
    total = 0
    for path in fs.find(base):
        if not SHARD_SIDECAR.search(path):
            continue
        try:
            doc = json.loads(fs.cat_file(path))
            committed = datetime.fromisoformat(str(doc["created_at"]).replace("Z", "+00:00")).timestamp()
            games = int(doc["metadata"]["games"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping replay sidecar %s: %s", path, exc)
            continue
        if committed > cutoff:
            total += games
    return total


class ReplayUnavailable(Exception):
    """A run's replay folder could not be listed (store unreachable, not mounted here)."""


SHARD_SIDECAR_NAME = re.compile(r"shard-\d{4,}-\d{8,}\.npz\.meta\.json$")


def _shard(doc: dict) -> tuple[int, int, int, float, float]:
    """(positions, games, bytes, oldest, newest position time) of one shard's sidecar document."""
    meta = doc["metadata"]
    return (int(meta["rows"]), int(meta["games"]), int(doc["size"]), float(meta["created_min"]),
            float(meta["created_max"]))


def summarise(shards: Iterable[tuple[int, int, int, float, float]]) -> ReplayUsage:
    """A run's `ReplayUsage` from its shards' (positions, games, bytes, oldest, newest) figures."""
    shards = list(shards)
    if not shards:
        return ReplayUsage()
    return ReplayUsage(
        shards=len(shards), positions=sum(s[0] for s in shards), games=sum(s[1] for s in shards),
        bytes=sum(s[2] for s in shards),
        oldest_position_at=datetime.fromtimestamp(min(s[3] for s in shards), UTC).replace(microsecond=0),
        newest_position_at=datetime.fromtimestamp(max(s[4] for s in shards), UTC).replace(microsecond=0))


class ReplayReader:
    """Reads runs' replay sidecars, each only once.

    A shard and its sidecar are written once and never change (the trainer
    never overwrites a shard), so a sidecar read before is taken from memory:
    each refresh lists the run's replay folder and reads only the new
    sidecars. A sidecar that does not parse is skipped with a warning, as the
    trainer does, and not read again. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, dict[str, tuple[int, int, int, float, float] | None]] = {}
        """Replay folder -> sidecar path -> its figures (None: unreadable)."""

    def usage(self, url: str, run: str) -> ReplayUsage:
        """The replay buffer of store run id `run` in the store at `url` (empty before any shard).

        Raises ReplayUnavailable if the folder cannot be listed for another reason than not existing.
        """
        try:
            fs, root = fsspec.core.url_to_fs(url)
        except (ValueError, ImportError) as exc:
            raise ReplayUnavailable(f"storage URL {url!r}: {exc}") from exc
        folder = posixpath.join(root.rstrip("/"), "runs", run, "replay")
        try:
            paths = [p for p in fs.find(folder) if SHARD_SIDECAR_NAME.search(p)]
        except FileNotFoundError:
            return ReplayUsage()
        except OSError as exc:
            raise ReplayUnavailable(f"cannot list {folder}: {exc}") from exc
        with self._lock:
            known = dict(self._seen.get(folder, {}))
        current: dict[str, tuple[int, int, int, float, float] | None] = {}
        for path in sorted(paths):
            if path in known:
                current[path] = known[path]
                continue
            try:
                current[path] = _shard(json.loads(fs.cat_file(path)))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("skipping replay sidecar %s: %s", path, exc)
                current[path] = None
        with self._lock:
            self._seen[folder] = current  # shards deleted since are dropped with the folder's old entry
        return summarise(f for f in current.values() if f is not None)
