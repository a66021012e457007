"""Metrics: controller-runtime and workqueue names, per-run series, progress; settings from the environment."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ouroboros.contract.progress import ProgressRecord, ReplayUsage, summarise
from ouroboros.operator.metrics import Metrics
from ouroboros.operator.resources import TrainingRunStatus
from ouroboros.operator.settings import OperatorSettings, http_url

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def samples(m: Metrics) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, parsed back from the exposition text as Prometheus would."""
    out = {}
    for family in text_string_to_metric_families(m.render()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(m: Metrics, sample: str, /, **labels: str) -> float | None:
    return samples(m).get((sample, frozenset(labels.items())))


def test_a_registered_controller_exports_zeros_before_its_first_reconcile():
    m = Metrics()
    m.register_controller("trainingrun", 16)
    assert value(m, "controller_runtime_reconcile_errors_total", controller="trainingrun") == 0
    assert value(m, "controller_runtime_reconcile_total", controller="trainingrun", result="error") == 0
    assert value(m, "controller_runtime_max_concurrent_reconciles", controller="trainingrun") == 16
    assert value(m, "ouroboros_trainingruns_finished_total", result="Failed") == 0


def test_reconciles_are_counted_under_controller_runtime_names():
    m = Metrics()
    with m.reconciling("trainingrun"):
        pass
    with m.reconciling("trainingrun") as outcome:
        outcome.requeue_after = 15
    with pytest.raises(ValueError), m.reconciling("trainingrun"):
        raise ValueError
    m.retried("trainingrun")
    assert value(m, "controller_runtime_reconcile_total", controller="trainingrun", result="success") == 1
    assert value(m, "controller_runtime_reconcile_total", controller="trainingrun", result="requeue_after") == 1
    assert value(m, "controller_runtime_reconcile_total", controller="trainingrun", result="error") == 1
    assert value(m, "controller_runtime_reconcile_errors_total", controller="trainingrun") == 1
    assert value(m, "controller_runtime_reconcile_time_seconds_count", controller="trainingrun") == 3
    assert value(m, "controller_runtime_active_workers", controller="trainingrun") == 0
    q = dict(controller="trainingrun", name="trainingrun")
    assert value(m, "workqueue_adds_total", **q) == 3
    assert value(m, "workqueue_depth", **q) == 0
    assert value(m, "workqueue_queue_duration_seconds_count", **q) == 3
    assert value(m, "workqueue_work_duration_seconds_count", **q) == 3
    assert value(m, "workqueue_retries_total", **q) == 1


def test_a_reconcile_waiting_for_its_lock_is_queue_depth_and_a_running_one_an_active_worker():
    m = Metrics()
    lock = threading.Lock()
    lock.acquire()
    entered = threading.Event()
    release = threading.Event()

    def worker():
        with m.reconciling("trainingrun", lock=lock):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    try:
        for _ in range(1000):  # until the worker is queued behind the lock
            if value(m, "workqueue_depth", controller="trainingrun", name="trainingrun") == 1:
                break
            release.wait(0.01)
        assert value(m, "workqueue_depth", controller="trainingrun", name="trainingrun") == 1
        assert value(m, "controller_runtime_active_workers", controller="trainingrun") is None
    finally:
        lock.release()
    assert entered.wait(10)
    assert value(m, "controller_runtime_active_workers", controller="trainingrun") == 1
    assert value(m, "workqueue_depth", controller="trainingrun", name="trainingrun") == 0
    release.set()
    t.join(10)
    assert value(m, "controller_runtime_active_workers", controller="trainingrun") == 0


def status(**fields) -> TrainingRunStatus:
    return TrainingRunStatus.model_validate(fields)


def test_run_series_follow_the_status_and_go_away_with_the_run():
    m = Metrics()
    old = status(phase="Running", phases=[{"name": "hybrid", "state": "Running", "attempts": 1},
                                         {"name": "evaluate"}])
    new = status(
        phase="Running", currentPhaseIndex=1, bestWinRate=0.6, startTime=T0,
        phases=[{"name": "hybrid", "state": "Succeeded", "attempts": 2, "startTime": T0,
                 "completionTime": datetime(2026, 1, 1, 0, 2, tzinfo=UTC),
                 "metrics": {"policyLoss": 1.5, "winRateVsHeuristic": 0.55, "winRateVsRandomSafe": 0.9,
                             "positionsPerSecond": 800.0, "games": 128}},
                {"name": "evaluate", "state": "Running"}])
    m.observe_run("ns", "r", "champ", old, new)
    run = dict(namespace="ns", name="r")
    assert value(m, "ouroboros_trainingrun_status", **run, phase="Running") == 1
    assert value(m, "ouroboros_trainingrun_status", **run, phase="Pending") == 0
    assert value(m, "ouroboros_trainingrun_info", **run, champion="champ") == 1
    assert value(m, "ouroboros_trainingrun_best_win_rate", **run) == 0.6
    assert value(m, "ouroboros_trainingrun_start_time_seconds", **run) == T0.timestamp()
    assert value(m, "ouroboros_trainingrun_phase_status", **run, training_phase="hybrid", state="Succeeded") == 1
    assert value(m, "ouroboros_trainingrun_phase_status", **run, training_phase="evaluate", state="Running") == 1
    assert value(m, "ouroboros_trainingrun_loss", **run, training_phase="hybrid", loss="policy") == 1.5
    assert value(m, "ouroboros_trainingrun_win_rate", **run, training_phase="hybrid", opponent="heuristic") == 0.55
    assert value(m, "ouroboros_trainingrun_win_rate", **run, training_phase="hybrid",
                 opponent="random_safe") == 0.9
    assert value(m, "ouroboros_trainingrun_positions_per_second", **run, training_phase="hybrid") == 800
    assert value(m, "ouroboros_trainingrun_phase_duration_seconds_sum", training_phase="hybrid",
                 result="Succeeded") == 120
    assert value(m, "ouroboros_trainingrun_phase_retries_total", training_phase="hybrid") == 1
    # the same status again counts nothing twice
    m.observe_run("ns", "r", "champ", new, new)
    assert value(m, "ouroboros_trainingrun_phase_retries_total", training_phase="hybrid") == 1
    assert value(m, "ouroboros_trainingrun_phase_duration_seconds_count", training_phase="hybrid",
                 result="Succeeded") == 1
    # a new champion label replaces the old series instead of adding one
    m.observe_run("ns", "r", "other", new, status(**{**new.to_api(), "phase": "Succeeded"}))
    assert value(m, "ouroboros_trainingrun_info", **run, champion="champ") is None
    assert value(m, "ouroboros_trainingruns_finished_total", result="Succeeded") == 1
    m.forget_run("ns", "r")
    assert not [k for k in samples(m) if ("name", "r") in k[1]]


def record(worker=0, **fields) -> ProgressRecord:
    base = dict(run="ns.r", phase="hybrid", worker=worker, startedAt=T0, updatedAt=T0, step="hybrid 1/4: games",
                stepCompleted=32, stepTotal=128, fraction=0.25, etaSeconds=300, games=32, positions=4000,
                gamesPerSecond=1.0, positionsPerSecond=125.0,
                scalars={"loss/policy": 1.2, "loss/value": 0.3, "entropy": 1.1, "win_rate/heuristic": 0.4},
                resources={"cpuSeconds": 60, "cpuPercent": 95, "residentMemoryBytes": 500_000_000,
                           "storeBytes": 10_000_000})
    return ProgressRecord.model_validate({**base, **fields})


def test_progress_of_workers_is_summed_and_the_lead_worker_gives_step_and_losses():
    p = summarise([record(worker=1, etaSeconds=400, scalars={"win_rate/snapshot": 0.5}), record()], T0)
    assert p.percent == 25 and p.eta_seconds == 400 and p.step == "hybrid 1/4: games"
    assert p.games == 64 and p.positions == 8000 and p.positions_per_second == 250
    assert p.losses == {"policy": 1.2, "value": 0.3} and p.entropy == 1.1
    assert p.win_rates == {"heuristic": 0.4, "snapshot": 0.5}
    assert p.resident_memory_bytes == 1_000_000_000 and p.workers == 2 and not p.stale
    assert summarise([record()], datetime(2026, 1, 1, 0, 10, tzinfo=UTC)).stale
    assert summarise([], T0) is None


def test_progress_of_a_running_run_becomes_live_series_and_leaves_when_it_ends():
    m = Metrics()
    running = status(phase="Running", currentPhaseIndex=0, phases=[{"name": "hybrid", "state": "Running"}],
                     progress=summarise([record()], T0).to_api())
    m.observe_run("ns", "r", "c", TrainingRunStatus(), running)
    labels = dict(namespace="ns", name="r", training_phase="hybrid")
    assert value(m, "ouroboros_trainingrun_progress_ratio", **labels) == 0.25
    assert value(m, "ouroboros_trainingrun_progress_eta_seconds", **labels) == 300
    assert value(m, "ouroboros_trainingrun_progress_updated_timestamp_seconds", **labels) == T0.timestamp()
    assert value(m, "ouroboros_trainingrun_games", **labels) == 32
    assert value(m, "ouroboros_trainingrun_loss", **labels, loss="value") == 0.3
    assert value(m, "ouroboros_trainingrun_win_rate", **labels, opponent="heuristic") == 0.4
    assert value(m, "ouroboros_trainingrun_policy_entropy_nats", **labels) == 1.1
    assert value(m, "ouroboros_trainingrun_resident_memory_bytes", **labels) == 500_000_000
    assert value(m, "ouroboros_trainingrun_cpu_usage_cores", **labels) == 0.95
    assert value(m, "ouroboros_trainingrun_store_bytes", namespace="ns", name="r") == 10_000_000
    done = status(**{**running.to_api(), "phase": "Succeeded", "progress": None})
    m.observe_run("ns", "r", "c", running, done)
    assert value(m, "ouroboros_trainingrun_progress_ratio", **labels) is None


def test_the_gate_is_live_while_the_evaluate_phase_plays_then_stays_where_it_stopped():
    m = Metrics()
    gate = dict(namespace="ns", name="r")
    playing = record(phase="evaluate", games=40, scalars={"sprt/llr": 1.2, "sprt/lower_bound": -2.94,
                                                           "sprt/upper_bound": 2.94})
    running = status(phase="Running", currentPhaseIndex=0, phases=[{"name": "evaluate", "state": "Running"}],
                     progress=summarise([playing], T0).to_api())
    m.observe_run("ns", "r", "champ", TrainingRunStatus(), running)
    assert value(m, "ouroboros_gate_sprt_log_likelihood_ratio", **gate) == 1.2
    assert value(m, "ouroboros_gate_sprt_bound", **gate, bound="lower") == -2.94
    assert value(m, "ouroboros_gate_games", **gate) == 40
    assert value(m, "ouroboros_gate_decisions_total", namespace="ns", champion="champ", decision="Promoted") is None
    decided = status(phase="Succeeded", currentPhaseIndex=0, phases=[{"name": "evaluate", "state": "Succeeded"}],
                     promotion={"decision": "Promoted", "statistics": {"games": 64, "llr": 3.1}})
    m.observe_run("ns", "r", "champ", running, decided, sprt_bounds=(-2.94, 2.94))
    assert value(m, "ouroboros_gate_sprt_log_likelihood_ratio", **gate) == 3.1  # where the test stopped
    assert value(m, "ouroboros_gate_games", **gate) == 64
    assert value(m, "ouroboros_gate_sprt_bound", **gate, bound="upper") == 2.94
    assert value(m, "ouroboros_gate_decisions_total", namespace="ns", champion="champ", decision="Promoted") == 1
    m.observe_run("ns", "r", "champ", decided, decided, sprt_bounds=(-2.94, 2.94))  # a repeat counts nothing
    assert value(m, "ouroboros_gate_decisions_total", namespace="ns", champion="champ", decision="Promoted") == 1
    m.forget_run("ns", "r")
    assert value(m, "ouroboros_gate_sprt_log_likelihood_ratio", **gate) is None


def test_a_decided_gate_reports_the_bounds_it_applied_not_those_of_the_gate_as_it_is_now():
    """The gate is frozen at the run's start; a Champion's gate edited since must not move the bounds."""
    m = Metrics()
    gate = dict(namespace="ns", name="r")
    decided = status(phase="Succeeded", currentPhaseIndex=0, phases=[{"name": "evaluate", "state": "Succeeded"}],
                     promotion={"decision": "Rejected", "statistics": {
                         "games": 30, "llr": -2.3, "llrLowerBound": -2.25, "llrUpperBound": 2.89}})
    m.observe_run("ns", "r", "champ", decided, decided, sprt_bounds=(-2.94, 2.94))  # the Champion's gate now
    assert value(m, "ouroboros_gate_sprt_bound", **gate, bound="lower") == -2.25
    assert value(m, "ouroboros_gate_sprt_bound", **gate, bound="upper") == 2.89


def test_elo_with_its_interval_and_the_replay_buffer_become_run_series():
    m = Metrics()
    progress = summarise([record()], T0).model_copy(update={"replay": ReplayUsage(
        shards=3, positions=9000, games=120, bytes=4_000_000, oldest_position_at=T0,
        newest_position_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC))})
    running = status(phase="Running", currentPhaseIndex=0, phases=[
        {"name": "hybrid", "state": "Running", "metrics": {"eloVsHeuristic": -120.5, "eloVsHeuristicLower": -300.0,
                                                           "eloVsHeuristicUpper": 20.25}}],
        progress=progress.to_api())
    m.observe_run("ns", "r", "c", TrainingRunStatus(), running)
    elo = dict(namespace="ns", name="r", training_phase="hybrid", opponent="heuristic")
    assert value(m, "ouroboros_trainingrun_elo", **elo) == -120.5
    assert value(m, "ouroboros_trainingrun_elo_lower", **elo) == -300
    assert value(m, "ouroboros_trainingrun_elo_upper", **elo) == 20.25
    run = dict(namespace="ns", name="r")
    assert value(m, "ouroboros_trainingrun_replay_positions", **run) == 9000
    assert value(m, "ouroboros_trainingrun_replay_shards", **run) == 3
    assert value(m, "ouroboros_trainingrun_replay_bytes", **run) == 4_000_000
    assert value(m, "ouroboros_trainingrun_replay_oldest_position_timestamp_seconds", **run) == T0.timestamp()
    assert value(m, "ouroboros_trainingrun_replay_newest_position_timestamp_seconds", **run) == T0.timestamp() + 300


