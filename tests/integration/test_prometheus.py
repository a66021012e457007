"""The dashboard and the alerts against a real Prometheus scraping a real operator.

A real Prometheus (Debian's package, installed by scripts/install-prometheus.sh
when missing) starts on a loopback port with a generated config that scrapes
the operator every second under the job name the chart uses
(`ouroboros-operator`) and loads the shipped alert rules. A tiny TrainingRun
(bootstrap, hybrid, self_play, evaluate; the real trainer) goes through the
real control plane while the operator reads its progress records every second,
and its evaluate phase makes the first version champion; a second run's gate (an SPRT
every candidate that is not hopeless passes) promotes its own; the Champion is
then pinned back to the first version (a manual rollback); and a
TrainingSchedule firing every minute (its runs suspended, so they cost nothing)
creates one run and misses the next time under concurrencyPolicy Forbid. Then:

* the run's status carried live progress while a phase ran;
* every query of the shipped dashboard runs as Grafana runs it (a range query
  over the test's time span) and returns at least one series (`PENDING` lists
  any that a tiny run cannot feed, with the reason; Elo interval ends may be
  unbounded and so absent);
* every alert expression is valid PromQL to this Prometheus and every rule is
  loaded and evaluated without error.

A query naming a metric nobody exports returns no series and fails the test
(the check is shown to fail on such a query).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_tools import tool

from .operator_support import (
    OperatorProcess,
    apply,
    apply_crds,
    champion,
    champion_status,
    free_port,
    run_status,
    tiny_run,
    wait_for,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts/ouroboros/files/dashboards/ouroboros.json"
RULES = REPO / "charts/ouroboros/files/prometheus-rules.yaml"
JOB = "ouroboros-operator"

# Queries that a tiny run cannot give a series, and why. Their metrics must still be exported and their
# queries must still parse.
PENDING: dict[str, str] = {}
# Panels that need hardware the test machine lacks.
NEEDS_GPU = {"Trainer GPU memory"}
# Interval ends of Elo figures: an end is absent where the interval reaches a score of 0 or 1 (unbounded),
# which a handful of tiny-run games can do; the estimate beside it must have data.
INTERVAL_ENDS = re.compile(r"_elo_(lower|upper)\b")
# A gate that any candidate that is not hopeless passes (SPRT between -1000 and -700 Elo, loose error rates):
# one draw or win in the first ten games promotes it.
LENIENT_GATE = {"games": 20, "minGames": 10,
                "sprt": {"elo0": -1000, "elo1": -700, "alpha": 0.3, "beta": 0.3},
                "readiness": {"maxP99LatencyMs": 1000, "maxPeakMemoryMb": 1000}}


class Prometheus:
    """A Prometheus server on a loopback port, with its HTTP API."""

    def __init__(self, root: Path, targets: list[str]):
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "prometheus.yml"
        self.config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }))
        self.log = root / "prometheus.log"
        self.proc = subprocess.Popen(
            [tool("prometheus"), f"--config.file={self.config}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        wait_for(self._ready, timeout=60, what=f"prometheus ready (log {self.log})")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:  # a bad query is a 400 with a JSON error body
            return json.loads(exc.read())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(row, panel or annotation title, PromQL) of every query in the shipped dashboard."""
    model = json.loads(DASHBOARD.read_text())
    out, row = [], ""
    for panel in model["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
        for target in panel.get("targets", []):
            out.append((row, panel["title"], target["expr"]))
    for annotation in model["annotations"]["list"]:
        if annotation.get("expr"):
            out.append((annotation["name"], annotation["name"], annotation["expr"]))
    return out


def grafana_expr(expr: str) -> str:
    """The query as Grafana sends it with the `namespace` variable at All (`.*`)."""
    return expr.replace("$namespace", ".*")


def series(prom: Prometheus, expr: str, start: float, end: float) -> tuple[int, str | None]:
    """(number of series, error) of a range query as a Grafana panel runs it."""
    answer = prom.api("query_range", query=grafana_expr(expr), start=start, end=end, step="2s")
    if answer["status"] != "success":
        return 0, answer.get("error", "failed")
    return len(answer["data"]["result"]), None


@pytest.fixture
def cluster(kube_cluster, node_agent):
    apply_crds(kube_cluster)
    return kube_cluster


def test_every_panel_and_alert_works_against_prometheus_scraping_a_tiny_run(cluster, node_agent, namespace, tmp_path):
    op = OperatorProcess(cluster, namespace, tmp_path, trainer_command=[str(Path(sys.executable).parent / "ouro")],
                         extra_env={"OURO_PROGRESS_SECONDS": "1"}).start()
    prom = Prometheus(tmp_path / "prometheus", [f"127.0.0.1:{op.metrics_port}"])
    try:
        start = time.time()
        # the store on the shared claim, at the path the node agent keeps it: the (local) operator
        # reads the progress records where the phases' pods write them
        claim = Path(node_agent.root) / "claims" / namespace / "ouroboros-artifacts"
        storage = {"url": f"file://{claim}/store", "mountPath": str(claim)}
        apply(cluster, namespace, champion(storage=storage, policy={"postPromotionCheck": {"games": 0}}))
        apply(cluster, namespace, every_minute_schedule())
        run = tiny_run("watched", phases=("bootstrap", "hybrid", "self_play", "evaluate"), storage=storage)
        # every hybrid game against the teacher, so a win rate is reported whatever the seeds
        run["spec"]["phases"][1].update(games=4, heuristicRatio=1.0)
        # a self-play phase long enough (over ten seconds here) that records with an ETA are written, read
        # into the status and scraped: a faster machine finishes 2 games before the first ETA
        run["spec"]["phases"][2].update(games=200)
        apply(cluster, namespace, run)
        # live progress, with its time left, reaches the run's status while a phase runs
        def progress_with_eta():
            found = run_status(cluster, namespace, "watched").get("progress") or {}
            return found if found.get("etaSeconds") is not None else None

        progress = wait_for(progress_with_eta, timeout=240, interval=0.5,
                            what="status.progress.etaSeconds of a running phase")
        assert progress["phase"] in ("bootstrap", "hybrid", "self_play", "evaluate") and 0 <= progress["percent"] <= 100
        assert progress["updatedAt"] and progress["residentMemoryBytes"] > 0
        cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/watched", "-n", namespace,
                        "--timeout=300s")
        assert "progress" not in run_status(cluster, namespace, "watched")  # none once nothing runs
        first = wait_for(lambda: champion_status(cluster, namespace).get("version"), timeout=120,
                         what="the first champion in Champion.status")

        # a second run's SPRT gate plays the champion and promotes its candidate
        apply(cluster, namespace, tiny_run("challenger", phases=("bootstrap", "evaluate"), storage=storage,
                                           promotion=LENIENT_GATE))
        cluster.kubectl("wait", "--for=condition=Succeeded", "trainingrun/challenger", "-n", namespace,
                        "--timeout=300s")
        gate = run_status(cluster, namespace, "challenger")["promotion"]
        assert gate["decision"] == "Promoted" and gate["statistics"]["games"] >= 10, gate
        second = wait_for(lambda: (v := champion_status(cluster, namespace).get("version")) != first and v,
                          timeout=120, what="the challenger's version in Champion.status")
        # pinned back by hand: a manual rollback
        cluster.kubectl("patch", "champion", "main", "-n", namespace, "--type=merge",
                        "-p", json.dumps({"spec": {"pinnedVersion": first}}))
        pinned = wait_for(lambda: (st := champion_status(cluster, namespace)).get("version") == first and st,
                          timeout=120, what="the Champion pinned back to the first version")
        assert pinned["history"][0]["reason"] == "Pinned" and pinned["history"][0]["previous"] == second
        # the schedule created its first (suspended) run, and missed the next minute while it was active
        wait_for(lambda: "ouroboros_trainingschedule_missed_total{" in (m := op.metrics()) and re.search(
            r'ouroboros_trainingschedule_missed_total\{name="minutely",namespace="[^"]+"\} [1-9]', m),
                 timeout=150, interval=1, what="a missed scheduled time")
        time.sleep(3)  # two more scrapes after the end
        end = time.time()

        exposition = op.metrics()
        exported = {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}
        assert 'ouroboros_trainingruns_finished_total{result="Succeeded"} 2.0' in exposition
        assert 'ouroboros_trainingrun_best_win_rate{name="watched",namespace="' in exposition
        assert re.search(r'ouroboros_champion_promotions_total\{champion="main",namespace="[^"]+"\} 2.0', exposition)
        assert re.search(r'ouroboros_champion_rollbacks_total\{champion="main",namespace="[^"]+",trigger="manual"\} 1.0',
                         exposition)
        # the first run's gate (readiness only: the first champion) and the challenger's SPRT both promoted
        assert re.search(r'ouroboros_gate_decisions_total\{champion="main",decision="Promoted",namespace="[^"]+"\} 2.0',
                         exposition)
        assert re.search(r'ouroboros_trainingschedule_triggers_total\{name="minutely",namespace="[^"]+",trigger="cron"\} 1.0',
                         exposition)
        results = {(row, title, expr): series(prom, expr, start - 5, end) for row, title, expr in dashboard_queries()}
        empty = []
        for (row, title, expr), (count, error) in results.items():
            assert error is None, f"{row} / {title}: {expr}: {error}"
            for name in _metric_names(expr):
                family = re.sub(r"_(total|bucket|sum|count)$", "", name)
                assert {name, family} & exported, f"{title}: {name} not exported"
            if title in PENDING or title in NEEDS_GPU or INTERVAL_ENDS.search(expr):
                continue
            if count == 0:
                empty.append(f"{row} / {title}: {expr}")
        assert not empty, "panels without data:\n" + "\n".join(empty)
        # the check above does catch a query naming a metric nobody exports
        assert series(prom, 'ouroboros_trainingrun_no_such_metric{namespace=~"$namespace"}', start, end) == (0, None)

        # every alert expression is valid PromQL here, and every rule is loaded and evaluates cleanly
        rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
        for rule in rules:
            answer = prom.api("query", query=rule["expr"])
            assert answer["status"] == "success", f"{rule['alert']}: {answer.get('error')}"
        loaded = wait_for(lambda: _evaluated_rules(prom, len(rules)), timeout=30, what="all rules evaluated")
        assert {r["name"] for r in loaded} == {r["alert"] for r in rules}
        assert all(r["health"] == "ok" for r in loaded), [(r["name"], r.get("lastError")) for r in loaded]
        # the operator is up, so its down alert is quiet; the run succeeded, so no failure fires
        firing = {a["labels"]["alertname"] for a in prom.api("alerts")["data"]["alerts"]}
        assert "OuroborosOperatorDown" not in firing and "OuroborosTrainingRunFailed" not in firing
    finally:
        prom.stop()
        op.stop()


def every_minute_schedule() -> dict:
    """A TrainingSchedule that fires every minute, Forbid, its runs suspended (they wait, costing nothing)."""
    return {"apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingSchedule", "metadata": {"name": "minutely"},
            "spec": {"schedules": ["* * * * *"], "concurrencyPolicy": "Forbid",
                     "template": {"spec": {"champion": "main", "suspend": True, "game": {"width": 7, "height": 7},
                                           "phases": [{"name": "self_play", "games": 2}]}}}}


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(ouroboros_[a-z0-9_]+)", expr))


def _evaluated_rules(prom: Prometheus, expected: int) -> list[dict] | None:
    groups = prom.api("rules")["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    if len(rules) == expected and all(r.get("lastEvaluation", "").startswith("20") for r in rules):
        return rules
    return None
