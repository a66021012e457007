"""A test-only node: stands in for kube-scheduler and kubelet.

The control plane in the tests has no kubelet and no container runtime, yet
the operator's behaviour depends on pods really running: a Job's pod writes
its result to the termination log, the Job controller sees it complete, the
operator reads the message. The agent registers one Ready Node (with
`nvidia.com/gpu` so GPU requests fit), binds every pending pod whose
nodeSelector matches the node's labels, runs each bound pod's container as a
local process (see `pod_runtime`) and reports its status the way kubelet
does: Running, then Succeeded or Failed with `terminated.exitCode` and
`terminated.message`. Deleting a running pod kills its process.

Pods run at niceness `POD_NICENESS`, below the control plane, as a
cluster keeps workloads from starving it (see the constant).

Not modelled: resource accounting, node affinity, taints, probes, init and
sidecar containers, pod-level activeDeadlineSeconds.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import pod_runtime, processes
from .api import ApiError, KubeApi

NODE_NAME = "ouro-test-node"
DEFAULT_CAPACITY = {
    "cpu": "16",
    "memory": "64Gi",
    "pods": "110",
    "ephemeral-storage": "100Gi",
    "nvidia.com/gpu": "8",
}
MAX_MESSAGE_BYTES = 4096  # kubelet keeps the last 4096 bytes of the termination message
FALLBACK_LOG_BYTES = 2048  # ... and with FallbackToLogsOnError, at most 2048 bytes
FALLBACK_LOG_LINES = 80  # ... from the last 80 lines of the log
DELETE_GRACE_CAP_SECONDS = 5.0
# Pods run below the control plane's CPU priority. In a cluster the control plane has its own nodes or
# kubelet's reserved cgroups (kube-reserved, system-reserved), so no workload starves the API server; here
# they share two cores. In one CI run on a loaded machine the API server stopped answering for minutes while
# a trainer pod ran (TLS handshakes to it timed out after 30 s, a `kubectl delete` after 120 s), most likely
# starved of CPU. Niceness 10 gives a pod about a tenth of the CPU weight of a default-priority process when
# both want it, and all of an idle CPU.
POD_NICENESS = 10

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Run:
    """A pod whose container this agent is running."""

    namespace: str
    name: str
    container: pod_runtime.LocalContainer
    process: subprocess.Popen
    started_at: str
    restarts: int = 0
    last_state: dict = field(default_factory=dict)


class NodeAgent:
    """Registers a Node and runs the pods bound to it; see the module docstring.

    Stable attributes for tests: `node_name`, `root`, `pod_dir()`, `logs()`,
    `errors`.
    """

    def __init__(
        self,
        api: KubeApi,
        root: Path,
        env: dict[str, str],
        version: str,
        node_name: str = NODE_NAME,
        poll_seconds: float = 0.2,
    ):
        self.api = api
        self.root = root
        """Pods' directories (root/pods/<namespace>/<name>-<uid>) and PVC contents (root/claims)."""
        self.node_name = node_name
        self.errors: list[str] = []
        """Exceptions the sync loop survived, newest last: look here when a pod seems stuck."""
        self._env = env
        self._version = version
        self._poll_seconds = poll_seconds
        self._runs: dict[str, _Run] = {}
        self._done: set[str] = set()  # uids finished or handed back for deletion: never run again
        self._pod_dirs: dict[tuple[str, str], Path] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"node-agent-{node_name}", daemon=True)

    def start(self) -> None:
        """Register the Node and start the sync loop in a background thread."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._register_node()
        self._thread.start()

    def stop(self) -> None:
        """Kill every pod process and stop the loop."""
        self._stopping.set()
        self._thread.join(timeout=60)

    def pod_dir(self, namespace: str, name: str) -> Path:
        """Directory of the newest pod with this name: container.log, termination-log, volumes/, work/."""
        return self._pod_dirs[(namespace, name)]

    def logs(self, namespace: str, name: str) -> str:
        """stdout and stderr of the pod's container (what `kubectl logs` would show)."""
        path = self.pod_dir(namespace, name) / "container.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- the loop ---------------------------------------------------------------

    def _loop(self) -> None:
        # Processes are started from this thread and die with it (processes.spawn),
        # so they are stopped here before the thread ends.
        try:
            while not self._stopping.wait(self._poll_seconds):
                try:
                    self._sync()
                except Exception as err:  # keep the node alive; the error is kept for the test
                    log.exception("node agent sync failed")
                    self.errors.append(repr(err))
        finally:
            for run in self._runs.values():
                processes.stop(run.process, grace_seconds=DELETE_GRACE_CAP_SECONDS)

    def _sync(self) -> None:
        pods = self.api.get("/api/v1/pods")["items"]
        labels = None
        present = set()
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            node = spec.get("nodeName")
            if not node:
                if labels is None:
                    labels = self.api.get(f"/api/v1/nodes/{self.node_name}")["metadata"].get("labels", {})
                if _schedulable(pod, labels):
                    self._bind(pod)
                continue
            if node != self.node_name:
                continue
            present.add(meta["uid"])
            if meta.get("deletionTimestamp"):
                self._delete(pod)
            elif meta["uid"] in self._runs:
                self._reap(self._runs[meta["uid"]], pod)
            elif meta["uid"] not in self._done and pod.get("status", {}).get("phase", "Pending") == "Pending":
                self._start(pod)
        for uid in set(self._runs) - present:  # deleted outright (grace period 0)
            processes.stop(self._runs.pop(uid).process, grace_seconds=0)
            self._done.add(uid)

    # -- scheduling --------------------------------------------------------------

    def _bind(self, pod: dict) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        with contextlib.suppress(ApiError):  # already bound, or deleted meanwhile
            self.api.post(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding)

    def _register_node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "labels": {
                    "kubernetes.io/hostname": self.node_name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
        }
        with contextlib.suppress(ApiError):  # exists already
            self.api.post("/api/v1/nodes", node)
        now = _now()
        status = {
            "capacity": DEFAULT_CAPACITY,
            "allocatable": DEFAULT_CAPACITY,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "ouroboros test node agent is running pods as local processes",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.node_name},
            ],
            "nodeInfo": {
                "kubeletVersion": self._version,
                "containerRuntimeVersion": "ouro-node-agent://1",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.api.strategic_patch(f"/api/v1/nodes/{self.node_name}/status", {"status": status})

    # -- pod lifecycle -----------------------------------------------------------

    def _start(self, pod: dict) -> None:
        meta = pod["metadata"]
        pod_dir = self.root / "pods" / meta["namespace"] / f"{meta['name']}-{meta['uid']}"
        self._pod_dirs[(meta["namespace"], meta["name"])] = pod_dir
        try:
            container = pod_runtime.prepare(pod, self.api, pod_dir, self.root / "claims", self._env)
        except pod_runtime.NotReady:
            return  # try again next sync, as kubelet waits for a missing ConfigMap
        except pod_runtime.Unsupported as err:
            self._done.add(meta["uid"])
            self._patch_status(pod, _failed_status(pod, str(err)))
            return
        try:
            process = self._spawn(container)
        except OSError as err:  # e.g. the command is not on PATH: kubelet's StartError
            self._done.add(meta["uid"])
            self._patch_status(pod, _failed_status(pod, f"cannot start {container.argv[0]!r}: {err}"))
            return
        run = _Run(meta["namespace"], meta["name"], container, process, _now())
        self._runs[meta["uid"]] = run
        self._patch_status(pod, _running_status(pod, run))

    def _spawn(self, container: pod_runtime.LocalContainer) -> subprocess.Popen:
        container.termination_log.write_bytes(b"")
        return processes.spawn(container.argv, container.log_path, env=container.env, cwd=container.cwd,
                               niceness=POD_NICENESS)

    def _reap(self, run: _Run, pod: dict) -> None:
        code = run.process.poll()
        if code is None:
            return
        terminated = self._terminated(run, code)
        restart = run.container.restart_policy == "Always" or (
            run.container.restart_policy == "OnFailure" and code != 0
        )
        if restart:
            run.restarts += 1
            run.last_state = {"terminated": terminated}
            run.process = self._spawn(run.container)
            run.started_at = _now()
            self._patch_status(pod, _running_status(pod, run))
            return
        del self._runs[pod["metadata"]["uid"]]
        self._done.add(pod["metadata"]["uid"])
        self._patch_status(pod, _terminated_status(pod, run, terminated))

    def _terminated(self, run: _Run, code: int) -> dict:
        """containerStatuses[].state.terminated for an exited process, message as kubelet reads it."""
        message = run.container.termination_log.read_bytes()[-MAX_MESSAGE_BYTES:]
        if not message.strip() and code != 0 and run.container.fallback_to_logs:
            lines = run.container.log_path.read_bytes().splitlines()[-FALLBACK_LOG_LINES:]
            message = b"\n".join(lines)[-FALLBACK_LOG_BYTES:]
        exit_code = code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as runtimes report
        return {
            "exitCode": exit_code,
            "reason": "Completed" if exit_code == 0 else "Error",
            "message": message.decode(errors="replace"),
            "startedAt": run.started_at,
            "finishedAt": _now(),
            "containerID": f"ouro://{run.process.pid}",
        }

    def _delete(self, pod: dict) -> None:
        """A deleted pod: kill its process, report it, and let the API server drop it."""
        meta = pod["metadata"]
        run = self._runs.pop(meta["uid"], None)
        if run is not None:
            grace = min(float(meta.get("deletionGracePeriodSeconds") or 0), DELETE_GRACE_CAP_SECONDS)
            code = processes.stop(run.process, grace_seconds=grace)
            self._patch_status(pod, _terminated_status(pod, run, self._terminated(run, code)))
        if meta["uid"] in self._done and run is None:
            return
        self._done.add(meta["uid"])
        with contextlib.suppress(ApiError):  # gone already
            self.api.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
            )

    def _patch_status(self, pod: dict, status: dict) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiError):  # the pod may be gone; nothing to report then
            self.api.strategic_patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", {"status": status}
            )


