"""TrainingSchedules end to end: the operator process against a real API server.

Each test starts its own operator (`python -m ouroboros.operator`) watching
only the test's namespace. Time is the test's: the operator reads "now" from
a clock file (`OURO_CLOCK_FILE`) the test rewrites, so a night passes in a
second; one test uses the real clock and a `* * * * *` schedule to show a
schedule fires within the minute, as a CronJob does.

The template's runs are created suspended, so no phase Job runs (the
TrainingRun lifecycle is tested in test_operator_lifecycle.py). Where a test
needs a run to finish, it writes the run's status through the status
subresource as the TrainingRun controller does when its last phase ends;
the schedule controller only reads that status.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from .operator_support import OperatorProcess, apply, apply_crds, condition, get, items, wait_for

pytestmark = pytest.mark.integration
# The operator counts fire times from the schedule's creationTimestamp, which is real time, up to the
# test's clock. So the schedule fires daily at an hour half a day from the real time this module loads:
# between a schedule's creation and FIRST (the first fire time, where every test's clock starts) the real
# clock then never passes another fire time, whatever the time of day the suite runs. (A fixed 02:00
# failed when the suite ran between midnight and 02:00: that night's 02:00 fell between creation and
# the test's clock.)
_LOADED = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
CRON = f"0 {(_LOADED.hour + 12) % 24} * * *"
FIRST = _LOADED + timedelta(hours=12)


@pytest.fixture(scope="module")
def cluster(kube_cluster, node_agent):
    apply_crds(kube_cluster)
    return kube_cluster


class Clock:
    """The operator's clock file."""

    def __init__(self, path: Path, start: datetime):
        self.path = path
        self.set(start)

    def set(self, t: datetime) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
        tmp.replace(self.path)
        self.now = t


@pytest.fixture
def clock(tmp_path):
    return Clock(tmp_path / "clock", FIRST - timedelta(minutes=1))


@pytest.fixture
def operator(cluster, namespace, tmp_path, clock):
    started = []

    def start(real_clock=False, extra_env=None):
        env = ({} if real_clock else {"OURO_CLOCK_FILE": str(clock.path)}) | (extra_env or {})
        proc = OperatorProcess(cluster, namespace, tmp_path, resync_seconds=1.0, extra_env=env).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def schedule(name="nightly", **spec):
    body = {
        "schedules": [CRON],
        "template": {"metadata": {"labels": {"team": "a"}},
                     "spec": {"champion": "main", "suspend": True, "game": {"width": 7, "height": 7},
                              "phases": [{"name": "self_play", "games": 2}]}},
    }
    body.update(spec)
    return {"apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingSchedule", "metadata": {"name": name},
            "spec": body}


def runs(cluster, namespace):
    return sorted(r["metadata"]["name"] for r in items(cluster, "trainingruns", namespace))


def status(cluster, namespace, name="nightly"):
    return (get(cluster, "trainingschedule", namespace, name) or {}).get("status") or {}


def events(cluster, namespace, name="nightly"):
    return [e["reason"] for e in items(cluster, "events", namespace)
            if e["involvedObject"].get("kind") == "TrainingSchedule" and e["involvedObject"]["name"] == name]


def finish(cluster, namespace, run, phase="Succeeded", at=None):
    """Write a run's final status as the TrainingRun controller does when it ends."""
    stamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"status": {"phase": phase, "completionTime": stamp, "observedGeneration": 1}}
    cluster.kubectl("patch", "trainingrun", run, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps(body))


def stamp(day: int) -> str:
    return (FIRST + timedelta(days=day)).strftime("%Y%m%d%H%M")


