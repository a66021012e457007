"""`make cluster-demo` / `make cluster-down`: the whole Kubernetes story on one machine, no Docker.

    python scripts/cluster_demo.py up      # build or reuse, start, helm install, train, watch
    python scripts/cluster_demo.py down    # stop everything and delete the demo's state

`up` builds (or reuses, from $OURO_CACHE) the control plane and helm, starts a
background process that runs etcd, kube-apiserver, kube-controller-manager
(with the Deployment and ReplicaSet controllers) and the process-based node of
the tests (tests/integration/kube/node_agent.py: pods run as local processes of
this virtualenv, since there is no container runtime), then `helm install`s
charts/ouroboros. The chart's own Deployment starts the operator (as a local
process, with trainer.command pointed at this venv's `ouro`), and `up`
applies manifests/examples/artifacts-pvc.yaml, champion.yaml and trainingrun-tiny.yaml into a
namespace that enforces Pod Security "restricted", printing
`kubectl get trainingruns,jobs,champions` whenever it changes until the run
finishes. The cluster keeps running for you to explore (`up` prints the
KUBECONFIG to use) until `down`.

State (kubeconfig, logs, pid) lives in $OURO_CACHE/cluster-demo.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from integration.kube import controlplane, node_agent  # noqa: E402 - the tests' control plane

NAMESPACE = "ouroboros-demo"
RELEASE = "ouroboros"
RELEASE_NAMESPACE = "ouroboros-system"
RUN = "tiny"
EXTRA_CONTROLLERS = ("deployment-controller", "replicaset-controller")
TIMEOUT_S = 1800


def state_dir() -> Path:
    """$OURO_CACHE/cluster-demo."""
    cache = os.environ.get("OURO_CACHE") or str(Path.home() / ".cache" / "ouroboros")
    return Path(cache).expanduser() / "cluster-demo"


def say(text: str) -> None:
    print(f"[cluster-demo] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(state: Path) -> int:
    """The background process: control plane + node agent until SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bin_dir = Path((state / "bin-dir").read_text().strip())
    root = state / "cluster"
    with controlplane.running(bin_dir, root, controllers=controlplane.CONTROLLERS + EXTRA_CONTROLLERS) as plane:
        agent = node_agent.NodeAgent(api=plane.api(), root=state / "node", env=plane.env, version=plane.version)
        agent.start()
        try:
            shutil.copy(plane.kubeconfig, state / "kubeconfig.tmp")
            os.replace(state / "kubeconfig.tmp", state / "kubeconfig")
            while True:
                time.sleep(3600)
        finally:
            agent.stop()
    return 0


