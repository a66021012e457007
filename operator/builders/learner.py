"""Pure builders of a DDP learner group: a phase Job of several ranks and the Service that names them.

With ``spec.learner.replicas`` = R > 1, a training phase's Job becomes what
Kubeflow's PyTorchJob and JobSet make of a multi-node PyTorch job, with
Kubernetes' own parts only:

- an **Indexed Job** with ``completions = parallelism = R``: the Job controller
  gives each pod its index (``JOB_COMPLETION_INDEX``) and the host name
  ``<job>-<index>``;
- a **headless Service** ``<run>-learner`` (one per run, owned by it) that the
  pods join through ``subdomain``, so ``<job>-0.<run>-learner`` resolves to the
  pod of index 0 (``publishNotReadyAddresses``: the rendezvous happens before
  any pod could be called ready);
- each pod runs ``ouro phase``, which starts its one rank under torchrun with a
  **c10d rendezvous** at ``OURO_RENDEZVOUS_ENDPOINT``, hosted by index 0, with
  the Job's name as rendezvous id (``OURO_RENDEZVOUS_ID``), so a retry never
  meets the ranks of a failed attempt (``trainer/learning/distributed.py``).

A failed pod fails the group: the Job keeps ``backoffLimit: 0`` (one failed pod
fails the Job, and the Job controller stops the others), and the operator's
retry creates the next attempt's Job, a whole new group that resumes from rank
0's last checkpoint. The Job is retried as one, as JobSet's ``maxRestarts`` does.
Why not per-index retries (``backoffLimitPerIndex``): a DDP group whose rank
died cannot go on with a replacement rank; every rank must rendezvous again.
"""

from __future__ import annotations

from typing import Any

from ouroboros.contract.vocabulary import PhaseName
from ouroboros.operator.builders import names
from ouroboros.operator.resources import TrainingRun
from ouroboros.operator.settings import JobSettings

RENDEZVOUS_PORT_NAME = "rendezvous"
COMPONENT = "learner"


def replicas(run: TrainingRun, phase: PhaseName) -> int:
    """Pods of ``phase``'s learner group: ``spec.learner.replicas`` for a training phase, else 1."""
    return run.spec.learner.replicas if PhaseName(phase).trains else 1


def service_name(run: str) -> str:
    """Name of the run's headless Service of learner pods: ``<run>-learner``."""
    return names.shorten(run, names.MAX_NAME, "-learner")


def rendezvous_endpoint(run: TrainingRun, job: str, settings: JobSettings) -> str:
    """``host:port`` of the group's rendezvous: the pod of index 0 under the headless Service,
    unless the operator is configured with another host (``learner_rendezvous_host``)."""
    host = settings.learner_rendezvous_host or f"{job}-0.{service_name(run.metadata.name)}"
    return f"{host}:{settings.learner_rendezvous_port}"


def headless_service(run: TrainingRun, settings: JobSettings, owner: dict[str, Any]) -> dict[str, Any]:
    """The run's headless Service: DNS names for its learner pods (every phase's, by run uid)."""
    meta = run.metadata
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(meta.name),
            "namespace": meta.namespace,
            "labels": {**names.run_labels(meta.name, meta.uid), "app.kubernetes.io/component": COMPONENT},
            "ownerReferences": [owner],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {names.LABEL_RUN_UID: meta.uid, "app.kubernetes.io/component": "training-phase"},
            "ports": [{"name": RENDEZVOUS_PORT_NAME, "port": settings.learner_rendezvous_port,
                       "targetPort": settings.learner_rendezvous_port, "protocol": "TCP"}],
        },
    }


def as_group(job: dict[str, Any], run: TrainingRun, phase: PhaseName, settings: JobSettings) -> dict[str, Any]:
    """``job`` (a phase Job of ``manifests.phase_job``) made into a learner group of
    ``replicas(run, phase)`` ranks; unchanged for a learner of one pod."""
    count = replicas(run, phase)
    if count == 1:
        return job
    name = job["metadata"]["name"]
    spec = job["spec"]
    spec.update(completionMode="Indexed", completions=count, parallelism=count, backoffLimit=0)
    pod = spec["template"]["spec"]
    pod["subdomain"] = service_name(run.metadata.name)
    container = pod["containers"][0]
    container["env"] = [*container.get("env", []),
                        {"name": "OURO_LEARNER_REPLICAS", "value": str(count)},
                        {"name": "OURO_RENDEZVOUS_ENDPOINT", "value": rendezvous_endpoint(run, name, settings)},
                        {"name": "OURO_RENDEZVOUS_ID", "value": name}]
    container["ports"] = [{"name": RENDEZVOUS_PORT_NAME, "containerPort": settings.learner_rendezvous_port,
                           "protocol": "TCP"}]
    return job
