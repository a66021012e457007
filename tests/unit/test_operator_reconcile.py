"""The handler shell around the lifecycle, against an in-memory API (conflicts, ownership, events)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from ouroboros.operator import context
from ouroboros.operator.context import Context
from ouroboros.operator.handlers import trainingrun
from ouroboros.operator.kube import ApiError
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit


class FakeKube:
    """Just enough of KubeClient: one run, its Jobs and ConfigMaps, posted events."""

    events_about: list = []  # core/v1 Events the Job controller posted (FailedCreate ...)

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

    pvcs = {"ouroboros-artifacts"}  # PersistentVolumeClaims in the namespace

    def get_pvc(self, namespace, name):
        return {"metadata": {"name": name}} if name in self.pvcs else None

    def list_events(self, namespace, kind, name):
        return [e for e in self.events_about if e["involvedObject"]["name"] == name]

    def create(self, manifest):
        key = (manifest["kind"], manifest["metadata"]["name"])
        if key in self.objects:
            return self.objects[key], False
        self.objects[key] = copy.deepcopy(manifest)
        return manifest, True

    def set_job_suspended(self, namespace, name, suspend):
        self.objects[("Job", name)]["spec"]["suspend"] = suspend

    workloads: list = []  # Kueue Workloads in the namespace

    def list_workloads(self, namespace, job_uids):
        return [w for w in self.workloads if w["metadata"]["labels"]["kueue.x-k8s.io/job-uid"] in job_uids]

    def set_workload_active(self, namespace, name, active, annotation):
        for w in self.workloads:
            if w["metadata"]["name"] == name:
                w["spec"]["active"] = active
                w["metadata"].setdefault("annotations", {})[annotation] = "true"

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
    # a running phase asks for another look soon, to refresh its progress
    assert trainingrun.reconcile(ctx, "ns", "r") == ctx.settings.progress_seconds
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


def test_a_status_write_that_keeps_conflicting_gives_up_after_the_retries_and_counts_them(caplog):
    kube, ctx = make()
    kube.conflicts = context.MAX_CONFLICT_RETRIES  # every attempt loses
    assert trainingrun.reconcile(ctx, "ns", "r") is None
    assert kube.status_writes == 0 and kube.events == []
    assert "TrainingRun ns/r kept changing during 5 attempts" in caplog.text
    retries = context.MAX_CONFLICT_RETRIES - 1
    assert f'workqueue_retries_total{{controller="trainingrun",name="trainingrun"}} {retries}.0' in ctx.metrics.render()
    trainingrun.reconcile(ctx, "ns", "r")  # the next event reads it again and writes
    assert kube.status_writes == 1


def test_only_a_write_conflict_is_retried():
    _, ctx = make()
    calls = []

    def attempt(error):
        def run():
            calls.append(error.reason)
            raise error
        return run

    for error in (ApiError(409, '{"reason": "AlreadyExists"}'), ApiError(422, '{"reason": "Invalid"}')):
        with pytest.raises(ApiError):
            context.retry_on_conflict(ctx, "trainingrun", "TrainingRun ns/r", attempt(error))
    assert calls == ["AlreadyExists", "Invalid"]  # one attempt each


def test_a_background_reconcile_logs_its_error_and_schedules_the_wake_up_it_asks_for(caplog):
    _, ctx = make()
    scheduled = []
    ctx.timers.schedule = lambda key, delay, fn: scheduled.append((key, delay))

    def failing(ctx, namespace, name):
        raise RuntimeError("boom")

    context.reconcile_logged(ctx, "TrainingRun", failing, "ns", "r", key=("ns", "r"))
    assert "reconciling TrainingRun ns/r failed" in caplog.text and "boom" in caplog.text and not scheduled
    context.reconcile_logged(ctx, "TrainingRun", lambda ctx, namespace, name: 7.5, "ns", "r", key=("ns", "r"))
    context.reconcile_logged(ctx, "Champion", lambda ctx, namespace, name: 7.5, "ns", "c")  # no key: no timer
    assert scheduled == [(("ns", "r"), 7.5)]


def test_a_child_name_taken_by_a_stranger_is_an_error():
    kube, ctx = make()
    kube.objects[("Job", "r-0-hybrid")] = {"metadata": {"name": "r-0-hybrid", "ownerReferences": []}}
    with pytest.raises(trainingrun.OwnershipError):
        trainingrun.reconcile(ctx, "ns", "r")
    assert 'controller_runtime_reconcile_errors_total{controller="trainingrun"} 1.0' in ctx.metrics.render()


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


def test_a_job_whose_pods_cannot_be_created_says_why_in_the_run():
    """PodSecurity admission refusing the pods is a Warning Event on the Job and nothing else:
    the run's Running condition and a Warning Event on the run carry it to `kubectl describe`."""
    kube, ctx = make()
    trainingrun.reconcile(ctx, "ns", "r")
    kube.events_about = [{
        "type": "Warning", "reason": "FailedCreate", "lastTimestamp": "2026-11-30T06:00:00Z",
        "involvedObject": {"kind": "Job", "name": "r-0-hybrid"},
        "message": 'Error creating: pods "r-0-hybrid-x" is forbidden: violates PodSecurity "restricted:latest"'}]
    trainingrun.reconcile(ctx, "ns", "r")
    running = next(c for c in kube.run["status"]["conditions"] if c["type"] == "Running")
    assert running["reason"] == "PodsNotCreated" and "violates PodSecurity" in running["message"]
    assert kube.events[-1] == ("Warning", "PodsNotCreated")
    trainingrun.reconcile(ctx, "ns", "r")
    assert kube.events.count(("Warning", "PodsNotCreated")) == 1  # once per transition, not per pass


