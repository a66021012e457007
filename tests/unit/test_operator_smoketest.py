"""The `helm test` smoke test's pure parts: the run it creates and how it reads the outcome."""

from __future__ import annotations

import pytest

from ouroboros.operator import smoketest
from ouroboros.operator.resources import TrainingRun

pytestmark = pytest.mark.unit


def test_the_tiny_run_is_a_valid_cpu_training_run_with_every_phase():
    manifest = smoketest.tiny_run("helm-test-abc")
    run = TrainingRun.model_validate({**manifest, "metadata": {
        **manifest["metadata"], "namespace": "ns", "uid": "u", "generation": 1}})
    assert [p.name.value for p in run.spec.phases] == ["bootstrap", "hybrid", "self_play", "distill", "continuous",
                                                       "evaluate"]
    assert run.spec.resources.gpu == 0 and run.spec.backoff_limit == 0
    assert run.spec.active_deadline_seconds == 600


@pytest.mark.parametrize(("conditions", "expected"), [
    (None, smoketest.Verdict.PENDING),
    ([], smoketest.Verdict.PENDING),
    ([{"type": "Running", "status": "True"}, {"type": "Succeeded", "status": "False"}], smoketest.Verdict.PENDING),
    ([{"type": "Succeeded", "status": "True"}], smoketest.Verdict.SUCCEEDED),
    ([{"type": "Failed", "status": "True", "message": "phase bootstrap failed"}], smoketest.Verdict.FAILED),
])
def test_verdict_reads_the_conditions(conditions, expected):
    run = {"status": {"conditions": conditions}} if conditions is not None else {}
    assert smoketest.verdict(run) is expected


def test_describe_says_when_nothing_reconciled_the_run():
    assert "is the operator running" in smoketest.describe({})
    text = smoketest.describe({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "PhaseFailed",
                                                          "message": "boom"}],
                                          "phases": [{"name": "bootstrap", "state": "Failed", "message": "boom"}]}})
    assert "Failed=True PhaseFailed: boom" in text and "phase bootstrap: Failed boom" in text
