"""The Champion controller's pure decision, driven with hand-made runs and registry Jobs (no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ouroboros.contract.champion import (
    ChampionOperation,
    CheckResult,
    RegistryRecord,
    RegistryReport,
)
from ouroboros.contract.promotion import GateStatistics
from ouroboros.operator import championing, conditions
from ouroboros.operator.championing import ObservedRegistryJob, ObservedRun
from ouroboros.operator.observe import JobState
from ouroboros.operator.resources import Champion
from ouroboros.operator.settings import JobSettings

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GAME = "standard-7x7-2p"
SHA = {v: (v.encode().hex() * 64)[:64] for v in ("v1", "v2", "v3")}


class Registry:
    """A stand-in for the store's champion pointer: what the registry Jobs would report."""

    def __init__(self):
        self.version = None
        self.pinned = None
        self.generation = 0
        self.history: list[RegistryRecord] = []

    def change(self, action, version, at, by="ouro phase evaluate", run=None, reason="", win_rate=None,
               verdict=None, **figures):
        self.history.insert(0, RegistryRecord(action=action, version=version, previous=self.version, at=at, by=by,
                                              run=run, reason=reason, win_rate=win_rate, verdict=verdict, **figures))
        self.version = version
        self.generation += 1

    def report(self, operation, check=None):
        return RegistryReport(operation=operation, game=GAME, version=self.version,
                              sha256=SHA.get(self.version), size=100 if self.version else None,
                              uri=f"file:///s/models/{self.version}/model.onnx" if self.version else None,
                              pinned_version=self.pinned, generation=self.generation, history=self.history[:8],
                              check=check)


class World:
    """A Champion, its runs, its registry Jobs and a clock; `step()` decides and applies like the handler."""

    def __init__(self, **policy):
        self.body = {"metadata": {"name": "main", "namespace": "ns", "uid": "c-1", "generation": 1,
                                  "annotations": {}},
                     "spec": {"game": {"width": 7, "height": 7}, "policy": policy}}
        self.status = None
        self.runs: list[ObservedRun] = []
        self.jobs: dict[str, ObservedRegistryJob] = {}
        self.manifests: dict[str, dict] = {}
        self.events: list[championing.Event] = []
        self.now = T0
        self.registry = Registry()

    def champion(self):
        body = dict(self.body)
        if self.status is not None:
            body["status"] = self.status.to_api()
        return Champion.model_validate(body)

    def step(self):
        self.now += timedelta(seconds=1)
        decision = championing.decide(self.champion(), list(self.runs), list(self.jobs.values()), self.now,
                                      JobSettings())
        for action in decision.actions:
            meta = action.manifest["metadata"]
            op = ChampionOperation(meta["labels"]["ouroboros.dev/registry-operation"])
            self.jobs.setdefault(meta["name"], ObservedRegistryJob(meta["name"], op, JobState.ACTIVE))
            self.manifests[meta["name"]] = action.manifest
        self.status = decision.status
        self.events += decision.events
        return decision

    def active(self):
        return [j for j in self.jobs.values() if j.state is JobState.ACTIVE]

    def finish(self, check=None, fail=None):
        """The one active Job ends: it reports the registry as it stands (after `check`, if given)."""
        (job,) = self.active()
        if fail:
            self.jobs[job.name] = ObservedRegistryJob(job.name, job.operation, JobState.FAILED, failure=fail)
        else:
            self.jobs[job.name] = ObservedRegistryJob(job.name, job.operation, JobState.SUCCEEDED,
                                                      self.registry.report(job.operation, check))
        return job

    def command(self, name):
        return self.manifests[name]["spec"]["template"]["spec"]["containers"][0]["command"]

    def condition(self, type_):
        return conditions.get(self.status.conditions, type_)

    def reasons(self):
        return [e.reason for e in self.events]


def promoted_run(name, version, decision="Promoted", awaiting=False, win_rate=0.7):
    stats = GateStatistics(verdict="promote", games=20, wins=14, losses=6, win_rate=win_rate, candidate=version,
                           awaiting_approval=awaiting)
    return ObservedRun(name=name, uid=f"uid-{name}", decision=decision, statistics=stats, decided_at=T0)


def synced(w: World) -> World:
    w.step()
    w.finish()
    w.step()
    return w


