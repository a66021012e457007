"""scheduling.decide: every policy of a TrainingSchedule, as a pure function of (spec, status, runs, observations, now)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from ouroboros.operator import cron
from ouroboros.operator import scheduling as s
from ouroboros.operator.builders import scheduled_runs as built
from ouroboros.operator.resources import TrainingSchedule
from ouroboros.operator.resources.trainingschedule import CRON_GRAMMAR, TIMEZONES, TriggerType

pytestmark = pytest.mark.unit
CREATED = datetime(2026, 11, 1, tzinfo=UTC)


def schedule(status=None, annotations=None, generation=1, **spec) -> TrainingSchedule:
    body = {"schedules": ["0 2 * * *"], "timeZone": "Etc/UTC",
            "template": {"metadata": {"labels": {"team": "a"}},
                         "spec": {"champion": "main", "phases": [{"name": "self_play", "games": 2}]}}}
    body.update(spec)
    return TrainingSchedule.model_validate({
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "uid-1", "generation": generation,
                     "creationTimestamp": CREATED.isoformat(), "annotations": annotations or {}},
        "spec": body, "status": status or {},
    })


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def creates(decision) -> list[str]:
    return [a.name for a in decision.actions if isinstance(a, s.CreateRun)]


def deletes(decision) -> list[str]:
    return [a.name for a in decision.actions if isinstance(a, s.DeleteRun)]


def reasons(decision) -> list[str]:
    return [e.reason for e in decision.events]


def run(name, phase="Running", trigger=TriggerType.CRON, created=None, completed=None) -> s.OwnedRun:
    created = created or CREATED
    return s.OwnedRun(name=name, uid=f"uid-{name}", trigger=trigger, scheduled_time=created, created=created,
                      phase=phase, completion_time=completed)


def again(sched: TrainingSchedule, decision) -> TrainingSchedule:
    """The schedule as the next pass reads it: the decision's status written."""
    return sched.model_copy(update={"status": decision.status})


# ---------------------------------------------------------------------------
# Cron


def test_a_due_time_creates_one_run_named_by_the_time_and_owned_by_the_schedule():
    sched = schedule(status={"lastScheduleTime": "2026-11-29T02:00:00Z"})
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T02:00:03+00:00"))
    assert creates(d) == ["nightly-202611300200"]
    manifest = d.actions[0].manifest
    assert manifest["spec"]["champion"] == "main" and manifest["spec"]["phases"][0]["games"] == 2
    meta = manifest["metadata"]
    assert meta["namespace"] == "ns" and meta["labels"]["team"] == "a"
    assert meta["labels"][built.LABEL_SCHEDULE_UID] == "uid-1"
    assert meta["annotations"][built.ANNOTATION_STARTED_BY] == "cron"
    assert meta["ownerReferences"] == [{"apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingSchedule",
                                        "name": "nightly", "uid": "uid-1", "controller": True,
                                        "blockOwnerDeletion": True}]
    st = d.status
    assert st.last_schedule_time == at("2026-11-30T02:00:00+00:00")
    assert st.next_schedule_time == at("2026-12-01T02:00:00+00:00")
    assert [a.name for a in st.active] == ["nightly-202611300200"]
    assert st.last_trigger.type == TriggerType.CRON and st.last_trigger.run == "nightly-202611300200"
    assert reasons(d) == ["RunCreated"]


def test_nothing_due_sleeps_until_the_next_time():
    sched = schedule(status={"lastScheduleTime": "2026-11-30T02:00:00Z"})
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T23:00:00+00:00"))
    assert d.actions == [] and d.events == []
    assert d.requeue_after == 3 * 3600 or d.requeue_after == s.MAX_REQUEUE_SECONDS
    d = s.decide(sched, [], s.Observations(), at("2026-12-01T01:59:30+00:00"))
    assert d.requeue_after == 30


