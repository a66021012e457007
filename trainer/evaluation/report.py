"""A run's report as one self-contained HTML file: training curves, strength, champion history.

`collect(store, run)` reads what the run left in its artifact store: each
phase's last progress record (its scalars' history are the training curves,
its counts and times the phase table), `runs/<run>/strength.json` (the final
duels `ouro train` plays), and the model registry (the versions the run
registered, and the history of its game's champion). `render(report)` turns
that into HTML with the charts inlined as SVG (matplotlib) and no script, font
or stylesheet from elsewhere, so the file opens from disk, offline, in any
browser, and can be mailed or attached to an issue. The HTML is a jinja2
template with autoescaping: run names, reasons and opponents are user text.

Strength rows carry the Wilson 95% interval of the score and the Elo
difference with its 95% interval (`evaluation.stats.elo_estimate`, fishtest's
method).
"""

from __future__ import annotations

import dataclasses
import io
import math
from datetime import datetime
from typing import Any

import jinja2

from ouroboros.contract.progress import ProgressRecord, progress_prefix
from ouroboros.contract.training_metrics import TrainingSeries, classify
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.evaluation import stats

PHASE_ORDER = tuple(p.value for p in PhaseName)


class RunNotFoundError(LookupError):
    """The store holds nothing of that run."""


@dataclasses.dataclass(frozen=True)
class StrengthRow:
    """One opponent's record with its intervals."""

    opponent: str
    games: int
    wins: int
    draws: int
    losses: int
    score: stats.Interval
    elo: stats.EloEstimate
    player: str = "policy"
    """How the network played (``policy`` or ``nsearch:ms=N``); files from before the field played the policy."""


@dataclasses.dataclass(frozen=True)
class Report:
    """What a report shows."""

    run: str
    store: str
    phases: list[ProgressRecord]
    strength: list[StrengthRow]
    versions: list[Any]
    """The run's registered model versions (registry.ModelVersion)."""
    champion_game: str | None
    champion: Any | None
    """The champion state of the run's game (registry.ChampionState), if any."""
    created_at: datetime


def strength_row(opponent: str, games: int, wins: int, draws: int, losses: int,
                 player: str = "policy") -> StrengthRow:
    """A strength row with the score's Wilson interval and the Elo estimate's interval."""
    if wins + draws + losses != games or games <= 0:
        raise ValueError(f"strength vs {opponent}: wins + draws + losses = {wins + draws + losses}, games = {games}")
    return StrengthRow(opponent, games, wins, draws, losses, stats.wilson_interval(wins + draws / 2, games),
                       stats.elo_estimate(stats.WDL(wins, draws, losses)), player)


def collect(store, run: str, now: datetime) -> Report:
    """Everything the report shows about `run` in `store` (an ArtifactStore); RunNotFoundError if nothing."""
    from ouroboros.trainer.artifacts import registry as model_registry

    phases = []
    exists = store.fs.exists(f"{store.root}/runs/{run}")
    for key in store.documents(progress_prefix(run)) if exists else []:
        record = ProgressRecord.model_validate(store.read_json(key))
        if record.worker == 0:
            phases.append(record)
    phases.sort(key=lambda r: (PHASE_ORDER.index(r.phase) if r.phase in PHASE_ORDER else 99, r.started_at))
    strength = [strength_row(**row) for row in (store.read_json(f"runs/{run}/strength.json") or {}).get(
        "opponents", [])] if exists else []
    reg = model_registry.Registry(store)
    versions = sorted((v for v in reg.versions() if v.run == run), key=lambda v: v.created_at)
    if not phases and not versions:
        raise RunNotFoundError(f"no run {run!r} in {store.url}: no progress records under runs/{run}/progress "
                               "and no registered model version from it")
    game = next((v.game for v in reversed(versions) if v.game), None)
    champion = reg.champion(game) if game else None
    return Report(run, store.url, phases, strength, versions, game, champion, now)


# ---------------------------------------------------------------------------- charts

def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline SVG in HTML5