def test_a_new_champion_reads_the_registry_once():
    w = World()
    d = w.step()
    (job,) = w.active()
    assert job.operation is ChampionOperation.SYNC and len(d.actions) == 1
    assert w.condition("Ready").status.value == "Unknown"
    command = w.command(job.name)
    assert command[1:4] == ["champion", "job", "sync"] and command[command.index("--game") + 1] == GAME
    assert w.step().actions == []  # still running: nothing new
    w.finish()
    d = w.step()
    assert d.actions == [] and w.status.registry_generation == 0
    assert w.condition("Ready").reason == "NoChampion"
    assert "Synced" in w.reasons()
    assert w.step().actions == [] and w.step().events == []


def test_a_promotion_by_the_evaluate_phase_is_mirrored_through_a_sync_job():
    w = synced(World())
    w.registry.change("promote", "v1", T0, run="first")
    w.runs.append(promoted_run("first", "v1"))
    w.step()
    (job,) = w.active()
    assert job.operation is ChampionOperation.SYNC
    w.finish()
    w.step()
    st = w.status
    assert st.version == "v1" and st.artifact.sha256 == SHA["v1"] and st.from_run == "first"
    assert st.history[0].reason.value == "Initial" and st.history[0].run == "first"
    assert w.condition("Ready").status.value == "True"
    assert w.active() == [] and w.step().actions == []  # a first champion needs no post-promotion check
    assert "Initial" in w.reasons()


def test_a_promotion_that_replaces_a_champion_is_checked_and_kept_when_it_passes():
    w = synced(World(postPromotionCheck={"games": 10, "minWinRate": 0.4}))
    w.registry.change("promote", "v1", T0, run="first")
    w.registry.change("promote", "v2", T0 + timedelta(seconds=1), run="second", win_rate=0.7, verdict="promote",
                      win_rate_lower=0.6, win_rate_upper=0.78, elo=147.0, elo_lower=70.0, elo_upper=230.0)
    w.runs += [promoted_run("first", "v1"), promoted_run("second", "v2")]
    w.step()
    w.finish()
    w.step()
    assert w.status.version == "v2" and w.status.score == pytest.approx(0.7)
    assert w.status.ratings == {"winRateVsPrevious": 0.7, "winRateVsPreviousLower": 0.6,
                                "winRateVsPreviousUpper": 0.78, "eloVsPrevious": 147.0, "eloVsPreviousLower": 70.0,
                                "eloVsPreviousUpper": 230.0}
    assert w.status.history[0].statistics.elo_lower == 70.0
    (check,) = w.active()
    assert check.operation is ChampionOperation.CHECK
    command = w.command(check.name)
    assert command[command.index("--against") + 1] == "v1" and command[command.index("--games") + 1] == "10"
    assert command[command.index("--min-win-rate") + 1] == "0.4"
    # the gate plays the bare policy: so does the check, with a registry Job's small CPU request and no
    # --player flag (a trainer image from before the flag still runs it)
    assert "--player" not in command
    resources = w.manifests[check.name]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"]["cpu"] == "100m"
    w.finish(check=CheckResult(version="v2", against="v1", games=10, win_rate=0.6, passed=True, message="ok",
                               player="policy"))
    w.step()
    assert w.status.last_check.passed and w.condition("Degraded").status.value == "False"
    assert w.status.last_check.player == "policy"
    assert w.step().actions == []  # checked once


@pytest.mark.parametrize(("gate", "player"), [
    ({"player": "nsearch", "moveBudgetMs": 40}, "nsearch:ms=40"),
    ({"player": "nsearch", "moveBudgetMs": 0, "maxVisits": 64}, "nsearch:ms=0,visits=64"),
    ({"player": "nsearch", "moveBudgetMs": 100, "maxVisits": 8}, "nsearch:ms=100,visits=8"),
])
def test_the_check_plays_both_versions_as_the_champions_gate_plays_them(gate, player):
    w = synced(World(postPromotionCheck={"games": 10}, gate=gate))
    w.registry.change("promote", "v1", T0, run="first")
    w.registry.change("promote", "v2", T0 + timedelta(seconds=1), run="second", win_rate=0.7, verdict="promote")
    w.runs += [promoted_run("first", "v1"), promoted_run("second", "v2")]
    w.step()
    w.finish()
    w.step()
    (check,) = w.active()
    command = w.command(check.name)
    assert check.operation is ChampionOperation.CHECK and command[command.index("--player") + 1] == player
    container = w.manifests[check.name]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "1"  # a search gets the core a server gives it
    w.finish(check=CheckResult(version="v2", against="v1", games=10, win_rate=0.6, passed=True, player=player,
                               message="ok"))
    w.step()
    assert w.status.last_check.player == player and w.status.to_api()["lastCheck"]["player"] == player