def test_champion_and_schedule_series():
    m = Metrics()
    m.observe_champion("ns", "champ", "standard-11x11-2p", "v1", T0, {"previous": 0.7},
                       {"previous": (150.0, 20.0, None)})
    counters = dict(namespace="ns", champion="champ")
    # counters start at 0 on the first sight of a champion, so increase() sees the first change
    assert value(m, "ouroboros_champion_promotions_total", **counters) == 0
    assert value(m, "ouroboros_champion_rollbacks_total", **counters, trigger="automatic") == 0
    assert value(m, "ouroboros_gate_decisions_total", **counters, decision="Rejected") == 0
    assert value(m, "ouroboros_champion_elo", **counters, opponent="previous") == 150
    assert value(m, "ouroboros_champion_elo_lower", **counters, opponent="previous") == 20
    assert value(m, "ouroboros_champion_elo_upper", **counters, opponent="previous") is None
    m.champion_changed("ns", "champ")
    m.observe_champion("ns", "champ", "standard-11x11-2p", "v0", T0)
    m.champion_changed("ns", "champ", rollback="automatic")
    m.observe_schedule("ns", "nightly", T0, datetime(2026, 1, 2, tzinfo=UTC), suspended=False)
    s = dict(namespace="ns", name="nightly")
    assert value(m, "ouroboros_trainingschedule_triggers_total", **s, trigger="data") == 0
    assert value(m, "ouroboros_trainingschedule_missed_total", **s) == 0
    m.schedule_triggered("ns", "nightly", "cron")
    m.schedule_missed("ns", "nightly", 2)
    info = dict(namespace="ns", champion="champ", game="standard-11x11-2p")
    assert value(m, "ouroboros_champion_info", **info, version="v0") == 1
    assert value(m, "ouroboros_champion_info", **info, version="v1") is None  # rolled back: one info series
    assert value(m, "ouroboros_champion_score", **counters, opponent="previous") is None
    assert value(m, "ouroboros_champion_elo", **counters, opponent="previous") is None
    assert value(m, "ouroboros_champion_promotions_total", **counters) == 1
    assert value(m, "ouroboros_champion_rollbacks_total", **counters, trigger="automatic") == 1
    assert value(m, "ouroboros_trainingschedule_next_schedule_timestamp_seconds", **s) == 1767312000
    assert value(m, "ouroboros_trainingschedule_triggers_total", **s, trigger="cron") == 1
    assert value(m, "ouroboros_trainingschedule_missed_total", **s) == 2
    m.forget_schedule("ns", "nightly")
    m.forget_champion("ns", "champ")
    assert value(m, "ouroboros_trainingschedule_suspended", **s) is None
    assert value(m, "ouroboros_champion_info", **info, version="v0") is None


