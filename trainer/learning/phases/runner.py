"""What every phase shares: where it starts from, what it leaves, and how it reports.

Artifacts of phase P of run R in the store::

    runs/R/replay/P/shard-*.npz        positions (see learning.shards)
    runs/R/checkpoints/P/step-*.pt     resumable training state (learning.checkpoint)
    runs/R/league/P-*.pt               snapshots self-play draws opponents from
    runs/R/models/P.pt                 the phase's final weights (what the next phase starts from)
    runs/R/models/P.onnx               the same network exported: the phase's candidate
    runs/R/models/leaf.npz             the search's leaf net (bootstrap's ``leaf_games``), which every
                                       later P.onnx carries in its metadata (``agents.leafnet``); a
                                       run without one hands on its initial model's (continuous: the
                                       champion's it started from), if that carries one
    runs/R/leaf/games-*.npz            the games it learned from, stored as they were played

Start points: bootstrap from scratch, hybrid from bootstrap, self_play from
hybrid (else bootstrap), distill from self_play (else hybrid, else bootstrap),
continuous from the registry's champion (its version's metadata names the
weights it was exported from; else distill, self_play, hybrid, bootstrap). A
run with an ``initial_model`` (a registry version, an ONNX file, a checkpoint:
``learning.initial``) starts from it wherever it would start from scratch, and
continuous takes it in place of the champion. Distill never starts from
scratch: with neither an earlier phase's model nor an initial model it fails.

Devices: a phase trains and plays on ``Context.placement`` (``learning.device``:
the CPU, or a GPU with bf16 autocast); :func:`start_network` puts the network
there. Whatever a phase writes is device-independent: weights, checkpoints and
the ONNX candidate come from CPU copies, and every load maps to the CPU first.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

from ouroboros.contract.run import InitialModelSpec
from ouroboros.contract.vocabulary import Metric, PhaseName, win_rate_vs
from ouroboros.trainer.agents import leafnet
from ouroboros.trainer.artifacts import registry as model_registry
from ouroboros.trainer.artifacts.store import ArtifactInfo, ArtifactStore
from ouroboros.trainer.learning import device, distributed, initial, networks, onnx_export
from ouroboros.trainer.learning.checkpoint import Checkpointer, TrainState
from ouroboros.trainer.learning.phases.config import PhaseSettings, RunSettings

log = logging.getLogger(__name__)

LEAF_NET = "leaf.npz"
"""The run's leaf net under ``runs/R/models/`` (:func:`leaf_net`)."""


class Reporter(Protocol):
    """Where a phase shows progress and scalars (rich + TensorBoard in ``ouro train``)."""

    def task(self, description: str, total: int) -> Callable[[int], None]:
        """Start a long step of ``total`` units; returns ``advance(n)``."""
        ...

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Record one scalar (e.g. ``bootstrap/loss/policy``)."""
        ...


class LogReporter:
    """Progress as log lines (what a Kubernetes Job prints)."""

    def task(self, description: str, total: int) -> Callable[[int], None]:
        log.info("%s (%d)", description, total)
        return lambda n: None

    def scalar(self, tag: str, value: float, step: int) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class StepReport:
    """The ``hook`` of a ResumableLoop run: one unit of progress per optimiser step, and the
    step's metrics as scalars ``<prefix>/<metric>`` every ``every`` steps and at step ``last``."""

    reporter: Reporter
    prefix: str
    advance: Callable[[int], None]
    every: int
    last: int | None = None

    def __call__(self, state: TrainState) -> None:
        self.advance(1)
        if state.step % self.every == 0 or state.step == self.last:
            for tag, value in state.metrics.items():
                self.reporter.scalar(f"{self.prefix}/{tag}", value, state.step)


@dataclasses.dataclass
class Context:
    """One phase's run: settings, store, reporter, and this process's place in its learner group."""

    run: RunSettings
    phase: PhaseSettings
    store: ArtifactStore
    reporter: Reporter
    group: distributed.Group = distributed.SINGLE
    """Rank 0 of 1 unless the learner runs as a DDP group (``learning.distributed``)."""
    placement: device.Placement = device.CPU
    """Where the phase's networks train and play, and in which precision (``learning.device``)."""
    started_from: InitialModelSpec | None = None
    """The model a continuous phase started from when the run names no initial model: the champion's
    registry version (:func:`start_network` sets it; :func:`leaf_net` hands on its leaf net)."""

    def checkpointer(self) -> Checkpointer:
        """The phase's checkpoints; only rank 0 of a learner group writes them."""
        return Checkpointer(self.store, self.key("checkpoints", self.name), writer=self.group.writes)

    def key(self, *parts: str) -> str:
        """A key under ``runs/<run>/``."""
        return "/".join(("runs", self.run.run, *parts))

    @property
    def name(self) -> str:
        return self.phase.kind.value


