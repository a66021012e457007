"""The operator's own configuration, read once from the environment at start-up.

Grouped, typed and documented field by field (kopf's settings style), so the
Deployment manifest, the Helm values and the tests all set the same names.
The trainer command is configurable because the integration tests run the
Jobs' pods as local processes and point them at the repository's venv.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import shlex
import socket
from collections.abc import Mapping

DEFAULT_TRAINER_IMAGE = "ghcr.io/ouroboros/trainer:0.1.0"


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """How phase Jobs are built."""

    default_image: str = DEFAULT_TRAINER_IMAGE
    """Trainer image for runs that leave spec.image unset."""
    trainer_command: tuple[str, ...] = ("ouro",)
    """Command that starts the trainer CLI in the pod; `phase NAME ...` is appended."""
    image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy of the trainer container."""
    config_mount_path: str = "/etc/ouroboros"
    """Where the run's ConfigMap is mounted; run.json lies inside."""
    termination_message_path: str = "/dev/termination-log"
    """Where the trainer writes its result; kubelet copies it into the pod status."""
    default_storage_claim: str = "ouroboros-artifacts"
    """PersistentVolumeClaim mounted for a file:// store whose run names none (the chart creates it)."""
    default_active_deadline_seconds: int = 86_400
    """activeDeadlineSeconds of a phase Job whose run and phase set none: nothing hangs forever
    (a Job whose pods never start fails with DeadlineExceeded and the run says so)."""
    progress_seconds: float = 15.0
    """How often trainers write progress records (OURO_PROGRESS_SECONDS in the pod; at most 30)."""
    run_as_user: int = 10001
    """UID (and GID) of the trainer container: the `ouro` user of Dockerfile.trainer.
    Jobs run as this user with the Pod Security "restricted" settings."""
    scratch_path: str = "/scratch"
    """Where the trainer's writable scratch volume (an emptyDir) is mounted; the
    root filesystem is read-only, so TMPDIR points here (ONNX export, checks)."""
    learner_rendezvous_host: str = ""
    """Host of a DDP learner group's c10d rendezvous; empty: the DNS name of the group's pod of
    index 0 under the run's headless Service (`<job>-0.<run>-learner`). Only for clusters whose
    pods have no such names: the integration tests' node agent runs pods as local processes and
    sets 127.0.0.1."""
    learner_rendezvous_port: int = 29400
    """Port of that rendezvous (torchrun's c10d default), on the pod of index 0."""


