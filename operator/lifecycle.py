"""The TrainingRun state machine, as a pure function.

`decide(run, jobs, now, settings)` takes a run (spec and the status last
written) and the phase Jobs observed in the cluster, and returns the new
status, the actions that bring the cluster closer to it (create the ConfigMap
and a Job, suspend or resume a Job, delete an expired run) and the Events to
post. The handlers only read, call this, and write.

Restart safety comes from deriving everything from what exists: a phase's
attempt count is the number of its Jobs (names are deterministic, so creating
one twice is a no-op), a finished phase's result is re-read from its pod until
the status records it, and events are computed from the difference between
the old and the new status, so a transition the operator crashed in the middle
of is still reported once the status catches up.

A run labelled for Kueue (``kueue.x-k8s.io/queue-name``, see
`builders.kueue`) has its phase Jobs created suspended, and from then on only
Kueue sets their ``spec.suspend``: a suspended one is Queued (the Running
condition says why, from its Workload when readable), a resumed one Running,
and one suspended again after running (preempted) is Queued once more, with
the same Job, so neither a failure nor a retry. The run's own ``spec.suspend``
deactivates the Job's Workload (``spec.active: false``) instead of touching
the Job.

The run's Champion is observed too (the handler reads it and passes it in):
before the first Job, a run whose ``spec.champion`` names no Champion waits
in Pending with a condition naming the field (it starts once the Champion
exists), and one whose Champion plays another game fails at once; the
Champion's approval policy, and its gate for a run without ``spec.promotion``,
go into the run config when the first phase starts.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ouroboros.contract.promotion import GateStatistics, GateVerdict
from ouroboros.contract.vocabulary import ApprovalMode, Metric
from ouroboros.operator import conditions
from ouroboros.operator.attempts import MESSAGE_LIMIT, attempt_failure, parse_result
from ouroboros.operator.builders import kueue, learner, manifests, names
from ouroboros.operator.observe import JobState, ObservedJob
from ouroboros.operator.resources import (
    Champion,
    ConditionStatus,
    PhaseResult,
    PhaseState,
    PhaseStatus,
    PromotionDecision,
    RunConditionType,
    RunPhase,
    TrainingRun,
    TrainingRunStatus,
)
from ouroboros.operator.resources.champion import ChampionPolicy
from ouroboros.operator.resources.trainingrun import CandidateStatus, PromotionStatus
from ouroboros.operator.settings import JobSettings

FINISHED = (RunPhase.SUCCEEDED, RunPhase.FAILED)


@dataclasses.dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the run."""

    type: str
    """Normal or Warning."""
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class CreateObject:
    """Create this manifest; "already exists" counts as done."""

    manifest: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SetJobSuspended:
    """Set a Job's spec.suspend."""

    name: str
    suspend: bool


@dataclasses.dataclass(frozen=True)
class DeleteRun:
    """Delete the run (its TTL after finishing has expired); children follow by ownerReference."""


@dataclasses.dataclass(frozen=True)
class SetWorkloadActive:
    """Set a Kueue Workload's spec.active (false: Kueue evicts and suspends its Job and keeps it
    out of the queue; true: it queues again)."""

    name: str
    active: bool


Action = CreateObject | SetJobSuspended | SetWorkloadActive | DeleteRun


@dataclasses.dataclass
class Decision:
    """What to do and what to record."""

    status: TrainingRunStatus
    actions: list[Action] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)
    requeue_after: float | None = None
    """Reconcile again after this many seconds even without events (TTL)."""


@dataclasses.dataclass
class _Outcome:
    index: int
    failure: tuple[str, str] | None = None
    succeeded: bool = False
    held: bool = False
    """The phase is due to start but ``blocked`` holds it (no Job created)."""
    queued: tuple[str, str] | None = None
    """(reason, message) while Kueue keeps the phase's Job suspended: Queued or Preempted."""


# ---------------------------------------------------------------------------
# Deciding


