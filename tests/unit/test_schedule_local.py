"""`ouro schedule` on one machine: the operator's decision, `ouro train` as a child, a SQLite history.

The CLI tests run the real `ouro train --preset smoke` (seconds); the runner
tests use a stand-in train command (a Python one-liner that prints a summary
and exits with a chosen status) so each policy takes milliseconds. Time is a
clock file the test rewrites.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ouroboros.operator import clock as clocks
from ouroboros.trainer.scheduling import history as hist
from ouroboros.trainer.scheduling import runner

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 30, 1, 59, tzinfo=UTC)


def document(**spec) -> dict:
    body = {"schedules": ["0 2 * * *"],
            "template": {"spec": {"champion": "main", "phases": [{"name": "self_play", "games": 2}]}}}
    body.update(spec)
    return {"apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingSchedule", "metadata": {"name": "local"},
            "spec": body}


def set_clock(path: Path, t: datetime) -> None:
    path.write_text(t.strftime("%Y-%m-%dT%H:%M:%SZ"))


def fake_train(exit_code: int = 0, score: float = 0.25, seconds: float = 0.0) -> tuple[str, ...]:
    code = (f"import json, time; time.sleep({seconds}); "
            f"print(json.dumps({{'strength': [{{'opponent': 'heuristic', 'score': {score}}}]}})); "
            f"raise SystemExit({exit_code})")
    return (sys.executable, "-c", code)


def local(tmp_path, doc, train=None, exit_code=0) -> tuple[runner.LocalRunner, Path]:
    clock_file = tmp_path / "clock"
    if not clock_file.exists():
        set_clock(clock_file, T0)
    options = runner.RunnerOptions(store=str(tmp_path / "store"), preset="smoke", workdir=tmp_path / "work",
                                   train_command=train or fake_train(exit_code))
    return runner.LocalRunner(doc, hist.History(tmp_path / "db.sqlite"), options, clocks.clock(clock_file)), clock_file


def drain(r: runner.LocalRunner, timeout: float = 60) -> None:
    """Passes until nothing runs any more."""
    deadline = time.monotonic() + timeout
    r.step()
    while r.busy():
        assert time.monotonic() < deadline, "executions did not finish"
        time.sleep(0.05)
        r.step()


def names(r: runner.LocalRunner) -> list[str]:
    return [e.name for e in r.history.executions("local")]


def test_a_due_time_runs_once_and_is_recorded(tmp_path):
    r, clock_file = local(tmp_path, document())
    drain(r)
    assert names(r) == []
    set_clock(clock_file, T0 + timedelta(minutes=1, seconds=3))
    drain(r)
    drain(r)
    (ex,) = r.history.executions("local")
    assert ex.name == "local-202611300200" and ex.trigger == "cron" and ex.success is True
    assert ex.exit_code == 0 and ex.champion_score == 0.25 and ex.finished_at is not None


@pytest.mark.parametrize(("policy", "expected"), [
    ("Skip", []),
    ("RunOnce", ["local-202612030200"]),
    ("RunAll", ["local-202612020200", "local-202612030200"]),
])
def test_missed_runs_after_downtime_follow_the_policy(tmp_path, policy, expected):
    r, clock_file = local(tmp_path, document(missedRunPolicy=policy, maxMissedRuns=2, concurrencyPolicy="Allow"))
    r.step()  # first seen at 01:59 on 30 November
    set_clock(clock_file, datetime(2026, 12, 3, 9, 0, tzinfo=UTC))  # the runner was off for three nights
    drain(r)
    assert names(r) == expected


def test_a_manual_request_runs_once(tmp_path):
    r, _ = local(tmp_path, document(schedules=[]))
    r.history.request_manual("local", T0)
    drain(r)
    drain(r)
    (ex,) = r.history.executions("local")
    assert ex.trigger == "manual" and ex.success


def test_the_data_trigger_counts_games_in_the_local_store(tmp_path):
    import numpy as np

    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning import shards

    r, clock_file = local(tmp_path, document(schedules=[], triggers={"data": {"minNewGames": 3, "cooldownSeconds": 0}}))
    r.step()
    writer = shards.ReplayWriter(ArtifactStore(str(tmp_path / "store")), "other", "self_play", shard_rows=1)
    for game in range(3):
        writer.add("heuristic", {"value": np.zeros(2), "game_id": np.full(2, game), "turn": np.arange(2),
                                 "seat": np.zeros(2), "quality": np.ones(2)})
    set_clock(clock_file, T0 + timedelta(seconds=5))
    drain(r)
    assert [e.trigger for e in r.history.executions("local")] == ["data"]


def test_failures_in_a_row_stop_the_schedule(tmp_path):
    r, clock_file = local(tmp_path, document(stopStrategy={"maxConsecutiveFailures": 2}), exit_code=3)
    r.step()
    for day in range(3):
        set_clock(clock_file, T0 + timedelta(days=day, minutes=1, seconds=3))
        drain(r)
        drain(r)
    assert len(names(r)) == 2  # the third night does not run
    assert all(e.success is False and e.exit_code == 3 for e in r.history.executions("local"))
    lines = runner.status_lines(r.history, T0 + timedelta(days=3))
    assert "stopped by stopStrategy" in lines[0]


def test_history_limits_prune_but_keep_the_rows(tmp_path):
    r, clock_file = local(tmp_path, document(successfulRunsHistoryLimit=1))
    r.step()
    for day in range(3):
        set_clock(clock_file, T0 + timedelta(days=day, minutes=1, seconds=3))
        drain(r)
        drain(r)
    rows = r.history.executions("local")
    assert [e.pruned for e in rows] == [True, True, False] and all(e.success for e in rows)


def test_replace_stops_the_running_execution(tmp_path):
    r, clock_file = local(tmp_path, document(concurrencyPolicy="Replace"), train=fake_train(seconds=60))
    r.step()
    set_clock(clock_file, T0 + timedelta(minutes=1, seconds=3))
    r.step()
    set_clock(clock_file, T0 + timedelta(days=1, minutes=1, seconds=3))
    r.step()
    first, second = r.history.executions("local")
    assert first.finished_at is not None and first.success is False and "replaced" in first.message
    assert second.finished_at is None
    os.killpg(second.pid, signal.SIGTERM)


# ---------------------------------------------------------------------------
# The CLI, with the real `ouro train --preset smoke`


def ouro(*args, cwd, timeout=300, **kwargs):
    return subprocess.run([sys.executable, "-m", "ouroboros.trainer.commands.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def cli_args(tmp_path):
    return ["--db", "db.sqlite", "--store", "store", "--preset", "smoke", "--workdir", "work",
            "--clock-file", "clock", "--poll", "0.2", "--train-arg=--eval-games", "--train-arg=4"]


def test_ouro_schedule_run_trains_with_the_smoke_preset_and_survives_a_kill(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document()))
    set_clock(tmp_path / "clock", T0)
    first = ouro("schedule", "run", "s.yaml", *cli_args(tmp_path), "--max-passes", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr  # the runner first sees the schedule at 01:59
    set_clock(tmp_path / "clock", T0 + timedelta(minutes=1, seconds=3))
    proc = subprocess.Popen([sys.executable, "-m", "ouroboros.trainer.commands.cli", "schedule", "run", "s.yaml",
                             *cli_args(tmp_path)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = hist.History(tmp_path / "db.sqlite")
    deadline = time.monotonic() + 60
    while not db.executions("local"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # the runner dies while ouro train runs
    proc.wait()
    done = ouro("schedule", "run", "s.yaml", *cli_args(tmp_path), "--until-idle", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (ex,) = db.executions("local")
    assert ex.success is True and ex.champion_score is not None and 0 <= ex.champion_score <= 1
    summary = json.loads((tmp_path / "work" / f"{ex.name}.out").read_text())
    assert summary["run"] == ex.name and summary["preset"] == "smoke"
    history = ouro("schedule", "history", "--db", "db.sqlite", "--json", cwd=tmp_path)
    (row,) = [json.loads(line) for line in history.stdout.splitlines()]
    assert row["name"] == "local-202611300200" and row["trigger"] == "cron" and row["success"] is True
    status = ouro("schedule", "status", "--db", "db.sqlite", "--clock-file", "clock", cwd=tmp_path)
    assert "next 2026-12-01T02:00:00+00:00" in status.stdout
    again = ouro("schedule", "run", "s.yaml", *cli_args(tmp_path), "--until-idle", cwd=tmp_path)
    assert again.returncode == 0 and len(db.executions("local")) == 1  # never twice


def test_ouro_schedule_trigger_records_a_local_request(tmp_path):
    result = ouro("schedule", "trigger", "local", "--db", "db.sqlite", cwd=tmp_path)
    assert result.returncode == 0 and "manual run requested" in result.stdout
    assert hist.History(tmp_path / "db.sqlite").latest_manual("local")


@pytest.mark.parametrize(("patch", "field"), [
    ({"schedules": ["61 25 * * *"]}, "schedules[0]"),
    ({"timeZone": "Mars/Olympus_Mons"}, "timeZone"),
])
def test_a_bad_document_is_refused_naming_the_field(tmp_path, patch, field):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document(**patch)))
    result = ouro("schedule", "run", "s.yaml", "--db", "db.sqlite", "--max-passes", "1", cwd=tmp_path)
    assert result.returncode == 2 and field in result.stderr
    assert not hist.History(tmp_path / "db.sqlite").executions()


def test_the_local_runner_imports_neither_kopf_nor_the_kubernetes_client():
    """The trainer image has neither: `ouro schedule run` must work without them."""
    code = ("import sys, ouroboros.trainer.commands.schedule; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'kopf', 'kubernetes', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ouro_schedule_run_refuses_to_start_without_the_memory_it_needs(tmp_path):
    """The same preflight as `ouro train`: both numbers and the flag, exit 1, nothing run or recorded."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(document()))
    set_clock(tmp_path / "clock", T0 + timedelta(minutes=1, seconds=3))  # a run would be due
    result = ouro("schedule", "run", "s.yaml", *cli_args(tmp_path), "--until-idle", "--min-free-memory", "1000TiB",
                  cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "not enough resources to start" in result.stderr
    assert "GiB needed (set with --min-free-memory; 0 turns the check off)" in result.stderr
    assert not hist.History(tmp_path / "db.sqlite").executions()
    bad = ouro("schedule", "run", "s.yaml", *cli_args(tmp_path), "--min-free-disk", "plenty", cwd=tmp_path)
    assert bad.returncode == 2 and "--min-free-disk" in bad.stderr


def test_each_execution_gets_the_schedules_thresholds_and_ouro_train_reads_them():
    from ouroboros.trainer.commands import _common, train
    from ouroboros.trainer.commands import schedule as schedule_command

    args = schedule_command._parser().parse_args(["run", "s.yaml", "--min-free-disk", "5GiB"])
    passed = _common.preflight_args(args)
    assert passed == ["--min-free-memory", "1GiB", "--min-free-disk", "5GiB"]
    child = train._parser().parse_args(["--preset", "smoke", *passed])
    assert _common.preflight_thresholds(child) == _common.preflight_thresholds(args)
    assert _common.preflight_thresholds(child).min_free_disk_bytes == 5 << 30
