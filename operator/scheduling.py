"""The TrainingSchedule controller's decision, as a pure function.

`decide(schedule, runs, observed, now)` takes a schedule (spec and the status
last written), the TrainingRuns it owns as observed in the cluster (or the
executions the local runner recorded), what the triggers observe (new games in
the replay store, the champion's score), and the time. It returns the new
status, the actions that carry it out (create a run, delete one, suspend the
schedule), the Events to post, and when to look again. The kopf handlers
(`handlers/trainingschedule.py`) and `ouro schedule run` only read, call
this, and act, so the cluster and one machine schedule by one code path.

Semantics (the resource's field docs say the same to users):

- Time: every `spec.schedules` expression is evaluated in `spec.timeZone` by
  croniter (`cron.py`: daylight saving as Kubernetes CronJob handles it).
  Run names and manifests come from `builders/scheduled_runs.py`.
- Missed times: the times in (lastScheduleTime, now] (since creation at
  first) are due. Those older than `startingDeadlineSeconds` are dropped.
  Skip starts the latest only if it is on time (within the deadline, or
  `ON_TIME_SECONDS` without one); RunOnce starts the latest (CronJob's
  behaviour); RunAll starts each, at most `maxMissedRuns`, the newest ones.
  More than `TOO_MANY_MISSED` due times give a Warning Event, as CronJob's
  "too many missed start times" does. Only `TOO_MANY_MISSED + 1` times are
  ever enumerated, walking back from now, so a year of downtime costs
  nothing.
- Concurrency: Allow starts the run anyway; Replace deletes the active runs
  first; Forbid drops a cron time (an Event says so, and lastScheduleTime
  moves on) while a trigger waits for the active run to end. CronJob keeps a
  forbidden time pending and starts it as soon as the Job ends if the
  deadline allows; we drop it, so a long run is never followed at once by a
  stale one.
- Triggers: manual (the annotation's value changed since the last one acted
  on; fires once per value), data (at least N games committed since the
  last run of this schedule started), performance (the champion's metric
  below a threshold); each at most once per its cooldown, counted from the
  last run it started. At most one trigger run per pass, none in a pass that
  started a cron run.
- Stop strategy: runs that leave `status.active` finished are counted;
  `maxConsecutiveFailures` failures in a row set `spec.suspend` (action
  `SuspendSchedule`) and the Suspended condition says why.
- Restart safety: run names are deterministic (schedule + scheduled time, or
  + trigger and time, or + a hash of the manual annotation's value), a name
  already among the owned runs is never created again, and the cooldown and
  data clocks also read the owned runs' creation times, so a crash between
  creating a run and writing the status creates nothing twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ouroboros.operator import conditions
from ouroboros.operator.builders.scheduled_runs import (
    ANNOTATION_SCHEDULED_AT,
    ANNOTATION_STARTED_BY,
    run_manifest,
    run_name,
)
from ouroboros.operator.cron import next_time, problem, times_between, utc, zone
from ouroboros.operator.lifecycle import Event  # the same Kubernetes Event shape as a run's
from ouroboros.operator.resources import ConditionStatus, TrainingSchedule
from ouroboros.operator.resources.trainingschedule import (
    MANUAL_TRIGGER_ANNOTATION,
    ConcurrencyPolicy,
    MissedRunPolicy,
    RunReference,
    TrainingScheduleConditionType,
    TrainingScheduleStatus,
    TriggerRecord,
    TriggerType,
)

TOO_MANY_MISSED = 100
"""More due times than this are reported with a Warning Event (CronJob's limit)."""
ON_TIME_SECONDS = 120
"""Without startingDeadlineSeconds, how late a time may start under missedRunPolicy Skip."""
MAX_REQUEUE_SECONDS = 3600.0
"""Longest sleep between two looks at a schedule (clock jumps, edited time zones)."""
FINISHED_PHASES = ("Succeeded", "Failed")


# ---------------------------------------------------------------------------
# Inputs and outputs


@dataclasses.dataclass(frozen=True)
class OwnedRun:
    """A run the schedule created, as observed (a TrainingRun, or a local execution)."""

    name: str
    uid: str | None = None
    trigger: TriggerType | None = None
    scheduled_time: datetime | None = None
    """The cron time it was started for, or when its trigger fired."""
    created: datetime | None = None
    phase: str | None = None
    """TrainingRun status.phase: Pending, Queued, Running, Suspended, Succeeded or Failed (None: not yet reconciled)."""
    completion_time: datetime | None = None

    @property
    def finished(self) -> bool:
        """Succeeded or Failed."""
        return self.phase in FINISHED_PHASES

    @property
    def started(self) -> datetime | None:
        """When the run began, for cooldowns and the data window."""
        return self.created or self.scheduled_time


@dataclasses.dataclass(frozen=True)
class Observations:
    """What the triggers observe; None where nothing could be read (the trigger then waits)."""

    new_games: int | None = None
    """Games committed to the replay store since `data_window_start(...)`."""
    score: float | None = None
    """The champion's watched metric (spec.triggers.performance.metric)."""


@dataclasses.dataclass(frozen=True)
class CreateRun:
    """Create this TrainingRun; "already exists" counts as done."""

    manifest: dict[str, Any]
    trigger: TriggerType
    scheduled_time: datetime

    @property
    def name(self) -> str:
        """The run's name."""
        return self.manifest["metadata"]["name"]


@dataclasses.dataclass(frozen=True)
class DeleteRun:
    """Delete an owned run (Replace, or past a history limit)."""

    name: str
    uid: str | None
    reason: str


@dataclasses.dataclass(frozen=True)
class SuspendSchedule:
    """Set the schedule's spec.suspend to true (stop strategy)."""

    message: str


Action = CreateRun | DeleteRun | SuspendSchedule


@dataclasses.dataclass
class Decision:
    """What to do and what to record."""

    status: TrainingScheduleStatus
    actions: list[Action] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)
    requeue_after: float | None = None
    """Look again after this many seconds even without events (the next cron time, a cooldown's end)."""
    missed: int = 0
    """Scheduled times this pass let go without a run: past startingDeadlineSeconds or skipped by
    missedRunPolicy, or forbidden by concurrencyPolicy (at most TOO_MANY_MISSED + 1 are enumerated)."""


