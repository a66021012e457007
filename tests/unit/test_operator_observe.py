"""Reading Jobs and pods into the records the lifecycle decides on."""

from __future__ import annotations

import pytest

from ouroboros.operator import observe
from ouroboros.operator.observe import JobState

pytestmark = pytest.mark.unit


def job(name="r-0-hybrid", index=0, attempt=0, conditions=(), suspend=False, owner="u"):
    return {
        "metadata": {
            "name": name, "uid": "j",
            "labels": {"ouroboros.dev/phase-index": str(index), "ouroboros.dev/attempt": str(attempt)},
            "ownerReferences": [{"uid": owner, "controller": True, "kind": "TrainingRun"}],
        },
        "spec": {"suspend": suspend},
        "status": {"startTime": "2026-01-01T00:00:00Z", "conditions": list(conditions)},
    }


def cond(type_, reason=None, status="True"):
    return {"type": type_, "status": status, "reason": reason, "message": f"{type_} msg",
            "lastTransitionTime": "2026-01-01T00:01:00Z"}


@pytest.mark.parametrize(
    ("conditions", "suspend", "state"),
    [
        ((), False, JobState.ACTIVE),
        ((), True, JobState.SUSPENDED),
        ((cond("SuccessCriteriaMet"),), False, JobState.ACTIVE),  # not final yet
        ((cond("SuccessCriteriaMet"), cond("Complete")), False, JobState.SUCCEEDED),
        ((cond("FailureTarget"), cond("Failed", "DeadlineExceeded")), False, JobState.FAILED),
        ((cond("Complete", status="False"),), False, JobState.ACTIVE),
    ],
)
def test_job_state(conditions, suspend, state):
    assert observe.job_state(job(conditions=conditions, suspend=suspend))[0] == state


def test_children_pairs_pods_with_jobs_and_keeps_only_owned_ones():
    pods = [{
        "metadata": {"name": "r-0-hybrid-abc", "labels": {"batch.kubernetes.io/job-name": "r-0-hybrid"}},
        "status": {"phase": "Failed", "containerStatuses": [
            {"name": "trainer", "state": {"terminated": {"exitCode": 2, "reason": "Error", "message": "boom"}}},
        ]},
    }, {"metadata": {"name": "loose"}, "status": {}}]
    jobs = [
        job("r-0-hybrid-r1", attempt=1),
        job(conditions=[cond("Failed", "BackoffLimitExceeded")]),
        job("foreign", owner="other"),
        {"metadata": {"name": "unlabelled", "ownerReferences": [{"uid": "u", "controller": True}]}},
    ]
    seen = observe.children(jobs, pods, "u")
    assert [j.name for j in seen] == ["r-0-hybrid", "r-0-hybrid-r1"]
    first = seen[0]
    assert first.state == JobState.FAILED and first.reason == "BackoffLimitExceeded"
    assert first.completion_time.isoformat() == "2026-01-01T00:01:00+00:00"
    assert first.pods[0].exit_code == 2 and first.pods[0].message == "boom"
    assert seen[1].pods == ()
