"""One learner as a group of processes: PyTorch DistributedDataParallel (DDP), as Kubeflow's
PyTorchJob and JobSet run it.

Every rank of a group holds the whole network and the same data (it reads the same replay
shards); each optimiser step draws one *global* batch of ``batch_size`` rows from the
step's seeded generator, exactly as a single process would, and each rank runs forward and
backward on its own contiguous slice of it (:meth:`Group.rows`). DDP all-reduces the
gradients (their mean over ranks), so the loss on a slice is scaled to be the slice's
share of the global mean (:meth:`Group.mean`), and the step equals the single-process step
on the global batch. Batch norm is synchronised (``blocks._BatchNorm.all_reduce``): its
statistics cover the global batch too. Whatever else depends on the whole batch (PPO's
advantage normalisation, the replay priorities, the symmetry augmentation) is computed on
the global batch, which every rank has. ``tests/unit/test_distributed.py`` holds two gloo
ranks equal to one process after several steps.

Rank 0 alone writes: checkpoints, replay shards it generated, league snapshots, the final
weights and the ONNX candidate. The other ranks read the checkpoint rank 0 wrote when
they start, so a restarted group resumes where rank 0 last saved.

The process group is set up from the variables ``torchrun`` (``torch.distributed.run``)
gives each worker it starts (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``): :func:`from_environment`. The backend follows the device: NCCL for CUDA
tensors, gloo for the CPU (:func:`backend_for`); a GPU group has both, since the small host-side
collectives (metrics, replay priorities, barriers around rollouts) stay on the CPU.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import logging
import os
from collections.abc import Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ouroboros.trainer.learning import blocks

log = logging.getLogger(__name__)

TIMEOUT_ENV = "OURO_DISTRIBUTED_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_SECONDS = 86_400
"""How long a rank waits in a collective: long, because the other ranks wait while rank 0
plays a rollout (the phase Job's activeDeadlineSeconds, a day by default, bounds it anyway)."""


@dataclasses.dataclass(frozen=True)
class Group:
    """This process's place in its learner group: ``rank`` of ``world`` (0 of 1 alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    """This process's index on its node (torchrun's ``LOCAL_RANK``): its GPU is ``cuda:local_rank``."""

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} is not in 0..{self.world - 1}")

    @property
    def distributed(self) -> bool:
        """More than one rank: collectives are needed."""
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Whether this rank writes artifacts (rank 0 only)."""
        return self.rank == 0

    def rows(self, n: int) -> slice:
        """This rank's contiguous slice of a global batch of ``n`` rows (sizes differ by at most one)."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def mean(self, per_row: torch.Tensor, n: int) -> torch.Tensor:
        """The share of the global batch's mean that this rank's rows ``per_row`` [n_local] make.

        DDP averages gradients over ranks, so ``sum(local) * world / n`` here becomes
        ``sum(all) / n`` after the all-reduce: the single-process mean, even for unequal
        slices. Alone: ``per_row.mean()`` (bit for bit what the phases always computed)."""
        if not self.distributed:
            return per_row.mean()
        return per_row.sum() * (self.world / n)

    def all_sum(self, values: np.ndarray) -> np.ndarray:
        """The element-wise sum of ``values`` over ranks (a float64 copy; the values alone)."""
        out = np.asarray(values, np.float64).copy()
        if self.distributed:
            tensor = torch.from_numpy(out)
            dist.all_reduce(tensor)
            out = tensor.numpy()
        return out

    def gather_rows(self, local: np.ndarray, n: int) -> np.ndarray:
        """The global batch's [n] values from every rank's slice ``local`` (e.g. value errors)."""
        full = np.zeros(n, np.float64)
        full[self.rows(n)] = local
        return self.all_sum(full)

    def barrier(self) -> None:
        """Wait for every rank (e.g. until rank 0 has written a shard the others read)."""
        if self.distributed:
            dist.barrier()


SINGLE = Group()
"""A learner of one process."""


def backend_for(device: torch.device) -> str:
    """The collective backends of a group whose network lives on ``device``: gloo on the CPU;
    on CUDA, NCCL for CUDA tensors (gradients, synchronised batch norm) and gloo for the CPU
    tensors that :meth:`Group.all_sum` reduces (torch's ``"cpu:gloo,cuda:nccl"`` form)."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def from_environment(env: Mapping[str, str] | None = None, device: torch.device | None = None) -> Group:
    """The group of a process that ``torchrun`` started (``WORLD_SIZE`` > 1), its process group
    initialised from ``env://``; SINGLE when ``WORLD_SIZE`` is unset or 1.

    Raises ValueError naming the variable when ``RANK``/``WORLD_SIZE`` are not integers."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE") or 1)
        rank = int(env.get("RANK") or 0)
        local_rank = int(env.get("LOCAL_RANK") or 0)
        timeout = float(env.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SECONDS)
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK/{TIMEOUT_ENV}: not a number ({exc})") from None
    group = Group(rank=rank, world=world, local_rank=local_rank)
    if not group.distributed:
        return SINGLE
    if not dist.is_initialized():
        device = device or torch.device("cpu")
        backend = backend_for(device)
        if device.type == "cuda":  # NCCL binds each rank's communicator to its current device
            torch.cuda.set_device(device)
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout),
                                **({"device_id": device} if device.type == "cuda" else {}))
        log.info("learner rank %d of %d joined its %s process group", rank, world, backend)
    return group


def data_parallel(net: nn.Module, group: Group) -> nn.Module:
    """The module a training step runs forward through: ``net`` alone, else ``net`` wrapped in
    DistributedDataParallel with its batch norms synchronised over the group. ``net`` itself
    stays what checkpoints and exports see (no ``module.`` prefix). A ``net`` on a GPU is
    wrapped with ``device_ids=[its device]`` (one GPU per process, DDP's recommended layout)."""
    if not group.distributed:
        return net
    for module in net.modules():
        if isinstance(module, blocks._BatchNorm):  # noqa: SLF001 - the one layer with batch statistics
            module.all_reduce = _differentiable_sum
    # Buffers are synced once at the start, not before every forward: synchronised batch
    # statistics keep every rank's running estimates equal (torch 2.15 renamed the switch).
    ddp = nn.parallel.DistributedDataParallel
    quiet = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
             else {"broadcast_buffers": False})
    params = next(net.parameters(), None)
    on = params.device if params is not None else torch.device("cpu")
    placed = {"device_ids": [on], "output_device": on} if on.type == "cuda" else {}
    return ddp(net, **quiet, **placed)


class _SumOverRanks(torch.autograd.Function):
    """y = the sum of x over ranks; dL/dx = the sum of dL/dy over ranks (every rank's loss
    depends on every rank's x through y)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ANN001 - autograd's signature
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        out = grad.clone()
        dist.all_reduce(out)
        return out


def _differentiable_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The all-reduced sum of ``tensor`` over ranks, with a gradient."""
    return _SumOverRanks.apply(tensor)


# ---------------------------------------------------------------------------
# Launching: what a pod of a learner group runs (torchrun, c10d rendezvous)

REPLICAS_ENV = "OURO_LEARNER_REPLICAS"
"""Pods in the phase's learner group (the operator sets it from spec.learner.replicas)."""
ENDPOINT_ENV = "OURO_RENDEZVOUS_ENDPOINT"
"""host:port of the c10d rendezvous, hosted by the pod of completion index 0."""
RENDEZVOUS_ID_ENV = "OURO_RENDEZVOUS_ID"
"""The rendezvous id: the Job's name, so a retried Job (a new name) never meets an old one."""
INDEX_ENV = "JOB_COMPLETION_INDEX"
LAUNCHED_ENV = "LOCAL_RANK"
"""Set by torchrun in every worker it starts: the process is a rank, not a launcher."""
CLI_MODULE = "ouroboros.trainer.commands.cli"


@dataclasses.dataclass(frozen=True)
class Launch:
    """How this pod joins its learner group (:func:`launch_plan`)."""

    replicas: int
    index: int
    endpoint: str
    rendezvous_id: str

    def torchrun_arguments(self, argv: list[str]) -> list[str]:
        """``torchrun`` arguments that run ``ouro <argv>`` as this pod's one rank: ``replicas``
        nodes of one process each, c10d rendezvous at ``endpoint`` hosted by index 0 (``is_host``
        explicitly, since a pod's host name never equals the Service DNS name that reaches it), no
        restarts inside the group: a failed rank fails the pod, the Job, and the operator retries
        the whole group as a new Job."""
        return [
            f"--nnodes={self.replicas}", "--nproc-per-node=1",
            "--rdzv-backend=c10d", f"--rdzv-endpoint={self.endpoint}", f"--rdzv-id={self.rendezvous_id}",
            f"--rdzv-conf=is_host={1 if self.index == 0 else 0}",
            "--max-restarts=0", "--module", CLI_MODULE, *argv,
        ]


def replicas_from(env: Mapping[str, str]) -> int:
    """``OURO_LEARNER_REPLICAS`` (1 when unset); ValueError naming it unless a positive integer."""
    raw = (env.get(REPLICAS_ENV) or "1").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1 or len(raw) > 4:
        raise ValueError(f"{REPLICAS_ENV}: {raw[:40]!r} is not a positive integer")
    return int(raw)


def launch_plan(env: Mapping[str, str]) -> Launch | None:
    """The torchrun launch this process must make, or None: a learner of one pod, or a process
    torchrun already started (``LOCAL_RANK`` set). ValueError naming the variable when the
    learner group's variables are missing or malformed."""
    replicas = replicas_from(env)
    if replicas == 1 or LAUNCHED_ENV in env:
        return None
    endpoint = (env.get(ENDPOINT_ENV) or "").strip()
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{ENDPOINT_ENV}: {endpoint[:80]!r} is not host:port (a learner of {replicas} replicas "
                         "needs its rendezvous address)")
    raw = (env.get(INDEX_ENV) or "").strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) >= replicas:
        raise ValueError(f"{INDEX_ENV}: {raw[:40]!r} is not an index below the {replicas} learner replicas")
    rendezvous_id = (env.get(RENDEZVOUS_ID_ENV) or "").strip()
    if not rendezvous_id:
        raise ValueError(f"{RENDEZVOUS_ID_ENV}: unset (a learner of {replicas} replicas needs its rendezvous id)")
    return Launch(replicas=replicas, index=int(raw), endpoint=endpoint, rendezvous_id=rendezvous_id)


def launch(plan: Launch, argv: list[str]) -> int:
    """Run ``ouro <argv>`` as this pod's rank through ``torch.distributed.run`` (torchrun's own
    entry point, in this process); returns the rank's exit code (0 when it succeeded).
    Errors of the rendezvous itself (a peer that never came, a timeout) propagate."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        torchrun.run(torchrun.parse_args(plan.torchrun_arguments(argv)))
    except ChildFailedError as exc:
        _, failure = exc.get_first_failure()
        return failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1
    return 0
