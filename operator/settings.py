"""The operator's own configuration, read once from the environment at start-up.

Grouped, typed and documented field by field (kopf's settings style), so the
Deployment manifest, the Helm values and the tests all set the same names.
The trainer command is configurable because the integration tests run the
Jobs' pods as local processes and point them at the repository's venv.
"""

from __future__ import annotations

import dataclasses
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
    default_storage_claim: str = "ouroboros-artifacts"
    """PersistentVolumeClaim mounted for a file:// store whose run names none (the chart creates it)."""
    default_active_deadline_seconds: int = 86_400
    """activeDeadlineSeconds of a phase Job whose run and phase set none: nothing hangs forever
    (a Job whose pods never start fails with DeadlineExceeded and the run says so)."""
    progress_seconds: float = 15.0
    """How often trainers write progress records (OURO_PROGRESS_SECONDS in the pod; at most 30)."""


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator process is configured with."""

    jobs: JobSettings = dataclasses.field(default_factory=JobSettings)
    """Phase Job construction."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty watches the whole cluster."""
    metrics_port: int = 8080
    """Port of the Prometheus /metrics endpoint; 0 disables it."""
    health_port: int = 8081
    """Port of kopf's liveness endpoint (/healthz); 0 disables it."""
    resync_seconds: float = 30.0
    """How often every run is reconciled even without events (TTL, missed events)."""
    workers: int = 16
    """Threads for the blocking Kubernetes client calls of handlers."""
    clock_file: str | None = None
    """Read "now" from this file (ISO 8601) instead of the system clock: for tests and drills only."""
    progress_seconds: float = 15.0
    """How often a running run's progress records are read from its store into its status; 0 never."""

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
        )
        namespaces = tuple(n for n in env.get("OURO_NAMESPACES", "").replace(",", " ").split() if n)
        return cls(
            jobs=jobs,
            namespaces=namespaces,
            metrics_port=int(env.get("OURO_METRICS_PORT", cls.metrics_port)),
            health_port=int(env.get("OURO_HEALTH_PORT", cls.health_port)),
            resync_seconds=float(env.get("OURO_RESYNC_SECONDS", cls.resync_seconds)),
            workers=int(env.get("OURO_WORKERS", cls.workers)),
            clock_file=env.get("OURO_CLOCK_FILE") or None,
            progress_seconds=float(env.get("OURO_PROGRESS_SECONDS", cls.progress_seconds)),
        )
