"""What the data trigger observes: games committed to a store's replay shards since a time.

Shared by the operator (which imports it lazily: numpy and fsspec, never
torch) and the local runner. Reads shard sidecars only, never the arrays.
"""

from __future__ import annotations

from datetime import datetime

from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning import shards


def new_games_since(url: str, since: datetime | None) -> int:
    """Games in the replay shards of every run in the store at `url` committed after `since` (all when None).

    A shard's games are distinct within the shard (`ShardMeta.games`); a game
    cut across two shards would count twice, which the writers avoid by adding
    whole games (see `shards`).
    """
    refs = shards.list_shards(ArtifactStore(url))
    cutoff = since.timestamp() if since is not None else float("-inf")
    return sum(ref.meta.games for ref in refs if ref.committed > cutoff)