def _start(run: TrainingRun, index: int, attempt: int, settings: JobSettings,
           policy: ChampionPolicy | None = None) -> list[Action]:
    """The ConfigMap (a no-op after the first phase: it is immutable, so the Champion's policy as the
    run started stays in force), a learner group's headless Service, and the Job of one attempt."""
    approval = policy.approval if policy is not None else ApprovalMode.AUTOMATIC
    actions: list[Action] = [
        CreateObject(manifests.config_map(run, approval, policy.gate if policy is not None else None))]
    if learner.replicas(run, run.spec.phases[index].name) > 1:  # names the group's pods: before its Job
        actions.append(CreateObject(learner.headless_service(run, settings, manifests.owner_reference(run))))
    actions.append(CreateObject(manifests.phase_job(run, index, attempt, settings)))
    return actions


def _record_success(st: TrainingRunStatus, ps: PhaseStatus, job: ObservedJob, result: PhaseResult, now: datetime) -> None:
    ps.state = PhaseState.SUCCEEDED
    ps.job = job.name
    ps.completion_time = job.completion_time or now
    ps.start_time = ps.start_time or job.start_time
    ps.metrics = dict(result.metrics)
    ps.artifacts = list(result.artifacts)
    ps.placeholder = result.placeholder
    ps.reason = None
    ps.message = result.message
    if result.candidate is not None:
        st.candidate = CandidateStatus(phase=result.phase, artifact=result.candidate.artifact)
    if result.gate is not None:
        st.promotion = _promotion_status(result.gate, now)


_DECISIONS = {
    GateVerdict.PROMOTE: (PromotionDecision.PROMOTED, "GatePassed"),
    GateVerdict.REJECT: (PromotionDecision.REJECTED, "GateRejected"),
    GateVerdict.INCONCLUSIVE: (PromotionDecision.INCONCLUSIVE, "GateInconclusive"),
}


def _promotion_status(gate: GateStatistics, now: datetime) -> PromotionStatus:
    """The run's promotion status from the evaluate phase's gate statistics (its verdict already
    carried out in the registry by the phase: PROMOTE means the candidate is champion)."""
    decision, reason = _DECISIONS.get(gate.verdict, (PromotionDecision.PENDING, "GateNotRun"))
    if gate.awaiting_approval and decision is PromotionDecision.PROMOTED:
        decision, reason = PromotionDecision.PENDING, "AwaitingApproval"
    elif gate.first_champion and decision is PromotionDecision.PROMOTED:
        reason = "FirstChampion"
    message = "; ".join(gate.reasons)[:MESSAGE_LIMIT] or None
    return PromotionStatus(decision=decision, reason=reason, message=message, statistics=gate, decided_at=now)


