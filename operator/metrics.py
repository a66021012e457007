"""Prometheus metrics of the operator and of the training it runs.

Two sets of names:

* **Controller health** under controller-runtime's own names
  (`controller_runtime_reconcile_total{controller,result}`,
  `controller_runtime_reconcile_errors_total`,
  `controller_runtime_reconcile_time_seconds`,
  `controller_runtime_active_workers`, `controller_runtime_max_concurrent_reconciles`)
  and client-go's `workqueue_*` (`adds_total`, `depth`, `queue_duration_seconds`,
  `work_duration_seconds`, `retries_total`, labels `controller` and `name`),
  so the operator dashboards and alerts a cluster already has for Go
  operators work on this one unchanged. kopf has no work queue: a "queue"
  here is the wait for a resource's lock between an event and its
  reconciliation, and a retry is a reconciliation repeated after a write
  conflict (409).
* **The domain** under `ouroboros_`, in base units with `_total` on counters:
  runs and phases (state, durations, retries), live progress of the running
  phase (share done, ETA, games and positions, throughput, losses, win rates,
  process resources; see `contract.progress`), win rates and Elo differences
  with their 95% interval against each opponent (from the phases' results),
  the run's replay buffer (positions, games, shards, bytes, oldest and newest
  position), gate decisions and the gate's SPRT log-likelihood ratio (live
  while the evaluate phase plays, then where it stopped), the champion (an
  `_info` series with its version, its age, score and Elo), promotions and
  rollbacks, schedules (last and next times, runs created by trigger, missed
  times).

Every update is derived by the controllers' thin shells from a resource's old
and new status (`observe_run`, `observe_champion`, `observe_schedule`), and
counters count transitions between the two, so a restarted operator, which
reads the stored status as "old", counts nothing twice.

Per-object series (one run's loss, one champion's info) are written through
`_Series`, which removes whatever an object's previous update wrote and this
one did not, so a label that changes (a new champion version, the next phase)
never leaves a stale series behind. Kubernetes objects' phases and conditions
come from kube-state-metrics (`charts/ouroboros/files/kube-state-metrics.yaml`),
and Jobs and pods from its built-in collectors: nothing here repeats them.

Everything lives in one `CollectorRegistry` owned by a `Metrics` object, so
tests create as many as they like and nothing is configured at import time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from ouroboros.contract import training_metrics as tm
from ouroboros.contract.progress import ReplayUsage, RunProgress
from ouroboros.operator.resources import PhaseName, PhaseState, RunPhase, TrainingRunStatus
from ouroboros.operator.resources.trainingrun import PromotionDecision
from ouroboros.operator.resources.trainingschedule import TriggerType

PREFIX = "ouroboros"
DECIDED = tuple(d.value for d in PromotionDecision if d is not PromotionDecision.PENDING)
"""Gate decisions counted by `ouroboros_gate_decisions_total` (Pending is no decision yet)."""
ROLLBACK_TRIGGERS = ("manual", "automatic")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
PHASE_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)

RUN = ("namespace", "name")


class ReconcileResult:
    """controller-runtime's `result` label values."""

    SUCCESS = "success"
    ERROR = "error"
    REQUEUE_AFTER = "requeue_after"


@dataclasses.dataclass
class Reconciliation:
    """Handed to the body of `Metrics.reconciling`; set `requeue_after` when the result asks for one."""

    requeue_after: float | None = None


class _Series:
    """The series one object's last update wrote, so the next update can drop those it no longer writes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[tuple[str, ...], set[tuple[Gauge, tuple[str, ...]]]] = {}

    def replace(self, key: tuple[str, ...], values: dict[tuple[Gauge, tuple[str, ...]], float]) -> None:
        """Set every (gauge, labels) -> value and remove the object's series not among them."""
        with self._lock:
            old = self._written.get(key, set())
            for (gauge, labels), value in values.items():
                gauge.labels(*labels).set(value)
            for gauge, labels in old - set(values):
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
            self._written[key] = set(values)

    def __contains__(self, key: tuple[str, ...]) -> bool:
        with self._lock:
            return key in self._written

    def forget(self, key: tuple[str, ...]) -> None:
        """Remove every series the object wrote."""
        self.replace(key, {})
        with self._lock:
            self._written.pop(key, None)


