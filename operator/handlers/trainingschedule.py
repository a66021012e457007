"""kopf handlers for TrainingSchedules: read, decide (in `scheduling`), act, record.

Level-triggered like the TrainingRun controller: any event about a schedule
(its spec, its manual-trigger annotation) or about a run it owns, every timer
the last decision asked for (the next cron time, a cooldown's end), and the
periodic resync (new games in the store, a champion's score, a clock that
moved) lead to the same `reconcile(namespace, name)`. It reads the schedule,
the runs it owns (by the schedule-uid label, checked against the controller
ownerReference), and what the triggers observe; `scheduling.decide` returns
the status and the actions; runs are created under deterministic names
("already exists" is success), the status is written with optimistic
concurrency, then the Events are posted.

The data trigger reads the replay shards' sidecars under the template's
`storage.url` (`ouroboros.operator.replay`: the shards' JSON sidecars, read with fsspec
alone), so the operator must be able to reach that store; the
performance trigger reads the Champion's `status.ratings`.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import kopf
from pydantic import ValidationError

from ouroboros.operator import context, replay, scheduling
from ouroboros.operator.builders.scheduled_runs import LABEL_SCHEDULE_UID
from ouroboros.operator.context import Context
from ouroboros.operator.kube import ApiError
from ouroboros.operator.resources import GROUP, VERSION, TrainingSchedule, TrainingScheduleStatus

CONTROLLER = "trainingschedule"
log = logging.getLogger(__name__)


class OwnershipError(RuntimeError):
    """A run's deterministic name is taken by an object the schedule does not control."""


def _path(plural: str, namespace: str | None, name: str | None = None) -> str:
    base = f"/apis/{GROUP}/{VERSION}" + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{plural}"
    return f"{base}/{quote(name)}" if name else base


