"""The shipped observability files: dashboard, alert rules, kube-state-metrics config.

Each is checked against what the code exports: a query or alert naming a
metric the operator does not export fails here, before any Prometheus runs
(tests/integration/test_prometheus.py then runs them against a real one).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_tools import tool

from ouroboros.operator.metrics import Metrics
from ouroboros.operator.resources import RunPhase

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "charts/ouroboros/files"
RULES = FILES / "prometheus-rules.yaml"
RULES_TEST = ROOT / "tests/data/prometheus/rules_test.yaml"
NAME = re.compile(r"\b((?:ouroboros|controller_runtime|workqueue)_[a-z0-9_]+|up)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_dashboard_script():
    spec = importlib.util.spec_from_file_location("ouro_dashboard", ROOT / "scripts/dashboard.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def exported() -> set[str]:
    """Every sample name the operator's registry can expose (histograms with their suffixes), plus `up`."""
    names = {"up"}
    for family in text_string_to_metric_families(Metrics().render()):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in HISTOGRAM_SUFFIXES)
    return names


def unexported(expr: str) -> set[str]:
    """Metric names in a PromQL expression that the operator does not export."""
    return {n for n in NAME.findall(expr) if n not in exported()}


def dashboard_queries() -> list[tuple[str, str]]:
    module = load_dashboard_script()
    return module.queries(json.loads((FILES / "dashboards/ouroboros.json").read_text()))


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_the_dashboard_json_is_what_the_generator_writes():
    assert load_dashboard_script().main(["--check"]) == 0, "run .venv/bin/python scripts/dashboard.py"


def test_every_dashboard_query_names_exported_metrics_only():
    queries = dashboard_queries()
    assert len(queries) >= 40
    bad = {title: unexported(expr) for title, expr in queries if unexported(expr)}
    assert not bad, bad


def test_the_metrics_page_lists_every_family_the_operator_exports_and_nothing_else():
    documented = set(re.findall(r"^\| `([a-z_:]+)` \|", (ROOT / "docs/metrics.md").read_text(), re.M))
    families = {f.name + ("_total" if f.type == "counter" else "") for f in Metrics().registry.collect()}
    assert documented == families, (sorted(families - documented), sorted(documented - families))


def test_a_query_naming_an_unexported_metric_is_caught():
    assert unexported('sum(rate(ouroboros_trainingrun_lossses{namespace="x"}[5m]))') == {
        "ouroboros_trainingrun_lossses"}
    assert unexported("controller_runtime_reconcile_time_seconds_bucket") == set()


def test_the_dashboard_covers_every_concern_the_issue_lists():
    model = json.loads((FILES / "dashboards/ouroboros.json").read_text())
    rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
    assert rows == ["Operator health", "Runs and phases", "Live progress", "Training curves",
                    "Throughput and resources", "Replay buffer", "Gate", "Champion", "Schedules"]
    annotations = {a["name"] for a in model["annotations"]["list"] if a.get("expr")}
    assert annotations == {"Champion promoted", "Champion rolled back"}
    assert {v["name"] for v in model["templating"]["list"]} == {"datasource", "namespace"}


def test_every_alert_names_exported_metrics_only_and_the_issue_lists_them_all():
    rules = alert_rules()
    assert {r["alert"] for r in rules} == {
        "OuroborosOperatorDown", "OuroborosReconcileErrors", "OuroborosTrainingRunFailed",
        "OuroborosPhaseQueued", "OuroborosPhaseStuck", "OuroborosScheduleMissed",
        "OuroborosGateRejectingEverything", "OuroborosChampionRolledBack", "OuroborosChampionRegression"}
    bad = {r["alert"]: unexported(r["expr"]) for r in rules if unexported(r["expr"])}
    assert not bad, bad
    for r in rules:
        assert r["labels"]["severity"] in {"critical", "warning", "info"} and r["annotations"]["summary"]


def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    promtool = tool("promtool")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in check.stdout + check.stderr
    run = subprocess.run([promtool, "test", "rules", str(RULES_TEST)], capture_output=True, text=True,
                         timeout=120, cwd=RULES_TEST.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    tested = {t["alertname"] for case in yaml.safe_load(RULES_TEST.read_text())["tests"]
              for t in case["alert_rule_test"]}
    assert tested == {r["alert"] for r in alert_rules()}  # every alert has a case


def _schema(kind_plural: str) -> dict:
    crd = yaml.safe_load((ROOT / f"manifests/crds/ouroboros.dev_{kind_plural}.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _has_path(schema: dict, path: list[str]) -> bool:
    node = schema
    for part in path:
        if node.get("type") == "array":
            node = node["items"]
        if part == "metadata" and node is schema:
            return True  # metadata is the API server's, not in the CRD schema
        props = node.get("properties") or {}
        if part not in props:
            return False
        node = props[part]
    return True


def test_the_kube_state_metrics_config_reads_fields_the_crds_have():
    config = yaml.safe_load((FILES / "kube-state-metrics.yaml").read_text())
    assert config["kind"] == "CustomResourceStateMetrics"
    plurals = {"TrainingRun": "trainingruns", "TrainingSchedule": "trainingschedules", "Champion": "champions"}
    resources = config["spec"]["resources"]
    assert {r["groupVersionKind"]["kind"] for r in resources} == set(plurals)
    for resource in resources:
        schema = _schema(plurals[resource["groupVersionKind"]["kind"]])
        for metric in resource["metrics"]:
            each = metric["each"]
            body = each[each["type"][0].lower() + each["type"][1:]]
            base = body.get("path", [])
            assert _has_path(schema, base), (metric["name"], base)
            for sub in (body.get("labelsFromPath") or {}).values():
                full = sub if sub[0] in ("status", "spec", "metadata") else base + sub
                assert _has_path(schema, full), (metric["name"], full)
            if each["type"] == "StateSet":
                assert body["list"] == [p.value for p in RunPhase]