# ---------------------------------------------------------------------------
# Observing


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def owned_run(raw: Mapping[str, Any]) -> OwnedRun:
    """An OwnedRun from a TrainingRun object as the API server returns it."""
    meta = raw.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    status = raw.get("status") or {}
    try:
        trigger = TriggerType(annotations.get(ANNOTATION_STARTED_BY))
    except ValueError:
        trigger = None
    return OwnedRun(
        name=meta.get("name", ""),
        uid=meta.get("uid"),
        trigger=trigger,
        scheduled_time=_parse_time(annotations.get(ANNOTATION_SCHEDULED_AT)),
        created=_parse_time(meta.get("creationTimestamp")),
        phase=status.get("phase"),
        completion_time=_parse_time(status.get("completionTime")),
    )


# ---------------------------------------------------------------------------
# Deciding


def trigger_time(status: TrainingScheduleStatus, runs: Iterable[OwnedRun], trigger: TriggerType) -> datetime | None:
    """When `trigger` last started a run: the status's record or the newest owned run it started."""
    times = [r.started for r in runs if r.trigger == trigger and r.started is not None]
    recorded = getattr(status.trigger_times, trigger.value)
    if recorded is not None:
        times.append(utc(recorded))
    return max(times) if times else None


def data_window_start(schedule: TrainingSchedule, runs: Iterable[OwnedRun]) -> datetime | None:
    """Since when new games count for the data trigger: the last run's start, else the schedule's creation."""
    times = [r.started for r in runs if r.started is not None]
    times += [utc(t) for t in vars(schedule.status.trigger_times).values() if t is not None]
    if times:
        return max(times)
    created = schedule.metadata.creation_timestamp
    return utc(created) if created else None


