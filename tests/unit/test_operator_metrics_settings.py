"""Metrics names and per-run series; settings from the environment."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ouroboros.operator.metrics import Metrics
from ouroboros.operator.resources import TrainingRunStatus
from ouroboros.operator.settings import OperatorSettings, http_url

pytestmark = pytest.mark.unit


def test_reconcile_metrics_count_success_and_error():
    m = Metrics()
    with m.reconciling("trainingrun"):
        pass
    with pytest.raises(ValueError), m.reconciling("trainingrun"):
        raise ValueError
    text = m.render()
    assert 'ouroboros_operator_reconcile_total{controller="trainingrun",result="success"} 1.0' in text
    assert 'ouroboros_operator_reconcile_errors_total{controller="trainingrun"} 1.0' in text
    assert 'ouroboros_operator_reconcile_time_seconds_count{controller="trainingrun"} 2.0' in text


def test_run_series_follow_the_status_and_go_away_with_the_run():
    m = Metrics()
    old = TrainingRunStatus()
    new = TrainingRunStatus.model_validate({
        "phase": "Running", "currentPhaseIndex": 1, "bestWinRate": 0.6,
        "phases": [{"name": "hybrid", "state": "Succeeded", "startTime": datetime(2026, 1, 1, tzinfo=UTC),
                    "completionTime": datetime(2026, 1, 1, 0, 2, tzinfo=UTC)}, {"name": "evaluate"}],
    })
    m.observe_run("ns", "r", "champ", old, new)
    text = m.render()
    assert 'ouroboros_trainingrun_status{name="r",namespace="ns",phase="Running"} 1.0' in text
    assert 'ouroboros_trainingrun_status{name="r",namespace="ns",phase="Pending"} 0.0' in text
    assert 'ouroboros_trainingrun_info{champion="champ",name="r",namespace="ns"} 1.0' in text
    assert 'ouroboros_trainingrun_best_win_rate{name="r",namespace="ns"} 0.6' in text
    assert 'ouroboros_trainingrun_phase_duration_seconds_sum{phase="hybrid",result="Succeeded"} 120.0' in text
    m.forget_run("ns", "r")
    assert 'name="r"' not in m.render()


def test_settings_from_env():
    s = OperatorSettings.from_env({
        "OURO_TRAINER_COMMAND": "/venv/bin/python -m ouroboros.trainer.commands.cli",
        "OURO_NAMESPACES": "a, b",
        "OURO_METRICS_PORT": "0",
        "OURO_RESYNC_SECONDS": "5",
    })
    assert s.jobs.trainer_command == ("/venv/bin/python", "-m", "ouroboros.trainer.commands.cli")
    assert s.namespaces == ("a", "b") and s.metrics_port == 0 and s.resync_seconds == 5
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
