"""One entry point for every phase: ``execute(run, phase, reporter) -> PhaseOutcome``.

``ouro phase`` (a Kubernetes Job) and ``ouro train`` (all phases in-process)
both call this, so a local run exercises exactly the code a cluster runs.

``execute`` changes nothing process-wide: settings that belong to the whole
process (torch's thread pool) are the command's to make, once, before its
first phase, with :func:`configure_process`. A library call that resized the
thread pool would do it behind the back of whatever else the process runs
(the tests, a notebook, an evaluation after training).
"""

from __future__ import annotations

import logging

import torch

from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning.phases import bootstrap, reinforce, runner
from ouroboros.trainer.learning.phases.config import PhaseSettings, RunSettings

log = logging.getLogger(__name__)


def configure_process(run: RunSettings) -> None:
    """Apply the run's process-wide settings: torch's intra-op threads (``run.threads``;
    0 leaves torch's default). For commands, before their first phase."""
    if run.threads:
        torch.set_num_threads(run.threads)


def execute(run: RunSettings, phase: PhaseSettings, reporter: runner.Reporter | None = None) -> runner.PhaseOutcome:
    """Run ``phase`` of ``run`` against its store (resuming whatever an earlier attempt left)."""
    ctx = runner.Context(run, phase, ArtifactStore(run.store), reporter or runner.LogReporter())
    log.info("%s: run %s, store %s, %s", phase.kind.value, run.run, run.store, run.network.name)
    if phase.kind is PhaseName.BOOTSTRAP:
        return bootstrap.run(ctx)
    return reinforce.run(ctx)
