"""Pure builders: a TrainingRun in, the manifests of the objects it owns out.

No I/O and no client objects: each function returns a plain dict that the
handlers create as is, so a unit test can assert on every field (the
crate-operator pattern). Decisions baked in here, and why:

- `backoffLimit: 0` on every Job. The run's `backoffLimit` counts retries per
  phase and the operator makes each retry a new Job (`-r1`, `-r2`, ...), so
  every attempt keeps its own pod, exit code and termination message for
  `kubectl describe`, and the retry count survives operator restarts because
  it is the number of Jobs that exist.
- No `ttlSecondsAfterFinished` on Jobs: a Job deleted before the operator has
  read its result would lose the result. The run's own TTL deletes the run,
  and ownerReferences take the Jobs and ConfigMap with it.
- `terminationMessagePolicy: FallbackToLogsOnError`: a trainer that crashes
  before writing its result still leaves the tail of its log as the message,
  which becomes the failure message in the run's status.
- Pods meet the Pod Security Standard "restricted" (non-root as the image's
  user, no privilege escalation, every capability dropped, seccomp
  RuntimeDefault) with a read-only root filesystem, so they are admitted in a
  namespace that enforces it. What the trainer writes goes to volumes: a
  scratch emptyDir for temporary files, and the artifact store's mount path
  (the PersistentVolumeClaim every phase shares, see `storage_claim`; none for an object store).
"""

from __future__ import annotations

import json
from typing import Any

from ouroboros.contract.promotion import GateSource, PromotionSpec
from ouroboros.contract.run import RUN_CONFIG_KEY, StorageSpec
from ouroboros.contract.vocabulary import ApprovalMode
from ouroboros.operator.builders import kueue, learner, names
from ouroboros.operator.resources import (
    API_VERSION,
    PhaseName,
    RunConfig,
    RunIdentity,
    TrainingRun,
)
from ouroboros.operator.settings import JobSettings

CONTAINER_NAME = "trainer"
CONFIG_VOLUME = "run-config"
STORAGE_VOLUME = "artifacts"
SCRATCH_VOLUME = "scratch"


