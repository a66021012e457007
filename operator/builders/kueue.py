"""Kueue's vocabulary, and the few changes that make a phase Job queueable by Kueue.

Kueue (https://kueue.sigs.k8s.io) admits batch/v1 Jobs that carry its
``kueue.x-k8s.io/queue-name`` label: it keeps such a Job suspended until its
LocalQueue's ClusterQueue has quota for it, then resumes it, and may suspend it
again to preempt it for a workload of higher priority. A TrainingRun opts in
the way users opt their own Jobs in: by carrying the label (directly, or
through a TrainingSchedule's ``spec.template.metadata.labels``). The operator
copies the label, and the WorkloadPriorityClass label, onto every phase Job
it creates for the run; the Kubernetes PriorityClass is already the pods'
``spec.priorityClassName`` (``spec.priorityClassName`` of the run), which
Kueue reads when no WorkloadPriorityClass is named.

A queued Job is created with ``spec.suspend: true``. Kueue's mutating webhook
would suspend it too, but the Kueue docs ask integrations to create their
Jobs suspended ("Run a Kubernetes Job": the webhook is only a safety net),
so no pod can start in the moment between creation and the webhook, and a
cluster whose webhook is down or bypassed still queues the run. From then on
only Kueue changes ``spec.suspend`` of that Job: the operator never does
(Kueue would undo it), and stops a queued phase through its Workload's
``spec.active`` instead, which is how Kueue documents deactivating a workload.

Registry Jobs of a Champion are not queued: they are owned by the Champion,
take seconds, and a promotion or rollback held behind training Jobs in a
full queue would leave the wrong model serving.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
"""The LocalQueue (same namespace) a Job is submitted to; Kueue manages only Jobs that carry it."""
PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class"
"""The WorkloadPriorityClass of a Job's Workload (Kueue's priority, independent of pod priority)."""
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
"""The label Kueue puts on a Workload naming the uid of the Job it stands for."""
COPIED_LABELS = (QUEUE_NAME_LABEL, PRIORITY_CLASS_LABEL)
"""The run's labels copied onto each phase Job."""

WORKLOAD_GROUP = "kueue.x-k8s.io"
WORKLOAD_VERSION = "v1beta2"
"""The Workload API version read and patched (Kueue's storage version since v0.15)."""


def queue_name(labels: Mapping[str, str]) -> str | None:
    """The LocalQueue named by ``labels`` (a run's or a Job's), or None when Kueue does not manage it."""
    return labels.get(QUEUE_NAME_LABEL) or None


def job_labels(run_labels: Mapping[str, str]) -> dict[str, str]:
    """The Kueue labels of ``run_labels`` that a phase Job carries (empty when the run is not queued)."""
    if queue_name(run_labels) is None:
        return {}
    return {key: run_labels[key] for key in COPIED_LABELS if run_labels.get(key)}


def queue_job(job: dict[str, Any], run_labels: Mapping[str, str]) -> dict[str, Any]:
    """``job`` (a batch/v1 Job manifest, changed in place and returned) submitted to the run's
    LocalQueue: the Kueue labels added and ``spec.suspend: true``; unchanged for an unqueued run."""
    labels = job_labels(run_labels)
    if labels:
        job["metadata"]["labels"] = {**job["metadata"]["labels"], **labels}  # not the pod template's dict
        job["spec"]["suspend"] = True
    return job