def _advance(
    run: TrainingRun, st: TrainingRunStatus, jobs: dict[int, list[ObservedJob]], now: datetime, settings: JobSettings,
    blocked: bool = False,
    policy: ChampionPolicy | None = None,
    preempted: bool = False,
) -> tuple[list[Action], _Outcome]:
    """Walk the phases in order to the first unfinished one and decide what it needs; with
    ``blocked``, a phase that is due to start (or retry) waits instead. ``preempted``: the status
    last written said Kueue had preempted the current phase's Job."""
    spec = run.spec
    actions: list[Action] = []
    for i, pspec in enumerate(spec.phases):
        ps = st.phases[i]
        if ps.state == PhaseState.SUCCEEDED:
            continue
        if ps.state == PhaseState.FAILED:
            return actions, _Outcome(i, failure=(ps.reason or "PhaseError", ps.message or ""))
        attempts = jobs.get(i, [])
        latest = attempts[-1] if attempts else None
        if latest is not None:
            ps.attempts = max(ps.attempts, latest.attempt + 1)
            ps.job = latest.name
            ps.start_time = ps.start_time or attempts[0].start_time or now
        if latest is None and ps.attempts == 0:
            if spec.suspend or blocked:
                ps.state = PhaseState.PENDING
                return actions, _Outcome(i, held=blocked and not spec.suspend)
            actions += _start(run, i, 0, settings, policy)
            ps.attempts, ps.job, ps.state = 1, names.job_name(run.metadata.name, i, pspec.name), _started_state(run)
            ps.start_time = ps.start_time or now
            return actions, _Outcome(i, queued=_created_queued(run, ps))
        if latest is not None and latest.state in (JobState.ACTIVE, JobState.SUSPENDED):
            earlier = attempt_failure(attempts[-2], pspec.name) if len(attempts) > 1 else None
            if earlier:
                ps.reason, ps.message = earlier
            if latest.queue_name:
                kueue_actions, queued = _follow_kueue(spec.suspend, ps, latest, preempted)
                return actions + kueue_actions, _Outcome(i, queued=queued)
            if spec.suspend:
                ps.state = PhaseState.SUSPENDED
                if latest.state == JobState.ACTIVE:
                    actions.append(SetJobSuspended(latest.name, True))
            else:
                ps.state = PhaseState.RUNNING
                if latest.state == JobState.SUSPENDED:
                    actions.append(SetJobSuspended(latest.name, False))
            return actions, _Outcome(i)
        if latest is not None:
            failure = attempt_failure(latest, pspec.name)
            if failure is None:
                _record_success(st, ps, latest, parse_result(latest, pspec.name), now)
                continue
            attempt = latest.attempt
        else:  # a Job we started is gone (deleted by hand) before it finished
            attempt = ps.attempts - 1
            failure = ("JobDeleted", f"the Job of attempt {attempt + 1} was deleted before it finished")
        ps.reason, ps.message = failure
        if attempt < spec.backoff_limit:
            if spec.suspend or blocked:
                ps.state = PhaseState.SUSPENDED if spec.suspend else PhaseState.PENDING
                return actions, _Outcome(i, held=blocked and not spec.suspend)
            actions += _start(run, i, attempt + 1, settings, policy)
            ps.attempts = attempt + 2
            ps.job = names.job_name(run.metadata.name, i, pspec.name, attempt + 1)
            ps.state = _started_state(run)
            return actions, _Outcome(i, queued=_created_queued(run, ps))
        ps.state = PhaseState.FAILED
        ps.completion_time = (latest.completion_time if latest else None) or now
        return actions, _Outcome(i, failure=failure)
    return actions, _Outcome(len(spec.phases) - 1, succeeded=True)


def _started_state(run: TrainingRun) -> PhaseState:
    """The state of a phase whose Job was just created: Queued when Kueue decides when it runs."""
    return PhaseState.QUEUED if kueue.queue_name(run.metadata.labels) else PhaseState.RUNNING


def _created_queued(run: TrainingRun, ps: PhaseStatus) -> tuple[str, str] | None:
    """The Queued (reason, message) of a phase whose Job was just created suspended for Kueue."""
    queue = kueue.queue_name(run.metadata.labels)
    if queue is None:
        return None
    return "Queued", f"Job {ps.job} waits in Kueue LocalQueue {queue!r} for admission"


def _follow_kueue(suspend: bool, ps: PhaseStatus, job: ObservedJob,
                  preempted: bool) -> tuple[list[Action], tuple[str, str] | None]:
    """The phase's state from a Job that Kueue manages, and the (reason, message) while it is queued.

    Kueue alone sets the Job's spec.suspend (it would undo a change), so the
    run's spec.suspend deactivates the Job's Workload instead, and resuming the
    run reactivates only a Workload the operator deactivated. A Job suspended
    again after it ran was preempted (or evicted) by Kueue: the same Job waits
    to be admitted again, so it is neither a failure nor a retry.
    """
    wl = job.workload
    if suspend:
        ps.state = PhaseState.SUSPENDED
        if wl is not None and wl.active:
            return [SetWorkloadActive(wl.name, False)], None
        return [], None
    actions: list[Action] = []
    if wl is not None and not wl.active and wl.deactivated_by_run:
        actions.append(SetWorkloadActive(wl.name, True))
    if job.state == JobState.ACTIVE:
        ps.state = PhaseState.RUNNING
        return actions, None
    queue = job.queue_name
    if wl is not None and wl.evicted is not None and wl.evicted[0] == "Deactivated" and wl.active:
        reason, detail = "Queued", "requeued after its Workload was deactivated"
    elif wl is not None and wl.evicted is not None:
        reason = "Preempted" if wl.evicted[0] == "Preempted" else "Evicted"
        detail = f"Kueue evicted it ({wl.evicted[0]}): {wl.evicted[1]}"
    elif ps.state == PhaseState.RUNNING or (preempted and ps.state == PhaseState.QUEUED):
        reason, detail = "Preempted", "Kueue suspended it after it ran (preempted or evicted)"
    else:
        reason, detail = "Queued", "not admitted yet"
    if wl is not None and not wl.active and not wl.deactivated_by_run:
        reason, detail = "WorkloadInactive", f"its Workload {wl.name} is deactivated (spec.active is false)"
    elif wl is not None and wl.pending and wl.pending not in detail:
        detail += f"; {wl.pending}"
    ps.state = PhaseState.QUEUED
    return actions, (reason, f"Job {job.name} waits in Kueue LocalQueue {queue!r}: {detail}"[:MESSAGE_LIMIT])