def owner_reference(run: TrainingRun) -> dict[str, Any]:
    """The ownerReference that ties a child to its run (deleting the run deletes the child)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "name": run.metadata.name,
        "uid": run.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def run_config(run: TrainingRun, approval: ApprovalMode = ApprovalMode.AUTOMATIC,
               champion_gate: PromotionSpec | None = None) -> RunConfig:
    """The run.json a run's phases read; ``approval`` is its Champion's ``spec.policy.approval``.

    The gate is the run's ``spec.promotion``, else ``champion_gate`` (its Champion's
    ``spec.policy.gate``), else the defaults; ``promotionSource`` says whose it is.

    ``device`` follows ``spec.resources.gpu``: ``cuda`` when the pods request GPUs (a pod
    scheduled without one then fails its preflight naming ``device`` instead of training on
    the CPU unnoticed), ``cpu`` otherwise (a pod that requested none never uses a GPU that
    its node's container runtime happens to expose).
    """
    identity = RunIdentity(
        name=run.metadata.name,
        namespace=run.metadata.namespace,
        uid=run.metadata.uid,
        generation=run.metadata.generation,
    )
    spec = run.spec
    if spec.promotion is not None:
        gate, source = spec.promotion, GateSource.TRAINING_RUN
    else:
        gate, source = champion_gate or PromotionSpec(), GateSource.CHAMPION
    return RunConfig(run=identity, champion=spec.champion, game=spec.game, model=spec.model,
                     phases=spec.phases, initial_model=spec.initial_model, promotion=gate,
                     promotion_source=source, storage=spec.storage,
                     self_play_workers=spec.self_play_workers, approval=approval,
                     device="cuda" if spec.resources.gpu > 0 else "cpu")


def config_map(run: TrainingRun, approval: ApprovalMode = ApprovalMode.AUTOMATIC,
               champion_gate: PromotionSpec | None = None) -> dict[str, Any]:
    """The ConfigMap holding run.json; immutable, because the spec fields it holds are (the
    Champion's approval policy and, for a run without spec.promotion, its gate are read when
    the run starts)."""
    text = json.dumps(run_config(run, approval, champion_gate).to_api(), indent=2, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": names.config_map_name(run.metadata.name),
            "namespace": run.metadata.namespace,
            "labels": names.run_labels(run.metadata.name, run.metadata.uid),
            "ownerReferences": [owner_reference(run)],
        },
        "immutable": True,
        "data": {RUN_CONFIG_KEY: text},
    }


def trainer_args(phase: PhaseName, settings: JobSettings) -> list[str]:
    """The container's command line: `<trainer command> phase NAME --run-config ... --result ...`."""
    return [
        *settings.trainer_command,
        "phase",
        phase.value,
        "--run-config",
        f"{settings.config_mount_path}/{RUN_CONFIG_KEY}",
        "--result",
        settings.termination_message_path,
    ]


def _resources(run: TrainingRun) -> dict[str, Any]:
    res = run.spec.resources
    amounts: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpu > 0:
        amounts[res.gpu_resource_name] = str(res.gpu)
    # requests == limits: Guaranteed QoS, and extended resources require it anyway
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _env(run: TrainingRun, index: int, phase: PhaseName, attempt: int, settings: JobSettings) -> list[dict[str, Any]]:
    meta = run.metadata
    pairs = {
        "OURO_RUN_NAME": meta.name,
        "OURO_RUN_NAMESPACE": meta.namespace,
        "OURO_RUN_UID": meta.uid,
        "OURO_PHASE": phase.value,
        "OURO_PHASE_INDEX": str(index),
        "OURO_ATTEMPT": str(attempt),
        "OURO_STORAGE_URL": run.spec.storage.url,
        # how often the trainer writes its progress record: as often as the operator reads them
        "OURO_PROGRESS_SECONDS": f"{settings.progress_seconds:g}",
    }
    env = [{"name": k, "value": v} for k, v in pairs.items()]
    env.append({"name": "TMPDIR", "value": settings.scratch_path})  # the root filesystem is read-only
    env.append({"name": "OURO_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    return env


def storage_claim(run: TrainingRun | StorageSpec, settings: JobSettings) -> str | None:
    """The PersistentVolumeClaim every pod of a run (or of a Champion's registry Jobs) mounts for a
    file:// store: the spec's, else the operator's default; None for an object store."""
    storage = run if isinstance(run, StorageSpec) else run.spec.storage
    if not storage.shared_by_volume:
        return None
    return storage.persistent_volume_claim or settings.default_storage_claim


def _volumes(run: TrainingRun, settings: JobSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) of the trainer container."""
    volumes = [{"name": CONFIG_VOLUME, "configMap": {"name": names.config_map_name(run.metadata.name)}}]
    mounts = [{"name": CONFIG_VOLUME, "mountPath": settings.config_mount_path, "readOnly": True}]
    volumes.append({"name": SCRATCH_VOLUME, "emptyDir": {}})
    mounts.append({"name": SCRATCH_VOLUME, "mountPath": settings.scratch_path})
    claim = storage_claim(run, settings)
    if claim:
        volumes.append({"name": STORAGE_VOLUME, "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": STORAGE_VOLUME, "mountPath": run.spec.storage.mount_path})
    return volumes, mounts


def pod_security_context(settings: JobSettings) -> dict[str, Any]:
    """The pod-level securityContext: non-root as the image's user, seccomp RuntimeDefault.

    fsGroup makes a mounted PVC writable by that user.
    """
    uid = settings.run_as_user
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """The container-level securityContext of Pod Security "restricted", root filesystem read-only."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def workers(run: TrainingRun, phase: PhaseName) -> int:
    """Pods of a phase's Job: selfPlayWorkers for generation phases, else one."""
    if phase in (PhaseName.SELF_PLAY, PhaseName.CONTINUOUS):
        return run.spec.self_play_workers
    return 1


def phase_job(run: TrainingRun, index: int, attempt: int, settings: JobSettings) -> dict[str, Any]:
    """The Job for attempt `attempt` (0 = first) of phase `index` of `run`; created suspended and
    labelled for Kueue when the run names a LocalQueue (see `kueue`)."""
    spec = run.spec
    phase_spec = spec.phases[index]
    phase = phase_spec.name
    meta = run.metadata
    labels = names.phase_labels(meta.name, meta.uid, index, phase, attempt)
    volumes, mounts = _volumes(run, settings)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image or settings.default_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": trainer_args(phase, settings),
        "env": _env(run, index, phase, attempt, settings),
        "resources": _resources(run),
        "volumeMounts": mounts,
        "terminationMessagePath": settings.termination_message_path,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": container_security_context(),
    }
    if spec.storage.secret_name:
        container["envFrom"] = [{"secretRef": {"name": spec.storage.secret_name}}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": pod_security_context(settings),
        "containers": [container],
        "volumes": volumes,
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [t.to_api() for t in spec.tolerations]
    if spec.priority_class_name:
        pod_spec["priorityClassName"] = spec.priority_class_name
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    job_spec["activeDeadlineSeconds"] = (
        phase_spec.active_deadline_seconds or spec.active_deadline_seconds or settings.default_active_deadline_seconds)
    count = workers(run, phase)
    if count > 1:
        job_spec.update(completionMode="Indexed", completions=count, parallelism=count)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": names.job_name(meta.name, index, phase, attempt),
            "namespace": meta.namespace,
            "labels": labels,
            "annotations": {names.ANNOTATION_GENERATION: str(meta.generation)},
            "ownerReferences": [owner_reference(run)],
        },
        "spec": job_spec,
    }
    job = learner.as_group(job, run, phase, settings)  # a DDP learner group when spec.learner.replicas > 1
    return kueue.queue_job(job, meta.labels)  # Kueue admits a group's pods together
