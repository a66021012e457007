"""Policy-value networks, sized by a typed config, built by one factory.

Two architectures, the operations guide's two (`CNN_Simple`,
`CNN_Attention_Residual`):

* ``cnn_simple``: a stack of conv3x3 layers. The cheapest net that learns
  local safety and food-seeking; the yardstick for the other.
* ``cnn_attention_residual``: residual conv blocks with multi-head
  self-attention layers over the board's cells spread among them, so that
  far-away tails and space reach every cell in one step.

Both take the planes of :mod:`.encoding` ``[N, C, H, W]`` and return
``(policy logits [N, 4], value [N, 1] in [-1, 1])``; moves are indexed like
``Move`` (UP, DOWN, LEFT, RIGHT). Nothing depends on H or W, so a network
trained on one board plays any other (see :mod:`.blocks`).

**The default** (``NetworkConfig()``): attention-residual, 6 blocks × 32
channels, one 4-head attention layer after the last block, batch norm:
131,910 parameters (576 more since encoding version 2's two territory
planes), a 0.55 MB ONNX file, p50 0.28 ms and p99 0.33-0.38 ms at batch 1
on one thread of this CPU (1.06 ms while the shared machine's load
average was 7), 16 MB of session memory: inside issue 5's serving goal
(p99 <= 1 ms, <= 20 MB) with room for a second attention layer or 8 blocks.
``benchmarks/onnx.py`` prints these figures for every architecture. Batch
norm is the default because it folds into the convolutions at export, so it
costs nothing to serve.

A checkpoint for :func:`load_checkpoint` is a ``torch.save``'d dict with
``"model"`` (the state dict) and the network config either as ``"network"``
(what :func:`checkpoint` writes) or as the ``network``/``model`` section of
``"config"`` (what the training loop's ``Checkpointer`` writes); other keys
(optimiser, step ...) are ignored here.
"""

from __future__ import annotations

import logging
import os

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ouroboros.contract.vocabulary import Architecture
from ouroboros.trainer.learning import blocks
from ouroboros.trainer.learning.blocks import Normalisation
from ouroboros.trainer.observation import encoding

log = logging.getLogger(__name__)

__all__ = [
    "Architecture",
    "NetworkConfig",
    "Normalisation",
    "PolicyValueNet",
    "build_network",
    "count_parameters",
    "load_checkpoint",
    "network_section",
]


