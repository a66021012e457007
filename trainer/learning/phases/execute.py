"""One entry point for every phase: ``execute(run, phase, reporter) -> PhaseOutcome``.

``ouro phase`` (a Kubernetes Job) and ``ouro train`` (all phases in-process)
both call this, so a local run exercises exactly the code a cluster runs.
"""

from __future__ import annotations

import logging

import torch

from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning.phases import bootstrap, reinforce, runner
from ouroboros.trainer.learning.phases.config import PhaseSettings, RunSettings

log = logging.getLogger(__name__)


def execute(run: RunSettings, phase: PhaseSettings, reporter: runner.Reporter | None = None) -> runner.PhaseOutcome:
    """Run ``phase`` of ``run`` against its store (resuming whatever an earlier attempt left)."""
    if run.threads:
        torch.set_num_threads(run.threads)
    ctx = runner.Context(run, phase, ArtifactStore(run.store), reporter or runner.LogReporter())
    log.info("%s: run %s, store %s, %s", phase.kind.value, run.run, run.store, run.network.name)
    if phase.kind is PhaseName.BOOTSTRAP:
        return bootstrap.run(ctx)
    return reinforce.run(ctx)
