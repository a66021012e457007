"""Run the real Kueue manager against the test control plane, as a local process.

Kueue is built from its Go module by `scripts/build-kueue.sh` (cached by
version, like the control plane). Its CRDs come from the same module. On a
cluster Kueue runs as a Deployment behind a Service that the API server calls
for its webhooks; here there is no Service network, so:

- No mutating or validating webhook is registered with the API server: Kueue
  only needs its Job webhook to create Jobs suspended, which the operator
  already does (builders/kueue.py), and the test creates its queues with
  valid specs.
- Kueue's internal certificate management stays on (with it off, the manager
  insists on reading metrics certificates from a fixed path under /etc): it
  writes a CA and serving certificate into a Secret in `kueue-system` (which,
  as in Kueue's own manifests, must exist, empty), the fixture copies them
  into files as kubelet would mount that Secret (Kueue waits for the files),
  and Kueue injects the CA into the CRDs' conversion webhooks, which
  therefore must exist: they point at Kueue's webhook server on a loopback
  port. The API server would call them only to convert between v1beta1 and
  v1beta2; everything here, Kueue and the operator included, uses v1beta2,
  the storage version, so no conversion happens.
- Every listener (webhooks, health probes) is on a free loopback port, the
  metrics server and the visibility API server are off, and leader election
  is off, so parallel test sessions never collide.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import processes
from .controlplane import REPO, ControlPlane, free_port

BUILD_SCRIPT = REPO / "scripts" / "build-kueue.sh"
NAMESPACE = "kueue-system"
SECRET = "kueue-webhook-server-cert"
CONVERTED = ("localqueues", "clusterqueues", "workloads", "cohorts", "multikueueclusters")
"""CRDs whose conversion webhook Kueue's certificate rotator injects its CA into (pkg/util/cert)."""


class KueueUnavailable(RuntimeError):
    """Kueue could not be built or did not become ready; the message says why."""


@dataclass
class Kueue:
    """A running Kueue manager: its log file and process."""

    log: Path
    process: subprocess.Popen
    version: str

    def log_tail(self, lines: int = 15) -> str:
        return processes.tail(self.log, lines)


def build() -> Path:
    """The cache dir holding bin/kueue and crds/ (building it the first time); KueueUnavailable if it fails."""
    # stderr (the script's progress and timings, go's errors) goes straight to the terminal
    done = subprocess.run([str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise KueueUnavailable(f"scripts/build-kueue.sh exited with {done.returncode} (its output is above)")
    return Path(done.stdout.strip())


def _crds(source: Path, webhook_port: int) -> list[dict]:
    out = []
    for path in sorted((source / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["plural"] in CONVERTED:
            crd = copy.deepcopy(crd)
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {"clientConfig": {"url": f"https://127.0.0.1:{webhook_port}/convert"},
                            "conversionReviewVersions": ["v1"]},
            }
        out.append(crd)
    return out


def _config(health_port: int, webhook_port: int, cert_dir: Path) -> dict:
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": True, "webhookServiceName": "kueue-webhook-service",
                                   "webhookSecretName": SECRET},
        "integrations": {"frameworks": ["batch/job"]},
    }


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _mount_secret(plane: ControlPlane, cert_dir: Path) -> bool:
    """Do what kubelet's Secret volume does for Kueue's Pod: copy the certificate Kueue wrote into its
    Secret to files in `cert_dir` (Kueue waits for them there); False until the Secret holds one."""
    out = plane.kubectl("get", "secret", SECRET, "-n", NAMESPACE, "-o", "json", check=False)
    data = json.loads(out.stdout).get("data") or {} if out.returncode == 0 else {}
    if "tls.crt" not in data or "tls.key" not in data:
        return False
    cert_dir.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (cert_dir / key).write_bytes(base64.b64decode(value))
    return True


@contextlib.contextmanager
def running(plane: ControlPlane, root: Path, ready_timeout: float = 180) -> Iterator[Kueue]:
    """Install Kueue's CRDs into `plane`, start its manager, wait until /readyz is ok; stop it on exit."""
    source = build()
    version = source.name
    root.mkdir(parents=True, exist_ok=True)
    health_port, webhook_port = free_port(), free_port()
    crd_file = root / "kueue-crds.yaml"
    crd_file.write_text(yaml.safe_dump_all(_crds(source, webhook_port)))
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd_file), timeout=180)
    plane.kubectl("wait", "--for=condition=Established", "-f", str(crd_file), "--timeout=120s")
    if plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode != 0:
        plane.kubectl("create", "namespace", NAMESPACE)
    # the empty Secret Kueue's own manifests ship: its certificate rotator fills it, never creates it
    if plane.kubectl("get", "secret", SECRET, "-n", NAMESPACE, check=False).returncode != 0:
        plane.kubectl("create", "secret", "generic", SECRET, "-n", NAMESPACE)
    config = root / "kueue-config.yaml"
    config.write_text(yaml.safe_dump(_config(health_port, webhook_port, root / "certs")))
    log = root / "kueue.log"
    process = processes.spawn(
        [str(source / "bin" / "kueue"), f"--config={config}", "--feature-gates=VisibilityOnDemand=false",
         "--zap-log-level=3"],
        log, env=plane.env, cwd=root)
    kueue = Kueue(log=log, process=process, version=version)
    mounted = False
    try:
        deadline = time.monotonic() + ready_timeout
        while not _ready(health_port):
            mounted = mounted or _mount_secret(plane, root / "certs")
            if process.poll() is not None:
                raise KueueUnavailable(f"kueue exited with {process.returncode}:\n{kueue.log_tail()}")
            if time.monotonic() > deadline:
                raise KueueUnavailable(f"kueue not ready after {ready_timeout}s:\n{kueue.log_tail()}")
            time.sleep(0.5)
        yield kueue
    finally:
        processes.stop(process)
