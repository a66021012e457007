"""Live progress of a running phase: the record a trainer writes and the operator reads.

How the numbers travel (README, "Watching training"): a phase writes one small
JSON document, a `ProgressRecord`, into the run's artifact store at
`runs/<run>/progress/<phase>-w<worker>.json` at least every
`PROGRESS_INTERVAL_SECONDS`, replacing it atomically. The operator reads the
records of a run's running phase on a timer and copies a summary into the
TrainingRun's `status.progress` (what `kubectl get` / `kubectl describe`
show) and into its Prometheus metrics. The trainer needs no Kubernetes
permissions for this and the user runs no extra server: the store is already
the one channel every phase talks through.

The evaluate phase writes records too, with the gate's SPRT as the scalars
`SPRT_SCALARS` (`status.progress.sprt`); the operator adds what it reads
itself from the run's replay shards' sidecars (`status.progress.replay`).

Part of the contract: both images import it (pydantic only).
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field

from ouroboros.contract.schema import StatusModel

PROGRESS_INTERVAL_SECONDS = 15.0
"""How often a phase rewrites its record (the promise is at least every 30 s)."""

HISTORY_POINTS = 256
"""Points kept per scalar in a record's history (older halves are thinned, never the newest)."""

STALE_AFTER_SECONDS = 120.0
"""A record older than this means the trainer stopped reporting (stuck or killed)."""


def store_run_id(name: str, namespace: str = "", uid: str = "") -> str:
    """A store-safe run id from a TrainingRun's namespace, name and uid: its folder ``runs/<id>/``.

    The uid (its first 8 characters) makes the folder belong to one object: a run
    deleted and created again under the same name never resumes from the deleted
    run's checkpoints and shards, nor shows its progress. Local runs have no uid.
    """
    text = f"{namespace}.{name}" if namespace and namespace != "default" else name
    base = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")[:54] or "run"
    suffix = re.sub(r"[^a-z0-9]", "", uid.lower())[:8]
    return f"{base}-{suffix}" if suffix else base


def progress_key(run: str, phase: str, worker: int = 0) -> str:
    """The store key of one worker's progress record of `phase` of run id `run`."""
    return f"runs/{run}/progress/{phase}-w{worker}.json"


def progress_prefix(run: str) -> str:
    """The store folder holding every progress record of run id `run`."""
    return f"runs/{run}/progress"


class ResourceUsage(StatusModel):
    """What the phase's process uses (psutil; GPU memory from torch when it sees a GPU)."""

    cpu_seconds: float = Field(0.0, ge=0, description="User + system CPU time of the process, seconds.")
    cpu_percent: float = Field(0.0, ge=0, description="CPU use since the last record, percent of one core.")
    resident_memory_bytes: int = Field(0, ge=0, description="Resident set size, bytes.")
    peak_resident_memory_bytes: int = Field(0, ge=0, description="Largest resident set size so far, bytes "
                                            "(what to size the pod's memory request by).")
    store_bytes: int | None = Field(None, ge=0, description="Bytes under the run's folder in the store "
                                    "(local stores only; None where listing sizes is not cheap).")
    disk_free_bytes: int | None = Field(None, ge=0, description="Free bytes on the store's filesystem (local).")
    gpu_memory_bytes: int | None = Field(None, ge=0, description="GPU memory torch holds, bytes (None: no GPU).")


class ProgressRecord(StatusModel):
    """One worker's progress through one phase, as of `updatedAt`.

    `fraction` is an estimate: each long step of the phase (a batch of games,
    a round of optimiser steps) counts equally towards the `plannedSteps` the
    phase announced, and within a step by its own units done.
    """

    run: str = Field(description="Store run id (runs/<run>/).")
    phase: str = Field(description="Phase name (bootstrap, hybrid, self_play, continuous, evaluate).")
    worker: int = Field(0, ge=0, description="Self-play worker index (JOB_COMPLETION_INDEX).")
    started_at: datetime = Field(description="When this attempt of the phase started.")
    updated_at: datetime = Field(description="When the record was written.")
    step: str = Field("", max_length=200, description="The long step running now, e.g. 'hybrid 2/4: games'.")
    step_completed: int = Field(0, ge=0, description="Units of the step done.")
    step_total: int = Field(0, ge=0, description="Units of the step in all.")
    fraction: float = Field(0.0, ge=0, le=1, description="Estimated share of the phase done, 0..1.")
    eta_seconds: float | None = Field(None, ge=0, description="Estimated seconds left (None before any progress).")
    games: int = Field(0, ge=0, description="Games played by this attempt so far.")
    positions: int = Field(0, ge=0, description="Positions (one snake's decision) recorded so far.")
    games_per_second: float = Field(0.0, ge=0, description="Games per second since the attempt started.")
    positions_per_second: float = Field(0.0, ge=0, description="Positions per second since the attempt started.")
    scalars: dict[str, float] = Field(
        default_factory=dict,
        description="Latest value of each scalar the phase reported (keys as in TensorBoard, without the "
                    "phase prefix: loss/policy, win_rate/heuristic, ...).")
    history: dict[str, list[tuple[int, float]]] = Field(
        default_factory=dict,
        description=f"Each scalar's (step, value) points so far, thinned to at most {HISTORY_POINTS} "
                    "by dropping every other point when full (training curves for `ouro report`).")
    resources: ResourceUsage = Field(default_factory=ResourceUsage, description="Process and store use.")
    done: bool = Field(False, description="True once the phase finished (the last record it writes).")