def test_a_missing_storage_claim_holds_the_run_and_says_which():
    kube, ctx = make()
    kube.pvcs = set()  # the namespace lacks the default claim
    assert trainingrun.reconcile(ctx, "ns", "r") == 30.0
    assert ("Job", "r-0-hybrid") not in kube.objects
    running = next(c for c in kube.run["status"]["conditions"] if c["type"] == "Running")
    assert running["reason"] == "StorageUnavailable" and "'ouroboros-artifacts' does not exist" in running["message"]
    assert kube.events == [("Warning", "StorageUnavailable")]
    kube.pvcs = {"ouroboros-artifacts"}
    trainingrun.reconcile(ctx, "ns", "r")
    assert ("Job", "r-0-hybrid") in kube.objects


def test_a_running_phase_progress_record_in_the_store_reaches_the_status_and_metrics(tmp_path):
    kube, ctx = make({"champion": "c", "phases": [{"name": "hybrid"}], "storage": {"url": f"file://{tmp_path}", "mountPath": str(tmp_path)}})
    trainingrun.reconcile(ctx, "ns", "r")  # creates the Job: the phase is running, no record yet
    assert "progress" not in kube.run["status"]
    job = kube.objects[("Job", "r-0-hybrid")]
    job["status"] = {"startTime": "2026-01-01T00:00:00Z", "active": 1}
    folder = tmp_path / "runs" / "ns.r-u1" / "progress"
    folder.mkdir(parents=True)
    (folder / "hybrid-w0.json").write_text(
        '{"run": "ns.r-u1", "phase": "hybrid", "startedAt": "2026-01-01T00:00:00Z", "updatedAt": '
        '"2026-01-01T00:00:00Z", "step": "hybrid 1/4: games", "fraction": 0.4, "etaSeconds": 90, "games": 51}')
    (folder / "hybrid-w1.json").write_text("{not json")  # skipped, never fatal
    (tmp_path / "runs" / "ns.r-u1" / "progress" / "hybrid-w2.json").write_text(  # an earlier run of the same name
        '{"run": "ns.r-u1", "phase": "hybrid", "worker": 2, "startedAt": "2025-06-01T00:00:00Z", "updatedAt": '
        '"2025-06-01T01:00:00Z", "games": 1000, "done": true}')
    trainingrun.reconcile(ctx, "ns", "r")
    progress = kube.run["status"]["progress"]
    assert progress["workers"] == 1  # the stale record is left out
    assert progress["percent"] == 40 and progress["etaSeconds"] == 90 and progress["games"] == 51
    assert 'ouroboros_trainingrun_progress_ratio{name="r",namespace="ns",training_phase="hybrid"} 0.4' in (
        ctx.metrics.render())


