"""Helpers for the operator's integration tests: CRDs, an operator subprocess, waiting.

Each test runs its own operator process, scoped to the test's namespace
(`OURO_NAMESPACES`), so tests with different trainer commands never see each
other's runs. The operator is the real entry point (`python -m
ouroboros.operator`) with the control plane's kubeconfig; its pods run on the
node agent as local processes of this venv.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "manifests" / "crds"
FAKE_TRAINER = Path(__file__).resolve().parent / "fake_trainer.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.2, what: str = "") -> Any:
    """Poll until `predicate()` is truthy; return it, or fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def apply_crds(cluster) -> None:
    """Install (or update) the CRDs and wait until they are served."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    for path in sorted(CRDS.glob("*.yaml")):
        name = path.name.split("_", 1)[1].removesuffix(".yaml") + ".ouroboros.dev"
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


class OperatorProcess:
    """`python -m ouroboros.operator` against the test cluster, watching one namespace."""

    def __init__(self, cluster, namespace: str, log_dir: Path, trainer_command: list[str] | None = None,
                 resync_seconds: float = 2.0, kubeconfig: Path | None = None,
                 extra_env: dict[str, str] | None = None):
        self.cluster = cluster
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_dir = log_dir
        self.metrics_port = free_port()
        self.trainer_command = trainer_command or [sys.executable, "-m", "ouroboros.trainer.commands.cli"]
        self.resync_seconds = resync_seconds
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def env(self) -> dict[str, str]:
        env = dict(self.cluster.env)
        env.update(
            OURO_NAMESPACES=self.namespace,
            OURO_TRAINER_COMMAND=" ".join(self.trainer_command),
            OURO_METRICS_PORT=str(self.metrics_port),
            OURO_HEALTH_PORT="0",
            OURO_RESYNC_SECONDS=str(self.resync_seconds),
            PYTHONUNBUFFERED="1",
        )
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(self.extra_env)
        return env

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.namespace}.log"

    def start(self) -> OperatorProcess:
        self.starts += 1
        log = self.log_path.open("a")
        log.write(f"\n===== start {self.starts} =====\n")
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ouroboros.operator"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            cwd=self.log_dir,
        )
        wait_for(self._serving, timeout=60, what=f"operator metrics endpoint (log: {self.log_path})")
        return self

    def _serving(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1):
                return True
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def kill(self) -> None:
        """SIGKILL: no clean-up, as when a node dies under the operator."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class ElectedOperator(OperatorProcess):
    """An operator process with leader election on, as the chart configures it (Lease in its namespace)."""

    def __init__(self, *args, identity: str, lease_name: str = "op", lease_duration_s: int = 6, **kwargs):
        super().__init__(*args, **kwargs)
        self.identity = identity
        self.lease_name = lease_name
        self.lease_duration_s = lease_duration_s

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "OURO_LEADER_ELECTION": "true", "OURO_LEASE_NAMESPACE": self.namespace,
                "OURO_LEASE_NAME": self.lease_name, "OURO_POD_NAME": self.identity,
                "OURO_LEASE_DURATION_SECONDS": str(self.lease_duration_s)}

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.identity}.log"


def fake_trainer_command(control: Path) -> list[str]:
    """A trainer command whose phases fail or pause as files in `control` say (see fake_trainer.py)."""
    control.mkdir(parents=True, exist_ok=True)
    return [sys.executable, str(FAKE_TRAINER), "--control", str(control)]


def get(cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else None


def items(cluster, kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["get", kind, "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return json.loads(cluster.kubectl(*args).stdout)["items"]


def run_status(cluster, namespace: str, name: str) -> dict[str, Any]:
    run = get(cluster, "trainingrun", namespace, name) or {}
    return run.get("status") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), None)


def events(cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        e for e in items(cluster, "events", namespace)
        if e["involvedObject"].get("kind") == "TrainingRun" and e["involvedObject"]["name"] == name
    ]


def apply(cluster, namespace: str, manifest: dict[str, Any] | str) -> subprocess.CompletedProcess:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text)


def champion(name: str = "main", game: dict | None = None, **spec) -> dict:
    """A Champion of the tiny runs' game (7x7 duels) unless told otherwise."""
    return {"apiVersion": "ouroboros.dev/v1alpha1", "kind": "Champion", "metadata": {"name": name},
            "spec": {"game": game or {"width": 7, "height": 7}, **spec}}


def champion_status(cluster, namespace: str, name: str = "main") -> dict[str, Any]:
    obj = get(cluster, "champion", namespace, name) or {}
    return obj.get("status") or {}


TINY_GATE = {"games": 20, "minGames": 10, "readiness": {"maxP99LatencyMs": 1000, "maxPeakMemoryMb": 1000}}
"""A short gate, and serving limits that a test machine under load always meets."""


def tiny_run(name: str, phases=("bootstrap", "hybrid", "self_play", "continuous", "evaluate"), **spec) -> dict:
    """A TrainingRun with every phase and a tiny budget; a spec field given as None is left out
    (``promotion=None``: the run takes its Champion's gate)."""
    body = {
        "apiVersion": "ouroboros.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name},
        "spec": {
            "champion": "main",
            "game": {"width": 7, "height": 7},
            "phases": [{"name": p, "games": 2} for p in phases],
            "resources": {"cpu": "100m", "memory": "128Mi"},
            "promotion": TINY_GATE,
            **spec,
        },
    }
    body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
    return body