def test_a_restart_before_the_status_was_written_creates_nothing_twice():
    sched = schedule(status={"lastScheduleTime": "2026-11-29T02:00:00Z"})
    now = at("2026-11-30T02:00:03+00:00")
    first = s.decide(sched, [], s.Observations(), now)
    # the operator died after creating the run: the status still says 29 Nov, the run exists
    again_ = s.decide(sched, [run("nightly-202611300200", phase=None)], s.Observations(), now + timedelta(seconds=5))
    assert creates(first) == ["nightly-202611300200"] and creates(again_) == []
    assert [a.name for a in again_.status.active] == ["nightly-202611300200"]


def test_two_expressions_firing_at_the_same_time_start_one_run():
    sched = schedule(schedules=["0 2 * * *", "0 */2 * * *"], status={"lastScheduleTime": "2026-11-30T01:00:00Z"})
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T02:00:01+00:00"))
    assert creates(d) == ["nightly-202611300200"]


@pytest.mark.parametrize(("policy", "created", "deleted", "events"), [
    ("Allow", ["nightly-202611300200"], [], ["RunCreated"]),
    ("Forbid", [], [], ["RunSkipped"]),
    ("Replace", ["nightly-202611300200"], ["nightly-202611290200"], ["RunReplaced", "RunCreated"]),
])
def test_concurrency_policy_with_a_run_still_active(policy, created, deleted, events):
    active = run("nightly-202611290200", created=at("2026-11-29T02:00:00+00:00"))
    sched = schedule(concurrencyPolicy=policy, status={"lastScheduleTime": "2026-11-29T02:00:00Z",
                                                       "active": [{"name": active.name}]})
    d = s.decide(sched, [active], s.Observations(), at("2026-11-30T02:00:02+00:00"))
    assert creates(d) == created and deletes(d) == deleted and reasons(d) == events
    assert d.missed == (1 if policy == "Forbid" else 0)  # ouroboros_trainingschedule_missed_total
    assert d.status.last_schedule_time == at("2026-11-30T02:00:00+00:00")  # handled either way
    expected_active = {"Allow": [active.name, created[0] if created else None],
                       "Forbid": [active.name], "Replace": created}[policy]
    assert [a.name for a in d.status.active] == [n for n in expected_active if n]


# ---------------------------------------------------------------------------
# Missed times


DOWN_SINCE = {"lastScheduleTime": "2026-11-25T02:00:00Z"}  # the operator was down for five nights


@pytest.mark.parametrize(("policy", "now", "expected"), [
    ("Skip", "2026-11-30T02:00:30+00:00", ["nightly-202611300200"]),  # the latest is on time
    ("Skip", "2026-11-30T05:00:00+00:00", []),  # even the latest is three hours late
    ("RunOnce", "2026-11-30T05:00:00+00:00", ["nightly-202611300200"]),
    ("RunAll", "2026-11-30T05:00:00+00:00",
     ["nightly-202611280200", "nightly-202611290200", "nightly-202611300200"]),  # maxMissedRuns 3, newest
])
def test_missed_run_policy(policy, now, expected):
    sched = schedule(missedRunPolicy=policy, maxMissedRuns=3, concurrencyPolicy="Allow", status=DOWN_SINCE)
    d = s.decide(sched, [], s.Observations(), at(now))
    assert creates(d) == expected
    assert d.status.last_schedule_time == at("2026-11-30T02:00:00+00:00")
    assert ("MissedRunsSkipped" in reasons(d)) == (len(expected) < 5)
    assert d.missed == 5 - len(expected)  # five nights due, each either started or missed


def test_run_all_with_forbid_starts_the_oldest_and_skips_the_rest():
    sched = schedule(missedRunPolicy="RunAll", maxMissedRuns=3, concurrencyPolicy="Forbid", status=DOWN_SINCE)
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T05:00:00+00:00"))
    assert creates(d) == ["nightly-202611280200"]
    assert reasons(d).count("RunSkipped") == 2
    assert d.missed == 4  # two beyond maxMissedRuns, two forbidden