class NetworkConfig(BaseModel):
    """The size and shape of a network (a TrainingRun's ``model`` section)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: Architecture = Field(
        Architecture.CNN_ATTENTION_RESIDUAL, description="cnn_simple or cnn_attention_residual."
    )
    in_channels: int = Field(
        encoding.N_CHANNELS, ge=1, description="Input planes; the encoding's channel count."
    )
    blocks: int = Field(
        6, ge=1, le=64, description="Conv layers (cnn_simple) or residual blocks (attention)."
    )
    channels: int = Field(32, ge=4, le=512, description="Feature channels of the trunk.")
    heads: int = Field(4, ge=1, le=32, description="Attention heads; must divide channels.")
    attention_layers: int = Field(
        1, ge=0, le=16, description="Attention layers spread evenly among the residual blocks."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout in attention and heads.")
    normalisation: Normalisation = Field(
        Normalisation.BATCH, description="batch, group or none, after every convolution."
    )
    groups: int = Field(8, ge=1, description="Groups of group normalisation.")
    value_hidden: int = Field(64, ge=1, description="Hidden units of the value head.")

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        if self.architecture is Architecture.CNN_ATTENTION_RESIDUAL:
            if self.channels % self.heads:
                raise ValueError(
                    f"channels ({self.channels}) must be a multiple of heads ({self.heads})"
                )
            if self.attention_layers > self.blocks:
                raise ValueError(
                    f"attention_layers ({self.attention_layers}) exceeds blocks ({self.blocks})"
                )
        return self

    @classmethod
    def from_spec(cls, spec) -> NetworkConfig:
        """The network of a ``contract.run.ModelSpec`` (a TrainingRun's ``model`` section)."""
        simple = spec.architecture is Architecture.CNN_SIMPLE
        return cls(architecture=spec.architecture, blocks=spec.blocks, channels=spec.channels,
                   heads=spec.heads, attention_layers=0 if simple else spec.attention_layers,
                   value_hidden=spec.value_hidden)

    @property
    def name(self) -> str:
        """Short architecture name for registries and logs, e.g. ``cnn_attention_residual-6x32``."""
        return f"{self.architecture.value}-{self.blocks}x{self.channels}"


class PolicyValueNet(nn.Module):
    """Planes [N, C, H, W] -> (policy logits [N, 4], value [N, 1] in [-1, 1]).

    The trunk is a list of blocks that all take (features, board mask); the
    heads read at my head (the ``own_head`` plane) and over the board.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        c, norm, groups = config.channels, config.normalisation, config.groups
        layers: list[nn.Module] = [blocks.ConvBlock(config.in_channels, c, norm, groups)]
        if config.architecture is Architecture.CNN_SIMPLE:
            layers += [blocks.ConvBlock(c, c, norm, groups) for _ in range(config.blocks - 1)]
        else:
            after = _attention_positions(config.blocks, config.attention_layers)
            for i in range(config.blocks):
                layers.append(blocks.ResidualBlock(c, norm, groups))
                if i in after:
                    layers.append(blocks.AttentionBlock(c, config.heads, config.dropout))
        self.trunk = nn.ModuleList(layers)
        self.policy = blocks.PolicyHead(c, config.dropout)
        self.value = blocks.ValueHead(c, config.value_hidden, config.dropout)

    def forward(self, board: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """board [N, C, H, W] float32 -> (policy logits [N, 4], value [N, 1])."""
        mask = board[:, encoding.Channel.BOARD : encoding.Channel.BOARD + 1]
        head = board[:, encoding.Channel.OWN_HEAD : encoding.Channel.OWN_HEAD + 1]
        x = board
        for layer in self.trunk:
            x = layer(x, mask)
        return self.policy(x, head, mask), self.value(x, head, mask)


def _attention_positions(n_blocks: int, n_attention: int) -> set[int]:
    """Indices of the residual blocks followed by attention: evenly spread, the last one
    always (attention sees the most refined features there)."""
    return {n_blocks - 1 - (i * n_blocks) // n_attention for i in range(n_attention)}


def build_network(config: NetworkConfig | None = None, *, seed: int | None = None) -> PolicyValueNet:
    """A freshly initialised network for ``config`` (the default one when None).

    seed: makes the initial weights reproducible (uses a private generator state,
    so the caller's torch RNG is untouched).
    """
    config = config or NetworkConfig()
    if seed is None:
        net = PolicyValueNet(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = PolicyValueNet(config)
    log.info("built %s: %s parameters", config.name, f"{count_parameters(net):,}")
    return net


def widened(net: PolicyValueNet, in_channels: int) -> PolicyValueNet:
    """``net`` taking ``in_channels`` input planes instead of fewer: the weights that read the
    input get zeros for the added planes, so on inputs whose first ``net.config.in_channels``
    planes are the old ones it computes exactly what ``net`` did (how a network trained on an
    older encoding version, a prefix of the current one, trains on). ValueError for fewer."""
    old = net.config.in_channels
    if in_channels < old:
        raise ValueError(f"cannot narrow a network from {old} to {in_channels} input planes")
    wide = PolicyValueNet(net.config.model_copy(update={"in_channels": in_channels}))
    state = wide.state_dict()
    for key, value in net.state_dict().items():
        if state[key].shape != value.shape:  # only the weights reading the input differ, in dimension 1
            if value.shape[1] != old or state[key].shape[:1] + state[key].shape[2:] != value.shape[:1] + value.shape[2:]:
                raise ValueError(f"{key}: {tuple(value.shape)} cannot widen to {tuple(state[key].shape)}")
            value = torch.cat([value, value.new_zeros((value.shape[0], in_channels - old, *value.shape[2:]))], 1)
        state[key] = value
    wide.load_state_dict(state)
    return wide.train(net.training)


def upgraded(net: PolicyValueNet) -> PolicyValueNet:
    """``net`` taking the current encoding's planes: :func:`widened` when it was built for an
    older encoding version (a champion or phase weights saved before an upgrade), else ``net``."""
    if net.config.in_channels < encoding.N_CHANNELS and net.config.in_channels in encoding.VERSION_CHANNELS.values():
        log.info("%s: built for encoding version %d (%d planes), widened to version %d with zero weights",
                 net.config.name, encoding.version_of(net.config.in_channels), net.config.in_channels,
                 encoding.ENCODING_VERSION)
        return widened(net, encoding.N_CHANNELS)
    return net


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def network_section(raw: dict) -> dict | None:
    """The network config inside a checkpoint payload: top-level ``network``, or the
    ``network``/``model`` section of its ``config`` (the phase config that
    :mod:`.checkpoint` saves)."""
    if isinstance(raw.get("network"), dict):
        return raw["network"]
    config = raw.get("config")
    if isinstance(config, dict):
        for key in ("network", "model"):
            if isinstance(config.get(key), dict) and "architecture" in config[key]:
                return config[key]
    return None


def load_checkpoint(
    path: str | os.PathLike[str], config: NetworkConfig | None = None
) -> tuple[PolicyValueNet, NetworkConfig]:
    """The network of a checkpoint file, in eval mode.

    Reads the payload of :func:`checkpoint` or of :mod:`.checkpoint`'s
    ``Checkpointer`` (weights only: a tampered file cannot run code). ``config``
    overrides the network config stored in it (needed when none is stored).
    """
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many kinds (pickle, zip, KeyError) for a file it cannot read
        raise ValueError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        keys = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise ValueError(f"{path}: not a network checkpoint (no 'model' state dict; has {keys})")
    if config is None:
        section = network_section(raw)
        if section is None:
            raise ValueError(
                f"{path}: the checkpoint does not say which network it holds (a phase checkpoint written "
                "before checkpoints recorded it); name it (`ouro export --arch A --blocks N --channels N "
                "...`), or use the phase's final weights runs/RUN/models/PHASE.pt, which record it"
            )
        config = NetworkConfig.model_validate(section)
    net = PolicyValueNet(config)
    try:
        net.load_state_dict(raw["model"])
    except RuntimeError as exc:  # the weights are of another network than the config says
        detail = str(exc).split("\n\t", 1)[-1].split("\n")[0][:300]
        raise ValueError(f"{path}: the weights do not fit a {config.name} network: {detail}") from None
    log.info("loaded %s from %s: %s parameters", config.name, path, f"{count_parameters(net):,}")
    return net.eval(), config


def checkpoint(net: PolicyValueNet, **extra: object) -> dict[str, object]:
    """The dict :func:`load_checkpoint` reads (save it with ``torch.save``); ``extra``
    keys (optimiser state, step ...) ride along."""
    return {"network": net.config.model_dump(mode="json"), "model": net.state_dict(), **extra}
