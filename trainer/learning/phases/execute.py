"""One entry point for every phase: ``execute(run, phase, reporter) -> PhaseOutcome``.

``ouro phase`` (a Kubernetes Job) and ``ouro train`` (all phases in-process)
both call this, so a local run exercises exactly the code a cluster runs.

``execute`` changes nothing process-wide: settings that belong to the whole
process (torch's thread pool) are the command's to make, once, before its
first phase, with :func:`configure_process`. A library call that resized the
thread pool would do it behind the back of whatever else the process runs
(the tests, a notebook, an evaluation after training). The same holds for the
current CUDA device: `configure_process` makes the run's GPU current;
`execute` only resolves where the phase computes (`learning.device`).
"""

from __future__ import annotations

import logging

import torch

from ouroboros.contract.progress import PROGRESS_INTERVAL_SECONDS, progress_key
from ouroboros.contract.vocabulary import TEACHER_PHASES
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning import device, distributed, initial
from ouroboros.trainer.learning.phases import bootstrap, reinforce, runner
from ouroboros.trainer.learning.phases.config import PhaseSettings, RunSettings
from ouroboros.trainer.observability import progress, resources

log = logging.getLogger(__name__)


def configure_process(run: RunSettings, local_rank: int = 0) -> device.Placement:
    """Apply the run's process-wide settings: torch's intra-op threads (``run.threads``;
    0 leaves torch's default) and, on a GPU, the current CUDA device (``run.device``; a
    learner group's rank takes ``cuda:local_rank``). For commands, before their first phase.
    Returns where the phases will compute; ValueError naming ``device`` or
    ``mixed_precision`` when the run asks for what this process cannot have."""
    if run.threads:
        torch.set_num_threads(run.threads)
    where = device.placement(run.device, run.mixed_precision, local_rank)
    if where.cuda:
        torch.cuda.set_device(where.device)
    return where


def execute(run: RunSettings, phase: PhaseSettings, reporter: runner.Reporter | None = None,
            sinks: tuple[progress.Sink, ...] = (),
            interval: float = PROGRESS_INTERVAL_SECONDS,
            group: distributed.Group = distributed.SINGLE,
            placement: device.Placement | None = None) -> runner.PhaseOutcome:
    """Run ``phase`` of ``run`` against its store (resuming whatever an earlier attempt left).

    While it runs, a progress record goes to ``runs/<run>/progress/<phase>-w<worker>.json``
    in the store and to every extra sink in ``sinks`` every ``interval`` seconds (15 by default).
    ``group``: this process's place in a DDP learner group; only its rank 0 writes to the
    store, progress records included. ``placement``: where the phase computes (None: resolved
    from ``run.device`` and ``run.mixed_precision``, the rank's ``cuda:LOCAL_RANK`` in a group).
    """
    if placement is None:
        placement = device.placement(run.device, run.mixed_precision, group.local_rank)
    store = ArtifactStore(run.store)
    local = store.path(f"runs/{run.run}") if store.is_local else None
    stored = (progress.store_sink(store, progress_key(run.run, phase.kind.value, run.worker)),) if group.writes else ()
    recorder = progress.ProgressRecorder(
        reporter or runner.LogReporter(), run=run.run, phase=phase.kind.value, worker=run.worker,
        planned=progress.planned_steps(phase.kind.value, phase.iterations, run.worker),
        sinks=(*stored, *sinks),
        sampler=resources.ResourceSampler(local), interval=interval)
    ctx = runner.Context(run, phase, store, recorder, group, placement)
    log.info("%s: run %s, store %s, %s on %s", phase.kind.value, run.run, run.store, run.network.name,
             placement.describe())
    if run.initial_model is not None:  # a leaf net it could not hand on fails the phase now, not after training
        initial.leaf_net(store, run.initial_model, run.game)
    with recorder:
        if phase.kind in TEACHER_PHASES:
            return bootstrap.run(ctx)
        return reinforce.run(ctx)
