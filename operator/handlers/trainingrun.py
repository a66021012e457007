"""kopf handlers for TrainingRuns: read, decide (in `lifecycle`), act, record.

The controller is level-triggered. Any watch event about a run, or about one
of its Jobs, leads to the same `reconcile(namespace, name)`: read the run and
its children fresh from the API server, let `lifecycle.decide` compute the new
status and the actions, carry the actions out (creating with deterministic
names, so a repeat is harmless), write the status with optimistic concurrency,
then post the Events. Only `on.event` handlers are used, so kopf keeps no
state of its own on the objects, needs no finalizers, and replays every
object at start-up, which is how a restarted operator picks runs up.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import kopf
from pydantic import ValidationError

from ouroboros.contract.progress import store_run_id
from ouroboros.contract.promotion import GateMethod
from ouroboros.operator import context, lifecycle, observe, progress, replay
from ouroboros.operator.builders import kueue, manifests, names
from ouroboros.operator.context import Context
from ouroboros.operator.resources import (
    GROUP,
    VERSION,
    Champion,
    PhaseState,
    RunPhase,
    TrainingRun,
    TrainingRunStatus,
)

CONTROLLER = "trainingrun"
log = logging.getLogger(__name__)


class OwnershipError(RuntimeError):
    """A child's deterministic name is taken by an object the run does not control."""


def _status_of(raw: dict[str, Any]) -> TrainingRunStatus:
    try:
        return TrainingRunStatus.model_validate(raw.get("status") or {})
    except ValidationError:
        return TrainingRunStatus()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    return f"{where}: {err['msg']}"


def _act(ctx: Context, raw: dict[str, Any], action: lifecycle.Action) -> None:
    meta = raw["metadata"]
    if isinstance(action, lifecycle.CreateObject):
        obj, created = ctx.kube.create(action.manifest)
        kind = action.manifest["kind"]
        if created:
            ctx.metrics.actions_total.labels(CONTROLLER, f"create_{kind.lower()}").inc()
            return
        owners = obj.get("metadata", {}).get("ownerReferences") or []
        if not any(o.get("uid") == meta["uid"] for o in owners):
            raise OwnershipError(
                f"{kind} {obj['metadata']['name']} exists but is not owned by TrainingRun {meta['name']}"
            )
    elif isinstance(action, lifecycle.SetJobSuspended):
        ctx.kube.set_job_suspended(meta["namespace"], action.name, action.suspend)
        ctx.metrics.actions_total.labels(CONTROLLER, "suspend_job" if action.suspend else "resume_job").inc()
    elif isinstance(action, lifecycle.SetWorkloadActive):
        ctx.kube.set_workload_active(meta["namespace"], action.name, action.active, observe.ANNOTATION_DEACTIVATED)
        ctx.metrics.actions_total.labels(
            CONTROLLER, "activate_workload" if action.active else "deactivate_workload").inc()
    elif isinstance(action, lifecycle.DeleteRun):
        ctx.kube.delete_run(meta["namespace"], meta["name"], meta["uid"])
        ctx.metrics.actions_total.labels(CONTROLLER, "delete_run").inc()


def _observe_children(ctx: Context, raw: dict[str, Any]) -> list[observe.ObservedJob]:
    meta = raw["metadata"]
    selector = names.run_selector(meta["uid"])
    jobs = ctx.kube.list_jobs(meta["namespace"], selector)
    finished = any(
        observe.job_state(j)[0] in (observe.JobState.SUCCEEDED, observe.JobState.FAILED) for j in jobs
    )
    pods = ctx.kube.list_pods(meta["namespace"], selector) if finished else []
    problems = {}
    for job in jobs:
        if observe.is_starting(job):
            found = observe.problem(ctx.kube.list_events(meta["namespace"], "Job", job["metadata"]["name"]))
            if found:
                problems[job["metadata"]["name"]] = found
    queued = [j["metadata"].get("uid", "") for j in jobs
              if kueue.queue_name(j["metadata"].get("labels") or {})
              and observe.job_state(j)[0] in (observe.JobState.ACTIVE, observe.JobState.SUSPENDED)]
    workloads = ctx.kube.list_workloads(meta["namespace"], [uid for uid in queued if uid]) if queued else []
    return observe.children(jobs, pods, meta["uid"], problems, workloads)