def _best_win_rate(st: TrainingRunStatus) -> float | None:
    rates = [v for ps in st.phases for k, v in ps.metrics.items() if k == Metric.WIN_RATE and 0 <= v <= 1]
    return max(rates) if rates else None


def _desired_conditions(st: TrainingRunStatus, run: TrainingRun, failure: tuple[str, str] | None,
                        stuck: tuple[str, str] | None = None,
                        queued: tuple[str, str] | None = None) -> list[conditions.Desired]:
    """The four conditions; ``stuck`` is the (reason, message) of a running phase's Job whose pods
    cannot be created, so `kubectl describe` says why nothing happens instead of "running";
    ``queued`` is why Kueue holds the current phase's Job (Queued, Preempted ...)."""
    T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
    n = len(run.spec.phases)
    i = st.current_phase_index or 0
    where = f"phase {st.current_phase.value if st.current_phase else '?'} ({i + 1}/{n})"
    job = st.phases[i].job if i < len(st.phases) else None
    phase = st.phase
    running = {
        RunPhase.RUNNING: (T, "PhaseRunning", f"{where} is running as Job {job}"),
        RunPhase.PENDING: (F, "Pending", f"{where} has not started"),
        RunPhase.QUEUED: (F, queued[0] if queued else "Queued",
                          f"{where}: {queued[1] if queued else 'its Job waits in its Kueue LocalQueue'}"),
        RunPhase.SUSPENDED: (F, "Suspended", f"spec.suspend is true; {where} is on hold"),
        RunPhase.SUCCEEDED: (F, "RunSucceeded", "the run has finished"),
        RunPhase.FAILED: (F, "RunFailed", "the run has finished"),
    }[phase]
    if stuck is not None and phase not in FINISHED and phase != RunPhase.SUSPENDED:
        running = (running[0], stuck[0], f"{where}: {stuck[1]}")
    if phase == RunPhase.SUSPENDED:
        suspended = (T, "SuspendedBySpec", f"spec.suspend is true; {where} is on hold")
    elif phase in FINISHED:
        suspended = (F, "RunFinished", "the run has finished")
    else:
        suspended = (F, "NotSuspended", "spec.suspend is false")
    if phase == RunPhase.SUCCEEDED:
        succeeded = (T, "AllPhasesSucceeded", f"all {n} phases succeeded")
    elif phase == RunPhase.FAILED:
        succeeded = (F, "RunFailed", f"{where} failed")
    else:
        succeeded = (U, "InProgress", f"{where} of {n} phases")
    if phase == RunPhase.FAILED and failure:
        reason, message = failure
        attempts = st.phases[i].attempts if i < len(st.phases) else 0
        failed = (T, "BackoffLimitExceeded" if attempts > 1 else reason,
                  f"{where} failed after {attempts} attempt(s) ({reason}): {message}")
    else:
        failed = (F, "NoFailure", "no phase has failed for good")
    return [
        conditions.Desired(RunConditionType.RUNNING.value, *running),
        conditions.Desired(RunConditionType.SUSPENDED.value, *suspended),
        conditions.Desired(RunConditionType.SUCCEEDED.value, *succeeded),
        conditions.Desired(RunConditionType.FAILED.value, *failed),
    ]


