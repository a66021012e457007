"""The Champion controller's decision, as a pure function (the model is ``lifecycle.decide``).

Source of truth: the model registry in the artifact store
(``champions/<game>.json``, written atomically under a store lock by the
trainer). The operator never writes it and never reads it directly: every
registry operation is a short trainer Job (``ouro champion job OPERATION``,
built by ``builders.registry_jobs``) that reports the pointer after its work
(``contract.champion.RegistryReport``) in its termination message.
:func:`decide` folds every finished Job's report into the status (the report
with the highest registry generation sets the version; histories are merged),
then picks at most one new Job to run:

1. ``sync`` once for a new Champion, and once for each TrainingRun whose
   evaluate phase promoted a candidate the status has not seen yet;
2. ``pin``/``unpin`` while ``spec.pinnedVersion`` and the registry's pin differ;
3. ``promote`` when the approval annotation names the pending run (a
   rejection touches no store: it is recorded in the history at once);
4. ``check`` after a promotion that replaced a champion, when
   ``policy.postPromotionCheck.games`` > 0 (the Job rolls the registry back
   itself when the new champion scores under the threshold), both versions
   playing as ``policy.gate`` plays them (``player``, ``moveBudgetMs``,
   ``maxVisits``, ``endgameShare``): the way they are served.

Crash safety comes from names: each Job's name is a hash of its trigger (the
run's uid, the Champion's generation and pinned version, the promoted version
and time), so a restarted operator finds the Job it created instead of
running it twice, and a finished Job's report is folded again on every
reconcile until the status shows it. Events are computed from the old and new
status, as in ``lifecycle``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ouroboros.contract.champion import ChampionOperation, RegistryRecord, RegistryReport
from ouroboros.contract.promotion import GatePlayer, GateStatistics, GateVerdict, PromotionSpec
from ouroboros.operator import conditions
from ouroboros.operator.builders import names, registry_jobs
from ouroboros.operator.observe import JobState
from ouroboros.operator.resources import Champion, ConditionStatus
from ouroboros.operator.resources.champion import (
    ChampionArtifact,
    ChampionConditionType,
    ChampionStatus,
    CheckStatus,
    HistoryEntry,
    HistoryReason,
    PendingCandidate,
)
from ouroboros.operator.settings import JobSettings

ANNOTATION_APPROVE = "ouroboros.dev/approve"
"""Set to the name of the pending run to promote its candidate (``ouro champion approve``)."""
ANNOTATION_REJECT = "ouroboros.dev/reject"
"""Set to the name of the pending run to refuse its candidate (``ouro champion reject``)."""
ANNOTATION_BY = "ouroboros.dev/decided-by"
"""Who approved or rejected (recorded in the history)."""
MESSAGE_LIMIT = 1024
OPERATOR = "ouroboros-operator"

_REASONS = {"rollback": HistoryReason.ROLLED_BACK, "pin": HistoryReason.PINNED, "unpin": HistoryReason.UNPINNED}


@dataclasses.dataclass(frozen=True)
class ObservedRun:
    """What the controller needs of a TrainingRun that challenges this champion."""

    name: str
    uid: str
    decision: str | None
    """``status.promotion.decision`` (Promoted, Pending, Rejected ...)."""
    statistics: GateStatistics | None = None
    decided_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class ObservedRegistryJob:
    """One registry Job of this champion and what it reported."""

    name: str
    operation: ChampionOperation
    state: JobState
    report: RegistryReport | None = None
    failure: str | None = None
    """Why it failed, or why its result is unreadable."""


@dataclasses.dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the Champion."""

    type: str
    reason: str
    message: str


@dataclasses.dataclass(frozen=True)
class CreateJob:
    """Create this registry Job; "already exists" counts as done."""

    manifest: dict[str, Any]


@dataclasses.dataclass
class Decision:
    """The Champion's new status, the Job to create (if any), and Events to post."""

    status: ChampionStatus
    actions: list[CreateJob] = dataclasses.field(default_factory=list)
    events: list[Event] = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------
# Folding reports into the status


