"""The TrainingRun state machine, driven with hand-made observations (no cluster)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ouroboros.operator import attempts, conditions, lifecycle
from ouroboros.operator.observe import JobState, ObservedJob, ObservedPod
from ouroboros.operator.resources import Champion, PhaseName, PhaseState, RunPhase, TrainingRun
from ouroboros.operator.settings import JobSettings

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SETTINGS = JobSettings()


def result(phase, **extra):
    return json.dumps({"phase": phase, "metrics": extra.pop("metrics", {}), "artifacts": [], **extra})


class World:
    """A run, the Jobs that exist, and a clock; `step()` decides and applies like the handlers do."""

    def __init__(self, phases=("bootstrap", "hybrid", "evaluate"), **spec):
        body = {
            "metadata": {"name": "r", "namespace": "ns", "uid": "u-1", "generation": 1},
            "spec": {"champion": "c", "phases": [{"name": p} for p in phases], **spec},
        }
        self.body = body
        self.status = None
        self.jobs: dict[str, ObservedJob] = {}
        self.now = T0
        self.events: list[lifecycle.Event] = []
        self.actions: list = []
        self.champion: Champion | None = Champion.model_validate(
            {"metadata": {"name": "c", "namespace": "ns"}, "spec": {"game": spec.get("game", {})}})

    def run(self):
        body = dict(self.body)
        if self.status is not None:
            body["status"] = self.status.to_api()
        return TrainingRun.model_validate(body)

    def step(self, record=True):
        self.now += timedelta(seconds=1)
        decision = lifecycle.decide(self.run(), sorted(self.jobs.values(), key=lambda j: (j.index, j.attempt)),
                                    self.now, SETTINGS, champion=self.champion)
        for action in decision.actions:
            if isinstance(action, lifecycle.CreateObject) and action.manifest["kind"] == "Job":
                meta = action.manifest["metadata"]
                labels = meta["labels"]
                if meta["name"] not in self.jobs:
                    self.jobs[meta["name"]] = ObservedJob(
                        name=meta["name"], index=int(labels["ouroboros.dev/phase-index"]),
                        attempt=int(labels["ouroboros.dev/attempt"]), state=JobState.ACTIVE, start_time=self.now,
                    )
            elif isinstance(action, lifecycle.SetJobSuspended):
                job = self.jobs[action.name]
                self.jobs[action.name] = _replace(job, state=JobState.SUSPENDED if action.suspend else JobState.ACTIVE)
        self.actions = decision.actions
        if record:
            self.status = decision.status
            self.events += decision.events
        return decision

    def finish(self, name, ok=True, message=None, exit_code=None, reason=None):
        job = self.jobs[name]
        phase = self.run().spec.phases[job.index].name.value
        if message is None and ok:
            message = result(phase)
        pod = ObservedPod(name=f"{name}-x", job=name, phase="Succeeded" if ok else "Failed",
                          exit_code=exit_code if exit_code is not None else (0 if ok else 1),
                          reason="Completed" if ok else "Error", message=message)
        self.jobs[name] = _replace(job, state=JobState.SUCCEEDED if ok else JobState.FAILED, pods=(pod,),
                                   completion_time=self.now, reason=reason)

    def running_job(self):
        active = [j for j in self.jobs.values() if j.state in (JobState.ACTIVE, JobState.SUSPENDED)]
        assert len(active) == 1, active
        return active[0].name

    def condition(self, type_):
        return conditions.get(self.status.conditions, type_)

    def reasons(self):
        return [e.reason for e in self.events]


def _replace(job, **changes):
    import dataclasses

    return dataclasses.replace(job, **changes)


def test_first_reconcile_sets_every_condition_and_starts_phase_one():
    w = World()
    d = w.step()
    kinds = [a.manifest["kind"] for a in d.actions]
    assert kinds == ["ConfigMap", "Job"]
    assert d.actions[1].manifest["metadata"]["name"] == "r-0-bootstrap"
    st = d.status
    assert st.phase == RunPhase.RUNNING and st.current_phase.value == "bootstrap" and st.observed_generation == 1
    got = {c.type: (c.status.value, c.reason) for c in st.conditions}
    assert got == {
        "Running": ("True", "PhaseRunning"),
        "Suspended": ("False", "NotSuspended"),
        "Succeeded": ("Unknown", "InProgress"),
        "Failed": ("False", "NoFailure"),
    }
    assert all(c.observed_generation == 1 and c.last_transition_time == w.now for c in st.conditions)
    assert w.reasons() == ["PhaseStarted"]


def test_a_run_goes_through_every_phase_and_succeeds():
    w = World()
    w.step()
    for expected in ("r-0-bootstrap", "r-1-hybrid", "r-2-evaluate"):
        assert w.running_job() == expected
        w.finish(expected, message=None)
        w.step()
    st = w.status
    assert st.phase == RunPhase.SUCCEEDED and st.completion_time == w.now
    assert [p.state for p in st.phases] == [PhaseState.SUCCEEDED] * 3
    assert all(p.placeholder is False and p.attempts == 1 for p in st.phases)
    assert w.condition("Succeeded").status.value == "True"
    assert w.condition("Running").reason == "RunSucceeded"
    assert w.reasons() == ["PhaseStarted", "PhaseSucceeded", "PhaseStarted", "PhaseSucceeded",
                           "PhaseStarted", "PhaseSucceeded", "Succeeded"]
    assert w.step().actions == [] and w.events[-1].reason == "Succeeded"  # finished: nothing more


def test_results_are_recorded_with_metrics_artifacts_and_candidate():
    w = World(phases=("hybrid", "evaluate"))
    w.step()
    sha = "a" * 64
    w.finish("r-0-hybrid", message=result(
        "hybrid", metrics={"winRate": 0.62, "loss": 1.5},
        artifacts=[{"name": "onnx", "uri": "file:///a/model.onnx", "sha256": sha, "size": 10}],
        candidate={"artifact": {"name": "onnx", "uri": "file:///a/model.onnx", "sha256": sha}},
        placeholder=True,
    ))
    w.step()
    ps = w.status.phases[0]
    assert ps.metrics == {"winRate": 0.62, "loss": 1.5} and ps.artifacts[0].sha256 == sha and ps.placeholder
    assert w.status.best_win_rate == 0.62 and w.status.candidate.artifact.uri == "file:///a/model.onnx"
    assert "placeholder" in w.events[1].message and "winRate=0.62" in w.events[1].message


def test_failure_retries_within_backoff_limit_then_fails():
    w = World(phases=("hybrid",), backoffLimit=2)
    w.step()
    w.finish("r-0-hybrid", ok=False, message="Traceback: boom", exit_code=3)
    w.step()
    assert w.running_job() == "r-0-hybrid-r1" and w.status.phases[0].attempts == 2
    assert w.events[-1].reason == "PhaseRetrying" and "exit code 3" in w.events[-1].message
    w.finish("r-0-hybrid-r1", ok=False, message=json.dumps({"phase": "hybrid", "message": "bad config"}))
    w.step()
    assert w.running_job() == "r-0-hybrid-r2"
    assert w.status.phases[0].message.endswith("bad config")
    w.finish("r-0-hybrid-r2", ok=False, reason="DeadlineExceeded", message="")
    w.step()
    st = w.status
    assert st.phase == RunPhase.FAILED and st.phases[0].state == PhaseState.FAILED
    failed = w.condition("Failed")
    assert failed.status.value == "True" and failed.reason == "BackoffLimitExceeded"
    assert "DeadlineExceeded" in failed.message and "3 attempt" in failed.message
    assert w.condition("Succeeded").status.value == "False"
    assert w.reasons()[-2:] == ["PhaseFailed", "Failed"]
    assert w.step().actions == []


def test_backoff_limit_zero_fails_at_once_with_the_phase_reason():
    w = World(phases=("hybrid",), backoffLimit=0)
    w.step()
    w.finish("r-0-hybrid", ok=False, message="oops")
    w.step()
    assert w.status.phase == RunPhase.FAILED and w.condition("Failed").reason == "PhaseError"


def test_success_without_a_valid_result_counts_as_a_failed_attempt():
    w = World(phases=("hybrid",), backoffLimit=1)
    w.step()
    w.finish("r-0-hybrid", ok=True, message="not json")
    w.step()
    assert w.running_job() == "r-0-hybrid-r1" and w.status.phases[0].reason == "InvalidResult"
    w.finish("r-0-hybrid-r1", ok=True, message=result("evaluate"))  # wrong phase
    w.step()
    assert w.status.phase == RunPhase.FAILED and "reported phase evaluate" in w.condition("Failed").message


def test_suspend_holds_the_running_job_and_resume_continues():
    w = World(phases=("bootstrap", "hybrid"))
    w.step()
    w.body["spec"]["suspend"] = True
    w.body["metadata"]["generation"] = 2
    d = w.step()
    assert d.actions == [lifecycle.SetJobSuspended("r-0-bootstrap", True)]
    assert w.status.phase == RunPhase.SUSPENDED and w.status.phases[0].state == PhaseState.SUSPENDED
    assert w.condition("Suspended").status.value == "True" and w.condition("Running").status.value == "False"
    assert w.condition("Suspended").observed_generation == 2
    assert w.step().actions == []  # already suspended: nothing to do
    w.body["spec"]["suspend"] = False
    d = w.step()
    assert d.actions == [lifecycle.SetJobSuspended("r-0-bootstrap", False)]
    assert w.status.phase == RunPhase.RUNNING
    assert "Suspended" in w.reasons() and w.reasons()[-1] == "Resumed"
    w.finish("r-0-bootstrap")
    w.step()
    assert w.running_job() == "r-1-hybrid"


def test_suspended_run_starts_no_job_and_none_after_a_finished_phase():
    w = World(phases=("bootstrap", "hybrid"), suspend=True)
    d = w.step()
    assert d.actions == [] and w.status.phase == RunPhase.SUSPENDED
    assert {c.type for c in w.status.conditions} == {"Running", "Suspended", "Succeeded", "Failed"}
    w.body["spec"]["suspend"] = False
    w.step()
    w.body["spec"]["suspend"] = True
    w.finish("r-0-bootstrap")
    d = w.step()
    assert d.actions == [] and w.status.phases[0].state == PhaseState.SUCCEEDED
    assert w.status.phases[1].state == PhaseState.PENDING and w.status.phase == RunPhase.SUSPENDED


def test_restart_after_creating_a_job_but_before_writing_status():
    w = World()
    w.step(record=False)  # the Job was created, then the operator died before the status write
    assert w.status is None and "r-0-bootstrap" in w.jobs
    d = w.step()
    assert all(a.manifest["kind"] != "Job" or a.manifest["metadata"]["name"] == "r-0-bootstrap"
               for a in d.actions if isinstance(a, lifecycle.CreateObject))
    assert w.status.phases[0].state == PhaseState.RUNNING and w.status.phases[0].attempts == 1
    assert w.reasons() == ["PhaseStarted"]  # reported once, from the status change


def test_restart_after_a_phase_finished_unrecorded_keeps_its_result():
    w = World()
    w.step()
    w.finish("r-0-bootstrap", message=result("bootstrap", metrics={"games": 8}))
    w.step(record=False)  # decided (and created the next Job) but the status write was lost
    assert "r-1-hybrid" in w.jobs
    w.step()
    assert w.status.phases[0].metrics == {"games": 8} and w.status.phases[1].state == PhaseState.RUNNING
    assert w.reasons() == ["PhaseStarted", "PhaseSucceeded", "PhaseStarted"]


def test_restart_during_retries_counts_attempts_from_jobs():
    w = World(phases=("hybrid",), backoffLimit=1)
    w.step()
    w.finish("r-0-hybrid", ok=False, message="boom")
    w.step(record=False)  # retry Job created, status lost
    w.finish("r-0-hybrid-r1", ok=False, message="boom again")
    w.step()
    assert w.status.phase == RunPhase.FAILED and w.status.phases[0].attempts == 2
    assert [j for j in w.jobs] == ["r-0-hybrid", "r-0-hybrid-r1"]  # no third Job


def test_deciding_twice_is_idempotent():
    w = World()
    w.step()
    again = w.step()
    creates = [a for a in again.actions if isinstance(a, lifecycle.CreateObject)]
    assert creates == [] and again.events == []
    assert again.status.to_api() == w.status.to_api()


def test_a_deleted_job_counts_as_a_failed_attempt():
    w = World(phases=("hybrid",), backoffLimit=1)
    w.step()
    del w.jobs["r-0-hybrid"]
    w.step()
    assert w.running_job() == "r-0-hybrid-r1" and w.status.phases[0].reason == "JobDeleted"


def test_jobs_of_other_names_are_ignored():
    w = World(phases=("hybrid",))
    w.jobs["stray"] = ObservedJob(name="stray", index=0, attempt=0, state=JobState.SUCCEEDED)
    d = w.step()
    assert [a.manifest["metadata"]["name"] for a in d.actions] == ["r-config", "r-0-hybrid"]


def test_ttl_deletes_a_finished_run_when_due():
    w = World(phases=("hybrid",), ttlSecondsAfterFinished=60)
    w.step()
    w.finish("r-0-hybrid")
    d = w.step()
    assert w.status.phase == RunPhase.SUCCEEDED and d.requeue_after == 60
    w.now += timedelta(seconds=30)
    assert w.step().requeue_after == pytest.approx(29)
    w.now += timedelta(seconds=40)
    assert lifecycle.DeleteRun() in w.step().actions


def test_indexed_job_results_are_merged():
    job = ObservedJob(name="j", index=0, attempt=0, state=JobState.SUCCEEDED, pods=tuple(
        ObservedPod(name=f"p{i}", job="j", phase="Succeeded", message=result("self_play", metrics={"games": g}))
        for i, g in enumerate((10, 20))
    ))
    merged = attempts.parse_result(job, PhaseName.SELF_PLAY)
    assert merged.metrics == {"games": 15}


def test_invalid_spec_fails_the_run_once():
    st = lifecycle.TrainingRunStatus()
    d = lifecycle.decide_invalid(st, 4, "spec.phases: boom", T0)
    assert d.status.phase == RunPhase.FAILED and d.events[0].reason == "InvalidSpec"
    failed = conditions.get(d.status.conditions, "Failed")
    assert failed.reason == "InvalidSpec" and failed.observed_generation == 4
    again = lifecycle.decide_invalid(d.status, 4, "spec.phases: boom", T0)
    assert again.events == [] and again.status == d.status


def test_condition_transition_time_moves_only_when_status_flips():
    w = World(phases=("hybrid",))
    w.step()
    first = w.condition("Suspended").last_transition_time
    w.step()
    assert w.condition("Suspended").last_transition_time == first
    w.body["spec"]["suspend"] = True
    w.step()
    assert w.condition("Suspended").last_transition_time == w.now


def test_a_run_naming_a_missing_champion_waits_without_jobs_then_starts():
    w = World(phases=("hybrid",))
    w.champion = None
    d = w.step()
    assert d.actions == [] and w.status.phase == RunPhase.PENDING
    running = w.condition("Running")
    assert running.reason == "ChampionNotFound" and running.message.startswith("spec.champion: ")
    assert [e.reason for e in d.events] == ["ChampionNotFound"]
    assert w.step().events == []  # reported once
    w.champion = Champion.model_validate({"metadata": {"name": "c"}})
    d = w.step()
    assert w.status.phase == RunPhase.RUNNING and "r-0-hybrid" in w.jobs


def test_a_run_against_a_champion_of_another_game_fails_before_any_job():
    w = World(phases=("hybrid",), game={"width": 7, "height": 7})
    w.champion = Champion.model_validate({"metadata": {"name": "c"}, "spec": {"game": {"width": 11, "height": 11}}})
    d = w.step()
    assert d.actions == [] and w.status.phase == RunPhase.FAILED and not w.jobs
    failed = w.condition("Failed")
    assert failed.status.value == "True" and failed.reason == "ChampionGameMismatch"
    assert "spec.champion" in failed.message and "standard-11x11-2p" in failed.message
    assert "standard-7x7-2p" in failed.message
    assert [e.reason for e in d.events] == ["ChampionGameMismatch"]


def test_a_champion_that_disappears_mid_run_does_not_stop_it():
    w = World(phases=("bootstrap", "hybrid"))
    w.step()
    w.champion = None
    w.finish("r-0-bootstrap")
    w.step()
    assert w.status.phase == RunPhase.RUNNING and "r-1-hybrid" in w.jobs


def test_the_champions_approval_policy_goes_into_the_run_config():
    w = World(phases=("hybrid",))
    w.champion = Champion.model_validate({"metadata": {"name": "c"}, "spec": {"policy": {"approval": "Manual"}}})
    d = w.step()
    config_map = next(a.manifest for a in d.actions if a.manifest["kind"] == "ConfigMap")
    assert json.loads(config_map["data"]["run.json"])["approval"] == "Manual"


CHAMPION_GATE = {"method": "winRate", "games": 20, "minGames": 20, "minWinRate": 0.6, "player": "nsearch", "moveBudgetMs": 50,
                 "baselines": [{"player": "heuristic", "games": 10}]}


@pytest.mark.parametrize(("own", "source", "games"), [
    (None, "Champion", 20),  # spec.promotion unset: the Champion's spec.policy.gate, whole
    ({"games": 8, "minGames": 4}, "TrainingRun", 8),  # the run's own gate wins, defaults and all
])
def test_a_run_without_its_own_gate_takes_its_champions_gate(own, source, games):
    w = World(phases=("hybrid", "evaluate"), **({"promotion": own} if own else {}))
    w.champion = Champion.model_validate({"metadata": {"name": "c"}, "spec": {"policy": {"gate": CHAMPION_GATE}}})
    d = w.step()
    config = json.loads(next(a.manifest for a in d.actions if a.manifest["kind"] == "ConfigMap")["data"]["run.json"])
    assert config["promotionSource"] == source and config["promotion"]["games"] == games
    if own is None:
        assert config["promotion"]["player"] == "nsearch" and config["promotion"]["baselines"][0]["games"] == 10
    else:
        assert config["promotion"]["player"] == "policy" and config["promotion"]["baselines"] == []


def test_the_gate_applied_is_the_champions_when_the_run_started():
    """The ConfigMap is immutable and created with the first Job: a later edit of the Champion's gate
    does not change a running run's gate (what the evaluate phase reads is what the run started with)."""
    w = World(phases=("hybrid", "evaluate"))
    w.champion = Champion.model_validate({"metadata": {"name": "c"}, "spec": {"policy": {"gate": CHAMPION_GATE}}})
    first = w.step()
    w.champion = Champion.model_validate({"metadata": {"name": "c"}, "spec": {"policy": {"gate": {"games": 4, "minGames": 2}}}})
    w.finish("r-0-hybrid")
    later = w.step()
    created = [a.manifest for d in (first, later) for a in d.actions if a.manifest["kind"] == "ConfigMap"]
    assert len({m["metadata"]["name"] for m in created}) == 1  # one name: creating it again is a no-op
    assert json.loads(created[0]["data"]["run.json"])["promotion"]["games"] == 20