def test_a_schedule_fires_at_its_time_and_forbid_skips_while_a_run_is_active(cluster, namespace, operator, clock):
    operator()
    apply(cluster, namespace, schedule(concurrencyPolicy="Forbid"))
    st = wait_for(lambda: status(cluster, namespace).get("nextScheduleTime"), timeout=60, what="nextScheduleTime")
    assert st == FIRST.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert runs(cluster, namespace) == []
    clock.set(FIRST + timedelta(seconds=3))
    first = f"nightly-{stamp(0)}"
    wait_for(lambda: runs(cluster, namespace) == [first], timeout=60, what="the first fire time's run")
    run = get(cluster, "trainingrun", namespace, first)
    owner = run["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "TrainingSchedule" and owner["name"] == "nightly" and owner["controller"] is True
    assert run["metadata"]["labels"]["team"] == "a" and run["spec"]["phases"][0]["games"] == 2
    assert run["metadata"]["annotations"]["ouroboros.dev/started-by"] == "cron"
    st = wait_for(lambda: status(cluster, namespace).get("active") and status(cluster, namespace), timeout=30)
    assert [a["name"] for a in st["active"]] == [first]
    assert st["lastTrigger"]["type"] == "cron" and st["lastTrigger"]["run"] == first
    assert condition(st, "Ready")["status"] == "True"
    table = cluster.kubectl("get", "trainingschedules", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE"]
    assert CRON in row and first in row and "cron" in row
    # the next night the run is still active: Forbid skips that time and says so
    clock.set(FIRST + timedelta(days=1, seconds=3))
    wait_for(lambda: "RunSkipped" in events(cluster, namespace), timeout=60, what="a RunSkipped event")
    assert runs(cluster, namespace) == [first]
    assert status(cluster, namespace)["lastScheduleTime"].startswith(
        (FIRST + timedelta(days=1)).strftime("%Y-%m-%d"))


def test_replace_deletes_the_active_run_and_starts_a_new_one(cluster, namespace, operator, clock):
    operator()
    clock.set(FIRST + timedelta(seconds=3))
    apply(cluster, namespace, schedule(concurrencyPolicy="Replace"))
    # created 3 s after FIRST on the test's clock but earlier in real time: FIRST is after creation
    first = f"nightly-{stamp(0)}"
    wait_for(lambda: runs(cluster, namespace) == [first], timeout=60, what="the first run")
    clock.set(FIRST + timedelta(days=1, seconds=3))
    second = f"nightly-{stamp(1)}"
    wait_for(lambda: runs(cluster, namespace) == [second], timeout=60, what="the first run replaced by the second")
    assert "RunReplaced" in events(cluster, namespace)


def test_suspend_stops_it(cluster, namespace, operator, clock):
    operator()
    apply(cluster, namespace, schedule(suspend=True))
    wait_for(lambda: condition(status(cluster, namespace), "Suspended"), timeout=60, what="conditions")
    clock.set(FIRST + timedelta(seconds=3))
    wait_for(lambda: status(cluster, namespace).get("lastScheduleTime"), timeout=60, what="the time handled")
    st = status(cluster, namespace)
    assert runs(cluster, namespace) == [] and "nextScheduleTime" not in st
    assert condition(st, "Suspended")["status"] == "True" and condition(st, "Suspended")["reason"] == "SuspendedBySpec"
    # resuming does not replay the night it slept through
    cluster.kubectl("patch", "trainingschedule", "nightly", "-n", namespace, "--type=merge",
                    "-p", '{"spec": {"suspend": false}}')
    wait_for(lambda: condition(status(cluster, namespace), "Suspended")["status"] == "False", timeout=60)
    assert runs(cluster, namespace) == []


def _write_shards(store: str, games: int) -> None:
    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.learning import shards

    writer = shards.ReplayWriter(ArtifactStore(store), "worker-run", "self_play", shard_rows=1)
    for game in range(games):
        n = 3
        writer.add("heuristic", {"value": np.zeros(n), "game_id": np.full(n, game), "turn": np.arange(n),
                                 "seat": np.zeros(n), "quality": np.ones(n)})
    writer.flush()


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_the_data_trigger_fires_after_shards_are_written(cluster, namespace, operator, clock, tmp_path, request,
                                                         backend):
    """On a file:// store, and on an s3:// bucket of a real S3 server (tests/s3server.py) that the
    operator reads with the credentials of its environment."""
    if backend == "s3":
        store = f"s3://{request.getfixturevalue('s3_bucket')}/store"  # AWS_* here point at the server
        operator(extra_env=request.getfixturevalue("s3_server").env)
        storage = {"url": store}
    else:
        (tmp_path / "store").mkdir()
        store = str(tmp_path / "store")
        operator()
        storage = {"url": f"file://{store}", "mountPath": store}
    body = schedule(schedules=[], triggers={"data": {"minNewGames": 5, "cooldownSeconds": 3600}})
    body["spec"]["template"]["spec"]["storage"] = storage
    apply(cluster, namespace, body)
    wait_for(lambda: condition(status(cluster, namespace), "Ready"), timeout=60, what="conditions")
    _write_shards(store, 4)  # under the threshold
    wait_for(lambda: status(cluster, namespace).get("observedGeneration"), timeout=30)
    subprocess.run(["sleep", "3"], check=True)  # three resyncs
    assert runs(cluster, namespace) == []
    _write_shards(store, 2)
    name = wait_for(lambda: runs(cluster, namespace), timeout=60, what="a data-triggered run")[0]
    assert name.startswith("nightly-data-")
    st = wait_for(lambda: status(cluster, namespace).get("lastTrigger") and status(cluster, namespace), timeout=30)
    # the two new shards land one after the other: a resync between them already sees 5 (the threshold)
    assert st["lastTrigger"]["type"] == "data"
    assert re.fullmatch(r"[56] new games since the last run \(threshold 5\)", st["lastTrigger"]["reason"]), st



def test_the_performance_trigger_fires_when_the_champion_weakens(cluster, namespace, operator, clock):
    operator()
    apply(cluster, namespace, {"apiVersion": "ouroboros.dev/v1alpha1", "kind": "Champion",
                               "metadata": {"name": "main"}, "spec": {}})
    # the Champion controller mirrors the registry into status first (a sync Job); the ratings
    # are patched after it, as a gate's statistics would land
    wait_for(lambda: condition((get(cluster, "champion", namespace, "main") or {}).get("status") or {}, "Ready"), timeout=120,
             what="the Champion's first sync")
    cluster.kubectl("patch", "champion", "main", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"ratings": {"winRate": 0.61}}}))
    apply(cluster, namespace, schedule(schedules=[], triggers={"performance": {"metric": "winRate", "below": 0.5}}))
    wait_for(lambda: condition(status(cluster, namespace), "Ready"), timeout=60, what="conditions")
    subprocess.run(["sleep", "3"], check=True)
    assert runs(cluster, namespace) == []
    cluster.kubectl("patch", "champion", "main", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"ratings": {"winRate": 0.42}}}))
    name = wait_for(lambda: runs(cluster, namespace), timeout=60, what="a performance-triggered run")[0]
    assert name.startswith("nightly-performance-")
    st = wait_for(lambda: status(cluster, namespace).get("lastTrigger") and status(cluster, namespace), timeout=30)
    assert st["lastTrigger"]["type"] == "performance" and "0.42" in st["lastTrigger"]["reason"]
    subprocess.run(["sleep", "3"], check=True)
    assert len(runs(cluster, namespace)) == 1  # the cooldown (6 h by default) holds the next one


