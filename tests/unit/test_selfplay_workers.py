"""Self-play workers of an Indexed Job: every worker's games are trained on, none twice.

Workers 1..N-1 play one round into their own shards; worker 0 trains, merging
at each iteration the other workers' shards that no earlier iteration used, and
waiting at its last iteration for any worker that has not written yet. Only
worker 0 writes the phase's model (another worker's untrained copy must never
replace the candidate).
"""

from __future__ import annotations

import pytest
import torch

from ouroboros.contract.game import GameSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning import networks, shards
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, reinforce

pytestmark = pytest.mark.unit

TINY_NET = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_worker_0_trains_on_every_workers_shard_once(tmp_path, monkeypatch):
    base = pc.RunSettings(run="t", store=str(tmp_path), game=GameSpec(width=7, height=7, max_turns=30),
                          network=TINY_NET, seed=3)
    settings = dict(games=4, parallel_games=4, batch_size=16, epochs=1, checkpoint_every=2)
    execute.execute(base, pc.phase_settings(PhaseName.BOOTSTRAP, **settings))
    self_play = pc.phase_settings(PhaseName.SELF_PLAY, iterations=2, **settings)

    def worker(index):
        return base.model_copy(update={"worker": index, "workers": 3})

    one = execute.execute(worker(1), self_play)  # worker 1 is done before worker 0 starts
    assert one.candidate is None and "weights" not in one.artifacts
    waits = []

    def late_worker_2(seconds):  # worker 2 finishes while worker 0 waits at its last iteration
        waits.append(seconds)
        if len(waits) == 1:
            execute.execute(worker(2), self_play)

    monkeypatch.setattr(reinforce, "_sleep", late_worker_2)
    zero = execute.execute(worker(0), self_play)
    assert len(waits) == 1 and zero.candidate is not None
    store = ArtifactStore(base.store)
    found = shards.list_shards(store, "t", "self_play")
    others = sorted(ref.key for ref in found if ref.meta.worker != 0)
    assert sorted({ref.meta.worker for ref in found}) == [0, 1, 2] and len(others) == 2
    own = sorted((ref for ref in found if ref.meta.worker == 0), key=lambda r: r.meta.cursor["iteration"])
    merged = [ref.meta.cursor["merged"] for ref in own]
    assert [len(m) for m in merged] == [1, 1]  # worker 1's at iteration 0, worker 2's at the last one
    assert sorted(k for m in merged for k in m) == others  # every worker's shard, none twice
    rows = {ref.key: ref.meta.rows for ref in found}
    per_iteration = [rows[ref.key] + sum(rows[k] for k in ref.meta.cursor["merged"]) for ref in own]
    assert sum(per_iteration) == sum(rows.values())  # every position played was trained on
    assert zero.metrics["steps"] == sum(max(1, round(n / 16)) for n in per_iteration)  # epochs=1 over each
    # the model is worker 0's: what its result names is what the store holds
    assert store.info(zero.artifacts["weights"].key).sha256 == zero.artifacts["weights"].sha256
    again = execute.execute(worker(0), self_play)  # a restart merges nothing new and trains no more
    assert again.metrics["steps"] == zero.metrics["steps"]
    assert [ref.meta.cursor["merged"] for ref in shards.list_shards(store, "t", "self_play")
            if ref.meta.worker == 0] == merged