def up() -> int:
    """Start (or reuse) the demo cluster, install the chart, run the tiny TrainingRun; 0 when it succeeded."""
    state = state_dir()
    if (state / "pid").exists():
        say(f"a demo cluster already runs (pid {(state / 'pid').read_text().strip()}); `make cluster-down` first")
        return 1
    state.mkdir(parents=True, exist_ok=True)
    say("building or reusing the control plane (first time: about 15 minutes of Go builds)")
    bin_dir = controlplane.build_binaries()
    say("building or reusing helm")
    helm = subprocess.run(["bash", str(REPO / "scripts" / "build-helm.sh")], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip().splitlines()[-1]
    (state / "bin-dir").write_text(str(bin_dir))
    log = (state / "cluster.log").open("w")
    server = subprocess.Popen([sys.executable, __file__, "serve"], stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True, cwd=state)
    (state / "pid").write_text(str(server.pid))
    deadline = time.monotonic() + 300
    while not (state / "kubeconfig").exists():
        if server.poll() is not None or time.monotonic() > deadline:
            say(f"the control plane did not start; see {state / 'cluster.log'}")
            return 1
        time.sleep(0.5)
    env = {**os.environ, "KUBECONFIG": str(state / "kubeconfig"),
           "PATH": os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])}
    say(f"control plane up; export KUBECONFIG={state / 'kubeconfig'} PATH={bin_dir}:$PATH")

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / "kubectl"), *args], env=env, capture_output=True, text=True, check=check)

    for namespace in (RELEASE_NAMESPACE, NAMESPACE):
        kubectl("create", "namespace", namespace, check=False)
        kubectl("label", "--overwrite", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    say(f"helm install {RELEASE} charts/ouroboros -n {RELEASE_NAMESPACE}")
    install = [helm, "upgrade", "--install", RELEASE, str(REPO / "charts" / "ouroboros"), "-n", RELEASE_NAMESPACE,
               "--set", f"trainer.command={{{Path(sys.executable).parent / 'ouro'}}}",
               "--set", f"metrics.port={free_port()}", "--set", f"health.port={free_port()}",
               "--set", "operator.resyncSeconds=5"]
    subprocess.run(install, env={**env, "HELM_CACHE_HOME": str(state / "helm"), "HELM_CONFIG_HOME": str(state / "helm"),
                                 "HELM_DATA_HOME": str(state / "helm")}, check=True)
    for name in ("artifacts-pvc.yaml", "champion.yaml", "trainingrun-tiny.yaml"):  # the claim the phases share first
        print(kubectl("apply", "-n", NAMESPACE, "-f", str(REPO / "manifests" / "examples" / name)).stdout, end="")
    say(f"watching kubectl get trainingruns,jobs,champions -n {NAMESPACE} (Ctrl-C stops watching, not the cluster)")
    return watch(kubectl)


_AGE = re.compile(r"\b\d+[smhd](\d+[smhd])?\b")


def changed(before: str, after: str) -> bool:
    """Whether two `kubectl get` tables differ in more than their AGE and DURATION columns."""
    return _AGE.sub("", before) != _AGE.sub("", after)


def watch(kubectl) -> int:
    """Print the table whenever it changes, until the run has finished; 0 when it succeeded."""
    shown, deadline = "", time.monotonic() + TIMEOUT_S
    with contextlib.suppress(KeyboardInterrupt):
        while time.monotonic() < deadline:
            table = kubectl("get", "trainingruns,jobs,champions", "-n", NAMESPACE, check=False).stdout
            if changed(shown, table):
                print(f"\n--- {time.strftime('%H:%M:%S')}\n{table}", end="", flush=True)
                shown = table
            run = kubectl("get", "trainingrun", RUN, "-n", NAMESPACE, "-o", "json", check=False)
            status = (json.loads(run.stdout).get("status") or {}) if run.returncode == 0 else {}
            phase = status.get("phase")
            promoted = (status.get("promotion") or {}).get("decision") == "Promoted"
            if phase == "Succeeded" and promoted and not _champion_version(kubectl):
                time.sleep(2)  # the Champion mirrors the registry through a short sync Job
                continue
            if phase in ("Succeeded", "Failed"):
                say(f"TrainingRun {RUN}: {phase}. Explore: kubectl describe tr {RUN} -n {NAMESPACE}; "
                    "`make cluster-down` when done")
                return 0 if phase == "Succeeded" else 1
            time.sleep(2)
    say("stopped watching; the cluster keeps running until `make cluster-down`")
    return 1


def _champion_version(kubectl) -> str | None:
    """The demo Champion's status.version (None until the operator has mirrored a promotion)."""
    raw = kubectl("get", "champion", "standard-duel", "-n", NAMESPACE, "-o", "json", check=False)
    return (json.loads(raw.stdout).get("status") or {}).get("version") if raw.returncode == 0 else None


def down() -> int:
    """Stop the background process (and with it every component and pod) and delete the state."""
    state = state_dir()
    pid_file = state / "pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(300):
                os.kill(pid, 0)  # raises ProcessLookupError once it is gone
                time.sleep(0.1)
            say(f"process {pid} did not stop in 30 s; sending SIGKILL")
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state, ignore_errors=True)
    say("demo cluster stopped and its state deleted")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch `up`, `down` or the internal `serve`; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "serve"])
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(Path.cwd())
    return up() if args.command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
