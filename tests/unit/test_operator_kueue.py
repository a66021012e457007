"""Kueue-managed phase Jobs: labels, created suspended, Queued/Admitted/Preempted, never flipped by us.

The lifecycle is driven with hand-made observations, the way Kueue changes a
Job: it resumes a suspended Job on admission and suspends it again to preempt
it; the operator must follow, never set the Job's spec.suspend itself, and
count no failure or retry. (tests/integration/test_kueue.py runs the real
Kueue against the test control plane.)
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from ouroboros.operator import conditions, lifecycle, observe
from ouroboros.operator.builders import kueue, manifests, scheduled_runs
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.observe import JobState, ObservedJob, ObservedPod, ObservedWorkload
from ouroboros.operator.resources import (
    Champion,
    PhaseState,
    RunPhase,
    TrainingRun,
    TrainingSchedule,
)
from ouroboros.operator.resources.trainingschedule import TriggerType
from ouroboros.operator.settings import JobSettings

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = JobSettings()
QUEUED_LABELS = {kueue.QUEUE_NAME_LABEL: "team-a", kueue.PRIORITY_CLASS_LABEL: "low", "team": "snakes"}


def run_body(labels=None, phases=("bootstrap", "hybrid"), **spec):
    return {"metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 1, "labels": labels or {}},
            "spec": {"champion": "c", "phases": [{"name": p} for p in phases], **spec}}


class Cluster:
    """A run, its Jobs as the Job controller and Kueue leave them, and the lifecycle's decisions."""

    def __init__(self, labels=QUEUED_LABELS, **spec):
        self.body = run_body(labels, **spec)
        self.status = None
        self.jobs: dict[str, ObservedJob] = {}
        self.manifests: dict[str, dict] = {}
        self.now = T0
        self.events: list[lifecycle.Event] = []
        self.all_actions: list = []
        self.champion = Champion.model_validate({"metadata": {"name": "c", "namespace": "ns"}, "spec": {}})

    def run(self) -> TrainingRun:
        body = dict(self.body)
        if self.status is not None:
            body["status"] = self.status.to_api()
        return TrainingRun.model_validate(body)

    def step(self) -> lifecycle.Decision:
        self.now += timedelta(seconds=1)
        jobs = sorted(self.jobs.values(), key=lambda j: (j.index, j.attempt))
        decision = lifecycle.decide(self.run(), jobs, self.now, SETTINGS, champion=self.champion)
        for action in decision.actions:
            if isinstance(action, lifecycle.CreateObject) and action.manifest["kind"] == "Job":
                meta = action.manifest["metadata"]
                self.manifests[meta["name"]] = action.manifest
                job = observe.job(action.manifest)  # what the Job controller would report back
                self.jobs.setdefault(meta["name"], dataclasses.replace(job, uid=f"uid-{meta['name']}"))
            elif isinstance(action, lifecycle.SetWorkloadActive):
                for name, job in self.jobs.items():
                    if job.workload is not None and job.workload.name == action.name:
                        self.kueue(name, workload=dataclasses.replace(
                            job.workload, active=action.active, deactivated_by_run=not action.active))
        self.all_actions += decision.actions
        self.status = decision.status
        self.events += decision.events
        return decision

    def kueue(self, name, state=None, **changes):
        """Kueue (or the Job controller) changes Job `name`."""
        job = self.jobs[name]
        self.jobs[name] = dataclasses.replace(job, state=state or job.state, **changes)

    def finish(self, name):
        job = self.jobs[name]
        phase = self.run().spec.phases[job.index].name.value
        pod = ObservedPod(name=f"{name}-x", job=name, phase="Succeeded", exit_code=0, reason="Completed",
                          message=json.dumps({"phase": phase, "metrics": {}, "artifacts": []}))
        self.kueue(name, JobState.SUCCEEDED, pods=(pod,), completion_time=self.now)

    def running(self):
        return conditions.get(self.status.conditions, "Running")

    def reasons(self):
        return [e.reason for e in self.events]


def workload(**changes):
    return ObservedWorkload(name="job-r-0-bootstrap-1a2b3", **changes)


# ---------------------------------------------------------------------------
# builders


