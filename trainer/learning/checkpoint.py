"""Self-describing checkpoints and the resumable training loop built on them.

A phase can be killed at any moment (SIGKILL from the kubelet, preemption,
OOM); when it runs again it must continue where the last checkpoint left off,
with no step lost or applied twice. That takes three things this module owns:

* **Everything that decides the next step is saved**: model and optimiser
  state, step and iteration counters, the Python/NumPy/torch RNG states, the
  phase's config (a pydantic dump), the latest metrics, and the caller's
  ``extra`` (e.g. the replay buffer's priorities). One ``torch.save`` payload,
  loaded with ``weights_only=True`` so a tampered file cannot run code.
* **Atomic and verified**: each checkpoint is one artifact
  ``<prefix>/step-<step:010d>.pt`` written through the artifact store (temp +
  rename, sha256 sidecar whose metadata repeats step, iteration, metrics and config
  so tools can read them without torch). The ``<prefix>/latest.json`` pointer
  is swapped in *after* the checkpoint is complete; the ``keep`` newest
  checkpoints stay.
* **Fallback**: :meth:`Checkpointer.load_latest` tries the newest complete
  checkpoint (normally the pointer's; a newer one exists only if the process
  died between writing it and swapping the pointer), checks its sha256, and
  falls back to the previous one with a warning if it is corrupt.

The loop (lczero-training's ``run(state, data, steps) -> state``)::

    loop = ResumableLoop(Checkpointer(store, "runs/r1/checkpoints/bootstrap"), step_fn, every=50)
    state = loop.restore(TrainState(model, optimizer))   # no-op on a fresh start
    state = loop.run(state, buffer, steps=total)          # `steps` is the absolute target
    state.iteration += 1; loop.save(state)                # a round of generate-then-train done

``step_fn(state, data, step) -> metrics`` does one optimiser step and must
draw its randomness from :func:`step_rng` (seeded by step) or the restored
global RNGs, never from wall-clock time; then a resumed run is bit-for-bit
the uninterrupted one on the CPU. ``run`` checkpoints every ``every`` steps and
at its end, so a phase that alternates "generate shards, train" rounds
(:mod:`.shards` resumes generation from the last shard's cursor) can recompute
the round from ``state.step`` after a restart; a phase whose rounds have a
number marks one done by raising ``state.iteration`` and saving.

Formats: 2 (this one) names the round counter ``iteration``; format 1 called
it ``epoch``, and the only writers that set it (the RL phases) kept their
iteration there, so a format-1 checkpoint loads with ``iteration = epoch`` and
an interrupted run resumes across the upgrade. A checkpoint of a format this
code does not know (written by a newer trainer) is refused with
:class:`CheckpointFormatError` instead of silently falling back to an older one.
A checkpoint whose network read fewer input planes (an older encoding version,
before the territory planes) restores into the wider network with zero weights
and zero optimiser moments for the added planes, so a phase interrupted by an
upgrade resumes across it too.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import pickle
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from ouroboros.trainer.artifacts.store import ArtifactError, ArtifactInfo, ArtifactStore
from ouroboros.trainer.learning import device

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
POINTER = "latest.json"
_KEY = re.compile(r"/step-(\d{10,})\.pt$")


class CheckpointError(ArtifactError):
    """No usable checkpoint although some exist (all corrupt), or a malformed payload."""


class CheckpointFormatError(CheckpointError):
    """A checkpoint of a format this code cannot read (module docstring, "Formats")."""


@dataclasses.dataclass
class Checkpoint:
    """A loaded, verified checkpoint."""

    key: str
    sha256: str
    step: int
    iteration: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, float]
    extra: dict[str, Any]


def capture_rng() -> dict[str, Any]:
    """The Python, NumPy (global) and torch RNG states, as tensors and plain values."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": _plain(random.getstate()),
        "numpy": {**np_state, "state": {**np_state["state"], "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64))}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = {**np_state["state"], "key": np_state["state"]["key"].numpy().astype(np.uint32)}
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator for step ``step`` of a run seeded ``seed``: the same after any restart."""
    return np.random.default_rng([seed, step])


class Checkpointer:
    """Checkpoints of one phase under ``prefix`` in a store (e.g. ``runs/r1/checkpoints/hybrid``)."""

    def __init__(self, store: ArtifactStore, prefix: str, keep: int = 3, writer: bool = True) -> None:
        """``writer=False`` for a reader that never saves (a learner rank other than 0): it leaves
        the temporary files alone, which may be the writer's save in progress."""
        if keep < 2:
            raise ValueError(f"keep must be >= 2 so that a corrupt newest one has a fallback, got {keep}")
        self.store, self.prefix, self.keep, self.writer = store, prefix.strip("/"), keep, writer
        if writer:
            store.remove_temp_files(self.prefix)  # left by a killed save; one writer per prefix

    def key(self, step: int) -> str:
        """The key of the checkpoint at ``step``."""
        return f"{self.prefix}/step-{step:010d}.pt"

    def list(self) -> list[tuple[int, str]]:
        """(step, key) of the complete checkpoints, oldest first."""
        if not self.store.fs.exists(f"{self.store.root}/{self.prefix}"):
            return []
        found = []
        for key in self.store.list(self.prefix):
            m = _KEY.search(key)
            if m and key.rsplit("/", 1)[0] == self.prefix:
                found.append((int(m[1]), key))
        return sorted(found)

    def pointer(self) -> dict[str, Any] | None:
        """The ``latest.json`` document (key, sha256, step, iteration, updated_at), if any."""
        try:
            return self.store.read_json(f"{self.prefix}/{POINTER}")
        except ArtifactError as e:
            log.warning("checkpoint pointer unreadable (%s); scanning checkpoints instead", e)
            return None

    def save(
        self,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        step: int,
        iteration: int = 0,
        scheduler: Any = None,
        config: BaseModel | dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ArtifactInfo:
        """Write a checkpoint, then the pointer, then prune; returns the artifact's info
        (CheckpointError on a ``writer=False`` checkpointer).

        ``extra`` holds plain values, tensors and numpy arrays (stored as tensors,
        returned as numpy arrays by :meth:`load_latest`)."""
        if not self.writer:
            raise CheckpointError(f"checkpoints under {self.prefix}: this process only reads them")
        config_doc = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config or {})
        metrics = {str(k): float(v) for k, v in (metrics or {}).items()}
        payload = {
            "format": FORMAT_VERSION,
            "step": step,
            "iteration": iteration,
            # CPU copies: a checkpoint written on a GPU resumes on a CPU and the other way round
            "model": device.cpu_state(model.state_dict()),
            "optimizer": device.cpu_state(optimizer.state_dict()),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "rng": capture_rng(),
            "config": config_doc,
            "metrics": metrics,
            "extra": _to_torch(extra or {}),
        }
        network = _network_config(model)
        if network is not None:  # what `networks.load_checkpoint` (ouro export, --initial-model) rebuilds
            payload["network"] = network
        buf = io.BytesIO()
        torch.save(payload, buf)
        key = self.key(step)
        info = self.store.put_bytes(
            key,
            buf.getvalue(),
            metadata={"format": FORMAT_VERSION, "step": step, "iteration": iteration, "metrics": metrics,
                      "config": config_doc},
        )
        # The pointer goes last: until it is swapped, readers use the previous checkpoint.
        self.store.write_json(
            f"{self.prefix}/{POINTER}",
            {"key": key, "sha256": info.sha256, "step": step, "iteration": iteration,
             "updated_at": datetime.now(UTC).isoformat()},
        )
        for _, old in self.list()[: -self.keep]:
            self.store.delete(old)
        return info

    def load_latest(self, map_location: str | torch.device = "cpu") -> Checkpoint | None:
        """The newest checkpoint that verifies, or None if there is none at all.

        A corrupt one (sha256 mismatch, unreadable payload) is skipped with a
        warning in favour of the previous one; CheckpointError if all are corrupt,
        CheckpointFormatError at once for one of a format this code cannot read."""
        found = self.list()
        if not found:
            return None
        pointer = self.pointer() or {}
        if pointer.get("step") is not None and found[-1][0] > pointer["step"]:
            log.info("checkpoint %s is newer than the pointer (died before the swap); using it", found[-1][1])
        for step, key in reversed(found):
            expected = pointer.get("sha256") if pointer.get("key") == key else None
            try:
                ckpt = self._read(key, step, expected, map_location)
            except CheckpointFormatError:
                raise  # not corrupt: falling back would silently lose what a newer trainer did
            except (ArtifactError, RuntimeError, pickle.UnpicklingError, KeyError, EOFError) as e:
                log.warning("checkpoint %s is unusable (%s); falling back to the previous one",
                            self.store.uri(key), e)
                continue
            return ckpt
        raise CheckpointError(f"all {len(found)} checkpoints under {self.prefix} are corrupt")

    def _read(self, key: str, step: int, expected: str | None, map_location: Any) -> Checkpoint:
        data = self.store.get_bytes(key, expected_sha256=expected)
        payload = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        version = payload.get("format")
        if version not in READABLE_FORMATS:
            raise CheckpointFormatError(
                f"checkpoint {self.store.uri(key)}: format {version!r}; this trainer reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))} (written by a newer trainer? run that one)")
        if payload.get("step") != step:
            raise CheckpointError(f"checkpoint {key}: step {payload.get('step')} in a file named for step {step}")
        return Checkpoint(
            key=key,
            sha256=self.store.info(key).sha256,
            step=payload["step"],
            iteration=payload["epoch" if version == 1 else "iteration"],
            model=payload["model"],
            optimizer=payload["optimizer"],
            scheduler=payload["scheduler"],
            rng=payload["rng"],
            config=payload["config"],
            metrics=payload["metrics"],
            extra=_to_numpy(payload["extra"]),
        )


@dataclasses.dataclass
class TrainState:
    """What a training loop carries from step to step (state in, state out)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    step: int = 0
    """Optimiser steps applied so far (the next step's index)."""
    iteration: int = 0
    """Rounds of generate-then-train completed (the RL phases' iterations; 0 in a phase
    without rounds). Raised by the caller, saved and restored with the step."""
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    data_state: dict[str, Any] | None = None
    """``data.state_dict()`` at the last checkpoint (e.g. replay priorities), restored by
    :meth:`ResumableLoop.restore` for the caller to hand to the next data source."""


StepFn = Callable[[TrainState, Any, int], dict[str, float]]


def _widened_input(ckpt: Checkpoint, model: torch.nn.Module) -> tuple[dict, dict]:
    """The checkpoint's model and optimiser state, fitted to ``model`` when its input grew: a
    tensor saved with fewer entries in dimension 1 than ``model``'s (the weights reading the
    input planes of an older encoding version, saved before an upgrade) gets zeros for the
    added ones, as do its optimiser moments, so the network computes what it did and an
    interrupted phase resumes across the upgrade (``networks.widened`` is the same rule for
    saved weights). CheckpointError naming the tensor for any other difference in shape."""
    current = model.state_dict()
    grown: dict[tuple, tuple] = {}  # saved shape -> current shape, for the optimiser's moments
    state = dict(ckpt.model)
    for key, saved in ckpt.model.items():
        want = current.get(key)
        if want is None or saved.shape == want.shape:
            continue
        if saved.dim() < 2 or saved.shape[1] > want.shape[1] or \
                saved.shape[:1] + saved.shape[2:] != want.shape[:1] + want.shape[2:]:
            raise CheckpointError(f"checkpoint {ckpt.key}: {key} {tuple(saved.shape)} does not fit the "
                                  f"network's {tuple(want.shape)}")
        state[key] = _pad_dim1(saved, want.shape[1])
        grown[tuple(saved.shape)] = tuple(want.shape)
    if not grown:
        return state, ckpt.optimizer
    log.info("checkpoint %s: input planes widened with zero weights (%s)", ckpt.key,
             ", ".join(f"{a} -> {b}" for a, b in grown.items()))
    params = dict(enumerate(model.parameters()))
    optimizer = {**ckpt.optimizer, "state": {}}
    for index, moments in ckpt.optimizer.get("state", {}).items():
        param = params.get(index)
        optimizer["state"][index] = {
            name: _pad_dim1(value, param.shape[1])
            if param is not None and torch.is_tensor(value) and value.dim() >= 2
            and tuple(value.shape) in grown and grown[tuple(value.shape)] == tuple(param.shape) else value
            for name, value in moments.items()}
    return state, optimizer


def _pad_dim1(tensor: torch.Tensor, size: int) -> torch.Tensor:
    pad = tensor.new_zeros((tensor.shape[0], size - tensor.shape[1], *tensor.shape[2:]))
    return torch.cat([tensor, pad], 1)


class ResumableLoop:
    """``run(state, data, steps) -> state`` with periodic checkpoints (module docstring)."""

    def __init__(
        self,
        checkpointer: Checkpointer,
        step_fn: StepFn,
        *,
        every: int = 100,
        config: BaseModel | dict[str, Any] | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.checkpointer, self.step_fn, self.every = checkpointer, step_fn, every
        self.config = config

    def restore(self, state: TrainState) -> TrainState:
        """``state`` with the latest checkpoint loaded into it (unchanged if there is none)."""
        ckpt = self.checkpointer.load_latest()
        if ckpt is None:
            return state
        model, optimizer = _widened_input(ckpt, state.model)
        state.model.load_state_dict(model)
        state.optimizer.load_state_dict(optimizer)
        if state.scheduler is not None and ckpt.scheduler is not None:
            state.scheduler.load_state_dict(ckpt.scheduler)
        restore_rng(ckpt.rng)
        state.step, state.iteration, state.metrics = ckpt.step, ckpt.iteration, dict(ckpt.metrics)
        state.data_state = ckpt.extra.get("data")
        log.info("resumed from %s at step %d", ckpt.key, ckpt.step)
        return state

    def run(self, state: TrainState, data: Any, steps: int,
            hook: Callable[[TrainState], None] | None = None) -> TrainState:
        """Apply steps until ``state.step == steps``; checkpoint every ``every`` steps and at
        the end. ``data`` is whatever ``step_fn`` reads; its ``state_dict()``, if it has one,
        is checkpointed with the model. ``hook(state)`` runs after each step, before its
        checkpoint: progress and scalars, side effects only (it must not change ``state``)."""
        while state.step < steps:
            state.metrics = self.step_fn(state, data, state.step)
            state.step += 1
            if hook is not None:
                hook(state)
            if state.step % self.every == 0 or state.step == steps:
                self.save(state, data)
        return state

    def save(self, state: TrainState, data: Any = None) -> ArtifactInfo | None:
        """Checkpoint ``state`` now (and ``data.state_dict()`` when ``data`` has one); None, and
        nothing written, when the checkpointer only reads (a learner rank other than 0)."""
        if data is not None:
            state.data_state = data.state_dict() if hasattr(data, "state_dict") else None
        if not self.checkpointer.writer:
            return None
        return self.checkpointer.save(
            model=state.model,
            optimizer=state.optimizer,
            scheduler=state.scheduler,
            step=state.step,
            iteration=state.iteration,
            config=self.config,
            metrics=state.metrics,
            extra={"data": state.data_state},
        )


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (what weights_only unpickling accepts everywhere)."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _network_config(model: torch.nn.Module) -> dict[str, Any] | None:
    """The network config of a PolicyValueNet (also inside DistributedDataParallel's ``module``) as JSON,
    or None for a module that carries none."""
    config = getattr(getattr(model, "module", model), "config", None)
    if isinstance(config, BaseModel) and hasattr(config, "architecture"):
        return config.model_dump(mode="json")
    return None


def _to_torch(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: _to_torch(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_torch(v) for v in value]
    return value


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    return value