def _entry(record: RegistryRecord, current: str | None, sha256: str | None, uri: str | None) -> HistoryEntry:
    if record.action == "promote":
        reason = HistoryReason.INITIAL if record.previous is None else HistoryReason.PROMOTED
    else:
        reason = _REASONS.get(record.action, HistoryReason.PROMOTED)
    verdict = record.verdict if record.verdict in {v.value for v in GateVerdict} else None
    statistics = None
    if verdict is not None or record.win_rate is not None or record.elo is not None:
        def unit(x: float | None) -> float | None:
            return None if x is None else min(1.0, max(0.0, x))
        statistics = GateStatistics(verdict=verdict, win_rate=unit(record.win_rate),
                                    win_rate_lower=unit(record.win_rate_lower),
                                    win_rate_upper=unit(record.win_rate_upper), elo=record.elo,
                                    elo_lower=record.elo_lower, elo_upper=record.elo_upper)
    artifact = None
    if record.version is not None and record.version == current and sha256 and uri:
        artifact = ChampionArtifact(uri=uri, sha256=sha256)
    message = record.reason[:MESSAGE_LIMIT] or None
    if record.verdict == "manual":
        message = f"manual: {message}" if message else "manual"
    return HistoryEntry(version=record.version or "", promoted_at=record.at, run=record.run, artifact=artifact,
                        statistics=statistics, reason=reason, message=message, previous=record.previous,
                        by=record.by or None)


def _key(entry: HistoryEntry) -> tuple[str, str, str]:
    return (entry.version, entry.promoted_at.isoformat(), entry.reason.value)


def merge_history(old: list[HistoryEntry], new: list[HistoryEntry], limit: int) -> list[HistoryEntry]:
    """The union of two histories, newest first, at most ``limit`` entries (first seen wins on equal keys)."""
    seen: dict[tuple[str, str, str], HistoryEntry] = {}
    for entry in [*old, *new]:
        seen.setdefault(_key(entry), entry)
    return sorted(seen.values(), key=lambda e: e.promoted_at, reverse=True)[:limit]


def fold(status: ChampionStatus, reports: list[RegistryReport], limit: int) -> ChampionStatus:
    """``status`` with every report applied: pointer fields from the newest generation, histories merged."""
    st = status.model_copy(deep=True)
    for report in sorted(reports, key=lambda r: r.generation):
        if st.registry_generation is None or report.generation >= st.registry_generation:
            st.registry_generation = report.generation
            st.version = report.version
            st.pinned_version = report.pinned_version
            st.artifact = (ChampionArtifact(uri=report.uri, sha256=report.sha256, size=report.size)
                           if report.version and report.uri and report.sha256 else None)
        entries = [_entry(r, report.version, report.sha256, report.uri) for r in report.history if r.version]
        st.history = merge_history(st.history, entries, limit)
        if report.check is not None:
            c = report.check
            stamp = next((r.at for r in report.history), None)
            st.last_check = CheckStatus(version=c.version, against=c.against, passed=c.passed, games=c.games,
                                        win_rate=c.win_rate, player=c.player, checked_at=stamp,
                                        message=c.message[:MESSAGE_LIMIT])
    current = next((e for e in st.history if e.version == st.version
                    and e.reason in (HistoryReason.INITIAL, HistoryReason.PROMOTED, HistoryReason.ROLLED_BACK,
                                     HistoryReason.PINNED)), None)
    st.promoted_at = current.promoted_at if current else None
    st.from_run = current.run if current else None
    promoted = next((e for e in st.history if e.version == st.version
                     and e.reason in (HistoryReason.PROMOTED, HistoryReason.INITIAL)), None)
    gate = promoted.statistics if promoted and promoted.statistics else None
    st.score = gate.win_rate if gate else None
    figures = {"winRateVsPrevious": st.score, "winRateVsPreviousLower": gate and gate.win_rate_lower,
               "winRateVsPreviousUpper": gate and gate.win_rate_upper, "eloVsPrevious": gate and gate.elo,
               "eloVsPreviousLower": gate and gate.elo_lower, "eloVsPreviousUpper": gate and gate.elo_upper}
    st.ratings = {k: v for k, v in figures.items() if v is not None}
    return st


# ---------------------------------------------------------------------------
# Choosing the next registry Job


@dataclasses.dataclass(frozen=True)
class _Want:
    operation: ChampionOperation
    trigger: str
    """What makes this Job unique (hashed into its name)."""
    args: registry_jobs.JobArgs


def _in_history(st: ChampionStatus, version: str | None, reasons: tuple[HistoryReason, ...]) -> bool:
    return any(e.version == version and e.reason in reasons for e in st.history)


def pending_candidate(champion: Champion, st: ChampionStatus, runs: list[ObservedRun]) -> PendingCandidate | None:
    """The newest candidate that passed its gate, awaits approval, and has been neither promoted nor rejected."""
    waiting = [r for r in runs if r.statistics is not None and r.statistics.awaiting_approval
               and r.statistics.candidate and r.decision == "Pending"]
    for run in sorted(waiting, key=lambda r: (r.decided_at is not None, r.decided_at), reverse=True):
        version = run.statistics.candidate
        done = any(e.version == version and e.run == run.name and e.reason in (
            HistoryReason.PROMOTED, HistoryReason.INITIAL, HistoryReason.REJECTED) for e in st.history)
        if not done and version != st.version:
            return PendingCandidate(run=run.name, version=version, since=run.decided_at, statistics=run.statistics)
    return None


