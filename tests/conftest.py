"""Shared fixtures: the official rules engine as a built oracle binary, the official CLI, two small
real ONNX models, and a real S3-compatible server (versitygw) for the object-store tests."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import s3server
from battlesnake_cli.build import CliUnavailable, ensure_cli
from oracle.build import OracleUnavailable, ensure_oracle

# The suite is a CPU suite on every machine: a run's device defaults to `auto`, which would take a
# GPU where one is visible, and the resume tests compare weights bit for bit, which CUDA kernels do
# not promise. tests/unit/test_cuda.py is where GPUs are tested: scripts/gpu-check.sh runs it with
# OURO_TEST_CUDA=1. (Set before torch first asks CUDA for its devices; spawned ranks inherit it.)
if os.environ.get("OURO_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(scope="session")
def oracle() -> Path:
    """Path of the `bsoracle` binary (tests/oracle); skips when Go is missing."""
    try:
        return ensure_oracle()
    except OracleUnavailable as exc:
        pytest.skip(f"oracle unavailable: {exc}")


@pytest.fixture(scope="session")
def battlesnake_cli() -> Path:
    """Path of the official `battlesnake` CLI v1.2.3 (tests/battlesnake_cli); skips when
    it cannot be built here."""
    try:
        return ensure_cli()
    except CliUnavailable as exc:
        pytest.skip(f"battlesnake CLI unavailable: {exc}")


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


@pytest.fixture(scope="session")
def s3_server(request, tmp_path_factory) -> Iterator[s3server.S3Server]:
    """A real S3-compatible server (versitygw, built by scripts/build-versitygw.sh) on a loopback port.

    Returns an `S3Server`: `endpoint` (http://127.0.0.1:<port>), `access_key`,
    `secret_key` (its root credentials, random per session), `env` (the standard
    AWS_ENDPOINT_URL / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION
    that point s3fs at it), `filesystem()`, `create_bucket()`, `data_dir`, `log()`.
    Stopped at the end of the session; skips when it cannot be built here.
    """
    capture = request.config.pluginmanager.getplugin("capturemanager")
    try:
        with capture.global_and_fixture_disabled():  # a cold build takes minutes: show progress
            binary = s3server.gateway_binary()
    except s3server.S3Unavailable as exc:
        pytest.skip(f"S3 server unavailable: {exc}")
    with s3server.running(binary, tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    """A new empty bucket on `s3_server`, with this process's AWS_* variables pointing at the server."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server.create_bucket()
