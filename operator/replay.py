"""What the schedule's data trigger observes: games committed to a store's replay shards since a time.

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
import re
from datetime import datetime

import fsspec

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
