"""Fixtures for tests against a real control plane: `kube_cluster` and `node_agent`.

Both are session-scoped: the control plane takes seconds to start, and every
integration test shares it. Tests isolate themselves with their own
namespaces (see `namespace`). On a fresh machine the first use builds the
binaries (scripts/build-control-plane.sh), printing its progress.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import helmtool
import pytest

from .kube import controlplane
from .kube import node_agent as node_agent_module


@pytest.fixture(scope="session")
def kube_cluster(request, tmp_path_factory) -> Iterator[controlplane.ControlPlane]:
    """A running etcd + kube-apiserver + kube-controller-manager for this session.

    Returns a `ControlPlane` with:
      - `kubeconfig`: path of a kubeconfig for a cluster-admin (system:masters) user;
      - `env`: os.environ plus KUBECONFIG, kubectl and this Python's bin dir first
        on PATH: pass it to subprocesses (kopf, helm, ouro);
      - `kubectl(*args, check=True, input=None, timeout=120)`: a CompletedProcess
        with text stdout/stderr; raises KubectlError (stderr in its message) if
        `check` and kubectl fails;
      - `server` (https://127.0.0.1:<port>), `bin_dir`, `version` (e.g. v1.37.2),
        `token`, `ca_file`, `api()` (a small JSON client), `logs` (component ->
        log path), `root` (its temporary directory).
    For the session, os.environ["KUBECONFIG"] also points at this cluster.
    No kube-scheduler and no kubelet: use `node_agent` for pods to run.
    Controllers running: see `controlplane.CONTROLLERS` (Jobs, garbage collection,
    namespaces, ServiceAccounts, TTL-after-finished, CronJobs, role aggregation).
    """
    if shutil.which("go") is None:
        pytest.skip("needs the Go toolchain (go) to build the control plane")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # a cold build takes minutes: show progress
        bin_dir = controlplane.build_binaries()
    root = tmp_path_factory.mktemp("kube")
    with controlplane.running(bin_dir, root) as plane, pytest.MonkeyPatch.context() as patch:
        # In-process clients (kopf, kubernetes) load $KUBECONFIG: point it here,
        # never at a developer's real cluster.
        patch.setenv("KUBECONFIG", str(plane.kubeconfig))
        request.config.stash[_LOGS_KEY] = plane.logs
        yield plane


@pytest.fixture(scope="session")
def node_agent(kube_cluster, tmp_path_factory) -> Iterator[node_agent_module.NodeAgent]:
    """A Ready Node named `ouro-test-node` whose pods run as local processes.

    Binds every pending pod whose nodeSelector matches the node's labels
    (kubernetes.io/hostname, kubernetes.io/os=linux, kubernetes.io/arch=amd64),
    runs its single container's command+args with its env (literal values,
    fieldRef, ConfigMap/Secret refs, envFrom) and its ConfigMap, Secret,
    emptyDir, hostPath and PVC volumes materialised locally: every mention of
    a mount path or of the termination message path in args, env values and
    ConfigMap files is rewritten to the local directory, and the termination
    message file is also in $OURO_TERMINATION_LOG. Pod status goes Running ->
    Succeeded/Failed with terminated.exitCode and terminated.message (the last
    4096 bytes of that file), as kubelet reports them. Deleting a running pod
    kills its process. The node offers cpu 16, memory 64Gi, nvidia.com/gpu 8.
    Processes inherit `kube_cluster.env` (so `python` and `ouro` are this
    venv's); a PVC volume is the directory `root/claims/<namespace>/<claim>`,
    shared by all pods that mount the claim (no PV or PVC objects needed).
    Restarts (OnFailure/Always) are immediate, without kubelet's back-off.

    Returns the `NodeAgent`: `node_name`, `root`, `pod_dir(ns, name)`,
    `logs(ns, name)` (the container's stdout+stderr), `errors` (sync failures).
    """
    agent = node_agent_module.NodeAgent(
        api=kube_cluster.api(),
        root=tmp_path_factory.mktemp("node"),
        env=kube_cluster.env,
        version=kube_cluster.version,
    )
    agent.start()
    yield agent
    agent.stop()
    if agent.errors:
        warnings.warn(f"node agent sync errors: {agent.errors[-5:]}", stacklevel=1)


@pytest.fixture
def namespace(kube_cluster) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    kube_cluster.kubectl("create", "namespace", name)
    # the claim every phase of a run shares its artifact store through (the chart and
    # manifests/examples/artifacts-pvc.yaml create it; the node agent maps it to a folder)
    kube_cluster.kubectl("apply", "-n", name, "-f", str(ARTIFACTS_PVC))
    yield name
    kube_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> helmtool.Helm:
    """The project's helm (scripts/build-helm.sh), with its own scratch config and cache.

    Not tied to a cluster: pass `env=kube_cluster.env` (a new `helmtool.Helm`)
    for commands that talk to one. Skips when helm cannot be built here.
    """
    try:
        binary = helmtool.helm_binary()
    except helmtool.HelmUnavailable as exc:
        pytest.skip(f"helm unavailable: {exc}")
    return helmtool.Helm(binary, tmp_path_factory.mktemp("helm-home"), env=dict(os.environ))


ARTIFACTS_PVC = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "artifacts-pvc.yaml"
_LOGS_KEY = pytest.StashKey[dict]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed test, name the control plane's log files in the report."""
    outcome = yield
    report = outcome.get_result()
    logs = item.config.stash.get(_LOGS_KEY, None)
    if report.failed and logs:
        report.sections.append(
            ("control plane logs", "\n".join(f"{name}: {path}" for name, path in logs.items()))
        )
