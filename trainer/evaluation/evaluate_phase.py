"""The ``evaluate`` phase of a run: gate the run's candidate against the champion of its game.

The candidate is the ONNX file of the last training phase before ``evaluate``
(``runs/<run>/models/<phase>.onnx``, with its sha256 sidecar). The phase
registers it as a model version (idempotent: a retried Job registers nothing
twice), plays the gate of the run's ``spec.promotion`` through the one
promotion path (:mod:`.promotion`), puts it in force on PROMOTE, and writes the
gate's full report as evidence (``runs/<run>/evaluate/gate.json``) beside every
game it played, in the official CLI's JSONL format, one folder per opponent
(``runs/<run>/evaluate/games/champion/``, ``.../games/heuristic/`` ...). Its outcome
carries the decision and the compact statistics the operator shows in
``TrainingRun.status.promotion``.

While the gate plays, the phase writes progress records like every phase
(``runs/<run>/progress/evaluate-w0.json``): games played against the gate's
budget and, for an SPRT gate, the scalars ``sprt/llr``, ``sprt/lower_bound`` and
``sprt/upper_bound`` after every chunk of games, which the operator shows in
``status.progress.sprt`` and exports as ``ouroboros_gate_sprt_log_likelihood_ratio``.

A PROMOTE is carried out only when the run config's ``approval`` is
Automatic and the champion is not pinned; otherwise the statistics say
``awaitingApproval`` and the Champion controller waits for a person (an
approval annotation) to run the promotion through the same path.
"""

from __future__ import annotations

import json
import logging
import time

from ouroboros.contract.progress import PROGRESS_INTERVAL_SECONDS, progress_key
from ouroboros.contract.promotion import GateStatistics, GateVerdict
from ouroboros.contract.run import RunConfig
from ouroboros.contract.vocabulary import ApprovalMode, Metric, PhaseName
from ouroboros.trainer.artifacts.store import ArtifactError, ArtifactStore
from ouroboros.trainer.evaluation import promotion
from ouroboros.trainer.learning.phases import config as phase_config
from ouroboros.trainer.learning.phases import runner
from ouroboros.trainer.observability import progress as live
from ouroboros.trainer.observability import resources

log = logging.getLogger(__name__)

PROMOTED_BY = "ouro phase evaluate"


def candidate_phase(config: RunConfig) -> PhaseName:
    """The training phase whose model the evaluate phase gates (the last one before it)."""
    names = [p.name for p in config.phases]
    before = names[: names.index(PhaseName.EVALUATE)] if PhaseName.EVALUATE in names else names
    trained = [n for n in before if n.trains]
    if not trained:
        raise ValueError("spec.phases: the evaluate phase needs a training phase before it")
    return trained[-1]


def _gate_progress(recorder: live.ProgressRecorder, budget: int):
    """A ``tournament.Progress`` that counts the gate's games (of ``budget``) and records its SPRT."""
    advance = recorder.task(f"{PhaseName.EVALUATE.value}: gate games", budget)
    played = 0

    def hear(games: int, sprt) -> None:
        nonlocal played
        advance(max(0, games - played))
        played = max(played, games)
        if sprt is not None:
            for name, value in (("llr", sprt.llr), ("lower_bound", sprt.lower_bound),
                                ("upper_bound", sprt.upper_bound)):
                recorder.scalar(f"sprt/{name}", value, games)

    return hear


def run(config: RunConfig, store_url: str | None = None, gate_run: promotion.GateRun | None = None,
        sinks: tuple[live.Sink, ...] = (), interval: float = PROGRESS_INTERVAL_SECONDS,
        ) -> tuple[runner.PhaseOutcome, GateStatistics]:
    """Gate, and promote on PROMOTE (unless approval is Manual or the champion is pinned), the
    candidate of the run in ``config``; returns the phase outcome and the gate's compact statistics.
    Progress records go to the store and to ``sinks`` every ``interval`` seconds while the gate plays.

    Raises ArtifactError when the candidate is missing (its phase has not run on
    this store), ChecksumError or ModelContractError when it is corrupt.
    """
    started = time.monotonic()
    settings = phase_config.run_settings(config)
    if store_url:
        settings = settings.model_copy(update={"store": store_url})
    store = ArtifactStore(settings.store)
    phase = candidate_phase(config)
    key = "/".join(("runs", settings.run, "models", f"{phase.value}.onnx"))
    if not store.exists(key):
        raise ArtifactError(f"no candidate at {store.uri(key)}: the {phase.value} phase of this run "
                            "has not finished on this store")
    candidate = store.info(key)
    registry = promotion.open_registry(store)
    version = runner.register_candidate(store, candidate, settings)
    gate_run = gate_run or promotion.GateRun(max_turns=config.game.max_turns)
    evidence = "/".join(("runs", settings.run, "evaluate", "games")) if config.promotion.keep_games else None
    recorder = live.ProgressRecorder(
        runner.LogReporter(), run=settings.run, phase=PhaseName.EVALUATE.value, planned=1,
        sinks=(live.store_sink(store, progress_key(settings.run, PhaseName.EVALUATE.value)), *sinks),
        sampler=resources.ResourceSampler(store.path(f"runs/{settings.run}") if store.is_local else None),
        interval=interval)
    with recorder:
        judgement = promotion.judge(registry, config.game.key, version.id, config.promotion, gate_run,
                                    config.game, evidence=evidence,
                                    progress=_gate_progress(recorder, config.promotion.games))
    awaiting, note = False, None
    if judgement.verdict is GateVerdict.PROMOTE:
        pinned = registry.champion(judgement.game).pinned_version
        if config.approval is ApprovalMode.MANUAL:
            awaiting, note = True, "approval is Manual: the candidate waits for `ouro champion approve`"
        elif pinned is not None:
            awaiting, note = True, f"the champion is pinned to {pinned}: the candidate waits for approval"
        else:
            promotion.put_in_force(registry, judgement, by=PROMOTED_BY, run=config.run.name)
            log.info("evaluate: %s is champion of %s", version.id, judgement.game)
        if note:
            log.info("evaluate: %s passed the gate; %s", version.id, note)
    report_key = "/".join(("runs", settings.run, "evaluate", "gate.json"))
    report = store.put_bytes(report_key, json.dumps({
        "candidate": version.id, "champion_before": judgement.champion, "game": judgement.game,
        "verdict": judgement.verdict.value, "reasons": judgement.reasons, "statistics": judgement.statistics(),
        "promotion": config.promotion.to_api(), "promotion_source": config.promotion_source.value},
        indent=2, default=str).encode(), {"run": settings.run})
    statistics = judgement.decision.statistics
    metrics = {Metric.GAMES: float(statistics.get("games", 0))}
    if isinstance(statistics.get("score"), float):
        metrics[Metric.WIN_RATE] = statistics["score"]
    if isinstance(statistics.get("elo"), float):
        metrics[Metric.ELO] = statistics["elo"]
    message = f"evaluate: {version.id} {judgement.verdict.value}: {note or judgement.reasons[0]}"
    outcome = runner.PhaseOutcome(PhaseName.EVALUATE, metrics, {"candidate": candidate, "gate": report},
                                  candidate, message, time.monotonic() - started)
    gate = judgement.gate_statistics()
    reasons = ([note] if note else []) + gate.reasons
    gate = gate.model_copy(update={"report": report.uri, "awaiting_approval": awaiting, "reasons": reasons[:8],
                                   "gate_source": config.promotion_source})
    return outcome, gate