def test_a_queued_run_reads_its_workload_and_suspends_through_it():
    kube, ctx = make()
    kube.run["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "team-a"}
    trainingrun.reconcile(ctx, "ns", "r")
    job = kube.objects[("Job", "r-0-hybrid")]
    assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert kube.run["status"]["phase"] == "Queued"
    job["metadata"]["uid"] = "job-uid-1"
    kube.workloads = [{"metadata": {"name": "job-r-0-hybrid-abc", "labels": {"kueue.x-k8s.io/job-uid": "job-uid-1"}},
                       "spec": {"active": True},
                       "status": {"conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending",
                                                  "message": "insufficient unused quota for cpu in flavor default"}]}}]
    trainingrun.reconcile(ctx, "ns", "r")
    running = next(c for c in kube.run["status"]["conditions"] if c["type"] == "Running")
    assert running["reason"] == "Queued" and "insufficient unused quota" in running["message"]
    kube.run["spec"]["suspend"] = True
    kube.run["metadata"]["generation"] = 2
    trainingrun.reconcile(ctx, "ns", "r")
    assert kube.workloads[0]["spec"]["active"] is False and job["spec"]["suspend"] is True
    assert kube.run["status"]["phase"] == "Suspended"
    assert 'action="deactivate_workload"' in ctx.metrics.render()


def test_the_runs_replay_buffer_reaches_the_progress_and_metrics_and_each_sidecar_is_read_once(tmp_path, monkeypatch):
    """The trainer's real ReplayWriter writes the shards; the operator's figures match the shards' metadata."""
    import numpy as np

    from ouroboros.operator import replay
    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning import shards

    kube, ctx = make({"champion": "c", "phases": [{"name": "hybrid"}],
                      "storage": {"url": f"file://{tmp_path}", "mountPath": str(tmp_path)}})
    trainingrun.reconcile(ctx, "ns", "r")
    kube.objects[("Job", "r-0-hybrid")]["status"] = {"startTime": "2026-01-01T00:00:00Z", "active": 1}
    folder = tmp_path / "runs" / "ns.r-u1" / "progress"
    folder.mkdir(parents=True)
    (folder / "hybrid-w0.json").write_text(
        '{"run": "ns.r-u1", "phase": "hybrid", "startedAt": "2026-01-01T00:00:00Z", "updatedAt": '
        '"2026-01-01T00:00:00Z", "fraction": 0.5}')
    store = ArtifactStore(str(tmp_path))
    clock = iter([1767225600.0, 1767225660.0, 1767225720.0])  # 00:00, 00:01 and 00:02 on 2026-01-01
    writer = shards.ReplayWriter(store, "ns.r-u1", "hybrid", shard_rows=6, clock=lambda: next(clock))

    def game(first: int, games: int) -> None:
        n = games * 3
        writer.add("self", {"game_id": np.repeat(np.arange(first, first + games), 3), "turn": np.arange(n),
                            "seat": np.zeros(n), "value": np.zeros(n), "quality": np.ones(n)})

    game(0, 2)  # one shard of 6 positions, 2 games
    game(2, 3)  # another of 9 positions, 3 games
    trainingrun.reconcile(ctx, "ns", "r")
    usage = kube.run["status"]["progress"]["replay"]
    sizes = sum(r.info.size for r in shards.list_shards(store, "ns.r-u1"))
    assert usage == {"shards": 2, "positions": 15, "games": 5, "bytes": sizes,
                     "oldestPositionAt": "2026-01-01T00:00:00Z", "newestPositionAt": "2026-01-01T00:01:00Z"}
    text = ctx.metrics.render()
    assert 'ouroboros_trainingrun_replay_positions{name="r",namespace="ns"} 15.0' in text
    assert 'ouroboros_trainingrun_replay_newest_position_timestamp_seconds{name="r",namespace="ns"} 1.76722566e+09' in text
    # the next refresh reads only the new shard's sidecar
    read = []
    real = replay._shard
    monkeypatch.setattr(replay, "_shard", lambda doc: read.append(doc) or real(doc))
    game(5, 2)
    trainingrun.reconcile(ctx, "ns", "r")
    assert len(read) == 1 and kube.run["status"]["progress"]["replay"]["positions"] == 21