def _get(ctx: Context, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return ctx.kube.request("GET", _path(plural, namespace, name))
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _key(namespace: str, name: str) -> tuple[str, str]:
    return namespace, f"trainingschedule/{name}"


# ---------------------------------------------------------------------------
# Observing


def _owned_runs(ctx: Context, raw: dict[str, Any]) -> list[scheduling.OwnedRun]:
    meta = raw["metadata"]
    selector = f"{LABEL_SCHEDULE_UID}={meta['uid']}"
    items = ctx.kube.request("GET", _path("trainingruns", meta["namespace"]),
                             query={"labelSelector": selector}).get("items", [])
    out = []
    for item in items:
        owners = item.get("metadata", {}).get("ownerReferences") or []
        if not any(o.get("uid") == meta["uid"] and o.get("controller") for o in owners):
            continue
        if item["metadata"].get("deletionTimestamp"):
            continue  # on its way out (replaced, or past a history limit)
        out.append(scheduling.owned_run(item))
    return out


def _observe(ctx: Context, raw: dict[str, Any], schedule: TrainingSchedule,
             runs: list[scheduling.OwnedRun]) -> scheduling.Observations:
    spec = schedule.spec
    meta = raw["metadata"]
    new_games = score = None
    if spec.triggers.data is not None:
        try:
            new_games = replay.new_games_since(spec.template.spec.storage.url, scheduling.data_window_start(schedule, runs))
        except Exception as exc:  # noqa: BLE001 - an unreachable store only pauses the trigger
            log.warning("schedule %s/%s: cannot count new games in %s: %s",
                        meta["namespace"], meta["name"], spec.template.spec.storage.url, exc)
    perf = spec.triggers.performance
    if perf is not None:
        champion = _get(ctx, "champions", meta["namespace"], spec.template.spec.champion)
        value = ((champion or {}).get("status") or {}).get("ratings", {}).get(perf.metric)
        score = float(value) if isinstance(value, int | float) else None
    return scheduling.Observations(new_games=new_games, score=score)


# ---------------------------------------------------------------------------
# Acting


def _act(ctx: Context, raw: dict[str, Any], action: scheduling.Action) -> None:
    meta = raw["metadata"]
    namespace = meta["namespace"]
    if isinstance(action, scheduling.CreateRun):
        try:
            ctx.kube.request("POST", _path("trainingruns", namespace), action.manifest)
            ctx.metrics.actions_total.labels(CONTROLLER, "create_trainingrun").inc()
            ctx.metrics.schedule_triggered(namespace, meta["name"], action.trigger.value)
            return
        except ApiError as exc:
            if exc.status != 409 or exc.reason != "AlreadyExists":
                raise
        existing = _get(ctx, "trainingruns", namespace, action.name) or {}
        owners = existing.get("metadata", {}).get("ownerReferences") or []
        if not any(o.get("uid") == meta["uid"] for o in owners):
            raise OwnershipError(f"TrainingRun {action.name} exists but is not owned by TrainingSchedule {meta['name']}")
    elif isinstance(action, scheduling.DeleteRun):
        ctx.kube.delete_run(namespace, action.name, action.uid or "")
        ctx.metrics.actions_total.labels(CONTROLLER, "delete_trainingrun").inc()
    elif isinstance(action, scheduling.SuspendSchedule):
        ctx.kube.request("PATCH", _path("trainingschedules", namespace, meta["name"]),
                         {"spec": {"suspend": True}}, content_type="application/merge-patch+json")
        ctx.metrics.actions_total.labels(CONTROLLER, "suspend_schedule").inc()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"


def _decide(ctx: Context, raw: dict[str, Any]) -> tuple[scheduling.Decision, TrainingScheduleStatus]:
    now = ctx.clock()
    try:
        schedule = TrainingSchedule.model_validate(raw)
    except ValidationError as exc:
        try:
            old = TrainingScheduleStatus.model_validate(raw.get("status") or {})
        except ValidationError:
            old = TrainingScheduleStatus()
        return scheduling.decide_invalid(old, raw["metadata"].get("generation", 0), _first_error(exc), now), old
    runs = _owned_runs(ctx, raw)
    observed = _observe(ctx, raw, schedule, runs)
    return scheduling.decide(schedule, runs, observed, now), schedule.status


def _record(ctx: Context, raw: dict[str, Any], decision: scheduling.Decision) -> None:
    """The schedule's series from its new status, and the times this pass missed (once its status,
    which moves lastScheduleTime past them, is written). Runs created are counted as they are created."""
    meta, st = raw["metadata"], decision.status
    suspended = bool((raw.get("spec") or {}).get("suspend"))
    ctx.metrics.observe_schedule(meta["namespace"], meta["name"], st.last_schedule_time, st.next_schedule_time,
                                 suspended)
    if decision.missed:
        ctx.metrics.schedule_missed(meta["namespace"], meta["name"], decision.missed)


def reconcile(ctx: Context, namespace: str, name: str) -> float | None:
    """One pass over one schedule; returns seconds until it wants another look."""
    with ctx.locks.hold(_key(namespace, name)), ctx.metrics.reconciling(CONTROLLER):
        def attempt() -> float | None:
            raw = _get(ctx, "trainingschedules", namespace, name)
            if raw is None or raw["metadata"].get("deletionTimestamp"):
                return None
            decision, old = _decide(ctx, raw)
            for action in decision.actions:
                _act(ctx, raw, action)
            if any(isinstance(a, scheduling.SuspendSchedule) for a in decision.actions):
                raw = _get(ctx, "trainingschedules", namespace, name) or raw  # the patch moved resourceVersion
            new_status = decision.status.to_api()
            if new_status != old.to_api():  # a 409: changed under us, read again (creations are idempotent)
                ctx.kube.request("PUT", _path("trainingschedules", namespace, name) + "/status",
                                 {**raw, "status": new_status})
            ctx.post_events(raw, decision.events)
            _record(ctx, raw, decision)
            return decision.requeue_after

        return context.retry_on_conflict(ctx, CONTROLLER, f"TrainingSchedule {namespace}/{name}", attempt)


def reconcile_logged(ctx: Context, namespace: str, name: str) -> None:
    """`reconcile`, with errors logged instead of raised and the next wake-up scheduled."""
    context.reconcile_logged(ctx, "TrainingSchedule", reconcile, namespace, name, key=_key(namespace, name))


def resync(ctx: Context) -> int:
    """Reconcile every schedule in the watched namespaces (time, triggers, missed events); returns how many."""
    count = 0
    for namespace in ctx.settings.namespaces or (None,):
        for raw in ctx.kube.request("GET", _path("trainingschedules", namespace)).get("items", []):
            meta = raw["metadata"]
            reconcile_logged(ctx, meta["namespace"], meta["name"])
            count += 1
    return count


def _owner_schedule(body: Any) -> str | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == "TrainingSchedule" and ref.get("apiVersion", "").startswith(f"{GROUP}/") \
                and ref.get("controller"):
            return ref.get("name")
    return None


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Register the TrainingSchedule handlers on `registry`, closed over `ctx`."""

    @kopf.on.event(GROUP, VERSION, "trainingschedules", id="trainingschedule", registry=registry)
    def schedule_event(event: dict[str, Any], namespace: str, name: str, **_: Any) -> None:
        if event.get("type") == "DELETED":
            ctx.metrics.forget_schedule(namespace, name)
            return  # its runs go with it (ownerReferences)
        reconcile_logged(ctx, namespace, name)

    @kopf.on.event(GROUP, VERSION, "trainingruns", id="trainingschedule-run",
                   labels={LABEL_SCHEDULE_UID: kopf.PRESENT}, registry=registry)
    def run_event(event: dict[str, Any], body: Any, namespace: str, **_: Any) -> None:
        if event.get("type") == "ADDED":
            return  # we just created it
        schedule = _owner_schedule(body)
        if schedule is not None:
            reconcile_logged(ctx, namespace, schedule)
