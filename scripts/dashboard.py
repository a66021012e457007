"""The Grafana dashboard, as code: writes charts/ouroboros/files/dashboards/ouroboros.json.

    .venv/bin/python scripts/dashboard.py           # regenerate the JSON
    .venv/bin/python scripts/dashboard.py --check   # exit 1 if the JSON in the chart is stale

Built with Grafana's own foundation SDK (`grafana-foundation-sdk`, a dev
dependency; the chart ships the generated JSON, so neither the operator nor
Grafana needs the SDK). The panels are data (`ROWS`): a row per concern
(operator health, runs and phases, live progress, training curves,
throughput and resources, replay buffer, gate, champion, schedules), each panel a title, a
unit and its PromQL. Champion promotions and rollbacks are annotations.
Queries filter on the `$namespace` variable (label_values of
`ouroboros_trainingrun_info` and `ouroboros_champion_info`) and the
operator's scrape job is `ouroboros-operator` (the Service's name, as a
ServiceMonitor labels it). `tests/unit/test_observability_files.py` checks that
every metric a query names is one the operator exports and that the file is
current; `tests/integration/test_prometheus.py` runs every query against a
real Prometheus scraping a real operator.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

OUT = Path(__file__).resolve().parent.parent / "charts/ouroboros/files/dashboards/ouroboros.json"
UID = "ouroboros-training"
JOB = "ouroboros-operator"
NS = 'namespace=~"$namespace"'
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclasses.dataclass(frozen=True)
class Panel:
    """One panel: title, kind (timeseries, stat, table), unit, and (PromQL, legend) queries."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 8


RUN_LEGEND = "{{namespace}}/{{name}}"
PHASE_LEGEND = "{{namespace}}/{{name}} {{training_phase}}"