@pytest.mark.parametrize(("late_seconds", "starts"), [(0, True), (599, True), (601, False), (86000, False)])
def test_starting_deadline(late_seconds, starts):
    sched = schedule(startingDeadlineSeconds=600, status={"lastScheduleTime": "2026-11-29T02:00:00Z"})
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T02:00:00+00:00") + timedelta(seconds=late_seconds))
    assert bool(creates(d)) == starts
    assert d.missed == (0 if starts else 1)
    assert d.status.last_schedule_time == at("2026-11-30T02:00:00+00:00")


def test_more_than_100_missed_times_are_a_warning_and_cost_nothing():
    sched = schedule(schedules=["* * * * *"], status={"lastScheduleTime": "2025-11-30T00:00:00Z"})
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T12:00:30+00:00"))  # a year: 525,000 minutes
    assert "TooManyMissedTimes" in reasons(d)
    assert creates(d) == ["nightly-202611301200"]
    assert next(e for e in d.events if e.reason == "TooManyMissedTimes").type == "Warning"


def test_the_first_pass_counts_from_the_schedules_creation():
    sched = schedule(schedules=["0 * * * *"])  # created 2026-11-01T00:00Z, never reconciled
    d = s.decide(sched, [], s.Observations(), at("2026-11-01T00:30:00+00:00"))
    assert creates(d) == [] and d.status.last_schedule_time is None
    d = s.decide(sched, [], s.Observations(), at("2026-11-01T01:00:10+00:00"))
    assert creates(d) == ["nightly-202611010100"]


# ---------------------------------------------------------------------------
# Time zones and daylight saving


@pytest.mark.parametrize(("zone", "expression", "start", "end", "expected"), [
    # Amsterdam springs forward at 02:00 on 29 March 2026: 02:30 does not exist that day (CronJob skips it)
    ("Europe/Amsterdam", "30 2 * * *", "2026-03-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00",
     ["2026-03-28T01:30:00+00:00", "2026-03-30T00:30:00+00:00"]),
    # and falls back at 03:00 on 25 October: 02:30 happens twice, and runs twice
    ("Europe/Amsterdam", "30 2 * * *", "2026-10-24T12:00:00+00:00", "2026-10-26T12:00:00+00:00",
     ["2026-10-25T00:30:00+00:00", "2026-10-25T01:30:00+00:00", "2026-10-26T01:30:00+00:00"]),
    # New York springs forward at 02:00 on 8 March 2026: a 02:00 job does not run that day
    ("America/New_York", "0 2 * * *", "2026-03-07T00:00:00+00:00", "2026-03-10T00:00:00+00:00",
     ["2026-03-07T07:00:00+00:00", "2026-03-09T06:00:00+00:00"]),
    # an hourly job on the short day has 23 runs, on the long day 25
    ("Europe/Amsterdam", "0 * * * *", "2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00", 23),
    ("Europe/Amsterdam", "0 * * * *", "2026-10-24T22:00:00+00:00", "2026-10-25T23:00:00+00:00", 25),
    # a zone without daylight saving
    ("Asia/Kolkata", "0 9 * * *", "2026-03-28T00:00:00+00:00", "2026-03-30T00:00:00+00:00",
     ["2026-03-28T03:30:00+00:00", "2026-03-29T03:30:00+00:00"]),
])
def test_daylight_saving_as_cronjob(zone, expression, start, end, expected):
    times = cron.times_between([expression], ZoneInfo(zone), at(start), at(end), 1000)
    if isinstance(expected, int):
        assert len(times) == expected
    else:
        assert times == [at(t) for t in expected]


def test_fall_back_twice_gives_two_runs_with_different_names():
    sched = schedule(schedules=["30 2 * * *"], timeZone="Europe/Amsterdam", concurrencyPolicy="Allow",
                     status={"lastScheduleTime": "2026-10-24T00:30:00Z"})
    first = s.decide(sched, [], s.Observations(), at("2026-10-25T00:30:05+00:00"))
    second = s.decide(again(sched, first), [], s.Observations(), at("2026-10-25T01:30:05+00:00"))
    assert creates(first) == ["nightly-202610250030"] and creates(second) == ["nightly-202610250130"]
    assert first.status.next_schedule_time == at("2026-10-25T01:30:00+00:00")