def _wants(champion: Champion, st: ChampionStatus, runs: list[ObservedRun], approve: str | None,
           by: str) -> list[_Want]:
    """Every registry Job the champion needs now, in order of priority."""
    meta, spec = champion.metadata, champion.spec
    game = str(spec.game.key)
    base = registry_jobs.JobArgs(game=game)
    wants: list[_Want] = []
    if st.registry_generation is None:
        wants.append(_Want(ChampionOperation.SYNC, f"init/{meta.uid}", base))
    for run in runs:
        stats = run.statistics
        if run.decision == "Promoted" and stats is not None and stats.candidate and not any(
            e.version == stats.candidate and e.run == run.name for e in st.history
        ):
            wants.append(_Want(ChampionOperation.SYNC, f"run/{run.uid}", base))
    if spec.pinned_version and spec.pinned_version != st.pinned_version:
        wants.append(_Want(ChampionOperation.PIN, f"pin/{meta.generation}/{spec.pinned_version}",
                           dataclasses.replace(base, version=spec.pinned_version, by=OPERATOR,
                                               reason=f"spec.pinnedVersion set to {spec.pinned_version}")))
    elif not spec.pinned_version and st.pinned_version:
        wants.append(_Want(ChampionOperation.UNPIN, f"unpin/{meta.generation}",
                           dataclasses.replace(base, by=OPERATOR, reason="spec.pinnedVersion unset")))
    pending = st.pending
    if pending is not None and approve == pending.run:
        statistics = pending.statistics.model_dump_json(by_alias=True, exclude_none=True) if pending.statistics else None
        wants.append(_Want(ChampionOperation.PROMOTE, f"approve/{pending.run}/{pending.version}",
                           dataclasses.replace(base, version=pending.version, run=pending.run, by=by,
                                               reason=f"approved by {by} after the gate's promote",
                                               statistics=statistics)))
    check = spec.policy.post_promotion_check
    latest = st.history[0] if st.history else None
    if (check.games > 0 and latest is not None and latest.reason is HistoryReason.PROMOTED
            and latest.version == st.version and latest.previous and not st.pinned_version
            and (st.last_check is None or st.last_check.version != st.version)):
        wants.append(_Want(ChampionOperation.CHECK, f"check/{latest.version}/{latest.promoted_at.isoformat()}",
                           dataclasses.replace(base, version=latest.version, against=latest.previous,
                                               games=check.games, min_win_rate=check.min_win_rate,
                                               player=_check_player(spec.policy.gate), by=OPERATOR)))
    return wants


def _check_player(gate: PromotionSpec) -> str | None:
    """How the post-promotion check plays both versions: as the Champion's gate plays them, hence as
    they are served (None: the bare policy, the registry Job's default)."""
    return None if gate.player is GatePlayer.POLICY else gate.served_player


# ---------------------------------------------------------------------------
# Conditions and events


def _conditions(st: ChampionStatus, failure: str | None) -> list[conditions.Desired]:
    T, F, U = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
    if st.registry_generation is None:
        ready = (U, "NotSynced", "the registry has not been read yet")
    elif st.version is None:
        ready = (F, "NoChampion", "the registry has no champion for this game yet")
    else:
        ready = (T, "Serving", f"version {st.version} is in force")
    pinned = ((T, "PinnedBySpec", f"the registry is pinned to {st.pinned_version}") if st.pinned_version
              else (F, "FollowingPromotions", "promotions take effect"))
    if st.pending is not None:
        waiting = (T, "AwaitingApproval", f"candidate {st.pending.version} of run {st.pending.run} passed its gate; "
                   f"approve with `ouro champion approve` or annotate {ANNOTATION_APPROVE}={st.pending.run}")
    else:
        waiting = (F, "NothingPending", "no candidate waits for approval")
    check = st.last_check
    if failure:
        degraded = (T, "RegistryJobFailed", failure)
    elif check is not None and not check.passed:
        degraded = (T, "PostPromotionCheckFailed", check.message or f"{check.version} failed its check")
    else:
        degraded = (F, "Healthy", "the latest promotion passed its check" if check else "no failed check")
    return [
        conditions.Desired(ChampionConditionType.READY.value, *ready),
        conditions.Desired(ChampionConditionType.PINNED.value, *pinned),
        conditions.Desired(ChampionConditionType.AWAITING_APPROVAL.value, *waiting),
        conditions.Desired(ChampionConditionType.DEGRADED.value, *degraded),
    ]