@dataclasses.dataclass(frozen=True)
class _Decided:
    """What `_decide` hands back: the decision and what the metrics need beside it."""

    decision: lifecycle.Decision
    old: TrainingRunStatus
    champion: str
    sprt_bounds: tuple[float, float] | None = None
    """The (lower, upper) SPRT bounds of the run's gate, or its Champion's, as they are now (a fallback)."""


def _decide(ctx: Context, raw: dict[str, Any]) -> _Decided:
    """The decision for the run as read, its old status and its champion."""
    now = ctx.clock()
    meta = raw["metadata"]
    try:
        run = TrainingRun.model_validate(raw)
    except ValidationError as exc:
        old = _status_of(raw)
        decision = lifecycle.decide_invalid(old, meta.get("generation", 0), _first_error(exc), now)
        return _Decided(decision, old, str((raw.get("spec") or {}).get("champion", "")))
    finished = run.status.phase in lifecycle.FINISHED
    jobs = [] if finished else _observe_children(ctx, raw)
    wanted = not finished or lifecycle.awaiting_approval(run.status)
    champion = _observe_champion(ctx, meta["namespace"], run.spec.champion) if wanted else None
    blocked = None if finished else _storage_problem(ctx, run)
    # the run's gate, or its Champion's as it is now: the gate metric's bounds only for a result that does not
    # carry the bounds of the gate it applied (frozen at the run's start; written by trainers before they did)
    gate = run.spec.promotion or (champion.spec.policy.gate if champion is not None else None)
    bounds = (gate.sprt.lower_bound, gate.sprt.upper_bound) if gate and gate.method is GateMethod.SPRT else None
    return _Decided(lifecycle.decide(run, jobs, now, ctx.settings.jobs, blocked, champion=champion), run.status,
                    run.spec.champion, bounds)


def _observe_champion(ctx: Context, namespace: str, name: str) -> Champion | None:
    """The run's Champion as read now; None if absent (a Champion the operator cannot parse counts as absent)."""
    raw = ctx.kube.get_champion(namespace, name)
    if raw is None:
        return None
    try:
        return Champion.model_validate(raw)
    except ValidationError:
        log.warning("Champion %s/%s does not parse; runs naming it wait", namespace, name)
        return None


def _storage_problem(ctx: Context, run: TrainingRun) -> tuple[str, str] | None:
    """Why the run's phases cannot share its store (a missing PersistentVolumeClaim), or None."""
    claim = manifests.storage_claim(run, ctx.settings.jobs)
    if not claim:
        return None
    pvc = ctx.kube.get_pvc(run.metadata.namespace, claim)
    if pvc is None or (pvc.get("metadata") or {}).get("deletionTimestamp"):
        state = "does not exist" if pvc is None else "is being deleted"
        return ("StorageUnavailable",
                f"spec.storage.persistentVolumeClaim: PersistentVolumeClaim {claim!r} {state} in namespace "
                f"{run.metadata.namespace!r}; the phases share the artifact store through it (create it, or set "
                "spec.storage.url to an object store)")
    return None


def reconcile(ctx: Context, namespace: str, name: str) -> float | None:
    """Bring one run one step closer to done; returns seconds until it wants another look, if any."""
    with ctx.metrics.reconciling(CONTROLLER, lock=ctx.locks.hold((namespace, name))) as outcome:
        def attempt() -> float | None:
            raw = ctx.kube.get_run(namespace, name)
            if raw is None:
                ctx.metrics.forget_run(namespace, name)
                return None
            if raw["metadata"].get("deletionTimestamp"):
                return None
            decided = _decide(ctx, raw)
            decision, old = decided.decision, decided.old
            _attach_progress(ctx, raw, decision)
            for action in decision.actions:
                _act(ctx, raw, action)
                if isinstance(action, lifecycle.DeleteRun):
                    return None
            new_status = decision.status.to_api()
            if new_status != old.to_api():
                ctx.kube.replace_run_status(raw, new_status)  # a 409: the run changed under us, read it again
            ctx.post_events(raw, decision.events)
            ctx.metrics.observe_run(namespace, name, decided.champion, old, decision.status, decided.sprt_bounds)
            outcome.requeue_after = _requeue_after(ctx, decision)
            return outcome.requeue_after

        return context.retry_on_conflict(ctx, CONTROLLER, f"TrainingRun {namespace}/{name}", attempt)