def test_the_next_time_skips_a_spring_forward_gap():
    nxt = cron.next_time(["30 2 * * *"], ZoneInfo("Europe/Amsterdam"), at("2026-03-28T12:00:00+00:00"))
    assert nxt == at("2026-03-30T00:30:00+00:00")


# ---------------------------------------------------------------------------
# Triggers and cooldowns


def triggers_schedule(status=None, annotations=None, **spec):
    return schedule(schedules=[], triggers={"data": {"minNewGames": 1000, "cooldownSeconds": 3600},
                                            "performance": {"below": 0.5, "cooldownSeconds": 7200},
                                            "manual": {"cooldownSeconds": 0}},
                    status=status, annotations=annotations, **spec)


NOW = at("2026-11-30T12:00:00+00:00")


@pytest.mark.parametrize(("observed", "runs", "expected", "requeue"), [
    (s.Observations(new_games=999), [], [], None),
    (s.Observations(new_games=1000), [], ["nightly-data-20261130120000"], None),
    (s.Observations(new_games=None), [], [], None),  # the store could not be read: wait
    # a data run started 10 minutes ago: cooldown 3600 s has 3000 s to go
    (s.Observations(new_games=5000), [("nightly-data-1", TriggerType.DATA, 600)], [], 3000),
    (s.Observations(new_games=5000), [("nightly-data-1", TriggerType.DATA, 3600)], ["nightly-data-20261130120000"], None),
    # another trigger's run does not hold the data trigger's cooldown
    (s.Observations(new_games=5000), [("nightly-202611301150", TriggerType.CRON, 600)],
     ["nightly-data-20261130120000"], None),
    (s.Observations(score=0.4), [], ["nightly-performance-20261130120000"], None),
    (s.Observations(score=0.5), [], [], None),
    (s.Observations(score=0.1), [("nightly-performance-1", TriggerType.PERFORMANCE, 3600)], [], 3600),
])
def test_data_and_performance_triggers_with_cooldowns(observed, runs, expected, requeue):
    owned = [run(n, phase="Succeeded", trigger=t, created=NOW - timedelta(seconds=ago),
                 completed=NOW - timedelta(seconds=ago - 1)) for n, t, ago in runs]
    d = s.decide(triggers_schedule(concurrencyPolicy="Allow"), owned, observed, NOW)
    assert creates(d) == expected
    if expected:
        assert d.status.last_trigger.run == expected[0]
        assert getattr(d.status.trigger_times, d.status.last_trigger.type.value) == NOW
    if requeue is not None:
        assert d.requeue_after == requeue


def test_a_forbidden_trigger_waits_for_the_active_run_instead_of_being_dropped():
    active = run("nightly-202611300200", created=NOW - timedelta(hours=10))
    sched = triggers_schedule(concurrencyPolicy="Forbid", status={"active": [{"name": active.name}]})
    d = s.decide(sched, [active], s.Observations(new_games=5000), NOW)
    assert creates(d) == [] and d.events == []
    finished = run(active.name, phase="Succeeded", created=active.created, completed=NOW)
    d = s.decide(again(sched, d), [finished], s.Observations(new_games=5000), NOW + timedelta(seconds=5))
    assert creates(d) == ["nightly-data-20261130120005"]


def test_data_window_starts_at_the_last_run():
    sched = triggers_schedule()
    assert s.data_window_start(sched, []) == CREATED
    owned = [run("a", created=at("2026-11-20T00:00:00+00:00")), run("b", created=at("2026-11-25T00:00:00+00:00"))]
    assert s.data_window_start(sched, owned) == at("2026-11-25T00:00:00+00:00")