def test_the_promotion_status_says_whose_gate_decided():
    w = World(phases=("hybrid", "evaluate"))
    w.step()
    w.finish("r-0-hybrid")
    w.step()
    gate = {"verdict": "reject", "games": 20, "gateSource": "Champion", "player": "nsearch",
            "baselines": [{"player": "heuristic", "games": 10, "winRate": 0.1, "championWinRate": 0.6,
                           "difference": -0.5, "differenceUpper": -0.3, "passed": False}],
            "gameLogs": ["file:///s/runs/r/evaluate/games/champion/", "file:///s/runs/r/evaluate/games/heuristic/"],
            "reasons": ["regressed against baseline heuristic"]}
    w.finish("r-1-evaluate", message=result("evaluate", gate=gate))
    w.step()
    promotion = w.status.promotion
    assert promotion.decision.value == "Rejected" and promotion.statistics.gate_source.value == "Champion"
    assert promotion.statistics.baselines[0].passed is False and len(promotion.statistics.game_logs) == 2
    assert promotion.message == "regressed against baseline heuristic"


def test_a_passing_gate_that_awaits_approval_is_pending_not_promoted():
    w = World(phases=("hybrid", "evaluate"))
    w.step()
    w.finish("r-0-hybrid")
    w.step()
    gate = {"verdict": "promote", "games": 20, "wins": 15, "losses": 5, "awaitingApproval": True,
            "candidate": "v2", "reasons": ["approval is Manual"]}
    w.finish("r-1-evaluate", message=result("evaluate", gate=gate))
    w.step()
    promotion = w.status.promotion
    assert promotion.decision.value == "Pending" and promotion.reason == "AwaitingApproval"
    assert promotion.statistics.candidate == "v2"


@pytest.mark.parametrize("reason, decision, why", [("Promoted", "Promoted", "Approved"),
                                                   ("Rejected", "Rejected", "RejectedByApprover")])
def test_a_finished_runs_pending_candidate_follows_the_approvers_decision(reason, decision, why):
    w = World(phases=("hybrid", "evaluate"))
    w.step()
    w.finish("r-0-hybrid")
    w.step()
    gate = {"verdict": "promote", "awaitingApproval": True, "candidate": "v2", "reasons": ["approval is Manual"]}
    w.finish("r-1-evaluate", message=result("evaluate", gate=gate))
    w.step()
    assert w.status.phase == RunPhase.SUCCEEDED and w.status.promotion.decision.value == "Pending"
    assert w.step().events == []  # nothing decided yet
    w.champion = Champion.model_validate({"metadata": {"name": "c"}, "status": {"history": [
        {"version": "v2", "promotedAt": "2026-01-01T00:00:09Z", "run": "r", "reason": reason, "by": "ada"}]}})
    d = w.step()
    promotion = w.status.promotion
    assert promotion.decision.value == decision and promotion.reason == why and "ada" in promotion.message
    assert [e.reason for e in d.events] == [why]
    assert w.step().events == []