@dataclasses.dataclass
class PhaseOutcome:
    """What a phase did: metrics, files (name -> store record), the candidate, a summary line."""

    kind: PhaseName
    metrics: dict[str, float]
    artifacts: dict[str, ArtifactInfo]
    candidate: ArtifactInfo | None
    message: str
    seconds: float = 0.0
    records: dict[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)
    """Opponent -> (wins, draws, losses) of the learner in the phase's games; the commands turn
    them into Elo differences with 95% intervals (``evaluation.strength.elo_metrics``)."""


def save_weights(store: ArtifactStore, key: str, net: networks.PolicyValueNet, **meta) -> ArtifactInfo:
    """The network as a ``networks.load_checkpoint`` file, written atomically with sha256; its
    tensors are CPU copies wherever ``net`` lives, so the file loads on any machine."""
    buf = io.BytesIO()
    torch.save(device.cpu_state(networks.checkpoint(net)), buf)
    return store.put_bytes(key, buf.getvalue(), {"network": net.config.model_dump(mode="json"), **meta})


def load_weights(store: ArtifactStore, key: str, sha256: str | None = None) -> networks.PolicyValueNet:
    """The network saved at ``key`` (checked against ``sha256`` when given), taking the current
    encoding's planes (weights of an older encoding version are widened: ``networks.upgraded``)."""
    raw = torch.load(io.BytesIO(store.get_bytes(key, expected_sha256=sha256)), map_location="cpu",
                     weights_only=True)
    net = networks.PolicyValueNet(networks.NetworkConfig.model_validate(raw["network"]))
    net.load_state_dict(raw["model"])
    return networks.upgraded(net)


def start_network(ctx: Context) -> networks.PolicyValueNet:
    """The network the phase starts from (module docstring), on the phase's device."""
    return _start_network(ctx).to(ctx.placement.device)


def _start_network(ctx: Context) -> networks.PolicyValueNet:
    kind = ctx.phase.kind
    if kind is PhaseName.BOOTSTRAP:
        return initial_network(ctx)
    if kind is PhaseName.CONTINUOUS and ctx.run.initial_model is not None:
        return initial_network(ctx)
    if kind is PhaseName.CONTINUOUS:
        reg = model_registry.Registry(ctx.store)
        state = reg.champion(str(ctx.run.game.key))
        if state.version is not None:
            meta = reg.get(state.version).metadata
            if isinstance(meta.get("weights"), str):
                log.info("continuous: starting from champion %s", state.version)
                ctx.started_from = InitialModelSpec(registry_version=state.version)
                return load_weights(ctx.store, meta["weights"], meta.get("weights_sha256"))
        earlier = (PhaseName.DISTILL, PhaseName.SELF_PLAY, PhaseName.HYBRID, PhaseName.BOOTSTRAP)
    elif kind is PhaseName.DISTILL:
        earlier = (PhaseName.SELF_PLAY, PhaseName.HYBRID, PhaseName.BOOTSTRAP)
    elif kind is PhaseName.HYBRID:
        earlier = (PhaseName.BOOTSTRAP,)
    else:
        earlier = (PhaseName.HYBRID, PhaseName.BOOTSTRAP)
    for prior in earlier:
        key = ctx.key("models", f"{prior.value}.pt")
        if ctx.store.exists(key):
            log.info("%s: starting from %s", kind.value, key)
            return load_weights(ctx.store, key)
    if ctx.run.initial_model is None and kind is PhaseName.DISTILL:
        raise ValueError(f"distill: no earlier phase's model in {ctx.store.url} (runs/{ctx.run.run}/models/) and no "
                         "initial model: the student whose games the teacher labels (spec.initialModel, "
                         "--initial-model)")
    if ctx.run.initial_model is None:
        log.warning("%s: no earlier model in %s; starting from a fresh network", kind.value, ctx.store.url)
    return initial_network(ctx)


def initial_network(ctx: Context) -> networks.PolicyValueNet:
    """The run's ``initial_model`` (``learning.initial``), else a fresh network of the run's seed."""
    if ctx.run.initial_model is None:
        return networks.build_network(ctx.run.network, seed=ctx.run.seed)
    net = initial.load(ctx.store, ctx.run.initial_model, ctx.run.network, ctx.run.game)
    log.info("%s: starting from the initial model %s", ctx.name, ctx.run.initial_model.to_api())
    return net