def new_history(old: ChampionStatus, new: ChampionStatus) -> list[HistoryEntry]:
    """The history entries ``new`` has and ``old`` had not, oldest first: the changes of champion this
    reconcile saw happen. On the first read of the registry (``old`` never read it) the history found
    there is the past, not news: only a rejection made now counts. Events and metrics both use this."""
    known = {_key(e) for e in old.history}
    first_read = old.registry_generation is None
    return [e for e in reversed(new.history)
            if _key(e) not in known and (not first_read or e.reason is HistoryReason.REJECTED)]


def rollback_trigger(entry: HistoryEntry) -> str | None:
    """``automatic`` for a rollback the operator made (a failed post-promotion check), ``manual`` for a
    rollback by anyone else or a pin that changed the version (``spec.pinnedVersion`` is the manual
    rollback), None for a history entry that is no rollback."""
    if entry.reason is HistoryReason.ROLLED_BACK:
        return "automatic" if entry.by == OPERATOR else "manual"
    if entry.reason is HistoryReason.PINNED and entry.previous != entry.version:
        return "manual"
    return None


def _events(old: ChampionStatus, new: ChampionStatus) -> list[Event]:
    out = []
    for entry in new_history(old, new):
        who = f" by {entry.by}" if entry.by else ""
        run = f" from run {entry.run}" if entry.run else ""
        text = f"{entry.reason.value}: {entry.previous or 'none'} -> {entry.version}{run}{who}"
        if entry.message:
            text += f" ({entry.message})"
        kind = "Warning" if entry.reason in (HistoryReason.ROLLED_BACK, HistoryReason.REJECTED) else "Normal"
        out.append(Event(kind, entry.reason.value, text[:MESSAGE_LIMIT]))
    if new.last_check is not None and new.last_check != old.last_check and not new.last_check.passed:
        out.append(Event("Warning", "PostPromotionCheckFailed", (new.last_check.message or "")[:MESSAGE_LIMIT]))
    if old.registry_generation is None and new.registry_generation is not None:
        out.append(Event("Normal", "Synced", f"registry read: version {new.version or 'none'} in force"))
    if new.pending is not None and (old.pending is None or old.pending.run != new.pending.run):
        out.append(Event("Normal", "AwaitingApproval",
                         f"candidate {new.pending.version} of run {new.pending.run} waits for approval"))
    return out


# ---------------------------------------------------------------------------
# Deciding


def decide(champion: Champion, runs: list[ObservedRun], jobs: list[ObservedRegistryJob], now: datetime,
           settings: JobSettings) -> Decision:
    """The Champion's new status and the next registry Job, from its observed runs and Jobs."""
    meta, spec = champion.metadata, champion.spec
    old = champion.status
    limit = spec.policy.history_limit
    reports = [j.report for j in jobs if j.state is JobState.SUCCEEDED and j.report is not None]
    st = fold(old, reports, limit)
    annotations = meta.annotations or {}
    by = annotations.get(ANNOTATION_BY) or "unknown"
    st.pending = pending_candidate(champion, st, runs)
    if st.pending is not None and annotations.get(ANNOTATION_REJECT) == st.pending.run:
        p = st.pending
        rejected = HistoryEntry(version=p.version, promoted_at=now, run=p.run, statistics=p.statistics,
                                reason=HistoryReason.REJECTED, previous=st.version, by=by,
                                message=f"rejected by {by}")
        st.history = merge_history(st.history, [rejected], limit)
        st.pending = pending_candidate(champion, st, runs)
    wants = _wants(champion, st, runs, annotations.get(ANNOTATION_APPROVE), by)
    by_name = {j.name: j for j in jobs}
    busy = any(j.state in (JobState.ACTIVE, JobState.SUSPENDED) for j in jobs)
    actions: list[CreateJob] = []
    failure = None
    for want in wants:
        name = names.registry_job_name(meta.name, want.operation.value, f"{meta.uid}/{want.trigger}")
        job = by_name.get(name)
        if job is None:
            if not busy and not actions:
                actions.append(CreateJob(registry_jobs.registry_job(champion, name, want.operation, want.args,
                                                                    settings)))
            continue
        if job.state is JobState.FAILED or (job.state is JobState.SUCCEEDED and job.report is None):
            failure = failure or f"Job {name} ({want.operation.value}) failed: {job.failure or 'no report'}"[
                :MESSAGE_LIMIT]
    st.conditions = conditions.merge(st.conditions, _conditions(st, failure), meta.generation, now)
    st.observed_generation = meta.generation
    events = _events(old, st)
    if failure and not conditions.is_true(old.conditions, ChampionConditionType.DEGRADED.value):
        events.append(Event("Warning", "RegistryJobFailed", failure))
    return Decision(status=st, actions=actions, events=events)