def test_the_manual_trigger_fires_once_per_request(cluster, namespace, operator, clock):
    operator()
    apply(cluster, namespace, schedule(schedules=[], concurrencyPolicy="Allow"))
    wait_for(lambda: condition(status(cluster, namespace), "Ready"), timeout=60, what="conditions")
    cluster.kubectl("annotate", "trainingschedule", "nightly", "-n", namespace, "ouroboros.dev/trigger=first")
    first = wait_for(lambda: runs(cluster, namespace), timeout=60, what="the manual run")
    assert len(first) == 1 and first[0].startswith("nightly-manual-")
    subprocess.run(["sleep", "3"], check=True)
    assert runs(cluster, namespace) == first  # the same request never fires twice
    # `ouro schedule trigger --cluster` is the same request, without kubectl
    result = subprocess.run([sys.executable, "-m", "ouroboros.trainer.commands.cli", "schedule", "trigger", "nightly",
                             "--cluster", "-n", namespace], env=cluster.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: len(runs(cluster, namespace)) == 2, timeout=60, what="the second manual run")
    assert status(cluster, namespace)["lastTrigger"]["type"] == "manual"


def test_history_limits_delete_old_runs_and_failures_stop_the_schedule(cluster, namespace, operator, clock):
    operator()
    apply(cluster, namespace, schedule(concurrencyPolicy="Allow", successfulRunsHistoryLimit=1,
                                       failedRunsHistoryLimit=1, stopStrategy={"maxConsecutiveFailures": 2}))
    names = []
    for day in range(2):
        clock.set(FIRST + timedelta(days=day, seconds=3))
        names.append(f"nightly-{stamp(day)}")
        wait_for(lambda n=names[-1]: n in runs(cluster, namespace), timeout=60, what=names[-1])
        finish(cluster, namespace, names[-1], "Succeeded")
        wait_for(lambda n=names[-1]: n not in [a["name"] for a in status(cluster, namespace).get("active", [])],
                 timeout=60, what="the run leaving active")
    wait_for(lambda: runs(cluster, namespace) == [names[1]], timeout=60, what="the older success deleted")
    assert "RunDeleted" in events(cluster, namespace)
    assert status(cluster, namespace)["lastSuccessfulTime"]
    for day in (2, 3):
        clock.set(FIRST + timedelta(days=day, seconds=3))
        name = f"nightly-{stamp(day)}"
        wait_for(lambda n=name: n in runs(cluster, namespace), timeout=60, what=name)
        finish(cluster, namespace, name, "Failed")
    cond = wait_for(lambda: (c := condition(status(cluster, namespace), "Suspended")) and c["status"] == "True" and c,
                    timeout=60, what="the stop strategy suspending the schedule")
    assert cond["reason"] == "StopStrategy" and "2 runs failed in a row" in cond["message"]
    assert get(cluster, "trainingschedule", namespace, "nightly")["spec"]["suspend"] is True
    assert "Stopped" in events(cluster, namespace)
    assert runs(cluster, namespace) == [names[1], f"nightly-{stamp(3)}"]  # one success, one failure kept


