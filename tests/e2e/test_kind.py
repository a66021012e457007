"""End to end on kind (Kubernetes in Docker): the real images, the chart, a run to a Champion.

Needs a Docker engine; skipped with the reason where there is none (this
project's CI machine has the docker client but no engine, so this module has
never run there: treat it as a recipe that the first machine with Docker
verifies). With an engine it builds kind from its Go module (cached like the
other Go tools), builds Dockerfile.operator and Dockerfile.trainer, creates a
cluster, loads both images, `helm install`s the chart with them, runs the
tiny TrainingRun to success in a namespace that enforces Pod Security
"restricted", checks the Champion it challenged, pins the Champion back to a
previous version when it has one (the rollback path), and deletes the cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import gobuild
import helmtool
import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
KIND_VERSION = "v0.33.0"
TAG = "e2e"
NAMESPACE = "snakes"


def docker_engine() -> str | None:
    """Why there is no usable Docker engine, or None when there is one."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    probe = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                           text=True, check=False, timeout=30)
    if probe.returncode != 0:
        return f"no Docker engine: {(probe.stderr or probe.stdout).strip().splitlines()[-1:]}"
    return None


REASON = docker_engine()
if REASON:
    pytest.skip(f"kind needs a Docker engine ({REASON})", allow_module_level=True)


def kind_binary() -> Path:
    """kind built from sigs.k8s.io/kind, cached in $OURO_CACHE/kind/<version>/kind."""
    target = gobuild.cache_root() / "kind" / KIND_VERSION / "kind"
    with tempfile.TemporaryDirectory() as module:
        Path(module, "go.mod").write_text(f"module ouroboros.local/kind-build\n\ngo 1.24\n\n"
                                          f"require sigs.k8s.io/kind {KIND_VERSION}\n")
        return gobuild.build_once(target, Path(module), "sigs.k8s.io/kind", env={"GOFLAGS": "-mod=mod"})


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 1800) -> str:
    result = subprocess.run(list(argv), env=env, capture_output=True, text=True, check=False, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def kind_cluster(tmp_path_factory):
    kind = str(kind_binary())
    name = f"ouro-{uuid.uuid4().hex[:6]}"
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    for image in ("operator", "trainer"):
        run("docker", "build", "-f", str(REPO / f"Dockerfile.{image}"), "-t", f"ouroboros-{image}:{TAG}", str(REPO))
    run(kind, "create", "cluster", "--name", name, "--kubeconfig", str(kubeconfig), "--wait", "5m")
    try:
        for image in ("operator", "trainer"):
            run(kind, "load", "docker-image", f"ouroboros-{image}:{TAG}", "--name", name)
        yield {**os.environ, "KUBECONFIG": str(kubeconfig)}
    finally:
        subprocess.run([kind, "delete", "cluster", "--name", name], check=False)


def test_the_images_train_a_champion_on_kind(kind_cluster, tmp_path):
    env = kind_cluster
    helm = helmtool.Helm(helmtool.helm_binary(), tmp_path / "helm", env=env)
    kubectl = shutil.which("kubectl") or str(Path(run("bash", str(REPO / "scripts/build-control-plane.sh"),
                                                      "--bin-dir").strip()) / "kubectl")
    helm("install", "ouroboros", str(helmtool.CHART), "-n", "ouroboros-system", "--create-namespace",
         "--set", "image.repository=ouroboros-operator", "--set", f"image.tag={TAG}",
         "--set", "trainer.image.repository=ouroboros-trainer", "--set", f"trainer.image.tag={TAG}",
         "--wait", "--timeout=5m", timeout=400)
    run(kubectl, "create", "namespace", NAMESPACE, env=env)
    run(kubectl, "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted", env=env)
    examples = REPO / "manifests" / "examples"
    run(kubectl, "apply", "-n", NAMESPACE, "-f", str(examples / "champion.yaml"),
        "-f", str(examples / "trainingrun-tiny.yaml"), env=env)
    run(kubectl, "wait", "-n", NAMESPACE, "--for=condition=Succeeded", "trainingrun/tiny", "--timeout=30m", env=env)
    helm("test", "ouroboros", "-n", "ouroboros-system", "--timeout=20m", timeout=1300)
    champion = json.loads(run(kubectl, "get", "champion", "standard-duel", "-n", NAMESPACE, "-o", "json", env=env))
    history = (champion.get("status") or {}).get("history") or []
    if len(history) >= 2:  # roll back to the previous version by pinning it
        previous = history[-2]["version"]
        run(kubectl, "patch", "champion", "standard-duel", "-n", NAMESPACE, "--type=merge",
            "-p", json.dumps({"spec": {"pinnedVersion": previous}}), env=env)
    helm("uninstall", "ouroboros", "-n", "ouroboros-system", "--wait", timeout=300)