def test_a_failing_post_promotion_check_rolls_back_with_a_warning():
    w = synced(World())
    w.registry.change("promote", "v1", T0, run="first")
    w.registry.change("promote", "v2", T0 + timedelta(seconds=1), run="second")
    w.runs += [promoted_run("first", "v1"), promoted_run("second", "v2")]
    w.step()
    w.finish()
    w.step()
    w.registry.change("rollback", "v1", T0 + timedelta(seconds=5), by="ouroboros-operator",
                      reason="post-promotion check failed: v2 scored 0.200")
    w.finish(check=CheckResult(version="v2", against="v1", games=20, win_rate=0.2, passed=False, rolled_back=True,
                               message="rolled back to v1: v2 scored 0.200"))
    w.step()
    st = w.status
    assert st.version == "v1" and st.history[0].reason.value == "RolledBack"
    assert "post-promotion check failed" in st.history[0].message
    degraded = w.condition("Degraded")
    assert degraded.status.value == "True" and degraded.reason == "PostPromotionCheckFailed"
    assert "PostPromotionCheckFailed" in w.reasons() and "RolledBack" in w.reasons()
    warnings = [e for e in w.events if e.type == "Warning"]
    assert {e.reason for e in warnings} == {"PostPromotionCheckFailed", "RolledBack"}
    assert w.step().actions == []  # a rollback is not checked again


def test_pinning_and_unpinning_run_registry_jobs():
    w = synced(World())
    w.registry.change("promote", "v1", T0, run="first")
    w.registry.change("promote", "v2", T0 + timedelta(seconds=1), run="second")
    w.runs += [promoted_run("first", "v1"), promoted_run("second", "v2")]
    w.body["spec"]["policy"] = {"postPromotionCheck": {"games": 0}}
    w.step()
    w.finish()
    w.step()
    w.body["spec"]["pinnedVersion"] = "v1"
    w.body["metadata"]["generation"] = 2
    w.step()
    (pin,) = w.active()
    assert pin.operation is ChampionOperation.PIN and "v1" in w.command(pin.name)
    w.registry.change("pin", "v1", T0 + timedelta(seconds=9), by="ouroboros-operator")
    w.registry.pinned = "v1"
    w.finish()
    w.step()
    assert w.status.version == "v1" and w.status.pinned_version == "v1"
    assert w.condition("Pinned").status.value == "True" and w.status.history[0].reason.value == "Pinned"
    assert w.step().actions == []
    del w.body["spec"]["pinnedVersion"]
    w.body["metadata"]["generation"] = 3
    w.step()
    (unpin,) = w.active()
    assert unpin.operation is ChampionOperation.UNPIN
    w.registry.change("unpin", "v1", T0 + timedelta(seconds=12), by="ouroboros-operator")
    w.registry.pinned = None
    w.finish()
    w.step()
    assert w.status.pinned_version is None and w.condition("Pinned").status.value == "False"
    assert w.step().actions == []


def test_manual_approval_waits_then_promotes_with_the_approver_recorded():
    w = synced(World(approval="Manual", postPromotionCheck={"games": 0}))
    w.runs.append(promoted_run("cand", "v1", decision="Pending", awaiting=True))
    d = w.step()
    assert d.actions == [] and w.status.pending.run == "cand" and w.status.pending.version == "v1"
    assert w.condition("AwaitingApproval").status.value == "True" and "AwaitingApproval" in w.reasons()
    w.body["metadata"]["annotations"] = {championing.ANNOTATION_APPROVE: "cand", championing.ANNOTATION_BY: "ada"}
    w.step()
    (job,) = w.active()
    command = w.command(job.name)
    assert job.operation is ChampionOperation.PROMOTE
    assert command[command.index("--version") + 1] == "v1" and command[command.index("--by") + 1] == "ada"
    assert '"candidate":"v1"' in command[command.index("--statistics") + 1]
    w.registry.change("promote", "v1", T0 + timedelta(seconds=20), by="ada", run="cand", verdict="promote")
    w.finish()
    w.step()
    assert w.status.version == "v1" and w.status.pending is None and w.status.history[0].by == "ada"
    assert w.condition("AwaitingApproval").status.value == "False"
    assert w.step().actions == []  # the annotation stays; nothing runs twice


