"""What the operator sees of a run's children, reduced to the facts it decides on.

The lifecycle never looks at raw API objects: the handlers list a run's Jobs
and pods and this module turns each into a small frozen record (which phase
and attempt a Job is, whether it is running, suspended, done or failed, and
what its pods wrote as termination messages). Keeping the parsing here makes
the decision module testable with hand-written records, and makes the
Kubernetes-version-dependent details (Job condition types, pod label names)
live in one place.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import StrEnum
from typing import Any

from ouroboros.operator.builders import kueue, names

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
TRAINER_CONTAINER = "trainer"


class JobState(StrEnum):
    """A Job's state as far as the run is concerned."""

    ACTIVE = "Active"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclasses.dataclass(frozen=True)
class ObservedPod:
    """One pod of a phase Job, and how its trainer container ended."""

    name: str
    job: str
    phase: str
    """Pod phase: Pending, Running, Succeeded, Failed or Unknown."""
    exit_code: int | None = None
    reason: str | None = None
    """Terminated reason, e.g. Completed, Error, OOMKilled."""
    message: str | None = None
    """Termination message: the trainer's result JSON, or the log tail on error."""


@dataclasses.dataclass(frozen=True)
class ObservedWorkload:
    """Kueue's Workload for a queued phase Job (kueue.x-k8s.io/v1beta2), reduced to what the run shows."""

    name: str
    active: bool = True
    """spec.active: false means the Workload is deactivated (evicted, and not requeued until reactivated)."""
    admitted: bool = False
    """The Admitted condition is True: Kueue reserved quota and the Job may run."""
    evicted: tuple[str, str] | None = None
    """(reason, message) of a True Evicted condition, e.g. ("Preempted", "Preempted to accommodate ...")."""
    pending: str | None = None
    """Why it is not admitted: the message of a False QuotaReserved (or Admitted) condition, e.g.
    "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default"."""
    deactivated_by_run: bool = False
    """The operator deactivated it for the run's spec.suspend (ANNOTATION_DEACTIVATED), so it reactivates it."""


@dataclasses.dataclass(frozen=True)
class ObservedJob:
    """One phase Job of a run."""

    name: str
    index: int
    attempt: int
    state: JobState
    uid: str = ""
    start_time: datetime | None = None
    completion_time: datetime | None = None
    reason: str | None = None
    """Reason of the Job's Failed condition (e.g. DeadlineExceeded)."""
    message: str | None = None
    pods: tuple[ObservedPod, ...] = ()
    problem: tuple[str, str] | None = None
    """(reason, message) of the newest Warning Event of an active Job that has no pod yet, e.g.
    ("FailedCreate", 'pods "x" is forbidden: violates PodSecurity ...'): why it does not start."""
    queue_name: str | None = None
    """The Kueue LocalQueue of the Job (its kueue.x-k8s.io/queue-name label): Kueue, not the operator,
    decides its spec.suspend."""
    workload: ObservedWorkload | None = None
    """The Job's Kueue Workload, when Kueue has made one and the operator may read it."""


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def job_state(job: dict[str, Any]) -> tuple[JobState, dict[str, Any] | None]:
    """The state of a Job and the condition that decided it (if any).

    Only the terminal conditions count as done: `Complete` and `Failed`
    (newer Job controllers first set `SuccessCriteriaMet`/`FailureTarget`
    while pods are still terminating, and the result may not be final yet).
    """
    if cond := _condition(job, "Complete"):
        return JobState.SUCCEEDED, cond
    if cond := _condition(job, "Failed"):
        return JobState.FAILED, cond
    if (job.get("spec") or {}).get("suspend"):
        return JobState.SUSPENDED, _condition(job, "Suspended")
    return JobState.ACTIVE, None


def pod(obj: dict[str, Any]) -> ObservedPod | None:
    """An ObservedPod from a pod object, or None if it belongs to no Job."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    job = next((labels[k] for k in JOB_NAME_LABELS if k in labels), None)
    if job is None:
        return None
    status = obj.get("status") or {}
    exit_code = reason = message = None
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") != TRAINER_CONTAINER:
            continue
        terminated = (cs.get("state") or {}).get("terminated") or {}
        if terminated:
            exit_code = terminated.get("exitCode")
            reason = terminated.get("reason")
            message = terminated.get("message")
    return ObservedPod(
        name=meta.get("name", ""),
        job=job,
        phase=status.get("phase", "Unknown"),
        exit_code=exit_code,
        reason=reason,
        message=message,
    )


def job(obj: dict[str, Any], pods: list[ObservedPod] | tuple[ObservedPod, ...] = ()) -> ObservedJob | None:
    """An ObservedJob from a Job object and the run's pods, or None if it is not a phase Job."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    try:
        index = int(labels[names.LABEL_PHASE_INDEX])
        attempt = int(labels[names.LABEL_ATTEMPT])
    except (KeyError, ValueError):
        return None
    state, cond = job_state(obj)
    status = obj.get("status") or {}
    name = meta.get("name", "")
    return ObservedJob(
        name=name,
        index=index,
        attempt=attempt,
        state=state,
        uid=meta.get("uid", ""),
        start_time=_time(status.get("startTime")),
        completion_time=_time(status.get("completionTime") or (cond or {}).get("lastTransitionTime")),
        reason=(cond or {}).get("reason") if state == JobState.FAILED else None,
        message=(cond or {}).get("message") if state == JobState.FAILED else None,
        pods=tuple(p for p in pods if p.job == name),
        queue_name=kueue.queue_name(labels),
    )