def _attach_progress(ctx: Context, raw: dict[str, Any], decision: lifecycle.Decision) -> None:
    """Put the running phase's progress (read from the run's store) into the new status.

    A store that cannot be read keeps the last progress the status had; a run
    with no running phase has none.
    """
    status = decision.status
    running = status.phase == RunPhase.RUNNING and status.current_phase_index is not None
    phase = status.phases[status.current_phase_index] if running else None
    if phase is None or phase.state != PhaseState.RUNNING or not ctx.settings.progress_seconds:
        status.progress = None
        return
    meta, spec = raw["metadata"], raw.get("spec") or {}
    url = (spec.get("storage") or {}).get("url")
    if not url:
        return
    try:
        found = progress.run_progress(url, meta["namespace"], meta["name"], meta.get("uid", ""), phase.name.value, ctx.clock(),
                                      since=phase.start_time)
    except progress.ProgressUnavailable as exc:
        log.debug("progress of %s/%s unavailable: %s", meta["namespace"], meta["name"], exc)
        ctx.metrics.progress_read_failed(meta["namespace"], meta["name"])
        return
    if found is None:
        return
    try:
        found.replay = ctx.replay.usage(url, store_run_id(meta["name"], meta["namespace"], meta.get("uid", "")))
    except replay.ReplayUnavailable as exc:
        log.debug("replay shards of %s/%s unavailable: %s", meta["namespace"], meta["name"], exc)
        ctx.metrics.progress_read_failed(meta["namespace"], meta["name"])
    status.progress = found


def _requeue_after(ctx: Context, decision: lifecycle.Decision) -> float | None:
    """The decision's wake-up, or sooner while a phase runs (to refresh its progress)."""
    delay = decision.requeue_after
    if decision.status.phase == RunPhase.RUNNING and ctx.settings.progress_seconds:
        delay = min(delay, ctx.settings.progress_seconds) if delay is not None else ctx.settings.progress_seconds
    return delay


def reconcile_logged(ctx: Context, namespace: str, name: str) -> None:
    """`reconcile`, with errors logged instead of raised and wake-ups scheduled (for timers and resyncs)."""
    context.reconcile_logged(ctx, "TrainingRun", reconcile, namespace, name, key=(namespace, name))


def resync(ctx: Context) -> int:
    """Reconcile every run in the watched namespaces (catches missed events and TTLs); returns how many."""
    namespaces = ctx.settings.namespaces or (None,)
    count = 0
    for namespace in namespaces:
        for raw in ctx.kube.list_runs(namespace):
            if _settled(raw):
                continue
            meta = raw["metadata"]
            reconcile_logged(ctx, meta["namespace"], meta["name"])
            count += 1
    return count


def _settled(raw: dict[str, Any]) -> bool:
    """A finished run with no TTL whose status is current: a resync has nothing to do for it."""
    status = raw.get("status") or {}
    return (
        status.get("phase") in {p.value for p in lifecycle.FINISHED}
        and (status.get("promotion") or {}).get("reason") != "AwaitingApproval"
        and (raw.get("spec") or {}).get("ttlSecondsAfterFinished") is None
        and status.get("observedGeneration") == raw["metadata"].get("generation")
    )


def _owner_run(body: Any) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "TrainingRun" and ref.get("apiVersion", "").startswith(f"{GROUP}/") and ref.get("controller"):
            return ref.get("name")
    return None


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Register the TrainingRun handlers on `registry`, closed over `ctx`."""

    @kopf.on.event(GROUP, VERSION, "trainingruns", id="trainingrun", registry=registry)
    def run_event(event: dict[str, Any], body: Any, namespace: str, name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            ctx.metrics.forget_run(namespace, name)
            return
        status = body.get("status") or {}
        generation = body.get("metadata", {}).get("generation")
        if event.get("type") == "MODIFIED" and status.get("observedGeneration") == generation:
            return  # a status write (ours) or metadata change: nothing new to act on
        reconcile_logged(ctx, namespace, name)

    @kopf.on.event("batch", "v1", "jobs", id="trainingrun-job",
                   labels={names.LABEL_MANAGED_BY: names.MANAGED_BY}, registry=registry)
    def job_event(event: dict[str, Any], body: Any, namespace: str, **_: Any) -> None:
        if event.get("type") == "ADDED":
            return  # we just created it; its first status change will follow
        run = _owner_run(body)
        if run is not None:
            reconcile_logged(ctx, namespace, run)