def test_the_manual_trigger_fires_once_per_value_and_survives_a_restart():
    sched = triggers_schedule(annotations={"ouroboros.dev/trigger": "2026-11-30T12:00:00Z"})
    d = s.decide(sched, [], s.Observations(), NOW)
    (name,) = creates(d)
    assert name.startswith("nightly-manual-") and d.status.manual_trigger == "2026-11-30T12:00:00Z"
    assert d.status.last_trigger.type == TriggerType.MANUAL
    # the status was written: nothing more
    assert creates(s.decide(again(sched, d), [run(name, trigger=TriggerType.MANUAL)], s.Observations(), NOW)) == []
    # the status was not written (operator killed): the run exists, nothing more, the value is recorded
    d2 = s.decide(sched, [run(name, trigger=TriggerType.MANUAL)], s.Observations(), NOW + timedelta(minutes=1))
    assert creates(d2) == [] and d2.status.manual_trigger == "2026-11-30T12:00:00Z"
    # a new value fires again
    sched3 = again(sched, d2).model_copy(deep=True)
    sched3.metadata.annotations["ouroboros.dev/trigger"] = "again"
    d3 = s.decide(sched3, [run(name, phase="Succeeded", trigger=TriggerType.MANUAL, completed=NOW)],
                  s.Observations(), NOW + timedelta(minutes=2))
    assert len(creates(d3)) == 1 and creates(d3) != [name]


def test_a_manual_trigger_on_a_suspended_schedule_is_answered_and_dropped():
    sched = triggers_schedule(suspend=True, annotations={"ouroboros.dev/trigger": "now"})
    d = s.decide(sched, [], s.Observations(new_games=10**6), NOW)
    assert creates(d) == [] and reasons(d) == ["ManualTriggerIgnored"] and d.status.manual_trigger == "now"


def test_the_manual_cooldown():
    recent = run("nightly-manual-x", phase="Succeeded", trigger=TriggerType.MANUAL,
                 created=NOW - timedelta(seconds=100), completed=NOW)
    sched = schedule(schedules=[], triggers={"manual": {"cooldownSeconds": 300}},
                     annotations={"ouroboros.dev/trigger": "b"}, status={"manualTrigger": "a"})
    d = s.decide(sched, [recent], s.Observations(), NOW)
    assert creates(d) == [] and d.requeue_after == 200 and d.status.manual_trigger == "a"


# ---------------------------------------------------------------------------
# Suspend, stop strategy, history


def test_suspend_starts_nothing_and_resuming_does_not_replay_the_suspended_times():
    sched = schedule(suspend=True, status={"lastScheduleTime": "2026-11-28T02:00:00Z"})
    d = s.decide(sched, [], s.Observations(), at("2026-11-30T02:00:05+00:00"))
    assert creates(d) == [] and d.status.next_schedule_time is None
    cond = {c.type: c for c in d.status.conditions}
    assert cond["Suspended"].status == "True" and cond["Suspended"].reason == "SuspendedBySpec"
    resumed = again(sched, d).model_copy(deep=True)
    resumed.spec.suspend = False
    d = s.decide(resumed, [], s.Observations(), at("2026-11-30T09:00:00+00:00"))
    assert creates(d) == [] and d.status.next_schedule_time == at("2026-12-01T02:00:00+00:00")


@pytest.mark.parametrize(("before", "outcome", "stops", "after"), [
    (2, "Failed", True, 0),
    (1, "Failed", False, 2),
    (2, "Succeeded", False, 0),
])
def test_stop_strategy(before, outcome, stops, after):
    done = run("nightly-202611290200", phase=outcome, completed=at("2026-11-29T05:00:00+00:00"))
    sched = schedule(stopStrategy={"maxConsecutiveFailures": 3},
                     status={"lastScheduleTime": "2026-11-29T02:00:00Z", "consecutiveFailures": before,
                             "active": [{"name": done.name}]})
    d = s.decide(sched, [done], s.Observations(), at("2026-11-29T06:00:00+00:00"))
    assert any(isinstance(a, s.SuspendSchedule) for a in d.actions) == stops
    assert d.status.consecutive_failures == after and d.status.active == []
    cond = {c.type: c for c in d.status.conditions}["Suspended"]
    if stops:
        assert cond.status == "True" and cond.reason == "StopStrategy" and "3 runs failed in a row" in cond.message
        assert "Stopped" in reasons(d) and d.status.next_schedule_time is None
        # the handler set spec.suspend: the condition keeps saying why
        suspended = again(sched, d).model_copy(deep=True)
        suspended.spec.suspend = True
        d2 = s.decide(suspended, [done], s.Observations(), at("2026-11-29T06:00:05+00:00"))
        assert {c.type: c for c in d2.status.conditions}["Suspended"].reason == "StopStrategy"
        assert not any(isinstance(a, s.SuspendSchedule) for a in d2.actions)
        # a pass retried after a status conflict finds spec.suspend already set and the count not yet reset
        retried = sched.model_copy(deep=True)
        retried.spec.suspend = True
        d3 = s.decide(retried, [done], s.Observations(), at("2026-11-29T06:00:05+00:00"))
        assert {c.type: c for c in d3.status.conditions}["Suspended"].reason == "StopStrategy"
        assert d3.status.consecutive_failures == 0 and not any(isinstance(a, s.SuspendSchedule) for a in d3.actions)
    else:
        assert cond.status == "False"
    if outcome == "Succeeded":
        assert d.status.last_successful_time == at("2026-11-29T05:00:00+00:00")


