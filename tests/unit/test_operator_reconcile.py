"""The handler shell around the lifecycle, against an in-memory API (conflicts, ownership, events)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from ouroboros.operator.context import Context
from ouroboros.operator.handlers import trainingrun
from ouroboros.operator.kube import ApiError
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit


class FakeKube:
    """Just enough of KubeClient: one run, its Jobs and ConfigMaps, posted events."""

    def __init__(self, run):
        self.run = run
        self.objects: dict[tuple[str, str], dict] = {}
        self.events: list[tuple[str, str]] = []
        self.conflicts = 0
        self.status_writes = 0

    def get_run(self, namespace, name):
        return copy.deepcopy(self.run) if self.run else None

    def list_runs(self, namespace=None):
        return [copy.deepcopy(self.run)] if self.run else []

    def get_champion(self, namespace, name):  # every run's Champion exists and plays its game
        game = (self.run or {}).get("spec", {}).get("game", {})
        return {"metadata": {"name": name, "namespace": namespace, "uid": "c-1"}, "spec": {"game": game}}

    def replace_run_status(self, run, status):
        if self.conflicts:
            self.conflicts -= 1
            raise ApiError(409, '{"reason": "Conflict"}')
        self.status_writes += 1
        self.run["status"] = status

    def delete_run(self, namespace, name, uid):
        self.run = None

    def list_jobs(self, namespace, selector):
        return [o for (kind, _), o in self.objects.items() if kind == "Job"]

    def list_pods(self, namespace, selector):
        return []

    def create(self, manifest):
        key = (manifest["kind"], manifest["metadata"]["name"])
        if key in self.objects:
            return self.objects[key], False
        self.objects[key] = copy.deepcopy(manifest)
        return manifest, True

    def set_job_suspended(self, namespace, name, suspend):
        self.objects[("Job", name)]["spec"]["suspend"] = suspend

    def post_event(self, run, type_, reason, message, now):
        self.events.append((type_, reason))


def make(run_spec=None):
    run = {
        "apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingRun",
        "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 1, "resourceVersion": "1"},
        "spec": run_spec or {"champion": "c", "phases": [{"name": "hybrid"}]},
    }
    kube = FakeKube(run)
    ctx = Context(settings=OperatorSettings(), kube=kube, metrics=Metrics(),
                  clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    return kube, ctx


def test_reconcile_creates_config_and_job_then_writes_status_and_events():
    kube, ctx = make()
    assert trainingrun.reconcile(ctx, "ns", "r") is None
    assert set(kube.objects) == {("ConfigMap", "r-config"), ("Job", "r-0-hybrid")}
    assert kube.run["status"]["phase"] == "Running" and kube.events == [("Normal", "PhaseStarted")]
    trainingrun.reconcile(ctx, "ns", "r")
    assert kube.status_writes == 1 and len(kube.events) == 1  # nothing new: no write, no event
    assert 'action="create_job"' in ctx.metrics.render()


def test_a_conflicting_status_write_is_retried_with_a_fresh_read():
    kube, ctx = make()
    kube.conflicts = 2
    trainingrun.reconcile(ctx, "ns", "r")
    assert kube.status_writes == 1 and kube.events == [("Normal", "PhaseStarted")]


def test_a_child_name_taken_by_a_stranger_is_an_error():
    kube, ctx = make()
    kube.objects[("Job", "r-0-hybrid")] = {"metadata": {"name": "r-0-hybrid", "ownerReferences": []}}
    with pytest.raises(trainingrun.OwnershipError):
        trainingrun.reconcile(ctx, "ns", "r")
    assert 'ouroboros_operator_reconcile_errors_total{controller="trainingrun"} 1.0' in ctx.metrics.render()


def test_a_spec_the_models_refuse_fails_the_run():
    kube, ctx = make({"champion": "c", "phases": [{"name": "hybrid"}, {"name": "hybrid"}]})
    trainingrun.reconcile(ctx, "ns", "r")
    assert kube.run["status"]["phase"] == "Failed" and kube.objects == {}
    assert kube.events == [("Warning", "InvalidSpec")]


def test_a_missing_run_is_forgotten():
    kube, ctx = make()
    kube.run = None
    assert trainingrun.reconcile(ctx, "ns", "r") is None


def test_resync_visits_every_run():
    kube, ctx = make()
    assert trainingrun.resync(ctx) == 1 and ("Job", "r-0-hybrid") in kube.objects


def test_resync_skips_settled_runs():
    kube, ctx = make()
    trainingrun.reconcile(ctx, "ns", "r")
    kube.run["status"]["phase"] = "Succeeded"
    assert trainingrun.resync(ctx) == 0
    kube.run["spec"]["ttlSecondsAfterFinished"] = 5
    assert trainingrun.resync(ctx) == 1
