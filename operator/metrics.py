"""Prometheus metrics of the operator and of the TrainingRuns it manages.

Names follow controller-runtime (`*_reconcile_total{controller,result}`,
`*_reconcile_errors_total`, `*_reconcile_time_seconds`) under one prefix, and
per-run series follow KubeRay: an `_info` gauge, a status gauge labelled with
the phase (1 for the current one, 0 for the others) and a duration histogram.
Base units, `_total` on counters. Everything lives in one `CollectorRegistry`
owned by a `Metrics` object, so tests can create as many as they like and
nothing is configured at import time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from ouroboros.operator.resources import PhaseState, RunPhase, TrainingRunStatus

PREFIX = "ouroboros"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
PHASE_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400)


class Metrics:
    """The operator's metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile_total = Counter(
            f"{PREFIX}_operator_reconcile_total", "Reconciliations by controller and result.",
            ["controller", "result"], registry=r,
        )
        self.reconcile_errors_total = Counter(
            f"{PREFIX}_operator_reconcile_errors_total", "Reconciliations that raised.", ["controller"], registry=r,
        )
        self.reconcile_time_seconds = Histogram(
            f"{PREFIX}_operator_reconcile_time_seconds", "Time spent per reconciliation.", ["controller"],
            buckets=DURATION_BUCKETS, registry=r,
        )
        self.actions_total = Counter(
            f"{PREFIX}_operator_actions_total", "Changes made to the cluster, by kind of change.",
            ["controller", "action"], registry=r,
        )
        self.events_total = Counter(
            f"{PREFIX}_operator_events_total", "Kubernetes Events posted, by type and reason.",
            ["type", "reason"], registry=r,
        )
        self.run_info = Gauge(
            f"{PREFIX}_trainingrun_info", "One per TrainingRun, labelled with its champion.",
            ["namespace", "name", "champion"], registry=r,
        )
        self.run_status = Gauge(
            f"{PREFIX}_trainingrun_status", "1 for the run's current phase (Pending..Failed), 0 for the others.",
            ["namespace", "name", "phase"], registry=r,
        )
        self.run_phase_index = Gauge(
            f"{PREFIX}_trainingrun_current_phase_index", "Index of the training phase running now.",
            ["namespace", "name"], registry=r,
        )
        self.run_best_win_rate = Gauge(
            f"{PREFIX}_trainingrun_best_win_rate", "Highest winRate a phase of the run reported.",
            ["namespace", "name"], registry=r,
        )
        self.phase_duration_seconds = Histogram(
            f"{PREFIX}_trainingrun_phase_duration_seconds", "Wall time of finished training phases.",
            ["phase", "result"], buckets=PHASE_BUCKETS, registry=r,
        )
        self._known: dict[tuple[str, str], str] = {}

    @contextlib.contextmanager
    def reconciling(self, controller: str) -> Iterator[None]:
        """Time one reconciliation and count its result (success or error)."""
        start = time.perf_counter()
        try:
            yield
        except Exception:
            self.reconcile_total.labels(controller, "error").inc()
            self.reconcile_errors_total.labels(controller).inc()
            raise
        else:
            self.reconcile_total.labels(controller, "success").inc()
        finally:
            self.reconcile_time_seconds.labels(controller).observe(time.perf_counter() - start)

    def observe_run(
        self, namespace: str, name: str, champion: str, old: TrainingRunStatus, new: TrainingRunStatus
    ) -> None:
        """Update a run's series from its new status (and count phases that just finished)."""
        key = (namespace, name)
        previous = self._known.get(key)
        if previous is not None and previous != champion:
            self.run_info.remove(namespace, name, previous)
        self._known[key] = champion
        self.run_info.labels(namespace, name, champion).set(1)
        for phase in RunPhase:
            self.run_status.labels(namespace, name, phase.value).set(1 if new.phase == phase else 0)
        if new.current_phase_index is not None:
            self.run_phase_index.labels(namespace, name).set(new.current_phase_index)
        if new.best_win_rate is not None:
            self.run_best_win_rate.labels(namespace, name).set(new.best_win_rate)
        for i, ps in enumerate(new.phases):
            before = old.phases[i].state if i < len(old.phases) else None
            done = ps.state in (PhaseState.SUCCEEDED, PhaseState.FAILED)
            if done and before != ps.state and ps.start_time and ps.completion_time:
                seconds = (ps.completion_time - ps.start_time).total_seconds()
                self.phase_duration_seconds.labels(ps.name.value, ps.state.value).observe(max(seconds, 0.0))

    def forget_run(self, namespace: str, name: str) -> None:
        """Drop a deleted run's series."""
        champion = self._known.pop((namespace, name), None)
        if champion is None:
            return
        with contextlib.suppress(KeyError):
            self.run_info.remove(namespace, name, champion)
        for phase in RunPhase:
            with contextlib.suppress(KeyError):
                self.run_status.remove(namespace, name, phase.value)
        for gauge in (self.run_phase_index, self.run_best_win_rate):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Expose /metrics on `port` from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)

    def render(self) -> str:
        """The exposition text (what /metrics returns)."""
        return generate_latest(self.registry).decode()