def test_history_limits_delete_the_oldest_finished_runs():
    day = timedelta(days=1)
    owned = [run(f"ok-{i}", phase="Succeeded", created=CREATED + i * day, completed=CREATED + i * day) for i in range(5)]
    owned += [run(f"bad-{i}", phase="Failed", created=CREATED + i * day, completed=CREATED + i * day) for i in range(3)]
    owned += [run("going", phase="Running", created=CREATED + 9 * day)]
    sched = schedule(successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1,
                     status={"lastScheduleTime": "2026-11-30T02:00:00Z"})
    d = s.decide(sched, owned, s.Observations(), at("2026-11-30T03:00:00+00:00"))
    assert sorted(deletes(d)) == ["bad-0", "bad-1", "ok-0", "ok-1", "ok-2"]
    assert [a.name for a in d.status.active] == ["going"]


# ---------------------------------------------------------------------------
# Invalid schedules, names, the grammar


@pytest.mark.parametrize(("expressions", "field"), [
    (["0 0 31 2 *"], "spec.schedules[0] '0 0 31 2 *': never fires"),
    (["0 2 * * *", "0 0 30 2 *"], "spec.schedules[1]"),
])
def test_an_expression_the_schema_passes_but_croniter_refuses_is_a_condition(expressions, field):
    sched = schedule(schedules=expressions)
    d = s.decide(sched, [], s.Observations(), NOW)
    ready = {c.type: c for c in d.status.conditions}["Ready"]
    assert ready.status == "False" and ready.reason == "InvalidSchedule" and field in ready.message
    assert d.actions == [] and reasons(d) == ["InvalidSchedule"]
    assert reasons(s.decide(again(sched, d), [], s.Observations(), NOW)) == []  # said once


def test_a_zone_missing_from_this_machines_database_is_a_condition(monkeypatch):
    def missing(name):
        raise ValueError(f"spec.timeZone: unknown IANA time zone {name!r}")
    monkeypatch.setattr(cron, "zone", missing)
    d = s.decide(schedule(), [], s.Observations(), NOW)
    ready = {c.type: c for c in d.status.conditions}["Ready"]
    assert ready.reason == "InvalidSchedule" and "spec.timeZone" in ready.message


def test_run_names_are_deterministic_and_fit_a_label():
    long = "a" * 60
    t = at("2026-11-30T02:00:00+00:00")
    assert built.run_name("n", TriggerType.CRON, t) == "n-202611300200"
    assert built.run_name(long, TriggerType.CRON, t) == built.run_name(long, TriggerType.CRON, t)
    assert len(built.run_name(long, TriggerType.MANUAL, t, "x")) <= 63
    assert built.run_name("n", TriggerType.MANUAL, t, "x") == built.run_name("n", TriggerType.MANUAL, NOW, "x")
    assert built.run_name("n", TriggerType.MANUAL, t, "x") != built.run_name("n", TriggerType.MANUAL, t, "y")


