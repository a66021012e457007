"""Start and stop a throwaway Kubernetes control plane for the test session.

The operator is tested against a real API server, so that CRD schemas, CEL
rules, RBAC, status subresources, Job semantics and ownerReference garbage
collection behave exactly as on a cluster. etcd, kube-apiserver and
kube-controller-manager come from `scripts/build-control-plane.sh` (built from
their Go modules and cached by version); they listen on free loopback ports
with data, credentials and logs in one temporary directory, so parallel
sessions never collide and nothing outside that directory is touched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import pki, processes
from .api import ApiError, KubeApi

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "scripts" / "build-control-plane.sh"
VERSIONS_FILE = REPO / "scripts" / "control-plane-versions.env"

CONTROLLERS = (
    "job-controller",  # Job -> Pods, Job status and conditions
    "garbage-collector-controller",  # deletes objects whose ownerReferences are gone
    "namespace-controller",  # lets a deleted namespace finish deleting
    "serviceaccount-controller",  # the `default` ServiceAccount in every namespace
    "ttl-after-finished-controller",  # Job.spec.ttlSecondsAfterFinished
    "cronjob-controller",
    "clusterrole-aggregation-controller",  # admin/edit/view pick up aggregated rules
    # The API server's StorageObjectInUseProtection admission puts the `kubernetes.io/pvc-protection`
    # finalizer on every claim, and only this controller takes it off once no pod uses the claim.
    # Without it every namespace holding a claim (each test's has one) stayed Terminating, and the
    # namespace controller retried them all for the rest of the session: 114 such namespaces half an
    # hour into a `make test` kept the API server at about half a core of LISTs and DELETEs.
    "persistentvolumeclaim-protection-controller",
)
"""kube-controller-manager controllers we run. No node-lifecycle controller: the
test node has no kubelet heartbeats, and it would taint the node and evict pods."""


class ControlPlaneError(RuntimeError):
    """A component failed to start or died; the message names the log files."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; unlike CalledProcessError, str() shows its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def versions() -> dict[str, str]:
    """KUBERNETES_VERSION and ETCD_VERSION from scripts/control-plane-versions.env."""
    pairs = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def build_binaries() -> Path:
    """Run the build script (quick when the binaries are cached); return the bin dir.

    The script's progress goes to this process's stderr.
    """
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ControlPlane:
    """A running control plane, as the `kube_cluster` fixture returns it.

    Stable attributes for tests: `kubeconfig`, `env`, `kubectl()`, `server`,
    `bin_dir`, `version`, `api()`, `logs`.
    """

    bin_dir: Path
    """Directory with etcd, kube-apiserver, kube-controller-manager and kubectl."""
    root: Path
    """Temporary directory holding data, credentials, logs and the kubeconfig."""
    server: str
    """The API server's URL, https://127.0.0.1:<port>."""
    kubeconfig: Path
    """Kubeconfig for a cluster-admin user (group system:masters)."""
    env: dict[str, str]
    """os.environ plus KUBECONFIG, with kubectl and this Python's bin dir first on PATH."""
    version: str
    """The Kubernetes release the binaries were built from, e.g. v1.37.2."""
    token: str
    """The admin bearer token that the kubeconfig uses."""
    ca_file: Path
    """CA certificate that verifies the API server."""
    logs: dict[str, Path] = field(default_factory=dict)
    """Log file of each component, by name."""

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise KubectlError on failure if `check`."""
        argv = [str(self.bin_dir / "kubectl"), *args]
        result = subprocess.run(
            argv, env=self.env, input=input, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def api(self) -> KubeApi:
        """A small JSON client authenticated as the admin."""
        return KubeApi(self.server, self.token, self.ca_file)


def _wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float,
    running: dict[str, subprocess.Popen],
    logs: dict[str, Path],
) -> None:
    """Poll `ready` until it is true; fail early if a component exits."""
    deadline = time.monotonic() + timeout
    while True:
        for name, process in running.items():
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with {process.returncode} while waiting for {what}; "
                    f"log {logs[name]}:\n{processes.tail(logs[name])}"
                )
        with contextlib.suppress(OSError, ApiError, ValueError):
            if ready():
                return
        if time.monotonic() > deadline:
            raise ControlPlaneError(
                f"timed out after {timeout:.0f}s waiting for {what}; logs: "
                + ", ".join(str(path) for path in logs.values())
            )
        time.sleep(0.2)


def _etcd_argv(bin_dir: Path, root: Path, client_port: int, peer_port: int) -> list[str]:
    client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
    return [
        str(bin_dir / "etcd"),
        "--name=default",
        f"--data-dir={root / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",  # tests never need durability; fsync dominates on slow disks
        "--log-level=warn",
    ]


def _apiserver_argv(
    bin_dir: Path, root: Path, creds: pki.Credentials, etcd_port: int, port: int
) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--cert-dir={root / 'apiserver-certs'}",
        f"--tls-cert-file={creds.serving_cert}",
        f"--tls-private-key-file={creds.serving_key}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        # The `kubernetes` Service's endpoints may not be a loopback address,
        # and nothing in the tests reaches the API server through that Service.
        "--endpoint-reconciler-type=none",
        f"--secure-port={port}",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        "--authorization-mode=RBAC",
        f"--token-auth-file={creds.token_file}",
        "--anonymous-auth=false",
        # No kubelet mounts tokens here, and the admission plugin would make
        # every pod wait for its ServiceAccount to exist.
        "--disable-admission-plugins=ServiceAccount",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={creds.service_account_pub}",
        f"--service-account-signing-key-file={creds.service_account_key}",
        "--profiling=false",
    ]


def _controller_manager_argv(
    bin_dir: Path, kubeconfig: Path, creds: pki.Credentials, controllers: tuple[str, ...]
) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--controllers={','.join(controllers)}",
        "--leader-elect=false",
        "--secure-port=0",  # nothing scrapes it; one less port to pick
        f"--service-account-private-key-file={creds.service_account_key}",
        "--profiling=false",
    ]


def _write_kubeconfig(path: Path, server: str, creds: pki.Credentials) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ouro-test", "cluster": {
            "server": server, "certificate-authority": str(creds.ca_cert)}}],
        "users": [{"name": "ouro-admin", "user": {"token": creds.admin_token}}],
        "contexts": [{"name": "ouro-test", "context": {
            "cluster": "ouro-test", "user": "ouro-admin", "namespace": "default"}}],
        "current-context": "ouro-test",
    }))


def _etcd_healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        return b'"true"' in resp.read()


def _default_service_account(api: KubeApi) -> bool:
    api.get("/api/v1/namespaces/default/serviceaccounts/default")
    return True


@contextlib.contextmanager
def running(
    bin_dir: Path, root: Path, ready_timeout: float = 180, controllers: tuple[str, ...] = CONTROLLERS
) -> Iterator[ControlPlane]:
    """Start etcd, kube-apiserver and kube-controller-manager; stop them on exit.

    `controllers`: the kube-controller-manager controllers to run (the tests'
    CONTROLLERS; `make cluster-demo` adds the Deployment and ReplicaSet ones).

    Waits until /readyz answers ok and the controller manager has created the
    `default` ServiceAccount, so a test can create Jobs at once. Raises
    ControlPlaneError (naming the logs under `root/logs`) if a component fails
    to start, or exited on its own before teardown.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    creds = pki.make_credentials(root / "pki")
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{api_port}"
    kubeconfig = root / "kubeconfig"
    _write_kubeconfig(kubeconfig, server, creds)
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])

    plane = ControlPlane(
        bin_dir=bin_dir, root=root, server=server, kubeconfig=kubeconfig, env=env,
        version=versions()["KUBERNETES_VERSION"], token=creds.admin_token, ca_file=creds.ca_cert,
    )
    api = plane.api()
    started: dict[str, subprocess.Popen] = {}

    def start(name: str, argv: list[str]) -> None:
        plane.logs[name] = root / "logs" / f"{name}.log"
        started[name] = processes.spawn(argv, plane.logs[name], cwd=root)

    try:
        start("etcd", _etcd_argv(bin_dir, root, etcd_port, peer_port))
        _wait_until(lambda: _etcd_healthy(etcd_port), "etcd /health", ready_timeout, started, plane.logs)
        start("kube-apiserver", _apiserver_argv(bin_dir, root, creds, etcd_port, api_port))
        _wait_until(lambda: api.text("/readyz") == "ok",
                    "kube-apiserver /readyz", ready_timeout, started, plane.logs)
        start("kube-controller-manager", _controller_manager_argv(bin_dir, kubeconfig, creds, controllers))
        _wait_until(lambda: _default_service_account(api), "the default ServiceAccount",
                    ready_timeout, started, plane.logs)
        yield plane
        crashed = {name: p.returncode for name, p in started.items() if p.poll() is not None}
        if crashed:
            raise ControlPlaneError(
                f"components exited during the tests: {crashed}; logs: "
                + ", ".join(str(plane.logs[name]) for name in crashed)
            )
    finally:
        for process in reversed(started.values()):
            processes.stop(process)