def _events(old: TrainingRunStatus, new: TrainingRunStatus, run: TrainingRun) -> list[Event]:
    """Events for every transition between the recorded status and the new one."""
    n = len(run.spec.phases)
    out = []
    for i, ps in enumerate(new.phases):
        before = old.phases[i] if i < len(old.phases) and old.phases[i].name == ps.name else PhaseStatus(name=ps.name)
        label = f"phase {ps.name.value} ({i + 1}/{n})"
        if ps.attempts > before.attempts:
            if before.attempts == 0 and ps.attempts == 1:
                out.append(Event("Normal", "PhaseStarted", f"started {label} as Job {ps.job}"))
            else:
                out.append(Event(
                    "Warning", "PhaseRetrying",
                    f"{label} attempt {ps.attempts - 1} failed ({ps.reason}): {ps.message}; "
                    f"started attempt {ps.attempts} of {run.spec.backoff_limit + 1} as Job {ps.job}",
                ))
        if ps.state != before.state and ps.state == PhaseState.SUCCEEDED:
            detail = ", ".join(f"{k}={v:g}" for k, v in sorted(ps.metrics.items())) or "no metrics"
            note = " (placeholder: nothing was trained)" if ps.placeholder else ""
            out.append(Event("Normal", "PhaseSucceeded", f"{label} succeeded in Job {ps.job}: {detail}{note}"))
        if ps.state != before.state and ps.state == PhaseState.FAILED:
            out.append(Event("Warning", "PhaseFailed", f"{label} failed ({ps.reason}): {ps.message}"))
        if ps.state != before.state and before.state == PhaseState.QUEUED and ps.state == PhaseState.RUNNING:
            out.append(Event("Normal", "Admitted", f"Kueue admitted Job {ps.job} of {label}: it runs"))
    before = conditions.get(old.conditions, RunConditionType.RUNNING.value)
    after = conditions.get(new.conditions, RunConditionType.RUNNING.value)
    if after is not None and after.reason in STUCK_REASONS and (before is None or before.reason != after.reason):
        out.append(Event("Warning", after.reason, after.message))
    if (new.phase == RunPhase.QUEUED and after is not None
            and (old.phase != RunPhase.QUEUED or before is None or before.reason != after.reason)):
        out.append(Event("Normal" if after.reason == "Queued" else "Warning", after.reason, after.message))
    if old.phase != new.phase:
        if new.phase == RunPhase.SUSPENDED:
            out.append(Event("Normal", "Suspended", "spec.suspend is true: no new phase starts, the running one is suspended"))
        elif old.phase == RunPhase.SUSPENDED and new.phase in (RunPhase.RUNNING, RunPhase.PENDING, RunPhase.QUEUED):
            out.append(Event("Normal", "Resumed", "spec.suspend is false: the run continues"))
        elif new.phase == RunPhase.SUCCEEDED:
            out.append(Event("Normal", "Succeeded", f"all {n} phases succeeded"))
        elif new.phase == RunPhase.FAILED:
            failed = conditions.get(new.conditions, RunConditionType.FAILED.value)
            out.append(Event("Warning", "Failed", failed.message if failed else "the run failed"))
    return out


def awaiting_approval(status: TrainingRunStatus) -> bool:
    """Whether the run's candidate passed its gate and waits for a person's decision on its Champion."""
    p = status.promotion
    return p is not None and p.decision is PromotionDecision.PENDING and p.reason == "AwaitingApproval"


def _resolve_approval(run: TrainingRun, st: TrainingRunStatus, champion: Champion | None,
                      now: datetime) -> list[Event]:
    """Record the approval or rejection of a pending candidate once the Champion's history shows it."""
    if not awaiting_approval(st) or champion is None or st.promotion.statistics is None:
        return []
    candidate = st.promotion.statistics.candidate
    entry = next((e for e in champion.status.history if e.version == candidate and e.run == run.metadata.name
                  and e.reason.value in ("Initial", "Promoted", "Rejected")), None)
    if entry is None:
        return []
    who = entry.by or "unknown"
    if entry.reason.value == "Rejected":
        decision, reason, text = PromotionDecision.REJECTED, "RejectedByApprover", f"rejected by {who}"
    else:
        decision, reason, text = PromotionDecision.PROMOTED, "Approved", f"approved by {who}"
    st.promotion = st.promotion.model_copy(update={"decision": decision, "reason": reason, "message": text,
                                                   "decided_at": entry.promoted_at or now})
    return [Event("Normal" if decision is PromotionDecision.PROMOTED else "Warning", reason,
                  f"candidate {candidate}: {text}")]


