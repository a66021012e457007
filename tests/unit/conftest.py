"""Fixtures shared by the unit tests."""

from __future__ import annotations

import uuid

import pytest

from ouroboros.trainer.artifacts import store as st


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    """An empty artifact store: a local folder, then an fsspec `memory://` one."""
    if request.param == "local":
        yield st.ArtifactStore(tmp_path / "store")
        return
    store = st.ArtifactStore(f"memory://unit-{uuid.uuid4().hex}")
    yield store
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture
def one_torch_thread():
    """One torch thread, as the commands set it (``RunSettings.threads``); the pool is
    process-wide, so the count the session had is put back afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def nsearch_decisions(monkeypatch) -> list[tuple[str, int]]:
    """Every decision the neural search makes while the test runs, as (player name, new descents):
    how a test sees that a player searched, at what cap, and that another did not."""
    from ouroboros.trainer.agents import nsearch

    seen: list[tuple[str, int]] = []
    original = nsearch.NeuralSearch.search

    def spy(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        seen.append((self.name, result.simulations))
        return result

    monkeypatch.setattr(nsearch.NeuralSearch, "search", spy)
    return seen