SPRT_SCALARS = ("sprt/llr", "sprt/lower_bound", "sprt/upper_bound")
"""Scalars the evaluate phase reports while its gate plays: the SPRT's log-likelihood ratio and bounds."""


class SprtProgress(StatusModel):
    """Where a running gate's sequential probability ratio test stands (evaluate phase)."""

    llr: float = Field(description="Log-likelihood ratio of H1 (elo1) against H0 (elo0) so far.")
    lower_bound: float = Field(description="ln(beta / (1 - alpha)): at or below it the gate rejects.")
    upper_bound: float = Field(description="ln((1 - beta) / alpha): at or above it the gate promotes.")
    games: int = Field(0, ge=0, description="Gate games played so far.")


class ReplayUsage(StatusModel):
    """The run's replay shards in the store: the pool its training windows are drawn from.

    Read by the operator from the shards' JSON sidecars (never the arrays).
    """

    shards: int = Field(0, ge=0, description="Replay shards written by the run's phases.")
    positions: int = Field(0, ge=0, description="Positions in those shards.")
    games: int = Field(0, ge=0, description="Games those positions come from.")
    bytes: int = Field(0, ge=0, description="Size of the shards in the store, bytes.")
    oldest_position_at: datetime | None = Field(None, description="When the oldest position was recorded.")
    newest_position_at: datetime | None = Field(None, description="When the newest position was recorded.")


class RunProgress(StatusModel):
    """`status.progress` of a TrainingRun: its running phase, summed over workers."""

    phase: str = Field(description="Phase the numbers are about.")
    percent: int = Field(0, ge=0, le=100, description="Estimated share of the phase done, percent (kubectl get).")
    eta_seconds: int | None = Field(None, ge=0, description="Estimated seconds left in the phase.")
    step: str = Field("", max_length=200, description="The long step running now (worker 0).")
    games: int = Field(0, ge=0, description="Games played so far, all workers.")
    positions: int = Field(0, ge=0, description="Positions recorded so far, all workers.")
    games_per_second: float = Field(0.0, ge=0, description="Games per second, all workers.")
    positions_per_second: float = Field(0.0, ge=0, description="Positions per second, all workers.")
    losses: dict[str, float] = Field(default_factory=dict, description="Latest training losses (worker 0).")
    win_rates: dict[str, float] = Field(default_factory=dict, description="Latest win rate per opponent.")
    entropy: float | None = Field(None, description="Latest mean policy entropy, nats (worker 0).")
    resident_memory_bytes: int = Field(0, ge=0, description="Resident memory of all workers, bytes.")
    cpu_percent: float = Field(0.0, ge=0, description="CPU use of all workers, percent of one core.")
    store_bytes: int | None = Field(None, ge=0, description="Bytes under the run's folder in the store.")
    gpu_memory_bytes: int | None = Field(None, ge=0, description="GPU memory all workers hold, bytes.")
    sprt: SprtProgress | None = Field(None, description="The gate's sequential test so far (evaluate phase).")
    replay: ReplayUsage | None = Field(None, description="The run's replay shards (read by the operator).")
    workers: int = Field(0, ge=0, description="Workers that reported.")
    updated_at: datetime = Field(description="When the newest record was written.")
    stale: bool = Field(False, description="True if no worker reported for longer than the stale limit.")


def summarise(records: list[ProgressRecord], now: datetime,
              stale_after: float = STALE_AFTER_SECONDS) -> RunProgress | None:
    """`status.progress` from the records of one phase (None when there are none).

    Counts and rates add up over workers; the step, losses, fraction and the
    gate's SPRT are worker 0's (it trains; the others only play), ETA the
    slowest worker's.
    """
    if not records:
        return None
    records = sorted(records, key=lambda r: r.worker)
    lead = records[0]
    newest = max(r.updated_at for r in records)
    etas = [r.eta_seconds for r in records if r.eta_seconds is not None]
    losses = {k.removeprefix("loss/"): v for k, v in lead.scalars.items() if k.startswith("loss/")}
    win_rates: dict[str, float] = {}
    for r in records:
        for k, v in r.scalars.items():
            if k.startswith("win_rate/"):
                win_rates[k.removeprefix("win_rate/")] = v
    sprt = None
    if all(k in lead.scalars for k in SPRT_SCALARS):
        llr, lower, upper = (lead.scalars[k] for k in SPRT_SCALARS)
        sprt = SprtProgress(llr=round(llr, 6), lower_bound=round(lower, 6), upper_bound=round(upper, 6),
                            games=lead.games)
    return RunProgress(
        phase=lead.phase,
        percent=min(100, int(round(100 * lead.fraction))),
        eta_seconds=int(max(etas)) if etas else None,
        step=lead.step,
        games=sum(r.games for r in records),
        positions=sum(r.positions for r in records),
        games_per_second=round(sum(r.games_per_second for r in records), 3),
        positions_per_second=round(sum(r.positions_per_second for r in records), 3),
        losses={k: round(v, 6) for k, v in sorted(losses.items())},
        win_rates={k: round(v, 6) for k, v in sorted(win_rates.items())},
        entropy=lead.scalars.get("entropy"),
        resident_memory_bytes=sum(r.resources.resident_memory_bytes for r in records),
        cpu_percent=round(sum(r.resources.cpu_percent for r in records), 1),
        store_bytes=lead.resources.store_bytes,
        gpu_memory_bytes=(sum(r.resources.gpu_memory_bytes or 0 for r in records)
                          if any(r.resources.gpu_memory_bytes is not None for r in records) else None),
        sprt=sprt,
        workers=len(records),
        updated_at=newest,
        stale=(now - newest).total_seconds() > stale_after and not all(r.done for r in records),
    )