def champion_problem(run: TrainingRun, champion: Champion | None) -> tuple[str, str] | None:
    """(reason, message) when the run cannot challenge ``champion`` (None: it does not exist), else None."""
    spec, meta = run.spec, run.metadata
    if champion is None:
        return ("ChampionNotFound", f"spec.champion: no Champion {spec.champion!r} in namespace "
                f"{meta.namespace!r}; the run starts once it exists")
    theirs, ours = champion.spec.game.key, spec.game.key
    if theirs != ours:
        return ("ChampionGameMismatch", f"spec.champion: Champion {spec.champion!r} plays {theirs}, "
                f"but spec.game is {ours}")
    return None


def _refuse(run: TrainingRun, old: TrainingRunStatus, st: TrainingRunStatus, problem: tuple[str, str],
            now: datetime) -> Decision:
    """A run that has started nothing and cannot challenge its champion: waits (missing) or fails (other game)."""
    reason, message = problem
    T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
    generation = run.metadata.generation
    if reason == "ChampionNotFound":
        st.phase = RunPhase.PENDING
        desired = [
            conditions.Desired(RunConditionType.RUNNING.value, F, reason, message),
            conditions.Desired(RunConditionType.SUSPENDED.value, F, "NotSuspended", "spec.suspend is false"),
            conditions.Desired(RunConditionType.SUCCEEDED.value, U, reason, message),
            conditions.Desired(RunConditionType.FAILED.value, F, "NoFailure", "no phase has failed for good"),
        ]
    else:
        st.phase = RunPhase.FAILED
        st.completion_time = st.completion_time or now
        desired = [
            conditions.Desired(RunConditionType.RUNNING.value, F, "RunFailed", "the run has finished"),
            conditions.Desired(RunConditionType.SUSPENDED.value, F, "RunFinished", "the run has finished"),
            conditions.Desired(RunConditionType.SUCCEEDED.value, F, "RunFailed", message),
            conditions.Desired(RunConditionType.FAILED.value, T, reason, message),
        ]
    st.conditions = conditions.merge(st.conditions, desired, generation, now)
    st.observed_generation = generation
    before = conditions.get(old.conditions, RunConditionType.RUNNING.value if reason == "ChampionNotFound"
                            else RunConditionType.FAILED.value)
    events = [] if before is not None and before.reason == reason else [Event("Warning", reason, message)]
    decision = Decision(status=st, events=events)
    _expire(run, st, now, decision)
    return decision


STUCK_REASONS = ("PodsNotCreated", "StorageUnavailable")
"""Running-condition reasons that mean the run waits on something outside it (a Warning Event each)."""
HOLD_REQUEUE_SECONDS = 30.0


