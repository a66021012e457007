"""kopf handlers for Champions: read, decide (in `championing`), act, record.

Level-triggered like the TrainingRun controller: any event about a Champion,
one of its registry Jobs, or a TrainingRun naming it leads to
`reconcile(namespace, name)`, which reads the Champion, the runs that
challenge it and its registry Jobs (with their pods' termination messages,
the RegistryReports) fresh from the API server, lets `championing.decide`
compute the status and at most one new Job, creates it (deterministic name:
"already exists" is success), writes the status with optimistic concurrency
and posts the Events. A TrainingRun's status change also wakes its Champion,
so a promotion by the evaluate phase reaches `Champion.status` through a sync
Job within seconds.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from ouroboros.contract.champion import ChampionOperation, RegistryReport
from ouroboros.contract.promotion import GateStatistics
from ouroboros.operator import championing, context, observe
from ouroboros.operator.builders import names
from ouroboros.operator.context import Context
from ouroboros.operator.handlers import trainingrun
from ouroboros.operator.resources import GROUP, VERSION, Champion
from ouroboros.operator.resources.champion import ChampionStatus, HistoryReason

CONTROLLER = "champion"
log = logging.getLogger(__name__)


def _runs(ctx: Context, namespace: str, name: str) -> list[championing.ObservedRun]:
    out = []
    for raw in ctx.kube.list_runs(namespace):
        if (raw.get("spec") or {}).get("champion") != name:
            continue
        promotion = (raw.get("status") or {}).get("promotion") or {}
        try:
            stats = GateStatistics.model_validate(promotion["statistics"]) if promotion.get("statistics") else None
        except ValidationError:
            stats = None
        decided = promotion.get("decidedAt")
        out.append(championing.ObservedRun(
            name=raw["metadata"]["name"], uid=raw["metadata"].get("uid", ""), decision=promotion.get("decision"),
            statistics=stats, decided_at=observe._time(decided) if decided else None))
    return out


def _report(pods: list[observe.ObservedPod]) -> tuple[RegistryReport | None, str | None]:
    done = [p for p in pods if p.phase == "Succeeded" and p.message]
    if not done:
        failed = [p for p in pods if p.phase == "Failed"]
        text = (failed[-1].message or f"exit code {failed[-1].exit_code}") if failed else "no result"
        return None, text.strip()[-500:]
    try:
        return RegistryReport.model_validate_json(done[-1].message), None
    except ValidationError as exc:
        return None, f"unreadable report: {exc.errors()[0]['msg']}"


def _jobs(ctx: Context, raw: dict[str, Any]) -> list[championing.ObservedRegistryJob]:
    meta = raw["metadata"]
    selector = names.champion_selector(meta["uid"])
    jobs = ctx.kube.list_jobs(meta["namespace"], selector)
    finished = any(observe.job_state(j)[0] in (observe.JobState.SUCCEEDED, observe.JobState.FAILED) for j in jobs)
    pods = [p for p in (observe.pod(o) for o in ctx.kube.list_pods(meta["namespace"], selector)) if p] \
        if finished else []
    out = []
    for job in jobs:
        jmeta = job["metadata"]
        if not any(o.get("uid") == meta["uid"] for o in jmeta.get("ownerReferences") or []):
            continue
        try:
            operation = ChampionOperation(jmeta.get("labels", {}).get(names.LABEL_OPERATION, ""))
        except ValueError:
            continue
        state, cond = observe.job_state(job)
        report, failure = (None, None)
        if state in (observe.JobState.SUCCEEDED, observe.JobState.FAILED):
            report, failure = _report([p for p in pods if p.job == jmeta["name"]])
            if state is observe.JobState.FAILED:
                report, failure = None, failure or (cond or {}).get("message")
        out.append(championing.ObservedRegistryJob(jmeta["name"], operation, state, report, failure))
    return out


def reconcile(ctx: Context, namespace: str, name: str) -> None:
    """Bring one Champion one step closer to its registry and its spec."""
    with ctx.locks.hold((namespace, f"champion/{name}")), ctx.metrics.reconciling(CONTROLLER):
        def attempt() -> None:
            raw = ctx.kube.get_champion(namespace, name)
            if raw is None or raw["metadata"].get("deletionTimestamp"):
                return
            try:
                champion = Champion.model_validate(raw)
            except ValidationError as exc:
                log.warning("Champion %s/%s does not parse: %s", namespace, name, exc.errors()[0])
                return
            runs = _runs(ctx, namespace, name)
            decision = championing.decide(champion, runs, _jobs(ctx, raw), ctx.clock(), ctx.settings.jobs)
            for action in decision.actions:
                _, created = ctx.kube.create(action.manifest)
                if created:
                    ctx.metrics.actions_total.labels(CONTROLLER, "create_job").inc()
            new_status = decision.status.to_api()
            if new_status != champion.status.to_api():  # a 409: changed under us, read it again
                ctx.kube.replace_champion_status(raw, new_status)
            ctx.post_events(raw, decision.events)
            _record(ctx, champion, decision.status)
            if decision.status.history != champion.status.history:  # runs awaiting approval may be decided now
                for run in runs:
                    if run.decision == "Pending":
                        trainingrun.reconcile_logged(ctx, namespace, run.name)

        context.retry_on_conflict(ctx, CONTROLLER, f"Champion {namespace}/{name}", attempt)


def _record(ctx: Context, champion: Champion, new: ChampionStatus) -> None:
    """The Champion's series from its new status, and the promotions and rollbacks between its old
    status and the new (the same changes its Events report)."""
    meta, old = champion.metadata, champion.status
    ratings = new.ratings
    elo = {}
    if any(k in ratings for k in ("eloVsPrevious", "eloVsPreviousLower", "eloVsPreviousUpper")):
        elo["previous"] = (ratings.get("eloVsPrevious"), ratings.get("eloVsPreviousLower"),
                           ratings.get("eloVsPreviousUpper"))
    ctx.metrics.observe_champion(meta.namespace, meta.name, str(champion.spec.game.key), new.version,
                                 new.promoted_at, {"previous": new.score} if new.score is not None else {}, elo)
    for entry in championing.new_history(old, new):
        if entry.reason in (HistoryReason.INITIAL, HistoryReason.PROMOTED):
            ctx.metrics.champion_changed(meta.namespace, meta.name)
        elif (trigger := championing.rollback_trigger(entry)) is not None:
            ctx.metrics.champion_changed(meta.namespace, meta.name, rollback=trigger)


def reconcile_logged(ctx: Context, namespace: str, name: str) -> None:
    """`reconcile`, with errors logged instead of raised."""
    context.reconcile_logged(ctx, "Champion", reconcile, namespace, name)


def resync(ctx: Context) -> int:
    """Reconcile every Champion in the watched namespaces; returns how many."""
    count = 0
    for namespace in ctx.settings.namespaces or (None,):
        for raw in ctx.kube.list_champions(namespace):
            reconcile_logged(ctx, raw["metadata"]["namespace"], raw["metadata"]["name"])
            count += 1
    return count


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Register the Champion handlers on `registry`, closed over `ctx`."""

    @kopf.on.event(GROUP, VERSION, "champions", id="champion", registry=registry)
    def champion_event(event: dict[str, Any], body: Any, namespace: str, name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            ctx.metrics.forget_champion(namespace, name)
            return
        if event.get("type") == "ADDED":  # runs that wait for this Champion may start now
            for run in ctx.kube.list_runs(namespace):
                if (run.get("spec") or {}).get("champion") == name and \
                        (run.get("status") or {}).get("phase") in (None, "Pending"):
                    trainingrun.reconcile_logged(ctx, namespace, run["metadata"]["name"])
        status = body.get("status") or {}
        if (event.get("type") == "MODIFIED" and status.get("observedGeneration") == body["metadata"].get("generation")
                and not _annotated(body)):
            return  # our own status write
        reconcile_logged(ctx, namespace, name)

    @kopf.on.event(GROUP, VERSION, "trainingruns", id="champion-run", registry=registry)
    def run_event(event: dict[str, Any], body: Any, namespace: str, **_: Any) -> None:
        champion = (body.get("spec") or {}).get("champion")
        if champion and event.get("type") != "DELETED":
            reconcile_logged(ctx, namespace, champion)

    @kopf.on.event("batch", "v1", "jobs", id="champion-job", labels={names.LABEL_CHAMPION: kopf.PRESENT},
                   registry=registry)
    def job_event(event: dict[str, Any], body: Any, namespace: str, **_: Any) -> None:
        if event.get("type") == "ADDED":
            return
        for ref in body.get("metadata", {}).get("ownerReferences") or []:
            if ref.get("kind") == "Champion" and ref.get("controller"):
                reconcile_logged(ctx, namespace, ref["name"])


def _annotated(body: Any) -> bool:
    """Whether an approval or rejection annotation is set (annotations do not bump the generation)."""
    annotations = body.get("metadata", {}).get("annotations") or {}
    return championing.ANNOTATION_APPROVE in annotations or championing.ANNOTATION_REJECT in annotations