def curves(phases: list[ProgressRecord]) -> list[tuple[str, str]]:
    """(title, inline SVG) of each training-curve chart: losses, win rates, entropy and accuracy.

    The x axis is the phases laid end to end, each scalar spread over its
    phase's width by its own steps (optimiser steps for losses, iterations for
    win rates), so the curves read left to right through the run; phase
    boundaries are marked.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    groups: dict[str, dict[str, list[tuple[float, float]]]] = {"Losses": {}, "Win rate by opponent": {},
                                                                 "Policy entropy and imitation accuracy": {}}
    bounds = []
    offset = 0.0
    for rec in phases:
        for key, points in rec.history.items():
            found = classify(key)
            if found is None:
                continue
            series, label = found
            if series is TrainingSeries.LOSS:
                group, name = "Losses", f"{label} loss"
            elif series is TrainingSeries.WIN_RATE:
                group, name = "Win rate by opponent", f"vs {label}"
            elif series is TrainingSeries.ENTROPY:
                group, name = "Policy entropy and imitation accuracy", "policy entropy (nats)"
            elif series is TrainingSeries.ACCURACY:
                group, name = "Policy entropy and imitation accuracy", "imitation accuracy"
            else:
                continue
            # each scalar over its own steps (losses count optimiser steps, win rates iterations)
            first, last = points[0][0], points[-1][0]
            xs = [offset + 0.04 + 0.92 * (s - first) / (last - first) for s, _ in points] if last > first else [
                offset + 0.5] * len(points)
            groups[group].setdefault(name, []).extend(zip(xs, [v for _, v in points], strict=True))
        bounds.append((offset, rec.phase))
        offset += 1.0
    out = []
    for title, lines in groups.items():
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(7.2, 2.6), dpi=100)
        for name, pts in sorted(lines.items()):
            pts.sort()
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o" if len(pts) < 12 else None,
                    markersize=3, linewidth=1.4, label=name)
        for x, phase in bounds:
            ax.axvline(x, color="#bbb", linewidth=0.8)
            ax.text(x + 0.02, 1.0, phase, transform=ax.get_xaxis_transform(), fontsize=8, va="top", color="#555")
        ax.set_xlim(0, max(1.0, offset))
        ax.set_xticks([])
        if title.startswith("Win rate"):
            ax.set_ylim(0, 1)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        out.append((title, _svg(fig)))
        plt.close(fig)
    return out


def strength_chart(rows: list[StrengthRow]) -> str | None:
    """Inline SVG: each opponent's score with its Wilson 95% interval, 50% marked."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 0.5 + 0.45 * len(rows)), dpi=100)
    ys = list(range(len(rows)))
    scores = [r.score.estimate for r in rows]
    ax.errorbar(scores, ys, xerr=[[r.score.estimate - r.score.lower for r in rows],
                                  [r.score.upper - r.score.estimate for r in rows]],
                fmt="o", color="#1f77b4", capsize=4)
    ax.axvline(0.5, color="#999", linestyle="--", linewidth=0.8)
    ax.set_yticks(ys, [f"vs {r.opponent}" for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (wins + draws/2), Wilson 95% interval")
    ax.invert_yaxis()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    svg = _svg(fig)
    plt.close(fig)
    return svg


# ---------------------------------------------------------------------------- HTML

def _elo(value: float) -> str:
    return "+inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:+.0f}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Ouroboros run {{ r.run }}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 980px;
       color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f6f6f6; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.chart svg { max-width: 100%; height: auto; } .tag { padding: 1px 6px; border-radius: 3px; font-size: 12px; }
.promote { background: #e3f4e1; } .rollback { background: #fbe3e4; } .pin, .unpin { background: #eef; }
.mine { font-weight: 600; } .none { color: #888; }
</style></head><body>
<h1>Run {{ r.run }}</h1>
<p class="sub">store {{ r.store }} · report written {{ r.created_at.strftime("%Y-%m-%d %H:%M UTC") }}
{% if r.champion_game %} · game {{ r.champion_game }}{% endif %}</p>

<h2>Phases</h2>
{% if r.phases %}
<table><tr><th>phase</th><th>state</th><th>time</th><th>games</th><th>positions</th><th>positions/s</th>
<th>last losses</th><th>peak memory</th></tr>
{% for p in r.phases %}<tr><td>{{ p.phase }}</td><td>{{ "done" if p.done else "%.0f%% (stopped or running)" % (100 * p.fraction) }}</td>
<td class="n">{{ duration((p.updated_at - p.started_at).total_seconds()) }}</td><td class="n">{{ "{:,}".format(p.games) }}</td>
<td class="n">{{ "{:,}".format(p.positions) }}</td><td class="n">{{ "{:,.0f}".format(p.positions_per_second) }}</td>
<td>{% for k, v in p.scalars.items() if k.startswith("loss/") %}{{ k[5:] }} {{ "%.3f" % v }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
<td class="n">{{ "%.0f MiB" % ([p.resources.peak_resident_memory_bytes, p.resources.resident_memory_bytes] | max / 1048576) }}</td></tr>
{% endfor %}</table>
{% else %}<p class="none">No progress records (the run predates them, or its phases ran elsewhere).</p>{% endif %}

<h2>Training curves</h2>
{% for title, svg in curves %}<h3>{{ title }}</h3><div class="chart">{{ svg | safe }}</div>{% else %}
<p class="none">No scalars recorded.</p>{% endfor %}

<h2>Strength</h2>
{% if r.strength %}
<div class="chart">{{ strength_svg | safe }}</div>
<table><tr><th>player</th><th>opponent</th><th>games</th><th>W-D-L</th><th>score</th><th>Wilson 95%</th><th>Elo</th><th>Elo 95%</th></tr>
{% for s in r.strength %}<tr><td>{{ s.player }}</td><td>{{ s.opponent }}</td><td class="n">{{ s.games }}</td><td class="n">{{ s.wins }}-{{ s.draws }}-{{ s.losses }}</td>
<td class="n">{{ "%.1f%%" % (100 * s.score.estimate) }}</td><td class="n">[{{ "%.1f%%" % (100 * s.score.lower) }}, {{ "%.1f%%" % (100 * s.score.upper) }}]</td>
<td class="n">{{ elo(s.elo.elo) }}</td><td class="n">[{{ elo(s.elo.lower) }}, {{ elo(s.elo.upper) }}]</td></tr>
{% endfor %}</table>
{% else %}<p class="none">No strength measurement in the store for this run.</p>{% endif %}

<h2>Model versions of this run</h2>
{% if r.versions %}<table><tr><th>version</th><th>phase</th><th>architecture</th><th>size</th><th>sha256</th><th>registered</th></tr>
{% for v in r.versions %}<tr><td>{{ v.id }}</td><td>{{ v.phase }}</td><td>{{ v.architecture }}</td><td class="n">{{ "%.0f KiB" % (v.size / 1024) }}</td>
<td><code>{{ v.sha256[:16] }}…</code></td><td>{{ v.created_at.strftime("%Y-%m-%d %H:%M") }}</td></tr>{% endfor %}</table>
{% else %}<p class="none">The run registered no model version.</p>{% endif %}

<h2>Champion history{% if r.champion_game %} of {{ r.champion_game }}{% endif %}</h2>
{% if r.champion and r.champion.history %}
<p>Champion now: <b>{{ r.champion.version or "none" }}</b>{% if r.champion.pinned_version %} (pinned){% endif %}.</p>
<table><tr><th>when</th><th>action</th><th>version</th><th>previous</th><th>by</th><th>reason</th></tr>
{% for h in r.champion.history %}<tr class="{{ 'mine' if h.version in mine else '' }}"><td>{{ h.at.strftime("%Y-%m-%d %H:%M") }}</td>
<td><span class="tag {{ h.action.value }}">{{ h.action.value }}</span></td><td>{{ h.version or "—" }}</td><td>{{ h.previous or "—" }}</td>
<td>{{ h.by }}</td><td>{{ h.reason }}</td></tr>{% endfor %}</table>
{% else %}<p class="none">No champion history for this game.</p>{% endif %}
</body></html>
"""


def render(report: Report) -> str:
    """The report as one self-contained HTML document."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(TEMPLATE)
    return template.render(r=report, curves=curves(report.phases), strength_svg=strength_chart(report.strength),
                           mine={v.id for v in report.versions}, elo=_elo, duration=_duration)