def decide(run: TrainingRun, jobs: list[ObservedJob], now: datetime, settings: JobSettings,
           blocked: tuple[str, str] | None = None, *, champion: Champion | None) -> Decision:
    """The new status of `run` and what to do, given its observed phase Jobs and its Champion
    (None: no Champion of that name exists).

    ``blocked`` is (reason, message) when something outside the run keeps its next phase
    from starting (``StorageUnavailable``: the PersistentVolumeClaim the phases share is
    missing): no Job is created, the Running condition says why, and the run looks again
    in HOLD_REQUEUE_SECONDS."""
    spec, meta = run.spec, run.metadata
    old = run.status
    st = old.model_copy(deep=True)
    st.phases = [
        st.phases[i] if i < len(st.phases) and st.phases[i].name == p.name else PhaseStatus(name=p.name)
        for i, p in enumerate(spec.phases)
    ]
    if st.phase in FINISHED:  # final: only acknowledge the generation (e.g. a late suspend edit)
        st.conditions = [c.model_copy(update={"observed_generation": meta.generation}) for c in st.conditions]
        st.observed_generation = meta.generation
        decision = Decision(status=st, events=_resolve_approval(run, st, champion, now))
        _expire(run, st, now, decision)
        return decision
    by_index: dict[int, list[ObservedJob]] = {}
    for job in jobs:
        if job.index < len(spec.phases) and job.name == names.job_name(
            meta.name, job.index, spec.phases[job.index].name, job.attempt
        ):
            by_index.setdefault(job.index, []).append(job)
    started = bool(by_index) or any(ps.attempts for ps in st.phases)
    if not started and (problem := champion_problem(run, champion)) is not None:
        return _refuse(run, old, st, problem, now)
    policy = champion.spec.policy if champion is not None else None
    before = conditions.get(old.conditions, RunConditionType.RUNNING.value)
    preempted = before is not None and before.reason in ("Preempted", "Evicted")
    actions, outcome = _advance(run, st, by_index, now, settings, blocked is not None, policy, preempted)
    st.current_phase_index = outcome.index
    st.current_phase = spec.phases[outcome.index].name
    started = any(ps.attempts for ps in st.phases)
    if outcome.failure:
        st.phase = RunPhase.FAILED
    elif outcome.succeeded:
        st.phase = RunPhase.SUCCEEDED
    elif spec.suspend:
        st.phase = RunPhase.SUSPENDED
    elif outcome.queued:
        st.phase = RunPhase.QUEUED
    else:
        st.phase = RunPhase.RUNNING if started else RunPhase.PENDING
    if started and st.start_time is None:
        st.start_time = min((ps.start_time for ps in st.phases if ps.start_time), default=now)
    if st.phase in FINISHED:
        st.completion_time = now
    st.best_win_rate = _best_win_rate(st)
    stuck = blocked if outcome.held else next(
        ((("PodsNotCreated", f"Job {j.name} cannot create its pods ({j.problem[0]}): {j.problem[1]}"))
         for j in by_index.get(outcome.index, ()) if j.state is JobState.ACTIVE and j.problem), None)
    st.conditions = conditions.merge(
        st.conditions, _desired_conditions(st, run, outcome.failure, stuck, outcome.queued), meta.generation, now
    )
    st.observed_generation = meta.generation
    decision = Decision(status=st, actions=actions, events=_events(old, st, run))
    if outcome.held or st.phase == RunPhase.QUEUED:  # look again: a Workload's message changes without a Job event
        decision.requeue_after = HOLD_REQUEUE_SECONDS
    _expire(run, st, now, decision)
    return decision


def _expire(run: TrainingRun, st: TrainingRunStatus, now: datetime, decision: Decision) -> None:
    """Delete a finished run once ttlSecondsAfterFinished has passed, else ask to be woken then."""
    ttl = run.spec.ttl_seconds_after_finished
    if ttl is None or st.phase not in FINISHED or st.completion_time is None:
        return
    left = (st.completion_time - now).total_seconds() + ttl
    if left <= 0:
        decision.actions.append(DeleteRun())
    else:
        decision.requeue_after = left


def decide_invalid(status: TrainingRunStatus, generation: int, error: str, now: datetime) -> Decision:
    """The run's spec failed validation in the operator (the API server let it through)."""
    st = status.model_copy(deep=True)
    if st.phase in FINISHED and st.observed_generation == generation:
        return Decision(status=st)
    was = st.phase
    st.phase = RunPhase.FAILED
    st.completion_time = st.completion_time or now
    T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
    message = f"spec is invalid: {error}"[:MESSAGE_LIMIT]
    st.conditions = conditions.merge(
        st.conditions,
        [
            conditions.Desired(RunConditionType.RUNNING.value, F, "RunFailed", "the run has finished"),
            conditions.Desired(RunConditionType.SUSPENDED.value, F, "RunFinished", "the run has finished"),
            conditions.Desired(RunConditionType.SUCCEEDED.value, F, "RunFailed", message),
            conditions.Desired(RunConditionType.FAILED.value, T, "InvalidSpec", message),
        ],
        generation,
        now,
    )
    st.observed_generation = generation
    events = [Event("Warning", "InvalidSpec", message)] if was != RunPhase.FAILED else []
    return Decision(status=st, events=events)