def test_a_queued_run_labels_its_jobs_and_creates_them_suspended():
    run = TrainingRun.model_validate(run_body(QUEUED_LABELS))
    job = manifests.phase_job(run, 0, 0, SETTINGS)
    labels = job["metadata"]["labels"]
    assert labels[kueue.QUEUE_NAME_LABEL] == "team-a"
    assert labels[kueue.PRIORITY_CLASS_LABEL] == "low"
    assert "team" not in labels  # only Kueue's labels are copied
    assert job["spec"]["suspend"] is True
    # the pods carry no queue label: Kueue's pod integration must not take them for plain pods
    assert kueue.QUEUE_NAME_LABEL not in job["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("labels", [{}, {kueue.PRIORITY_CLASS_LABEL: "low"}, {kueue.QUEUE_NAME_LABEL: ""}])
def test_a_run_without_a_queue_name_makes_plain_jobs(labels):
    run = TrainingRun.model_validate(run_body(labels))
    job = manifests.phase_job(run, 0, 0, SETTINGS)
    assert "suspend" not in job["spec"]
    assert not any(k.startswith("kueue.x-k8s.io/") for k in job["metadata"]["labels"])


def test_every_attempt_and_worker_job_is_queued():
    run = TrainingRun.model_validate(run_body(QUEUED_LABELS, phases=("self_play",), selfPlayWorkers=3))
    for attempt in (0, 2):
        job = manifests.phase_job(run, 0, attempt, SETTINGS)
        assert job["spec"]["suspend"] is True and job["spec"]["parallelism"] == 3
        assert job["metadata"]["labels"][kueue.QUEUE_NAME_LABEL] == "team-a"


# ---------------------------------------------------------------------------
# observing


def test_a_workload_reads_as_why_the_job_waits():
    obj = {
        "metadata": {"name": "job-x-1", "labels": {kueue.JOB_UID_LABEL: "uid-x"}},
        "spec": {"active": True, "queueName": "team-a"},
        "status": {"conditions": [
            {"type": "QuotaReserved", "status": "False", "reason": "Pending",
             "message": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor "
                        "default, 1 more needed"},
            {"type": "Evicted", "status": "True", "reason": "Preempted",
             "message": "Preempted to accommodate a workload (UID: w2) due to prioritization in the ClusterQueue"},
        ]},
    }
    wl = observe.workload(obj)
    assert wl.active and not wl.admitted and not wl.deactivated_by_run
    assert wl.evicted == ("Preempted", obj["status"]["conditions"][1]["message"])
    assert wl.pending.startswith("couldn't assign flavors")
    job = {"metadata": {"name": "r-0-bootstrap", "uid": "uid-x", "labels": {
        "ouroboros.dev/phase-index": "0", "ouroboros.dev/attempt": "0", kueue.QUEUE_NAME_LABEL: "team-a"}},
        "spec": {"suspend": True}}
    other = {**obj, "metadata": {"name": "job-y", "labels": {kueue.JOB_UID_LABEL: "uid-other"}}}
    [seen] = observe.children([job], [], "", workloads=[obj, other])
    assert seen.state is JobState.SUSPENDED and seen.queue_name == "team-a" and seen.workload == wl


def test_an_inactive_workload_and_the_operators_mark():
    obj = {"metadata": {"name": "w", "annotations": {observe.ANNOTATION_DEACTIVATED: "true"}},
           "spec": {"active": False}, "status": {"conditions": [{"type": "Admitted", "status": "True"}]}}
    wl = observe.workload(obj)
    assert not wl.active and wl.admitted and wl.deactivated_by_run and wl.evicted is None


# ---------------------------------------------------------------------------
# the lifecycle


def test_a_queued_phase_waits_then_runs_when_kueue_admits_it():
    c = Cluster()
    d = c.step()
    assert c.manifests["r-0-bootstrap"]["spec"]["suspend"] is True
    assert c.status.phase == RunPhase.QUEUED and c.status.phases[0].state == PhaseState.QUEUED
    assert c.running().status.value == "False" and c.running().reason == "Queued"
    assert "LocalQueue 'team-a'" in c.running().message
    assert c.reasons() == ["PhaseStarted", "Queued"]
    # Kueue has made the Workload but has no quota: still queued, and the run says why
    c.kueue("r-0-bootstrap", workload=workload(pending="couldn't assign flavors to pod set main: "
                                                   "insufficient unused quota for cpu in flavor default"))
    d = c.step()
    assert d.actions == [] and c.status.phase == RunPhase.QUEUED
    assert "insufficient unused quota" in c.running().message
    assert d.requeue_after == lifecycle.HOLD_REQUEUE_SECONDS  # Workload changes make no Job event: look again
    # Kueue admits: it resumes the Job
    c.kueue("r-0-bootstrap", JobState.ACTIVE, workload=workload(admitted=True))
    c.step()
    assert c.status.phase == RunPhase.RUNNING and c.status.phases[0].state == PhaseState.RUNNING
    assert c.running().reason == "PhaseRunning"
    assert c.reasons()[-1] == "Admitted"
    c.finish("r-0-bootstrap")
    c.step()
    assert c.manifests["r-1-hybrid"]["spec"]["suspend"] is True
    assert c.status.phase == RunPhase.QUEUED and c.status.current_phase.value == "hybrid"
    assert not any(isinstance(a, lifecycle.SetJobSuspended) for a in c.all_actions)


def test_a_preempted_phase_is_queued_again_without_a_failure_or_a_retry():
    c = Cluster()
    c.step()
    c.kueue("r-0-bootstrap", JobState.ACTIVE, workload=workload(admitted=True))
    c.step()
    # a workload of higher priority needs the quota: Kueue evicts this one and suspends its Job
    evicted = ("Preempted", "Preempted to accommodate a workload (UID: w2) due to prioritization in the ClusterQueue")
    c.kueue("r-0-bootstrap", JobState.SUSPENDED, workload=workload(evicted=evicted))
    d = c.step()
    assert d.actions == []
    ps = c.status.phases[0]
    assert c.status.phase == RunPhase.QUEUED and ps.state == PhaseState.QUEUED
    assert ps.attempts == 1 and ps.reason is None and ps.job == "r-0-bootstrap"
    assert c.running().reason == "Preempted" and "prioritization in the ClusterQueue" in c.running().message
    assert [e.type for e in c.events if e.reason == "Preempted"] == ["Warning"]
    assert "PhaseRetrying" not in c.reasons() and "PhaseFailed" not in c.reasons()
    # readmitted: the same Job runs on and finishes; one attempt in all
    c.kueue("r-0-bootstrap", JobState.ACTIVE, workload=workload(admitted=True))
    c.step()
    assert c.status.phase == RunPhase.RUNNING
    c.finish("r-0-bootstrap")
    c.step()
    assert c.status.phases[0].state == PhaseState.SUCCEEDED and c.status.phases[0].attempts == 1
    assert not any(isinstance(a, lifecycle.SetJobSuspended) for a in c.all_actions)


def test_preemption_is_recognised_without_reading_the_workload():
    """An operator that may not read Workloads (RBAC) still tells preemption from waiting."""
    c = Cluster()
    c.step()
    c.kueue("r-0-bootstrap", JobState.ACTIVE)
    c.step()
    c.kueue("r-0-bootstrap", JobState.SUSPENDED)
    c.step()
    assert c.status.phase == RunPhase.QUEUED and c.running().reason == "Preempted"
    c.step()  # and it stays so while the Job waits, with no second Event
    assert c.running().reason == "Preempted" and c.reasons().count("Preempted") == 1
    assert c.status.phases[0].attempts == 1


def test_suspending_a_queued_run_deactivates_its_workload_never_the_job():
    c = Cluster()
    c.step()
    c.kueue("r-0-bootstrap", JobState.ACTIVE, workload=workload(admitted=True))
    c.step()
    c.body["spec"]["suspend"] = True
    d = c.step()
    assert d.actions == [lifecycle.SetWorkloadActive(workload().name, False)]
    assert c.status.phase == RunPhase.SUSPENDED
    # Kueue evicts the deactivated Workload and suspends the Job; the run stays Suspended, nothing more to do
    c.kueue("r-0-bootstrap", JobState.SUSPENDED)
    assert c.step().actions == [] and c.status.phase == RunPhase.SUSPENDED
    c.body["spec"]["suspend"] = False
    c.kueue("r-0-bootstrap", workload=dataclasses.replace(
        c.jobs["r-0-bootstrap"].workload, evicted=("Deactivated", "The workload is deactivated")))
    d = c.step()
    assert d.actions == [lifecycle.SetWorkloadActive(workload().name, True)]
    assert c.status.phase == RunPhase.QUEUED
    # reactivated, it waits for admission like any new Workload: Queued, not Evicted
    c.kueue("r-0-bootstrap", workload=dataclasses.replace(c.jobs["r-0-bootstrap"].workload, deactivated_by_run=False))
    c.step()
    assert c.running().reason == "Queued" and "requeued after its Workload was deactivated" in c.running().message
    assert not any(isinstance(a, lifecycle.SetJobSuspended) for a in c.all_actions)


def test_a_workload_deactivated_by_someone_else_is_left_alone_and_named():
    c = Cluster()
    c.step()
    c.kueue("r-0-bootstrap", workload=workload(active=False))
    d = c.step()
    assert d.actions == []
    assert c.status.phase == RunPhase.QUEUED and c.running().reason == "WorkloadInactive"
    assert "spec.active is false" in c.running().message


def test_a_failed_queued_attempt_is_retried_as_a_new_suspended_job():
    c = Cluster(backoffLimit=1)
    c.step()
    c.kueue("r-0-bootstrap", JobState.ACTIVE)
    c.step()
    pod = ObservedPod(name="p", job="r-0-bootstrap", phase="Failed", exit_code=3, reason="Error", message="boom")
    c.kueue("r-0-bootstrap", JobState.FAILED, pods=(pod,))
    c.step()
    assert c.manifests["r-0-bootstrap-r1"]["spec"]["suspend"] is True
    assert c.status.phase == RunPhase.QUEUED and c.status.phases[0].attempts == 2
    assert "PhaseRetrying" in c.reasons()


def test_an_unqueued_run_still_resumes_a_job_it_suspended():
    """The old behaviour stays for Jobs without the label: the operator owns their spec.suspend."""
    c = Cluster(labels={})
    c.step()
    assert "suspend" not in c.manifests["r-0-bootstrap"]["spec"] and c.status.phase == RunPhase.RUNNING
    c.kueue("r-0-bootstrap", JobState.SUSPENDED)
    d = c.step()
    assert d.actions == [lifecycle.SetJobSuspended("r-0-bootstrap", False)]


def test_queued_runs_are_a_status_series():
    c = Cluster()
    c.step()
    m = Metrics()
    m.observe_run("ns", "r", "c", lifecycle.TrainingRunStatus(), c.status)
    text = m.render()
    assert 'ouroboros_trainingrun_status{name="r",namespace="ns",phase="Queued"} 1.0' in text
    assert 'ouroboros_trainingrun_status{name="r",namespace="ns",phase="Running"} 0.0' in text
    assert ('ouroboros_trainingrun_phase_status{name="r",namespace="ns",state="Queued",'
            'training_phase="bootstrap"} 1.0') in text


def test_a_schedules_runs_inherit_its_queue_and_so_do_their_jobs():
    """Labels of a TrainingSchedule's template reach the runs it creates, and from them the phase Jobs."""
    schedule = TrainingSchedule.model_validate({
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "s-1"},
        "spec": {"schedules": ["0 2 * * *"], "timeZone": "Etc/UTC",
                 "template": {"metadata": {"labels": {kueue.QUEUE_NAME_LABEL: "team-a"}},
                              "spec": {"champion": "c", "phases": [{"name": "hybrid"}]}}}})
    body = scheduled_runs.run_manifest(schedule, "nightly-1", TriggerType.CRON, T0)
    run = TrainingRun.model_validate({**body, "metadata": {**body["metadata"], "uid": "r-1", "generation": 1}})
    job = manifests.phase_job(run, 0, 0, SETTINGS)
    assert job["metadata"]["labels"][kueue.QUEUE_NAME_LABEL] == "team-a" and job["spec"]["suspend"] is True