def test_a_rejection_is_recorded_without_touching_the_registry():
    w = synced(World(approval="Manual"))
    w.runs.append(promoted_run("cand", "v1", decision="Pending", awaiting=True))
    w.step()
    w.body["metadata"]["annotations"] = {championing.ANNOTATION_REJECT: "cand", championing.ANNOTATION_BY: "bob"}
    d = w.step()
    assert d.actions == [] and w.status.pending is None and w.status.version is None
    entry = w.status.history[0]
    assert entry.reason.value == "Rejected" and entry.version == "v1" and entry.by == "bob"
    assert "Rejected" in w.reasons()
    w.step()
    assert [e.reason for e in w.status.history].count("Rejected") == 1


def test_a_failed_registry_job_is_reported_and_not_rerun():
    w = synced(World())
    w.body["spec"]["pinnedVersion"] = "nope"
    w.body["metadata"]["generation"] = 2
    w.step()
    w.finish(fail="version 'nope' was never champion")
    d = w.step()
    degraded = w.condition("Degraded")
    assert degraded.status.value == "True" and degraded.reason == "RegistryJobFailed"
    assert "never champion" in degraded.message and d.actions == []
    assert "RegistryJobFailed" in w.reasons()
    assert w.step().events == []


def test_a_restarted_operator_finds_its_job_and_folds_reports_again_without_new_events():
    w = synced(World())
    w.registry.change("promote", "v1", T0, run="first")
    w.runs.append(promoted_run("first", "v1"))
    first = w.step().actions[0].manifest["metadata"]["name"]
    w.status = w.champion().status  # the status write was lost: the same inputs name the same Job
    again = championing.decide(w.champion(), w.runs, list(w.jobs.values()), w.now, JobSettings())
    assert again.actions == []  # it exists (active): no second Job
    w.finish()
    w.step()
    before = len(w.events)
    w.step()
    assert len(w.events) == before and w.status.version == "v1" and first in w.jobs


def test_an_older_report_never_moves_the_pointer_back():
    w = synced(World())
    w.registry.change("promote", "v1", T0, run="first")
    old = w.registry.report(ChampionOperation.SYNC)
    w.registry.change("promote", "v2", T0 + timedelta(seconds=1), run="second")
    new = w.registry.report(ChampionOperation.SYNC)
    status = championing.fold(w.status, [new, old], limit=20)
    assert status.version == "v2" and status.registry_generation == 2
    assert [e.version for e in status.history] == ["v2", "v1"]


def test_the_changes_a_reconcile_saw_are_what_its_events_report_and_name_the_rollback_trigger():
    """`new_history` is what the metrics count: promotions, the automatic rollback of a failed check
    and a manual pin back, each once, and nothing for the past a first read finds."""
    w = World(postPromotionCheck={"games": 10, "minWinRate": 0.4})
    w.registry.change("promote", "v0", T0 - timedelta(days=1), run="before")  # the registry's past
    seen = []

    def step():
        old = w.status or Champion.model_validate(w.body).status
        w.step()
        for entry in championing.new_history(old, w.status):
            seen.append((entry.reason.value, entry.version, championing.rollback_trigger(entry)))

    step()
    w.finish()
    step()
    assert seen == []  # first read: v0's promotion is history, not news (and posts no Event)
    w.registry.change("promote", "v1", T0, run="first")
    w.runs.append(promoted_run("first", "v1"))
    step()
    w.finish()
    step()
    w.registry.change("rollback", "v0", T0 + timedelta(seconds=5), by="ouroboros-operator",
                      reason="post-promotion check failed")
    w.finish(check=CheckResult(version="v1", against="v0", games=10, win_rate=0.2, passed=False, rolled_back=True,
                               message="rolled back"))
    step()
    w.body["spec"]["pinnedVersion"] = "v1"
    w.body["metadata"]["generation"] = 2
    step()
    w.registry.change("pin", "v1", T0 + timedelta(seconds=9), by="ouroboros-operator")
    w.registry.pinned = "v1"
    w.finish()
    step()
    step()  # nothing new
    assert seen == [("Promoted", "v1", None), ("RolledBack", "v0", "automatic"), ("Pinned", "v1", "manual")]
    assert [e.reason for e in w.events if e.reason in ("Promoted", "RolledBack", "Pinned")] == [
        "Promoted", "RolledBack", "Pinned"]