def test_an_operator_killed_and_restarted_creates_no_duplicate(cluster, namespace, operator, clock):
    op = operator()
    apply(cluster, namespace, schedule(concurrencyPolicy="Allow", missedRunPolicy="RunOnce"))
    wait_for(lambda: status(cluster, namespace).get("nextScheduleTime"), timeout=60)
    clock.set(FIRST + timedelta(seconds=3))
    first = f"nightly-{stamp(0)}"
    wait_for(lambda: runs(cluster, namespace) == [first], timeout=60)
    op.kill()
    # as if it died between creating the run and recording it: the status forgets the run
    cluster.kubectl("patch", "trainingschedule", "nightly", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"lastScheduleTime": None, "active": None, "lastTrigger": None,
                                                 "triggerTimes": None}}))
    op.start()
    wait_for(lambda: status(cluster, namespace).get("lastScheduleTime"), timeout=60, what="the restarted operator")
    subprocess.run(["sleep", "3"], check=True)
    assert runs(cluster, namespace) == [first]
    assert [a["name"] for a in status(cluster, namespace)["active"]] == [first]
    # downtime over three nights: RunOnce starts one run, for the latest
    op.kill()
    clock.set(FIRST + timedelta(days=3, hours=3))
    op.start()
    wait_for(lambda: len(runs(cluster, namespace)) == 2, timeout=60, what="one run for the missed nights")
    subprocess.run(["sleep", "3"], check=True)
    assert runs(cluster, namespace) == [first, f"nightly-{stamp(3)}"]
    assert "MissedRunsSkipped" in events(cluster, namespace)


def test_an_expression_that_never_fires_is_refused_by_the_operator(cluster, namespace, operator):
    operator()
    apply(cluster, namespace, schedule(schedules=[CRON, "0 0 30 2 *"]))
    cond = wait_for(lambda: condition(status(cluster, namespace), "Ready"), timeout=60, what="conditions")
    assert cond["status"] == "False" and cond["reason"] == "InvalidSchedule"
    assert "spec.schedules[1]" in cond["message"] and "never fires" in cond["message"]
    assert "InvalidSchedule" in events(cluster, namespace)


def test_an_every_minute_schedule_fires_within_the_minute_on_the_real_clock(cluster, namespace, operator):
    """Side by side with a plain CronJob (the control plane's own controller), both `* * * * *`."""
    operator(real_clock=True)
    apply(cluster, namespace, schedule(schedules=["* * * * *"]))
    apply(cluster, namespace, {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "peer"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}},
    })
    name = wait_for(lambda: runs(cluster, namespace), timeout=90, interval=1, what="a run within the minute")[0]
    run = get(cluster, "trainingrun", namespace, name)
    created = run["metadata"]["creationTimestamp"]
    scheduled = run["metadata"]["annotations"]["ouroboros.dev/scheduled-at"]
    lag = (datetime.fromisoformat(created.replace("Z", "+00:00"))
           - datetime.fromisoformat(scheduled.replace("Z", "+00:00"))).total_seconds()
    assert 0 <= lag < 30, lag
    wait_for(lambda: items(cluster, "jobs", namespace), timeout=90, interval=1, what="the CronJob's Job")