@dataclasses.dataclass
class _Pass:
    """Working state of one decision."""

    schedule: TrainingSchedule
    status: TrainingScheduleStatus
    runs: dict[str, OwnedRun]
    active: list[RunReference]
    now: datetime
    decision: Decision

    def start(self, trigger: TriggerType, at: datetime, reason: str, token: str | None = None,
              consume_when_forbidden: bool = False) -> bool:
        """Create a run for `trigger` unless concurrencyPolicy forbids it; whether the request is settled."""
        meta, spec = self.schedule.metadata, self.schedule.spec
        name = run_name(meta.name, trigger, at, token)
        if name in self.runs or any(a.name == name for a in self.active):
            return True  # created before (the operator restarted before recording it)
        if self.active and spec.concurrency_policy == ConcurrencyPolicy.FORBID:
            if consume_when_forbidden:
                self.decision.missed += 1
                busy = ", ".join(a.name for a in self.active)
                self.decision.events.append(Event(
                    "Normal", "RunSkipped",
                    f"{trigger.value} run for {_stamp(at)} skipped: concurrencyPolicy Forbid and {busy} still active"))
            return consume_when_forbidden
        if self.active and spec.concurrency_policy == ConcurrencyPolicy.REPLACE:
            for ref in self.active:
                self.decision.actions.append(DeleteRun(ref.name, ref.uid, f"replaced by {name}"))
                self.decision.events.append(Event(
                    "Normal", "RunReplaced", f"deleted active run {ref.name}: concurrencyPolicy Replace, {name} starts"))
            self.active = []
        self.decision.actions.append(CreateRun(run_manifest(self.schedule, name, trigger, at), trigger, at))
        self.active.append(RunReference(name=name, trigger=trigger, scheduled_time=at))
        self.status.last_trigger = TriggerRecord(type=trigger, reason=reason[:1024], at=at, run=name)
        setattr(self.status.trigger_times, trigger.value, at if trigger == TriggerType.CRON else self.now)
        self.decision.events.append(Event("Normal", "RunCreated", f"created run {name} ({trigger.value}: {reason})"[:1024]))
        return True