@dataclasses.dataclass(frozen=True)
class LeaderElectionSettings:
    """Leader election on a Lease (operator/leader.py), so replicas never reconcile at once."""

    enabled: bool = False
    """Elect a leader; off for a single local operator (the tests, `ouro` users)."""
    lease_name: str = "ouroboros-operator"
    """Name of the Lease."""
    lease_namespace: str = ""
    """Namespace of the Lease: the operator's own (the chart passes it)."""
    identity: str = ""
    """This replica's identity: its pod name (the chart passes it), else the host name."""
    lease_duration_s: float = 15.0
    """Seconds a Lease that is not renewed stays valid for the other replicas."""
    renew_deadline_s: float = 10.0
    """Seconds the leader keeps trying to renew before it exits (shorter than the duration)."""
    retry_period_s: float = 2.0
    """Seconds between attempts to acquire or renew."""


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator process is configured with."""

    jobs: JobSettings = dataclasses.field(default_factory=JobSettings)
    """Phase Job construction."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty watches the whole cluster."""
    metrics_port: int = 8080
    """Port of the Prometheus /metrics endpoint; 0 disables it."""
    metrics_address: str = "0.0.0.0"
    """IP address the /metrics listener binds to ("127.0.0.1": only the pod itself)."""
    health_port: int = 8081
    """Port of kopf's liveness endpoint (/healthz); 0 disables it."""
    health_address: str = "0.0.0.0"
    """IP address the /healthz listener binds to (the kubelet probes the pod IP)."""
    resync_seconds: float = 30.0
    """How often every run is reconciled even without events (TTL, missed events)."""
    workers: int = 16
    """Threads for the blocking Kubernetes client calls of handlers."""
    clock_file: str | None = None
    """Read "now" from this file (ISO 8601) instead of the system clock: for tests and drills only."""
    progress_seconds: float = 15.0
    """How often a running run's progress records are read from its store into its status; 0 never."""
    leader_election: LeaderElectionSettings = dataclasses.field(default_factory=LeaderElectionSettings)
    """Leader election between replicas."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from OURO_* environment variables (see the Deployment manifest)."""
        env = os.environ if env is None else env
        jobs = JobSettings(
            default_image=env.get("OURO_TRAINER_IMAGE", JobSettings.default_image),
            trainer_command=tuple(shlex.split(env["OURO_TRAINER_COMMAND"]))
            if env.get("OURO_TRAINER_COMMAND")
            else JobSettings.trainer_command,
            image_pull_policy=env.get("OURO_IMAGE_PULL_POLICY", JobSettings.image_pull_policy),
            default_storage_claim=env.get("OURO_DEFAULT_STORAGE_CLAIM", JobSettings.default_storage_claim),
            default_active_deadline_seconds=int(env.get("OURO_DEFAULT_ACTIVE_DEADLINE_SECONDS",
                                                        JobSettings.default_active_deadline_seconds)),
            progress_seconds=min(30.0, float(env.get("OURO_PROGRESS_SECONDS", JobSettings.progress_seconds)) or 15.0),
            learner_rendezvous_host=env.get("OURO_LEARNER_RENDEZVOUS_HOST", "").strip(),
            learner_rendezvous_port=_port(env, "OURO_LEARNER_RENDEZVOUS_PORT", JobSettings.learner_rendezvous_port),
        )
        namespaces = tuple(n for n in env.get("OURO_NAMESPACES", "").replace(",", " ").split() if n)
        election = LeaderElectionSettings(
            enabled=_flag(env, "OURO_LEADER_ELECTION"),
            lease_name=env.get("OURO_LEASE_NAME") or LeaderElectionSettings.lease_name,
            lease_namespace=env.get("OURO_LEASE_NAMESPACE", ""),
            identity=env.get("OURO_POD_NAME") or socket.gethostname(),
            lease_duration_s=float(env.get("OURO_LEASE_DURATION_SECONDS") or LeaderElectionSettings.lease_duration_s),
        )
        election = dataclasses.replace(election, renew_deadline_s=min(election.renew_deadline_s,
                                                                      election.lease_duration_s * 2 / 3))
        if election.enabled and not election.lease_namespace:
            raise ValueError("OURO_LEASE_NAMESPACE: required when OURO_LEADER_ELECTION is true")
        return cls(
            jobs=jobs,
            namespaces=namespaces,
            metrics_port=int(env.get("OURO_METRICS_PORT", cls.metrics_port)),
            metrics_address=_address(env, "OURO_METRICS_ADDRESS", cls.metrics_address),
            health_port=int(env.get("OURO_HEALTH_PORT", cls.health_port)),
            health_address=_address(env, "OURO_HEALTH_ADDRESS", cls.health_address),
            resync_seconds=float(env.get("OURO_RESYNC_SECONDS", cls.resync_seconds)),
            workers=int(env.get("OURO_WORKERS", cls.workers)),
            clock_file=env.get("OURO_CLOCK_FILE") or None,
            progress_seconds=float(env.get("OURO_PROGRESS_SECONDS", cls.progress_seconds)),
            leader_election=election,
        )


def _address(env: Mapping[str, str], key: str, default: str) -> str:
    """An IP address from `env[key]` (default when unset or empty).

    Raises ValueError naming the variable when it is not an IPv4 or IPv6 address.
    """
    value = env.get(key, "").strip() or default
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not an IP address (e.g. 0.0.0.0, 127.0.0.1, ::)") from None
    return value


def _port(env: Mapping[str, str], key: str, default: int) -> int:
    """A TCP port from `env[key]` (default when unset or empty); ValueError naming the variable
    unless an integer in 1..65535."""
    value = env.get(key, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise ValueError(f"{key}: {value!r} is not a TCP port (1 to 65535)")
    return int(value)


def http_url(address: str, port: int, path: str) -> str:
    """http://ADDRESS:PORT/PATH with IPv6 addresses bracketed (RFC 3986)."""
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"


def _flag(env: Mapping[str, str], key: str) -> bool:
    """A boolean variable: true/1/yes or false/0/no/empty; ValueError naming it otherwise."""
    value = env.get(key, "").strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("", "false", "0", "no"):
        return False
    raise ValueError(f"{key}: {value!r} is not a boolean (true or false)")