ANNOTATION_DEACTIVATED = "ouroboros.dev/deactivated-for-suspend"
"""Set on a Workload the operator deactivated because its run's spec.suspend is true."""


def workload(obj: dict[str, Any]) -> ObservedWorkload:
    """An ObservedWorkload from a kueue.x-k8s.io Workload object."""
    meta = obj.get("metadata") or {}
    conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}

    def true(type_: str) -> dict[str, Any] | None:
        cond = conditions.get(type_)
        return cond if cond is not None and cond.get("status") == "True" else None

    evicted = true("Evicted")
    pending = None
    for type_ in ("QuotaReserved", "Admitted"):
        cond = conditions.get(type_)
        if cond is not None and cond.get("status") == "False" and cond.get("message"):
            pending = str(cond["message"])[:1024]
            break
    return ObservedWorkload(
        name=meta.get("name", ""),
        active=(obj.get("spec") or {}).get("active", True) is not False,
        admitted=true("Admitted") is not None,
        evicted=(str(evicted.get("reason") or "Evicted"), str(evicted.get("message") or "")[:1024]) if evicted else None,
        pending=pending,
        deactivated_by_run=ANNOTATION_DEACTIVATED in (meta.get("annotations") or {}),
    )


def workloads_by_job(objs: list[dict[str, Any]]) -> dict[str, ObservedWorkload]:
    """Job uid -> its Workload, from Workloads listed by the kueue.x-k8s.io/job-uid label (the newest
    one when a Job has several)."""
    out: dict[str, tuple[str, ObservedWorkload]] = {}
    for obj in objs:
        meta = obj.get("metadata") or {}
        uid = (meta.get("labels") or {}).get(kueue.JOB_UID_LABEL)
        if not uid:
            continue
        created = str(meta.get("creationTimestamp") or "")
        if uid not in out or created >= out[uid][0]:
            out[uid] = (created, workload(obj))
    return {uid: found for uid, (_, found) in out.items()}


def is_starting(job: dict[str, Any]) -> bool:
    """An unfinished, unsuspended Job with no pod active, ready or finished: if it stays so, its
    pods cannot be created (admission, quota, a missing ServiceAccount) and its Events say why."""
    status = job.get("status") or {}
    return job_state(job)[0] is JobState.ACTIVE and not any(
        status.get(k) for k in ("active", "ready", "succeeded", "failed", "terminating"))


def problem(events: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(reason, message) of the newest Warning among a Job's Events, or None."""
    warnings = [e for e in events if e.get("type") == "Warning"]
    if not warnings:
        return None
    newest = max(warnings, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return str(newest.get("reason") or "Warning"), str(newest.get("message") or "")[:1024]


def children(jobs: list[dict[str, Any]], pods: list[dict[str, Any]], run_uid: str,
             problems: dict[str, tuple[str, str]] | None = None,
             workloads: list[dict[str, Any]] | None = None) -> list[ObservedJob]:
    """The run's phase Jobs (only those it controls), each with its pods, for a Job that
    cannot start its pods the problem its Events report, and for a queued Job its Kueue Workload;
    ordered by (index, attempt)."""
    by_job = workloads_by_job(workloads or [])
    observed_pods = [p for p in (pod(obj) for obj in pods) if p is not None]
    out = []
    for obj in jobs:
        owners = (obj.get("metadata") or {}).get("ownerReferences") or []
        if run_uid and not any(o.get("uid") == run_uid and o.get("controller") for o in owners):
            continue
        observed = job(obj, observed_pods)
        if observed is not None:
            found = (problems or {}).get(observed.name)
            if found:
                observed = dataclasses.replace(observed, problem=found)
            if observed.queue_name and observed.uid in by_job:
                observed = dataclasses.replace(observed, workload=by_job[observed.uid])
            out.append(observed)
    return sorted(out, key=lambda j: (j.index, j.attempt))