def win_rates(totals: dict[str, list[int]]) -> dict[str, float]:
    """Scores (wins + draws/2 per game) from W-D-L counts per opponent: one ``winRateVs<Opponent>``
    each, and ``winRate`` over all of them pooled (the learner's games against anyone but itself)."""
    def score(w: int, d: int, lost: int) -> float:
        return (w + d / 2) / max(1, w + d + lost)

    out = {win_rate_vs(name): score(*wdl) for name, wdl in totals.items()}
    if totals:
        out[Metric.WIN_RATE] = score(*(sum(t[i] for t in totals.values()) for i in range(3)))
    return out


def finish(ctx: Context, net: networks.PolicyValueNet, metrics: dict[str, float],
           artifacts: dict[str, ArtifactInfo], message: str, started: float,
           records: dict[str, tuple[int, int, int]] | None = None) -> PhaseOutcome:
    """Save the final weights and the ONNX candidate; the phase's outcome. A learner rank other
    than 0, and a self-play worker other than 0 (it only played), write no model and report only
    their other files: the trained model is rank 0's, worker 0's."""
    if not ctx.group.writes:
        note = f"{message} (learner rank {ctx.group.rank} of {ctx.group.world}; rank 0 wrote the artifacts)"
        return PhaseOutcome(ctx.phase.kind, metrics, {}, None, note, time.monotonic() - started, dict(records or {}))
    if ctx.run.worker > 0:
        note = f"{message} (self-play worker {ctx.run.worker} of {ctx.run.workers}; worker 0 trains)"
        return PhaseOutcome(ctx.phase.kind, metrics, artifacts, None, note, time.monotonic() - started,
                            dict(records or {}))
    weights = save_weights(ctx.store, ctx.key("models", f"{ctx.name}.pt"), net, run=ctx.run.run, phase=ctx.name)
    net.eval()
    carried = leaf_net(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        onnx_export.export(device.cpu_copy(net), out, height=ctx.run.game.height, width=ctx.run.game.width,
                           metadata={"run": ctx.run.run, "phase": ctx.name,
                                     **({leafnet.METADATA_KEY: carried.to_metadata()} if carried else {})})
        candidate = ctx.store.put_file(
            ctx.key("models", f"{ctx.name}.onnx"), out,
            {"run": ctx.run.run, "phase": ctx.name, "architecture": net.config.name,
             "weights": weights.key, "weights_sha256": weights.sha256})
    files = {**artifacts, "weights": weights, "onnx": candidate}
    return PhaseOutcome(ctx.phase.kind, metrics, files, candidate, message, time.monotonic() - started,
                        dict(records or {}))


def leaf_net(ctx: Context) -> leafnet.LeafNet | None:
    """The run's leaf net (``runs/R/models/leaf.npz``, sha256-checked), else the one its initial model
    carries (:func:`initial.leaf_net`), else, in a continuous phase started from the champion, the
    champion's (:attr:`Context.started_from`); None when there is none; the ONNX candidate of every phase
    that finishes after it was written carries it. ArtifactError for a corrupt file, ValueError
    (InitialModelError) for one that is not a leaf net: a phase fails rather than export a model
    without the net its run trained or started from."""
    key = ctx.key("models", LEAF_NET)
    if ctx.store.exists(key):
        return leafnet.LeafNet.load(io.BytesIO(ctx.store.get_bytes(key)), label=ctx.store.uri(key))
    source = ctx.run.initial_model or ctx.started_from
    return None if source is None else initial.leaf_net(ctx.store, source, ctx.run.game)


def register_candidate(store: ArtifactStore, candidate: ArtifactInfo, run: RunSettings,
                       metrics: dict[str, float] | None = None) -> model_registry.ModelVersion:
    """Register a phase's ONNX candidate as a model version of the run's game (idempotent per
    run and bytes). Its metadata names the weights it was exported from, so ``continuous``
    can resume training from it once it is champion."""
    meta = candidate.metadata
    reg = model_registry.Registry(store)
    return reg.register(
        store.get_bytes(candidate.key, expected_sha256=candidate.sha256),
        architecture=str(meta.get("architecture", "network")), run=run.run, phase=str(meta.get("phase", "")),
        game=str(run.game.key), metrics=metrics or {},
        metadata={"weights": meta.get("weights"), "weights_sha256": meta.get("weights_sha256"),
                  "candidate": candidate.uri})
