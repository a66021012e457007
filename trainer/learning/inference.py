"""The network's forward for rollouts: torch (on the CPU or a GPU), or a frozen onnxruntime copy on the CPU.

Self-play spends almost all of a position's time in the network's forward
(measured with `benchmarks/training.py` under cProfile: 96% forward, the
engine, encoding and safety masks together under 4%). A rollout never
trains the network it plays, so it can play a frozen copy: `OnnxRuntimeForward`
exports the weights once per rollout (`onnx_export.to_onnx`, then
onnxruntime's own graph optimisation: Conv+BatchNorm+ReLU fusion and the
rest) and runs them in onnxruntime, the runtime the served model uses. On
this project's CPUs that forward is faster than torch eager at rollout batch
sizes (figures in the README), for about a second of export per rollout.

A network on a GPU plays through `DeviceForward`: each turn's planes go to the
device in one pinned, non-blocking copy, the forward runs under
``torch.inference_mode()`` and the run's autocast (bf16 on a GPU by default),
and logits and values come back to the host together in one copy.

All forwards take and return CPU torch tensors, so `policy.decide` and the
expert's search run any of them.
Logits agree with torch's to about 1e-6; a rollout's recorded log-probabilities
come from the copy it played, which is what PPO's ratio needs.
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import torch

from ouroboros.trainer.learning import device, networks


class InferenceBackend(str, Enum):
    """What runs a rollout's forward passes."""

    TORCH = "torch"
    """The live torch module, on whatever device it lives on."""
    ONNXRUNTIME = "onnxruntime"
    """A frozen copy in onnxruntime (CPU), exported when the rollout starts."""


class OnnxRuntimeForward:
    """A PolicyValueNet's forward, frozen at construction, in onnxruntime on the CPU.

    Called as the network is: board float32 [N, C, H, W] tensor -> (policy logits
    [N, 4], value [N, 1]) tensors. threads: onnxruntime's intra-op threads (torch's
    current setting by default, so both backends use the same cores).
    """

    def __init__(self, net: networks.PolicyValueNet, height: int, width: int, threads: int | None = None):
        import onnxruntime as ort  # the trainer extra; only rollouts that ask for it need it

        from ouroboros.trainer.learning import onnx_export

        self.config = net.config
        model = onnx_export.optimise(onnx_export.to_onnx(net, height, width))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def __call__(self, board: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        planes = np.ascontiguousarray(board.detach().cpu().numpy(), np.float32)
        logits, value = self._session.run(None, {self._input: planes})
        return torch.from_numpy(logits), torch.from_numpy(value)

    def eval(self) -> OnnxRuntimeForward:
        """A frozen forward is always in inference mode (here for the nn.Module interface)."""
        return self


class DeviceForward:
    """A PolicyValueNet's forward on the device it lives on (a GPU), for rollouts.

    Called as the network is, with CPU tensors: board [N, C, H, W] -> (policy logits
    float32 [N, 4], value float32 [N, 1]) on the CPU. The board is copied to the device
    pinned and non-blocking, the forward runs under ``torch.inference_mode()`` and
    ``autocast`` (torch.bfloat16, or None for fp32), and both outputs return in one copy.
    The module is live, not frozen: it plays the weights it has when called.
    """

    def __init__(self, net: networks.PolicyValueNet, autocast: torch.dtype | None = None) -> None:
        self.module = net
        self.config = net.config
        self.placement = device.Placement(device.device_of(net), autocast)

    def __call__(self, board: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode(), self.placement.autocasting():
            logits, value = self.module(self.placement.put(board.float()))
            both = torch.cat([logits.float(), value.float()], dim=1).cpu()
        return both[:, :-1], both[:, -1:]

    def eval(self) -> DeviceForward:
        """The module in inference mode (here for the nn.Module interface)."""
        self.module.eval()
        return self


def for_rollout(net: networks.PolicyValueNet, height: int, width: int,
                backend: InferenceBackend | str = InferenceBackend.ONNXRUNTIME,
                autocast: torch.dtype | None = None):
    """The forward a rollout should call for `net` (eval mode): onnxruntime when asked for
    and the network lives on the CPU; the network itself for torch on the CPU; a
    `DeviceForward` (under ``autocast``) for a network on a GPU, whatever ``backend`` says."""
    net.eval()
    on = device.device_of(net)
    if on.type != "cpu":
        return DeviceForward(net, autocast)
    if InferenceBackend(backend) is InferenceBackend.ONNXRUNTIME:
        return OnnxRuntimeForward(net, height, width)
    return net
