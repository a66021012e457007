"""The trainer's progress recorder, its one-line format, and the preflight checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ouroboros.contract.progress import HISTORY_POINTS, ResourceUsage
from ouroboros.trainer.commands import train
from ouroboros.trainer.observability import preflight, progress, resources

pytestmark = pytest.mark.unit


class Inner:
    def __init__(self):
        self.advanced, self.scalars = [], []

    def task(self, description, total):
        return lambda n: self.advanced.append((description, n))

    def scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def recorder(planned=4, sinks=()):
    clock = Clock()
    rec = progress.ProgressRecorder(Inner(), run="r", phase="hybrid", planned=planned, sinks=sinks, clock=clock,
                                    wall=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    return rec, clock


def test_counts_pass_through_and_give_share_done_eta_and_rates():
    rec, clock = recorder(planned=4)
    games = rec.task("hybrid 1/2: games", 100)
    games(50)
    rec.scalar("hybrid/positions", 5000, 0)
    rec.scalar("hybrid/loss/policy", 1.5, 3)
    clock.t = 10
    r = rec.record()
    assert r.fraction == 0.125 and r.eta_seconds == 70  # 10 s for 1/8: 70 s to go
    assert (r.step, r.step_completed, r.step_total) == ("hybrid 1/2: games", 50, 100)
    assert r.games == 50 and r.positions == 5000 and r.games_per_second == 5 and r.positions_per_second == 500
    assert r.scalars == {"loss/policy": 1.5} and r.history == {"loss/policy": [(3, 1.5)]}
    assert rec.inner.advanced == [("hybrid 1/2: games", 50)]  # the bars still move
    assert ("hybrid/loss/policy", 1.5, 3) in rec.inner.scalars
    steps = rec.task("hybrid 1/2: PPO steps", 10)
    steps(10)  # steps are no games
    r = rec.record()
    assert r.fraction == 0.5 and r.games == 50
    assert rec.record(done=True).fraction == 1 and rec.record(done=True).eta_seconds is None


def test_history_is_thinned_but_keeps_the_newest_point():
    rec, _ = recorder()
    for step in range(3 * HISTORY_POINTS):
        rec.scalar("hybrid/entropy", step / 10, step)
    points = rec.record().history["entropy"]
    assert len(points) <= HISTORY_POINTS and points[-1] == (3 * HISTORY_POINTS - 1, (3 * HISTORY_POINTS - 1) / 10)
    assert points[0][0] < HISTORY_POINTS  # the start of the curve is still there


def test_the_thread_publishes_a_first_and_a_final_record_and_a_failing_sink_is_harmless():
    seen = []

    def broken(rec):
        raise OSError("store unreachable")

    rec, _ = recorder(sinks=(broken, seen.append))
    with rec:
        rec.task("hybrid 1/1: games", 2)(2)
    assert seen[0].fraction == 0 and not seen[0].done
    assert seen[-1].done and seen[-1].games == 2
    with pytest.raises(RuntimeError), recorder(sinks=(seen.append,))[0]:
        raise RuntimeError
    assert not seen[-1].done  # a phase that failed never claims to be done


def test_a_record_in_a_store_is_replaced_whole(store):
    rec, _ = recorder(sinks=(progress.store_sink(store, "runs/r/progress/hybrid-w0.json"),))
    rec.publish()
    rec.task("hybrid 1/1: games", 4)(4)
    rec.publish(done=True)
    doc = store.read_json("runs/r/progress/hybrid-w0.json")
    assert doc["done"] and doc["games"] == 4 and doc["phase"] == "hybrid"


def test_planned_steps():
    assert progress.planned_steps("bootstrap", 1) == 2
    assert progress.planned_steps("hybrid", 4) == 8
    assert progress.planned_steps("self_play", 4, worker=2) == 1


def test_the_sampler_sees_this_process_and_a_local_store(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"x" * 1000)
    usage = resources.ResourceSampler(str(tmp_path)).sample()
    assert isinstance(usage, ResourceUsage)
    assert usage.resident_memory_bytes > 10 << 20 and usage.cpu_seconds > 0
    assert usage.peak_resident_memory_bytes >= usage.resident_memory_bytes
    assert usage.store_bytes == 1000 and usage.disk_free_bytes > 0


@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), ("512MiB", 512 << 20), ("2GB", 2_000_000_000), ("1.5Gi", 3 << 29), ("10 kb", 10_000), ("7b", 7)])
def test_sizes(text, expected):
    assert preflight.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1.2.3G", "-5G", "5 parsecs"])
def test_bad_sizes_are_refused_with_the_form_to_use(text):
    with pytest.raises(ValueError, match="not a size"):
        preflight.parse_bytes(text)


def test_preflight_names_each_shortfall_with_both_numbers_and_its_flag():
    facts = preflight.Facts(memory_available_bytes=512 << 20, disk_free_bytes=1 << 30, disk_path="/data")
    short = preflight.check(facts, preflight.PreflightThresholds())
    text = preflight.describe(short)
    assert [s.resource for s in short] == ["memory", "disk"]
    assert "memory: 512.0 MiB free, 1.0 GiB needed (set with --min-free-memory" in text
    assert "disk on /data: 1.0 GiB free, 2.0 GiB needed (set with --min-free-disk" in text
    off = preflight.PreflightThresholds(min_free_memory_bytes=0, min_free_disk_bytes=0)
    assert preflight.check(facts, off) == []
    assert preflight.check(preflight.Facts(8 << 30, None, None), preflight.PreflightThresholds()) == []


def test_ouro_train_refuses_to_start_without_the_memory_it_needs(tmp_path, capsys):
    code = train.main(["--preset", "smoke", "--store", str(tmp_path / "s"), "--min-free-memory", "1000TiB"])
    err = capsys.readouterr().err
    assert code == 1 and "not enough resources to start" in err and "1000.0" not in err
    assert "GiB needed (set with --min-free-memory" in err
    assert not (tmp_path / "s").exists()  # nothing started


@pytest.mark.parametrize(("argv", "flag"), [
    (["--min-free-disk", "plenty"], "--min-free-disk"), (["--progress-every", "60"], "--progress-every")])
def test_ouro_train_names_a_bad_flag(argv, flag, capsys):
    assert train.main(["--preset", "smoke", *argv]) == 2
    assert flag in capsys.readouterr().err


def test_format_line_shows_losses_and_win_rates():
    rec, _ = recorder()
    rec.scalar("hybrid/loss/value", 0.25, 1)
    rec.scalar("hybrid/win_rate/heuristic", 0.5, 1)
    line = progress.format_line(rec.record())
    assert "loss/value 0.25 win_rate/heuristic 0.5" in line and line.startswith("00:00:00 hybrid")


@pytest.mark.parametrize(("env", "seconds"), [
    ({}, 15.0), ({"OURO_PROGRESS_SECONDS": "2"}, 2.0), ({"OURO_PROGRESS_SECONDS": "90"}, 30.0),
    ({"OURO_PROGRESS_SECONDS": "0"}, 15.0), ({"OURO_PROGRESS_SECONDS": "soon"}, 15.0)])
def test_ouro_phase_writes_progress_as_often_as_the_operator_asks(env, seconds):
    from ouroboros.trainer.commands import phase

    assert phase.progress_interval(env) == seconds