def _stamp(t: datetime) -> str:
    return utc(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fold_runs(p: _Pass) -> None:
    """Record runs that finished since the last pass: successes, failures in a row, the active list."""
    st = p.status
    previously_active = {a.name for a in st.active}
    ordered = sorted(p.runs.values(), key=lambda r: (r.completion_time or r.started or p.now, r.name))
    for run in ordered:
        if run.phase == "Succeeded" and run.completion_time is not None and (
            st.last_successful_time is None or run.completion_time > utc(st.last_successful_time)
        ):
            st.last_successful_time = run.completion_time
        if run.name not in previously_active or not run.finished:
            continue
        if run.phase == "Succeeded":
            st.consecutive_failures = 0
            p.decision.events.append(Event("Normal", "RunSucceeded", f"run {run.name} succeeded"))
        else:
            st.consecutive_failures += 1
            p.decision.events.append(Event(
                "Warning", "RunFailed", f"run {run.name} failed ({st.consecutive_failures} in a row)"))
    p.active = [
        RunReference(name=r.name, uid=r.uid, trigger=r.trigger, scheduled_time=r.scheduled_time)
        for r in sorted(p.runs.values(), key=lambda r: (r.started or p.now, r.name)) if not r.finished
    ]


def _cron(p: _Pass, tz: ZoneInfo) -> bool:
    """Start what the schedules make due; whether a run was started."""
    spec, st, now = p.schedule.spec, p.status, p.now
    if not spec.schedules:
        return False
    since = st.last_schedule_time or p.schedule.metadata.creation_timestamp or now
    due = times_between(spec.schedules, tz, utc(since), now, TOO_MANY_MISSED + 1)
    if not due:
        return False
    st.last_schedule_time = due[-1]
    if spec.suspend:
        return False
    if len(due) > TOO_MANY_MISSED:
        p.decision.events.append(Event(
            "Warning", "TooManyMissedTimes",
            f"more than {TOO_MANY_MISSED} scheduled times were missed since {_stamp(since)}; "
            f"missedRunPolicy {spec.missed_run_policy.value} applies to the newest"))
    deadline = spec.starting_deadline_seconds
    eligible = [t for t in due if deadline is None or (now - t).total_seconds() <= deadline]
    if spec.missed_run_policy == MissedRunPolicy.SKIP:
        window = deadline if deadline is not None else ON_TIME_SECONDS
        chosen = [due[-1]] if (now - due[-1]).total_seconds() <= window else []
    elif spec.missed_run_policy == MissedRunPolicy.RUN_ONCE:
        chosen = eligible[-1:]
    else:
        chosen = eligible[-spec.max_missed_runs:]
    missed = [t for t in due if t not in chosen]
    p.decision.missed += len(missed)
    if missed:
        shown = "" if len(due) > TOO_MANY_MISSED else f"{len(missed)} "
        p.decision.events.append(Event(
            "Normal", "MissedRunsSkipped",
            f"{shown}scheduled time(s) from {_stamp(missed[0])} to {_stamp(missed[-1])} not started "
            f"(missedRunPolicy {spec.missed_run_policy.value}"
            + (f", startingDeadlineSeconds {deadline}" if deadline is not None else "") + ")"))
    started = False
    for t in chosen:
        before = len(p.decision.actions)
        p.start(TriggerType.CRON, t, f"schedule at {t.astimezone(tz).isoformat()} ({spec.time_zone})",
                consume_when_forbidden=True)
        started = started or len(p.decision.actions) > before
    return started


def _cooldown_left(p: _Pass, trigger: TriggerType, seconds: int) -> float:
    last = trigger_time(p.status, p.runs.values(), trigger)
    return 0.0 if last is None else max(0.0, seconds - (p.now - last).total_seconds())


def _triggers(p: _Pass, observed: Observations) -> float | None:
    """Start at most one trigger run; seconds until a waiting trigger's cooldown ends, if one waits."""
    spec, st = p.schedule.spec, p.status
    waits: list[float] = []
    if spec.suspend:
        observed = Observations()  # a suspended schedule starts nothing; only a manual request is answered
    manual = p.schedule.metadata.annotations.get(MANUAL_TRIGGER_ANNOTATION)
    if manual and manual != st.manual_trigger and spec.suspend:
        st.manual_trigger = manual
        p.decision.events.append(Event(
            "Normal", "ManualTriggerIgnored", f"{MANUAL_TRIGGER_ANNOTATION}={manual} ignored: spec.suspend is true"))
    elif manual and manual != st.manual_trigger:
        left = _cooldown_left(p, TriggerType.MANUAL, spec.triggers.manual.cooldown_seconds)
        if left > 0:
            waits.append(left)
        elif p.start(TriggerType.MANUAL, p.now, f"annotation {MANUAL_TRIGGER_ANNOTATION}={manual}", token=manual):
            st.manual_trigger = manual
            return None
    data = spec.triggers.data
    if data is not None and observed.new_games is not None and observed.new_games >= data.min_new_games:
        left = _cooldown_left(p, TriggerType.DATA, data.cooldown_seconds)
        if left > 0:
            waits.append(left)
        elif p.start(TriggerType.DATA, p.now,
                     f"{observed.new_games} new games since the last run (threshold {data.min_new_games})"):
            return None
    perf = spec.triggers.performance
    if perf is not None and observed.score is not None and observed.score < perf.below:
        left = _cooldown_left(p, TriggerType.PERFORMANCE, perf.cooldown_seconds)
        if left > 0:
            waits.append(left)
        elif p.start(TriggerType.PERFORMANCE, p.now,
                     f"champion {perf.metric} {observed.score:g} is below {perf.below:g}"):
            return None
    return min(waits) if waits else None


def _history(p: _Pass) -> None:
    """Delete finished runs beyond the history limits, oldest first."""
    spec = p.schedule.spec
    deleted = {a.name for a in p.decision.actions if isinstance(a, DeleteRun)}
    for phase, limit in (("Succeeded", spec.successful_runs_history_limit), ("Failed", spec.failed_runs_history_limit)):
        done = sorted((r for r in p.runs.values() if r.phase == phase and r.name not in deleted),
                      key=lambda r: (r.completion_time or r.started or p.now, r.name))
        for run in done[: max(0, len(done) - limit)]:
            p.decision.actions.append(DeleteRun(run.name, run.uid, f"{phase.lower()} runs history limit {limit}"))
            p.decision.events.append(Event(
                "Normal", "RunDeleted", f"deleted {phase.lower()} run {run.name}: history limit {limit}"))


def _conditions(p: _Pass, invalid: str | None, stopped: str | None) -> None:
    T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
    spec, st = p.schedule.spec, p.status
    if invalid:
        ready = (F, "InvalidSchedule", invalid)
    elif st.next_schedule_time is not None:
        ready = (T, "Scheduled", f"next scheduled time {_stamp(st.next_schedule_time)}")
    else:
        ready = (T, "Scheduled", "no cron schedule; triggers only" if not spec.schedules else "suspended")
    if stopped:
        suspended = (T, "StopStrategy", stopped)
    elif spec.suspend:
        previous = conditions.get(st.conditions, TrainingScheduleConditionType.SUSPENDED.value)
        if previous is not None and previous.reason == "StopStrategy" and previous.status == T:
            suspended = (T, "StopStrategy", previous.message)
        else:
            suspended = (T, "SuspendedBySpec", "spec.suspend is true: no run starts")
    else:
        suspended = (F, "NotSuspended", "spec.suspend is false")
    st.conditions = conditions.merge(
        st.conditions,
        [conditions.Desired(TrainingScheduleConditionType.READY.value, *ready),
         conditions.Desired(TrainingScheduleConditionType.SUSPENDED.value, *suspended)],
        p.schedule.metadata.generation, p.now,
    )


def decide(schedule: TrainingSchedule, runs: Iterable[OwnedRun], observed: Observations, now: datetime) -> Decision:
    """The schedule's new status and what to do, given its owned runs, the trigger observations and `now`."""
    now = utc(now).replace(microsecond=0)
    spec, meta = schedule.spec, schedule.metadata
    old = schedule.status
    st = old.model_copy(deep=True)
    p = _Pass(schedule, st, {r.name: r for r in runs}, [], now, Decision(status=st))
    _fold_runs(p)
    invalid = problem(spec.schedules, spec.time_zone, now)
    stopped = None
    wait = None
    if invalid is None:
        tz = zone(spec.time_zone)
        strategy = spec.stop_strategy
        if strategy is not None and st.consecutive_failures >= strategy.max_consecutive_failures:
            stopped = (f"{st.consecutive_failures} runs failed in a row (stopStrategy.maxConsecutiveFailures "
                       f"{strategy.max_consecutive_failures}): spec.suspend set to true; set it to false to resume")
            if not spec.suspend:  # (already true when a retried pass finds its own patch applied)
                p.decision.actions.append(SuspendSchedule(stopped))
                p.decision.events.append(Event("Warning", "Stopped", stopped))
            st.consecutive_failures = 0
        started = _cron(p, tz) if stopped is None else False
        if stopped is None and not started:
            wait = _triggers(p, observed)
        st.next_schedule_time = None if spec.suspend or stopped else next_time(spec.schedules, tz, now)
    else:
        st.next_schedule_time = None
        was = conditions.get(old.conditions, TrainingScheduleConditionType.READY.value)
        if was is None or was.message != invalid:
            p.decision.events.append(Event("Warning", "InvalidSchedule", invalid))
    _history(p)
    st.active = p.active
    _conditions(p, invalid, stopped)
    st.observed_generation = meta.generation
    delays = [d for d in (wait,) if d is not None]
    if st.next_schedule_time is not None:
        delays.append(max(0.0, (st.next_schedule_time - now).total_seconds()))
    p.decision.requeue_after = min([*delays, MAX_REQUEUE_SECONDS])
    return p.decision


def decide_invalid(status: TrainingScheduleStatus, generation: int, error: str, now: datetime) -> Decision:
    """The schedule's spec failed the models' validation in the operator (the API server let it through)."""
    st = status.model_copy(deep=True)
    message = f"spec is invalid: {error}"[:1024]
    was = conditions.get(st.conditions, TrainingScheduleConditionType.READY.value)
    st.conditions = conditions.merge(
        st.conditions,
        [conditions.Desired(TrainingScheduleConditionType.READY.value, ConditionStatus.FALSE, "InvalidSchedule",
                            message)],
        generation, utc(now),
    )
    st.next_schedule_time = None
    st.observed_generation = generation
    repeat = was is not None and was.message == message and status.observed_generation == generation
    return Decision(status=st, events=[] if repeat else [Event("Warning", "InvalidSchedule", message)])