def test_owned_run_reads_a_training_run_object():
    raw = {"metadata": {"name": "r", "uid": "u", "creationTimestamp": "2026-11-30T02:00:01Z",
                        "annotations": {built.ANNOTATION_STARTED_BY: "data", built.ANNOTATION_SCHEDULED_AT: "2026-11-30T02:00:00Z"}},
           "status": {"phase": "Failed", "completionTime": "2026-11-30T03:00:00Z"}}
    r = s.owned_run(raw)
    assert r.trigger == TriggerType.DATA and r.finished and r.scheduled_time == at("2026-11-30T02:00:00+00:00")
    assert r.completion_time == at("2026-11-30T03:00:00+00:00")


FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
NAMES = ["jan", "Dec", "MON", "sun", "fri", "L", "5#2", "W"]


def _random_expression(rng: random.Random) -> str:
    """Mostly near-valid expressions: each field's values a little beyond its range, odd tokens now and then."""
    def item(lo, hi):
        value = lambda: str(rng.randint(max(0, lo - 1), hi + 2)) if rng.random() < 0.9 else rng.choice(NAMES)  # noqa: E731
        text = rng.choice(["*", value(), f"{value()}-{value()}", "?"])
        if rng.random() < 0.3:
            text += f"/{rng.randint(0, 70)}"
        return text
    n = rng.choice([4, 5, 5, 5, 5, 6])
    ranges = [FIELD_RANGES[i % 5] for i in range(n)]
    return " ".join(",".join(item(lo, hi) for _ in range(rng.choice([1, 1, 2]))) for lo, hi in ranges)


def test_whatever_the_grammar_admits_croniter_accepts():
    """The CEL grammar is at least as strict as croniter: no expression passes the API server and fails later to parse."""
    rng = random.Random(7)
    grammar = re.compile(CRON_GRAMMAR)
    admitted = 0
    for _ in range(50000):
        expression = _random_expression(rng)
        if grammar.match(expression):
            admitted += 1
            assert croniter.is_valid(expression), expression
    assert admitted > 2000  # the generator does reach the accepted side


@pytest.mark.parametrize("expression", ["0 2 * * *", "*/5 * * * *", "@daily", "@hourly", "0 0 1 JAN-mar *",
                                        "0 9 * * MON-FRI", "0 0 ? * 7", "15,45 08-17/2 1-15 */3 sun,sat"])
def test_the_grammar_admits_ordinary_expressions(expression):
    assert re.match(CRON_GRAMMAR, expression) and croniter.is_valid(expression)


def test_the_committed_zone_list_is_what_this_machine_knows():
    import zoneinfo
    assert {"Etc/UTC", "Europe/Amsterdam", "America/New_York"} <= set(TIMEZONES)
    assert "Mars/Olympus_Mons" not in TIMEZONES
    unknown = set(TIMEZONES) - zoneinfo.available_timezones()
    assert not unknown


def test_the_operator_counts_new_games_as_the_trainer_does(tmp_path):
    """The operator reads replay sidecars without the trainer (import-linter forbids it);
    its count must equal the trainer's on the same store, before and after a cut-off."""
    import numpy as np

    from ouroboros.operator import replay
    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning import shards
    from ouroboros.trainer.scheduling import data

    store = ArtifactStore(str(tmp_path))
    for run, games in (("a", 3), ("b", 5)):
        writer = shards.ReplayWriter(store, run, "bootstrap", worker=0, shard_rows=1 << 20)
        n = games * 2
        writer.add("teacher", {"game_id": np.repeat(np.arange(games), 2), "turn": np.arange(n), "seat": np.zeros(n),
                               "value": np.zeros(n), "quality": np.ones(n)})
        writer.flush()
    (tmp_path / "runs" / "b" / "replay" / "bootstrap" / "shard-0009-00000000.npz.meta.json").write_text("{")
    for since in (None, datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)):
        assert replay.new_games_since(str(tmp_path), since) == data.new_games_since(str(tmp_path), since)
    assert replay.new_games_since(str(tmp_path), None) == 8