ROWS: tuple[tuple[str, tuple[Panel, ...]], ...] = (
    ("Operator health", (
        Panel("Operator up", ((f'up{{job="{JOB}"}}', "{{instance}}"),), kind="stat", width=4,
              description="1 while Prometheus can scrape the operator."),
        Panel("Reconciles per second", (
            ("sum by (controller, result) (rate(controller_runtime_reconcile_total[5m]))",
             "{{controller}} {{result}}"),), unit="ops", width=7),
        Panel("Reconcile errors per second", (
            ("sum by (controller) (rate(controller_runtime_reconcile_errors_total[5m]))", "{{controller}}"),),
              unit="ops", width=6),
        Panel("Reconcile time p50 / p99", (
            ("histogram_quantile(0.5, sum by (le, controller) "
             "(rate(controller_runtime_reconcile_time_seconds_bucket[5m])))", "p50 {{controller}}"),
            ("histogram_quantile(0.99, sum by (le, controller) "
             "(rate(controller_runtime_reconcile_time_seconds_bucket[5m])))", "p99 {{controller}}")),
              unit="s", width=7),
        Panel("Work queue depth and active workers", (
            ("sum by (name) (workqueue_depth)", "depth {{name}}"),
            ("sum by (controller) (controller_runtime_active_workers)", "active {{controller}}")), width=8),
        Panel("Cluster changes per second", (
            ("sum by (action) (rate(ouroboros_operator_actions_total[5m]))", "{{action}}"),), unit="ops", width=8),
        Panel("Events posted", (
            ("sum by (type, reason) (increase(ouroboros_operator_events_total[1h]))", "{{type}} {{reason}}"),),
              width=8),
    )),
    ("Runs and phases", (
        Panel("Runs by phase", ((f"sum by (phase) (ouroboros_trainingrun_status{{{NS}}})", "{{phase}}"),),
              kind="stat", width=8),
        Panel("Training phases by state", (
            (f"sum by (training_phase, state) (ouroboros_trainingrun_phase_status{{{NS}}} == 1)",
             "{{training_phase}} {{state}}"),), kind="table", width=8),
        Panel("Runs finished (1 d)", (
            ("sum by (result) (increase(ouroboros_trainingruns_finished_total[1d]))", "{{result}}"),),
              kind="stat", width=8),
        Panel("Phase duration p50", (
            ("histogram_quantile(0.5, sum by (le, training_phase) "
             "(rate(ouroboros_trainingrun_phase_duration_seconds_bucket[1d])))", "{{training_phase}}"),),
              unit="s", width=12),
        Panel("Phase retries (1 d)", (
            ("sum by (training_phase) (increase(ouroboros_trainingrun_phase_retries_total[1d]))",
             "{{training_phase}}"),), width=12),
    )),
    ("Live progress", (
        Panel("Phase progress", ((f"ouroboros_trainingrun_progress_ratio{{{NS}}}", PHASE_LEGEND),),
              unit="percentunit", width=8),
        Panel("Time left in the phase", ((f"ouroboros_trainingrun_progress_eta_seconds{{{NS}}}", PHASE_LEGEND),),
              unit="s", width=8),
        Panel("Seconds since the last progress record", (
            (f"time() - ouroboros_trainingrun_progress_updated_timestamp_seconds{{{NS}}}", PHASE_LEGEND),),
              unit="s", width=8, description="Over 120 s: the trainer stopped reporting."),
        Panel("Games played in the phase", ((f"ouroboros_trainingrun_games{{{NS}}}", PHASE_LEGEND),), width=12),
        Panel("Positions recorded in the phase", ((f"ouroboros_trainingrun_positions{{{NS}}}", PHASE_LEGEND),),
              width=12),
    )),
    ("Training curves", (
        Panel("Losses", ((f"ouroboros_trainingrun_loss{{{NS}}}", PHASE_LEGEND + " {{loss}}"),), width=8),
        Panel("Win rate by opponent", (
            (f"ouroboros_trainingrun_win_rate{{{NS}}}", PHASE_LEGEND + " vs {{opponent}}"),),
              unit="percentunit", width=8),
        Panel("Best win rate", ((f"ouroboros_trainingrun_best_win_rate{{{NS}}}", RUN_LEGEND),),
              unit="percentunit", width=8),
        Panel("Policy entropy", ((f"ouroboros_trainingrun_policy_entropy_nats{{{NS}}}", PHASE_LEGEND),),
              width=12),
        Panel("Imitation accuracy", ((f"ouroboros_trainingrun_imitation_accuracy_ratio{{{NS}}}", PHASE_LEGEND),),
              unit="percentunit", width=12),
        Panel("Elo by opponent, with its 95% interval", (
            (f"ouroboros_trainingrun_elo{{{NS}}}", PHASE_LEGEND + " vs {{opponent}}"),
            (f"ouroboros_trainingrun_elo_lower{{{NS}}}", "lower " + PHASE_LEGEND + " vs {{opponent}}"),
            (f"ouroboros_trainingrun_elo_upper{{{NS}}}", "upper " + PHASE_LEGEND + " vs {{opponent}}")), width=24,
              description="Logistic Elo difference from each phase's score against an opponent; an end is "
                          "missing where the interval reaches a score of 0 or 1 (unbounded)."),
    )),
    ("Throughput and resources", (
        Panel("Self-play positions per second", (
            (f"ouroboros_trainingrun_positions_per_second{{{NS}}}", PHASE_LEGEND),), width=6),
        Panel("Games per second", ((f"ouroboros_trainingrun_games_per_second{{{NS}}}", PHASE_LEGEND),), width=6),
        Panel("Training samples per second", (
            (f"ouroboros_trainingrun_samples_per_second{{{NS}}}", PHASE_LEGEND),), width=6),
        Panel("Trainer CPU cores", ((f"ouroboros_trainingrun_cpu_usage_cores{{{NS}}}", PHASE_LEGEND),), width=6),
        Panel("Trainer resident memory", (
            (f"ouroboros_trainingrun_resident_memory_bytes{{{NS}}}", PHASE_LEGEND),), unit="bytes", width=8),
        Panel("Artifact store use", ((f"ouroboros_trainingrun_store_bytes{{{NS}}}", RUN_LEGEND),), unit="bytes",
              width=8),
        Panel("Trainer GPU memory", ((f"ouroboros_trainingrun_gpu_memory_bytes{{{NS}}}", PHASE_LEGEND),),
              unit="bytes", width=8, description="Only runs whose trainers see a GPU."),
    )),
    ("Replay buffer", (
        Panel("Replay positions and games", (
            (f"ouroboros_trainingrun_replay_positions{{{NS}}}", "positions " + RUN_LEGEND),
            (f"ouroboros_trainingrun_replay_games{{{NS}}}", "games " + RUN_LEGEND)), width=8,
              description="What the run's replay shards hold: the pool its training windows are drawn from."),
        Panel("Replay buffer age", (
            (f"time() - ouroboros_trainingrun_replay_oldest_position_timestamp_seconds{{{NS}}}", "oldest " + RUN_LEGEND),
            (f"time() - ouroboros_trainingrun_replay_newest_position_timestamp_seconds{{{NS}}}",
             "newest " + RUN_LEGEND)), unit="s", width=8),
        Panel("Replay size in the store", (
            (f"ouroboros_trainingrun_replay_bytes{{{NS}}}", "bytes " + RUN_LEGEND),), unit="bytes", width=8),
    )),
    ("Gate", (
        Panel("SPRT log-likelihood ratio and bounds", (
            (f"ouroboros_gate_sprt_log_likelihood_ratio{{{NS}}}", "LLR " + RUN_LEGEND),
            (f"ouroboros_gate_sprt_bound{{{NS}}}", "{{bound}} " + RUN_LEGEND)), width=12,
              description="The gate promotes when the LLR crosses the upper bound, rejects at the lower."),
        Panel("Gate games played", ((f"ouroboros_gate_games{{{NS}}}", RUN_LEGEND),), width=6),
        Panel("Gate decisions (7 d)", (
            (f"sum by (decision) (increase(ouroboros_gate_decisions_total{{{NS}}}[7d]))", "{{decision}}"),),
              kind="stat", width=6),
    )),
    ("Champion", (
        Panel("Champion version", ((f"ouroboros_champion_info{{{NS}}}", "{{champion}} {{version}}"),),
              kind="table", width=8),
        Panel("Champion age", ((f"time() - ouroboros_champion_promoted_timestamp_seconds{{{NS}}}", "{{champion}}"),),
              unit="s", kind="stat", width=8),
        Panel("Champion score by opponent", (
            (f"ouroboros_champion_score{{{NS}}}", "{{champion}} vs {{opponent}}"),), unit="percentunit", width=8),
        Panel("Champion Elo by opponent, with its 95% interval", (
            (f"ouroboros_champion_elo{{{NS}}}", "{{champion}} vs {{opponent}}"),
            (f"ouroboros_champion_elo_lower{{{NS}}}", "lower {{champion}} vs {{opponent}}"),
            (f"ouroboros_champion_elo_upper{{{NS}}}", "upper {{champion}} vs {{opponent}}")), width=12,
              description="The served version's gate figures against the version it replaced (opponent "
                          "previous)."),
        Panel("Promotions and rollbacks (7 d)", (
            (f"sum by (champion) (increase(ouroboros_champion_promotions_total{{{NS}}}[7d]))",
             "promotions {{champion}}"),
            (f"sum by (champion, trigger) (increase(ouroboros_champion_rollbacks_total{{{NS}}}[7d]))",
             "rollbacks {{champion}} {{trigger}}")), width=12),
    )),
    ("Schedules", (
        Panel("Next scheduled run in", (
            (f"ouroboros_trainingschedule_next_schedule_timestamp_seconds{{{NS}}} - time()", RUN_LEGEND),),
              unit="s", kind="stat", width=6),
        Panel("Last scheduled run", (
            (f"time() - ouroboros_trainingschedule_last_schedule_timestamp_seconds{{{NS}}}", RUN_LEGEND),),
              unit="s", kind="stat", width=6),
        Panel("Runs created by trigger (7 d)", (
            (f"sum by (trigger) (increase(ouroboros_trainingschedule_triggers_total{{{NS}}}[7d]))", "{{trigger}}"),),
              width=6),
        Panel("Missed schedules (7 d) and suspended", (
            (f"sum by (namespace, name) (increase(ouroboros_trainingschedule_missed_total{{{NS}}}[7d]))",
             "missed " + RUN_LEGEND),
            (f"ouroboros_trainingschedule_suspended{{{NS}}}", "suspended " + RUN_LEGEND)), width=6),
    )),
)