def _schedulable(pod: dict, node_labels: dict[str, str]) -> bool:
    spec = pod["spec"]
    return (
        not pod["metadata"].get("deletionTimestamp")
        and not spec.get("schedulingGates")
        and pod.get("status", {}).get("phase", "Pending") == "Pending"
        and all(node_labels.get(key) == value for key, value in spec.get("nodeSelector", {}).items())
    )


def _conditions(ready: bool, reason: str | None = None) -> list[dict]:
    now = _now()
    conditions = []
    for kind, status in (
        ("PodScheduled", True),
        ("Initialized", True),
        ("PodReadyToStartContainers", True),
        ("ContainersReady", ready),
        ("Ready", ready),
    ):
        condition = {"type": kind, "status": "True" if status else "False", "lastTransitionTime": now}
        if not status and reason:
            condition["reason"] = reason
        conditions.append(condition)
    return conditions


def _network() -> dict:
    ip = "127.0.0.1"
    return {"hostIP": ip, "hostIPs": [{"ip": ip}], "podIP": ip, "podIPs": [{"ip": ip}]}


def _container_status(run: _Run, state: dict, ready: bool) -> dict:
    return {
        "name": run.container.name,
        "image": run.container.image,
        "imageID": "",
        "containerID": f"ouro://{run.process.pid}",
        "ready": ready,
        "started": ready,
        "restartCount": run.restarts,
        "state": state,
        "lastState": run.last_state,
    }


def _running_status(pod: dict, run: _Run) -> dict:
    state = {"running": {"startedAt": run.started_at}, "waiting": None, "terminated": None}
    return {
        "phase": "Running",
        "startTime": pod.get("status", {}).get("startTime") or run.started_at,
        "conditions": _conditions(ready=True),
        "containerStatuses": [_container_status(run, state, ready=True)],
        **_network(),
    }


def _terminated_status(pod: dict, run: _Run, terminated: dict) -> dict:
    state = {"terminated": terminated, "running": None, "waiting": None}
    return {
        "phase": "Succeeded" if terminated["exitCode"] == 0 else "Failed",
        "conditions": _conditions(ready=False, reason="PodCompleted"),
        "containerStatuses": [_container_status(run, state, ready=False)],
        **_network(),
    }


def _failed_status(pod: dict, message: str) -> dict:
    """A pod the agent cannot run: Failed with the reason in status.message."""
    return {
        "phase": "Failed",
        "reason": "NodeAgentCannotRun",
        "message": message,
        "startTime": _now(),
        "conditions": _conditions(ready=False, reason="PodFailed"),
        **_network(),
    }
