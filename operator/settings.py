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
    run_as_user: int = 10001
    """UID (and GID) of the trainer container: the `ouro` user of Dockerfile.trainer.
    Jobs run as this user with the Pod Security "restricted" settings."""
    scratch_path: str = "/scratch"
    """Where the trainer's writable scratch volume (an emptyDir) is mounted; the
    root filesystem is read-only, so TMPDIR points here (ONNX export, checks)."""


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
        )
        namespaces = tuple(n for n in env.get("OURO_NAMESPACES", "").replace(",", " ").split() if n)
        return cls(
            jobs=jobs,
            namespaces=namespaces,
            metrics_port=int(env.get("OURO_METRICS_PORT", cls.metrics_port)),
            metrics_address=_address(env, "OURO_METRICS_ADDRESS", cls.metrics_address),
            health_port=int(env.get("OURO_HEALTH_PORT", cls.health_port)),
            health_address=_address(env, "OURO_HEALTH_ADDRESS", cls.health_address),
            resync_seconds=float(env.get("OURO_RESYNC_SECONDS", cls.resync_seconds)),
            workers=int(env.get("OURO_WORKERS", cls.workers)),
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


def http_url(address: str, port: int, path: str) -> str:
    """http://ADDRESS:PORT/PATH with IPv6 addresses bracketed (RFC 3986)."""
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}{path}"
