"""Where a run's networks live and in which precision they compute: the CPU or a CUDA GPU.

One run-level request (``RunSettings.device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``,
the contract's :data:`~ouroboros.contract.run.DEVICE_PATTERN`) becomes one
:class:`Placement` per process, decided by pure functions with what torch sees injected
(:func:`resolve_device`, :func:`autocast_dtype`) and built once by :func:`placement`:

- ``auto`` is CUDA when ``torch.cuda.is_available()``, else the CPU, so the CPU stays the
  default wherever there is no GPU (the tests, a laptop) and a GPU node uses its GPU.
- ``cuda`` with no visible GPU is an error naming the field, never a silent CPU run.
- In a DDP learner group each rank takes ``cuda:LOCAL_RANK`` (what torchrun sets; one GPU per
  process, the layout ``DistributedDataParallel(device_ids=[LOCAL_RANK])`` expects); an
  explicit ``cuda:N`` is taken as written.
- Mixed precision is bf16 autocast (``torch.autocast(device_type, dtype=torch.bfloat16)``):
  on by default on a GPU that computes bf16 (compute capability 8.0+: A100, H100, L4 ...),
  off on the CPU. bf16 keeps fp32's exponent range, so unlike fp16 it needs no loss
  scaling (no ``GradScaler``); the weights, the optimiser state and the losses stay fp32:
  only the forward's matrix products and convolutions run in bf16 (PyTorch's AMP recipe).

:meth:`Placement.put` moves a CPU tensor to the device: through pinned (page-locked) host
memory with ``non_blocking=True`` on CUDA, so the copy overlaps the host's next work
(PyTorch's "pinned memory" note: only copies from pinned memory are asynchronous), and as
is on the CPU. Artifacts never depend on the device: weights, checkpoints and ONNX exports
are written from CPU copies (:func:`cpu_state`, :func:`cpu_copy`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import torch

from ouroboros.contract.run import DEVICE_PATTERN

AUTO = "auto"
_CUDA_INDEX = re.compile(r"^cuda:(\d+)$")


def resolve_device(requested: str, cuda_devices: int, local_rank: int = 0, field: str = "device") -> torch.device:
    """The torch device of a request (module docstring). Pure: what torch sees is passed in.

    requested: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``; cuda_devices: how many CUDA devices
    the process sees (``torch.cuda.device_count()``); local_rank: this process's index on its
    node in a learner group (0 alone). Raises ValueError naming ``field`` for a malformed
    request, ``cuda`` without a visible GPU, or an index past the visible ones."""
    text = (requested or "").strip().lower()
    if not re.match(DEVICE_PATTERN, text):
        raise ValueError(f"{field}: {requested!r} is not auto, cpu, cuda or cuda:N")
    if text == "cpu" or (text == AUTO and cuda_devices == 0):
        return torch.device("cpu")
    if cuda_devices == 0:
        raise ValueError(f"{field}: {text} asked for, but this process sees no CUDA device "
                         "(torch.cuda.is_available() is False); use auto or cpu to train on the CPU")
    match = _CUDA_INDEX.match(text)
    index = int(match.group(1)) if match else local_rank
    if index >= cuda_devices:
        what = f"{text}" if match else f"{text} for local rank {local_rank}"
        raise ValueError(f"{field}: {what} needs CUDA device {index}, but this process sees "
                         f"{cuda_devices} (cuda:0..cuda:{cuda_devices - 1})")
    return torch.device("cuda", index)


def autocast_dtype(device: torch.device, mixed_precision: bool | None, bf16_supported: bool,
                   field: str = "mixed_precision") -> torch.dtype | None:
    """The autocast dtype of the learner's forward on ``device``: torch.bfloat16, or None for fp32.

    mixed_precision None: bf16 on a CUDA device that computes it (``bf16_supported``:
    ``torch.cuda.is_bf16_supported()``), fp32 elsewhere; True: bf16 (on the CPU too, where
    torch's CPU autocast runs it; ValueError naming ``field`` on a GPU without bf16);
    False: fp32."""
    if mixed_precision is False:
        return None
    if device.type == "cuda" and not bf16_supported:
        if mixed_precision:
            raise ValueError(f"{field}: bf16 autocast asked for, but {device} does not compute bf16 "
                             "(compute capability 8.0 or later is needed); set it false or leave it unset")
        return None
    if mixed_precision is None and device.type != "cuda":
        return None
    return torch.bfloat16


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one process computes: ``device``, and ``autocast`` (bf16, or None for fp32)."""

    device: torch.device = torch.device("cpu")
    autocast: torch.dtype | None = None

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def put(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (on the CPU) on the device: pinned and non-blocking on CUDA, itself on the CPU."""
        if not self.cuda or tensor.device == self.device:
            return tensor
        return tensor.pin_memory().to(self.device, non_blocking=True)

    def autocasting(self) -> contextlib.AbstractContextManager:
        """The forward's autocast region (a no-op in fp32)."""
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def describe(self) -> str:
        """e.g. ``cuda:0 (NVIDIA H100 80GB HBM3), bf16 autocast`` or ``cpu, fp32``."""
        name = f" ({torch.cuda.get_device_name(self.device)})" if self.cuda else ""
        precision = "bf16 autocast" if self.autocast is torch.bfloat16 else "fp32"
        return f"{self.device}{name}, {precision}"


CPU = Placement()
"""The CPU in fp32: what every phase did before devices existed, and the default here."""


def placement(requested: str = AUTO, mixed_precision: bool | None = None, local_rank: int = 0) -> Placement:
    """The process's Placement for a run's request, from what torch sees now (see
    :func:`resolve_device`, :func:`autocast_dtype` for the rules and errors). Changes nothing:
    making the GPU the process's current device is the command's (``execute.configure_process``)."""
    device = resolve_device(requested, torch.cuda.device_count() if torch.cuda.is_available() else 0, local_rank)
    # native bf16 only (compute capability 8.0+): emulated bf16 on older GPUs is slower than fp32
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    return Placement(device, autocast_dtype(device, mixed_precision, bf16))


def device_of(module: Any) -> torch.device:
    """The device of a module's first parameter (the CPU for a parameterless object)."""
    params = module.parameters() if isinstance(module, torch.nn.Module) else iter(())
    first = next(params, None)
    return first.device if first is not None else torch.device("cpu")


def cpu_state(value: Any) -> Any:
    """``value`` (a state dict, an optimiser state, nested dicts/lists) with every tensor copied
    to the CPU, so a file written from it loads anywhere without ``map_location``."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):  # OrderedDict state dicts stay OrderedDicts
        return type(value)((k, cpu_state(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(cpu_state(v) for v in value)
    return value


def cpu_copy(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` itself when it lives on the CPU, else a CPU copy (for ONNX export and frozen
    CPU forwards: tracing needs the module and its example input on one device)."""
    if device_of(net).type == "cpu":
        return net
    return copy.deepcopy(net).cpu()


@contextlib.contextmanager
def synchronised(placement_: Placement) -> Iterator[None]:
    """Wait for the device's queued work on exit (timings on CUDA measure the work, not its launch)."""
    yield
    if placement_.cuda:
        torch.cuda.synchronize(placement_.device)