ANNOTATIONS = (
    ("Champion promoted", "#73BF69",
     f"changes(ouroboros_champion_promotions_total{{{NS}}}[2m]) > 0", "{{champion}} promoted"),
    ("Champion rolled back", "#F2495C",
     f"changes(ouroboros_champion_rollbacks_total{{{NS}}}[2m]) > 0", "{{champion}} rolled back ({{trigger}})"),
)


def _panel(p: Panel):
    builder = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel}[p.kind]()
    builder = builder.title(p.title).unit(p.unit).datasource(DATASOURCE).span(p.width).height(8)
    if p.description:
        builder = builder.description(p.description)
    for i, (expr, legend) in enumerate(p.queries):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id("ABCDEFGH"[i])
        builder = builder.with_target(query.instant() if p.kind == "table" else query)
    if p.kind == "stat":
        builder = builder.reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]))
    elif p.kind == "table":
        builder = builder.show_header(True)
    if p.kind == "timeseries":
        builder = builder.legend(common_builder.VizLegendOptions().show_legend(True)
                                 .display_mode(common.LegendDisplayMode.LIST)
                                 .placement(common.LegendPlacement.BOTTOM))
    return builder


def build() -> dict:
    """The dashboard as Grafana's JSON model."""
    dash = (db.Dashboard("Ouroboros: training")
            .uid(UID).tags(["ouroboros", "battlesnake", "training"]).editable().time("now-6h", "now")
            .refresh("30s").timezone("browser")
            .description("Operator health, TrainingRuns and their live progress, training curves, gate, "
                         "champion and schedules (generated by scripts/dashboard.py)."))
    dash = dash.with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    dash = dash.with_variable(
        db.QueryVariable("namespace").label("Namespace").datasource(DATASOURCE)
        .query("label_values(ouroboros_trainingrun_info, namespace)")
        .multi(True).include_all(True).all_value(".*")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED))
    for name, colour, _expr, _title in ANNOTATIONS:
        dash = dash.annotation(db.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True)
                               .icon_color(colour))
    for row, panels in ROWS:
        dash = dash.with_row(db.Row(row))
        for p in panels:
            dash = dash.with_panel(_panel(p))
    model = json.loads(json.dumps(dash.build(), cls=JSONEncoder))
    # Prometheus annotations carry their query beside the SDK's fields (Grafana's legacy annotation shape).
    by_name = {name: (expr, title) for name, _, expr, title in ANNOTATIONS}
    for annotation in model["annotations"]["list"]:
        if annotation["name"] in by_name:
            expr, title = by_name[annotation["name"]]
            annotation.update({"expr": expr, "titleFormat": title, "step": "60s", "useValueForTime": False})
    return model


def queries(model: dict) -> list[tuple[str, str]]:
    """(panel or annotation title, PromQL) of every query in a dashboard model."""
    out = []
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            if target.get("expr"):
                out.append((panel.get("title", ""), target["expr"]))
    for annotation in model.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            out.append((annotation["name"], annotation["expr"]))
    return out


def render() -> str:
    """The file's text."""
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the dashboard JSON; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from the generator")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run .venv/bin/python scripts/dashboard.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    tmp.write_text(text)
    tmp.replace(args.out)
    print(f"wrote {args.out} ({len(queries(json.loads(text)))} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