def test_every_family_follows_prometheus_naming():
    """Counters end in _total, nothing else does, and the domain lives under one prefix."""
    for family in text_string_to_metric_families(Metrics().render()):
        name = family.name
        assert name.startswith(("controller_runtime_", "workqueue_", "ouroboros_")), name
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples) or not family.samples, name
        else:
            assert not name.endswith("_total"), name
        assert not name.endswith(("_milliseconds", "_percent", "_bytes_total_bytes")), name


def test_settings_from_env():
    s = OperatorSettings.from_env({
        "OURO_TRAINER_COMMAND": "/venv/bin/python -m ouroboros.trainer.commands.cli",
        "OURO_NAMESPACES": "a, b",
        "OURO_METRICS_PORT": "0",
        "OURO_RESYNC_SECONDS": "5",
        "OURO_PROGRESS_SECONDS": "7",
    })
    assert s.jobs.trainer_command == ("/venv/bin/python", "-m", "ouroboros.trainer.commands.cli")
    assert s.namespaces == ("a", "b") and s.metrics_port == 0 and s.resync_seconds == 5
    assert s.progress_seconds == 7 and s.jobs.progress_seconds == 7  # the operator reads as often as trainers write
    assert OperatorSettings.from_env({}).jobs.trainer_command == ("ouro",)


def test_listener_addresses_from_env():
    s = OperatorSettings.from_env({"OURO_METRICS_ADDRESS": "127.0.0.1", "OURO_HEALTH_ADDRESS": "::"})
    assert (s.metrics_address, s.health_address) == ("127.0.0.1", "::")
    assert OperatorSettings.from_env({}).metrics_address == "0.0.0.0"  # a Service reaches it
    assert http_url("::", 8081, "/healthz") == "http://[::]:8081/healthz"
    assert http_url("127.0.0.1", 8081, "/healthz") == "http://127.0.0.1:8081/healthz"


@pytest.mark.parametrize("key", ["OURO_METRICS_ADDRESS", "OURO_HEALTH_ADDRESS"])
@pytest.mark.parametrize("value", ["localhost", "0.0.0.0:8080", "256.1.1.1", "example.com"])
def test_a_bad_listener_address_names_the_variable(key, value):
    with pytest.raises(ValueError, match=f"{key}: '{re.escape(value)}' is not an IP address"):
        OperatorSettings.from_env({key: value})