class Metrics:
    """The operator's metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self._series = _Series()

        # --- controller-runtime and workqueue names
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total", "Total number of reconciliations per controller.",
            ["controller", "result"], registry=r)
        self.reconcile_errors_total = Counter(
            "controller_runtime_reconcile_errors_total", "Total number of reconciliation errors per controller.",
            ["controller"], registry=r)
        self.reconcile_time_seconds = Histogram(
            "controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller.",
            ["controller"], buckets=DURATION_BUCKETS, registry=r)
        self.active_workers = Gauge(
            "controller_runtime_active_workers", "Number of currently used workers per controller.",
            ["controller"], registry=r)
        self.max_concurrent_reconciles = Gauge(
            "controller_runtime_max_concurrent_reconciles", "Maximum number of concurrent reconciles per controller.",
            ["controller"], registry=r)
        self.workqueue_adds_total = Counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue.", ["controller", "name"], registry=r)
        self.workqueue_depth = Gauge(
            "workqueue_depth", "Current depth of workqueue.", ["controller", "name"], registry=r)
        self.workqueue_queue_duration_seconds = Histogram(
            "workqueue_queue_duration_seconds", "How long in seconds an item stays in workqueue before being requested.",
            ["controller", "name"], buckets=DURATION_BUCKETS, registry=r)
        self.workqueue_work_duration_seconds = Histogram(
            "workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes.",
            ["controller", "name"], buckets=DURATION_BUCKETS, registry=r)
        self.workqueue_retries_total = Counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue.",
            ["controller", "name"], registry=r)

        # --- the operator's own actions
        self.actions_total = Counter(
            f"{PREFIX}_operator_actions_total", "Changes made to the cluster, by kind of change.",
            ["controller", "action"], registry=r)
        self.events_total = Counter(
            f"{PREFIX}_operator_events_total", "Kubernetes Events posted, by type and reason.",
            ["type", "reason"], registry=r)
        self.progress_read_errors_total = Counter(
            f"{PREFIX}_operator_progress_read_errors_total",
            "Progress records that could not be read from a run's artifact store.", ["namespace", "name"], registry=r)

        # --- TrainingRuns
        def run_gauge(suffix: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"{PREFIX}_trainingrun_{suffix}", doc, [*RUN, *labels], registry=r)

        self.run_info = run_gauge("info", "One per TrainingRun, labelled with its champion.", "champion")
        self.run_status = run_gauge("status", "1 for the run's phase (Pending..Failed), 0 for the others.", "phase")
        self.run_phase_status = run_gauge(
            "phase_status", "1 for each training phase's state (Pending..Failed), 0 for the others.",
            "training_phase", "state")
        self.run_phase_index = run_gauge("current_phase_index", "Index of the training phase running now.")
        self.run_best_win_rate = run_gauge("best_win_rate", "Highest win rate a phase of the run reported, 0..1.")
        self.run_start_time = run_gauge("start_time_seconds", "When the run's first phase started, Unix seconds.")
        self.phase_duration_seconds = Histogram(
            f"{PREFIX}_trainingrun_phase_duration_seconds", "Wall time of finished training phases.",
            ["training_phase", "result"], buckets=PHASE_BUCKETS, registry=r)
        self.phase_retries_total = Counter(
            f"{PREFIX}_trainingrun_phase_retries_total", "Phase Jobs started again after a failed attempt.",
            ["training_phase"], registry=r)
        self.runs_finished_total = Counter(
            f"{PREFIX}_trainingruns_finished_total", "TrainingRuns that reached Succeeded or Failed.",
            ["result"], registry=r)
        # live progress of the running phase (resources.progress)
        self.progress_ratio = run_gauge("progress_ratio", "Estimated share of the running phase done, 0..1.",
                                        "training_phase")
        self.progress_eta_seconds = run_gauge("progress_eta_seconds", "Estimated seconds left in the running phase.",
                                              "training_phase")
        self.progress_updated = run_gauge(
            "progress_updated_timestamp_seconds", "When the running phase last reported progress, Unix seconds.",
            "training_phase")
        self.games = run_gauge("games", "Games played so far by the running phase.", "training_phase")
        self.positions = run_gauge("positions", "Positions recorded so far by the running phase.", "training_phase")
        self.games_per_second = run_gauge("games_per_second", "Self-play games per second, all workers.",
                                          "training_phase")
        self.resident_memory_bytes = run_gauge(
            "resident_memory_bytes", "Resident memory of the running phase's trainer processes, bytes.",
            "training_phase")
        self.cpu_usage_cores = run_gauge("cpu_usage_cores", "CPU cores the running phase's trainers use.",
                                         "training_phase")
        self.store_bytes = run_gauge("store_bytes", "Bytes the run keeps in its artifact store.")
        self.gpu_memory_bytes = run_gauge("gpu_memory_bytes", "GPU memory the running phase's trainers hold, bytes.",
                                          "training_phase")
        # training curves: one family per tm.TrainingSeries
        self.training: dict[tm.TrainingSeries, Gauge] = {
            tm.TrainingSeries.LOSS: run_gauge("loss", "Latest training loss.", "training_phase", "loss"),
            tm.TrainingSeries.WIN_RATE: run_gauge(
                "win_rate", "Score (wins + draws/2) per game against an opponent, 0..1.", "training_phase",
                "opponent"),
            tm.TrainingSeries.ENTROPY: run_gauge("policy_entropy_nats", "Mean policy entropy, nats.",
                                                 "training_phase"),
            tm.TrainingSeries.ACCURACY: run_gauge(
                "imitation_accuracy_ratio", "Share of positions where the network picks the teacher's move.",
                "training_phase"),
            tm.TrainingSeries.POSITIONS_PER_SECOND: run_gauge(
                "positions_per_second", "Self-play positions recorded per second, all workers.", "training_phase"),
            tm.TrainingSeries.SAMPLES_PER_SECOND: run_gauge(
                "samples_per_second", "Training samples per second.", "training_phase"),
            tm.TrainingSeries.ELO: run_gauge(
                "elo", "Logistic Elo difference against an opponent, from the phase's score against it.",
                "training_phase", "opponent"),
            tm.TrainingSeries.ELO_LOWER: run_gauge(
                "elo_lower", "Lower end of the 95% interval of the Elo difference against an opponent.",
                "training_phase", "opponent"),
            tm.TrainingSeries.ELO_UPPER: run_gauge(
                "elo_upper", "Upper end of the 95% interval of the Elo difference against an opponent.",
                "training_phase", "opponent"),
        }
        # the run's replay buffer (while a phase runs; read from the shards' sidecars)
        self.replay_positions = run_gauge("replay_positions", "Positions in the run's replay shards.")
        self.replay_games = run_gauge("replay_games", "Games the run's replay positions come from.")
        self.replay_shards = run_gauge("replay_shards", "Replay shards the run's phases wrote.")
        self.replay_bytes = run_gauge("replay_bytes", "Size of the run's replay shards in the store, bytes.")
        self.replay_oldest = run_gauge(
            "replay_oldest_position_timestamp_seconds", "When the oldest replay position was recorded, Unix "
            "seconds (age: time() minus this).")
        self.replay_newest = run_gauge(
            "replay_newest_position_timestamp_seconds", "When the newest replay position was recorded, Unix "
            "seconds.")

        # --- gate (a TrainingRun's candidate against its champion)
        self.gate_decisions_total = Counter(
            f"{PREFIX}_gate_decisions_total", "Gate decisions, by champion and decision (Promoted, Rejected, Inconclusive, Skipped).",
            ["namespace", "champion", "decision"], registry=r)
        self.gate_sprt_llr = Gauge(
            f"{PREFIX}_gate_sprt_log_likelihood_ratio",
            "SPRT log-likelihood ratio of a run's gate: live while it plays, then where it stopped.",
            [*RUN], registry=r)
        self.gate_sprt_bound = Gauge(
            f"{PREFIX}_gate_sprt_bound", "SPRT decision bounds of a run's gate (lower: reject, upper: promote).",
            [*RUN, "bound"], registry=r)
        self.gate_games = Gauge(f"{PREFIX}_gate_games", "Games a run's gate has played: live while it plays, then in all.", [*RUN], registry=r)

        # --- champions
        def champion_gauge(suffix: str, doc: str, *labels: str) -> Gauge:
            return Gauge(f"{PREFIX}_champion_{suffix}", doc, ["namespace", "champion", *labels], registry=r)

        self.champion_info = champion_gauge(
            "info", "One per Champion, labelled with the version it serves and its game.", "version", "game")
        self.champion_promoted_time = champion_gauge(
            "promoted_timestamp_seconds", "When the served version was promoted, Unix seconds.")
        self.champion_score = champion_gauge(
            "score", "The served version's score against a reference opponent, 0..1.", "opponent")
        self.champion_elo = champion_gauge(
            "elo", "The served version's Elo difference against a reference opponent.", "opponent")
        self.champion_elo_lower = champion_gauge(
            "elo_lower", "Lower end of the 95% interval of the champion's Elo difference.", "opponent")
        self.champion_elo_upper = champion_gauge(
            "elo_upper", "Upper end of the 95% interval of the champion's Elo difference.", "opponent")
        self.champion_promotions_total = Counter(
            f"{PREFIX}_champion_promotions_total", "Versions promoted to champion.", ["namespace", "champion"],
            registry=r)
        self.champion_rollbacks_total = Counter(
            f"{PREFIX}_champion_rollbacks_total", "Rollbacks of a champion, by trigger (manual, automatic).",
            ["namespace", "champion", "trigger"], registry=r)

        # --- schedules
        self.schedule_last_time = Gauge(
            f"{PREFIX}_trainingschedule_last_schedule_timestamp_seconds", "Latest scheduled time the schedule handled (started, skipped or replaced), Unix seconds.",
            ["namespace", "name"], registry=r)
        self.schedule_next_time = Gauge(
            f"{PREFIX}_trainingschedule_next_schedule_timestamp_seconds", "Next scheduled time, Unix seconds.",
            ["namespace", "name"], registry=r)
        self.schedule_suspended = Gauge(
            f"{PREFIX}_trainingschedule_suspended", "1 if the schedule is suspended.", ["namespace", "name"],
            registry=r)
        self.schedule_triggers_total = Counter(
            f"{PREFIX}_trainingschedule_triggers_total", "Runs a schedule created, by trigger (cron, data, "
            "performance, manual).", ["namespace", "name", "trigger"], registry=r)
        self.schedule_missed_total = Counter(
            f"{PREFIX}_trainingschedule_missed_total", "Scheduled times let go without a run (past "
            "startingDeadlineSeconds or skipped by missedRunPolicy, or forbidden by concurrencyPolicy).", ["namespace", "name"], registry=r)

        # Counters with a known label set start at 0, so rate() and increase() see their first event.
        for phase in PhaseName:
            self.phase_retries_total.labels(phase.value)

    # ------------------------------------------------------------------ controllers

    def register_controller(self, controller: str, workers: int) -> None:
        """Export a controller's series at zero before its first reconcile, as controller-runtime does
        at start-up (so `rate()` of its errors is 0, not absent, and the first error is seen)."""
        self.max_concurrent_reconciles.labels(controller).set(workers)
        self.active_workers.labels(controller).set(0)
        for result in (ReconcileResult.SUCCESS, ReconcileResult.ERROR, ReconcileResult.REQUEUE_AFTER):
            self.reconcile_total.labels(controller, result)
        self.reconcile_errors_total.labels(controller)
        for outcome in ("Succeeded", "Failed"):
            self.runs_finished_total.labels(outcome)

    @contextlib.contextmanager
    def reconciling(self, controller: str, lock: AbstractContextManager | None = None,
                    queue: str | None = None) -> Iterator[Reconciliation]:
        """Count and time one reconciliation, waiting for `lock` as a work queue would.

        The time spent waiting for `lock` is the item's queue duration; the
        body's is its work duration and reconcile time. The result label is
        `error` if the body raises, `requeue_after` if it sets
        `Reconciliation.requeue_after`, else `success`.
        """
        queue = queue or controller
        self.workqueue_adds_total.labels(controller, queue).inc()
        self.workqueue_depth.labels(controller, queue).inc()
        queued = time.perf_counter()
        with lock if lock is not None else contextlib.nullcontext():
            self.workqueue_depth.labels(controller, queue).dec()
            start = time.perf_counter()
            self.workqueue_queue_duration_seconds.labels(controller, queue).observe(start - queued)
            self.active_workers.labels(controller).inc()
            outcome = Reconciliation()
            try:
                yield outcome
            except Exception:
                self.reconcile_total.labels(controller, ReconcileResult.ERROR).inc()
                self.reconcile_errors_total.labels(controller).inc()
                raise
            else:
                result = ReconcileResult.REQUEUE_AFTER if outcome.requeue_after is not None else ReconcileResult.SUCCESS
                self.reconcile_total.labels(controller, result).inc()
            finally:
                self.active_workers.labels(controller).dec()
                took = time.perf_counter() - start
                self.reconcile_time_seconds.labels(controller).observe(took)
                self.workqueue_work_duration_seconds.labels(controller, queue).observe(took)

    def retried(self, controller: str, queue: str | None = None) -> None:
        """Count a reconciliation repeated at once (after a write conflict)."""
        self.workqueue_retries_total.labels(controller, queue or controller).inc()

    # ------------------------------------------------------------------ TrainingRuns

    def observe_run(self, namespace: str, name: str, champion: str, old: TrainingRunStatus,
                    new: TrainingRunStatus, sprt_bounds: tuple[float, float] | None = None) -> None:
        """Update a run's series from its new status; count phases and runs that just finished and
        gate decisions just made.

        The gate's series come from `status.progress.sprt` while the evaluate phase plays, then from
        `status.promotion.statistics` (its final LLR, games and the bounds of the gate it applied;
        `sprt_bounds`, the run's or its Champion's gate as it is now, stand in for the bounds of
        results written before the statistics carried them).
        """
        key = (namespace, name)
        values: dict[tuple[Gauge, tuple[str, ...]], float] = {(self.run_info, (*key, champion)): 1}
        for phase in RunPhase:
            values[(self.run_status, (*key, phase.value))] = 1 if new.phase == phase else 0
        for ps in new.phases:
            for state in PhaseState:
                values[(self.run_phase_status, (*key, ps.name.value, state.value))] = 1 if ps.state == state else 0
            for metric, value in ps.metrics.items():
                found = tm.classify(metric)
                if found is not None:
                    series, label = found
                    labels = (*key, ps.name.value, label) if label else (*key, ps.name.value)
                    values[(self.training[series], labels)] = value
        if new.current_phase_index is not None:
            values[(self.run_phase_index, key)] = new.current_phase_index
        if new.best_win_rate is not None:
            values[(self.run_best_win_rate, key)] = new.best_win_rate
        if new.start_time is not None:
            values[(self.run_start_time, key)] = new.start_time.timestamp()
        progress = getattr(new, "progress", None)
        if progress is not None and new.phase == RunPhase.RUNNING:
            values.update(self._progress_values(key, progress))
        values.update(self._gate_values(key, new, sprt_bounds))
        self._series.replace(key, values)

        decided = new.promotion.decision if new.promotion else None
        if decided is not None and decided != PromotionDecision.PENDING and champion and (
                old.promotion is None or old.promotion.decision != decided):
            self.gate_decided(namespace, champion, PromotionDecision(decided).value)

        for i, ps in enumerate(new.phases):
            before = old.phases[i] if i < len(old.phases) else None
            done = ps.state in (PhaseState.SUCCEEDED, PhaseState.FAILED)
            if done and (before is None or before.state != ps.state) and ps.start_time and ps.completion_time:
                seconds = (ps.completion_time - ps.start_time).total_seconds()
                self.phase_duration_seconds.labels(ps.name.value, ps.state.value).observe(max(seconds, 0.0))
            retries = ps.attempts - max(1, before.attempts if before else 1)
            if retries > 0:
                self.phase_retries_total.labels(ps.name.value).inc(retries)
        if new.phase in (RunPhase.SUCCEEDED, RunPhase.FAILED) and old.phase != new.phase:
            self.runs_finished_total.labels(RunPhase(new.phase).value).inc()

    def _gate_values(self, key: tuple[str, str], new: TrainingRunStatus,
                     bounds: tuple[float, float] | None) -> dict[tuple[Gauge, tuple[str, ...]], float]:
        live = new.progress.sprt if new.progress is not None and new.phase == RunPhase.RUNNING else None
        stats = new.promotion.statistics if new.promotion is not None else None
        if live is not None:
            llr, games, bounds = live.llr, live.games, (live.lower_bound, live.upper_bound)
        elif stats is not None and stats.llr is not None:
            llr, games = stats.llr, stats.games
            if stats.llr_lower_bound is not None and stats.llr_upper_bound is not None:  # the gate applied
                bounds = (stats.llr_lower_bound, stats.llr_upper_bound)
        else:
            return {}
        values = {(self.gate_sprt_llr, key): llr, (self.gate_games, key): games}
        if bounds is not None:
            values[(self.gate_sprt_bound, (*key, "lower"))] = bounds[0]
            values[(self.gate_sprt_bound, (*key, "upper"))] = bounds[1]
        return values

    def _replay_values(self, key: tuple[str, str], r: ReplayUsage) -> dict[tuple[Gauge, tuple[str, ...]], float]:
        values: dict[tuple[Gauge, tuple[str, ...]], float] = {
            (self.replay_positions, key): r.positions, (self.replay_games, key): r.games,
            (self.replay_shards, key): r.shards, (self.replay_bytes, key): r.bytes}
        if r.oldest_position_at is not None:
            values[(self.replay_oldest, key)] = r.oldest_position_at.timestamp()
        if r.newest_position_at is not None:
            values[(self.replay_newest, key)] = r.newest_position_at.timestamp()
        return values

    def _progress_values(self, key: tuple[str, str], p: RunProgress) -> dict[tuple[Gauge, tuple[str, ...]], float]:
        labels = (*key, p.phase)
        values: dict[tuple[Gauge, tuple[str, ...]], float] = {
            (self.progress_ratio, labels): p.percent / 100,
            (self.progress_updated, labels): p.updated_at.timestamp(),
            (self.games, labels): p.games,
            (self.positions, labels): p.positions,
            (self.games_per_second, labels): p.games_per_second,
            (self.training[tm.TrainingSeries.POSITIONS_PER_SECOND], labels): p.positions_per_second,
            (self.resident_memory_bytes, labels): p.resident_memory_bytes,
            (self.cpu_usage_cores, labels): p.cpu_percent / 100,
        }
        if p.eta_seconds is not None:
            values[(self.progress_eta_seconds, labels)] = p.eta_seconds
        if p.store_bytes is not None:
            values[(self.store_bytes, key)] = p.store_bytes
        if p.gpu_memory_bytes is not None:
            values[(self.gpu_memory_bytes, labels)] = p.gpu_memory_bytes
        for loss, value in p.losses.items():
            values[(self.training[tm.TrainingSeries.LOSS], (*labels, loss))] = value
        for opponent, value in p.win_rates.items():
            values[(self.training[tm.TrainingSeries.WIN_RATE], (*labels, opponent))] = value
        if p.entropy is not None:
            values[(self.training[tm.TrainingSeries.ENTROPY], labels)] = p.entropy
        if p.replay is not None:
            values.update(self._replay_values(key, p.replay))
        return values

    def forget_run(self, namespace: str, name: str) -> None:
        """Drop a deleted run's series (its gate's too)."""
        self._series.forget((namespace, name))

    def progress_read_failed(self, namespace: str, name: str) -> None:
        """Count a progress record that could not be read."""
        self.progress_read_errors_total.labels(namespace, name).inc()

    # ------------------------------------------------------------------ gate, champions, schedules
    # Gate decisions are counted by `observe_run`; the Champion and TrainingSchedule controllers call
    # the rest from their old and new status.

    def gate_decided(self, namespace: str, champion: str, decision: str) -> None:
        """Count a gate decision (a `PromotionDecision` value other than Pending)."""
        self.gate_decisions_total.labels(namespace, champion, decision).inc()

    def observe_champion(self, namespace: str, champion: str, game: str, version: str | None,
                         promoted_at: datetime | None, scores: dict[str, float] | None = None,
                         elo: dict[str, tuple[float | None, float | None, float | None]] | None = None) -> None:
        """A Champion's served version (info), promotion time, scores against reference opponents and
        Elo differences (opponent -> (elo, lower, upper) of its 95% interval; None ends are left out).

        The first call for a Champion also starts its promotion, rollback and gate-decision counters at 0,
        so `increase()` and `changes()` see the first one."""
        key = ("champion", namespace, champion)
        if key not in self._series:
            self.champion_promotions_total.labels(namespace, champion)
            for trigger in ROLLBACK_TRIGGERS:
                self.champion_rollbacks_total.labels(namespace, champion, trigger)
            for decision in DECIDED:
                self.gate_decisions_total.labels(namespace, champion, decision)
        values: dict[tuple[Gauge, tuple[str, ...]], float] = {}
        if version:
            values[(self.champion_info, (namespace, champion, version, game))] = 1
        if promoted_at is not None:
            values[(self.champion_promoted_time, (namespace, champion))] = promoted_at.timestamp()
        for opponent, score in (scores or {}).items():
            values[(self.champion_score, (namespace, champion, opponent))] = score
        for opponent, ends in (elo or {}).items():
            for gauge, value in zip((self.champion_elo, self.champion_elo_lower, self.champion_elo_upper), ends,
                                    strict=True):
                if value is not None:
                    values[(gauge, (namespace, champion, opponent))] = value
        self._series.replace(key, values)

    def champion_changed(self, namespace: str, champion: str, rollback: str | None = None) -> None:
        """Count a promotion, or a rollback with its trigger (`manual` or `automatic`)."""
        if rollback is None:
            self.champion_promotions_total.labels(namespace, champion).inc()
        else:
            self.champion_rollbacks_total.labels(namespace, champion, rollback).inc()

    def forget_champion(self, namespace: str, champion: str) -> None:
        """Drop a deleted Champion's series."""
        self._series.forget(("champion", namespace, champion))

    def observe_schedule(self, namespace: str, name: str, last: datetime | None, next_: datetime | None,
                         suspended: bool) -> None:
        """A TrainingSchedule's last and next scheduled times and whether it is suspended.

        The first call for a schedule also starts its trigger and missed-time counters at 0."""
        key = ("schedule", namespace, name)
        if key not in self._series:
            for trigger in TriggerType:
                self.schedule_triggers_total.labels(namespace, name, trigger.value)
            self.schedule_missed_total.labels(namespace, name)
        values: dict[tuple[Gauge, tuple[str, ...]], float] = {
            (self.schedule_suspended, (namespace, name)): 1 if suspended else 0}
        if last is not None:
            values[(self.schedule_last_time, (namespace, name))] = last.timestamp()
        if next_ is not None:
            values[(self.schedule_next_time, (namespace, name))] = next_.timestamp()
        self._series.replace(key, values)

    def schedule_triggered(self, namespace: str, name: str, trigger: str) -> None:
        """Count a run a schedule created, by trigger."""
        self.schedule_triggers_total.labels(namespace, name, trigger).inc()

    def schedule_missed(self, namespace: str, name: str, count: int = 1) -> None:
        """Count scheduled times a schedule skipped."""
        self.schedule_missed_total.labels(namespace, name).inc(count)

    def forget_schedule(self, namespace: str, name: str) -> None:
        """Drop a deleted TrainingSchedule's series."""
        self._series.forget(("schedule", namespace, name))

    # ------------------------------------------------------------------ exposition

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Expose /metrics on `port` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)

    def render(self) -> str:
        """The exposition text (what /metrics returns)."""
        return generate_latest(self.registry).decode()
