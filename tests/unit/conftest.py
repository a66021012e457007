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


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory) -> list[bytes]:
    """Two small, different, real ONNX models that honour the contract (cnn_simple 1x8 on 7x7,
    seeds 0 and 1): what the registry's load check and the gate need to see."""
    from ouroboros.trainer.learning import networks, onnx_export

    folder = tmp_path_factory.mktemp("onnx-models")
    config = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=1, channels=8)
    models = []
    for seed in (0, 1):
        path = folder / f"m{seed}.onnx"
        onnx_export.export(networks.build_network(config, seed=seed), path, height=7, width=7)
        models.append(path.read_bytes())
    return models


@pytest.fixture
def one_torch_thread():
    """One torch thread, as the commands set it (``RunSettings.threads``); the pool is
    process-wide, so the count the session had is put back afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
