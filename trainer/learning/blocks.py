"""The layers the networks are assembled from: trunks' blocks and the two heads.

Every layer here is size-agnostic (no parameter depends on the board's H or
W) and exports to plain ONNX operators (Conv, MatMul, Softmax,
LayerNormalization, Pad/Slice-free gathers), so one trained network runs on
any board and the classic TorchScript exporter needs no custom symbolic.

The board mask (the ``board`` input plane, 1 on playable cells) threads
through the trunk: blocks zero their output on padding, pooling averages
over playable cells only and attention never attends to padding, so a
board padded into a larger input computes what the unpadded board would.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import Enum

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


class Normalisation(str, Enum):
    """Normalisation after each convolution."""

    BATCH = "batch"  # folds into the convolution at inference: the fastest to serve
    GROUP = "group"  # independent of the batch: steadier with small or mixed batches (masked)
    NONE = "none"


class MaskedGroupNorm(nn.Module):
    """Group normalisation whose statistics cover playable cells only, so a padded
    board normalises like the bare one (``nn.GroupNorm`` would average the padding
    in). Equals ``nn.GroupNorm`` when nothing is padded. [B, C, H, W] -> same."""

    def __init__(self, groups: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], mask [B, 1, H, W] -> [B, C, H, W]."""
        b, c, h, w = x.shape
        xg = x.reshape(b, self.groups, c // self.groups, h, w)
        m = mask.reshape(b, 1, 1, h, w)
        count = (m.sum(dim=(2, 3, 4), keepdim=True) * (c // self.groups)).clamp(min=1.0)
        mean = (xg * m).sum(dim=(2, 3, 4), keepdim=True) / count
        var = (((xg - mean) * m) ** 2).sum(dim=(2, 3, 4), keepdim=True) / count
        y = ((xg - mean) / torch.sqrt(var + self.eps)).reshape(b, c, h, w)
        return y * self.weight[:, None, None] + self.bias[:, None, None]


class _BatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the masked layers' signature (same parameter names).

    ``all_reduce`` (None by default) makes it a synchronised batch norm for data-parallel
    training (:func:`learning.distributed.data_parallel` sets it on every rank): in training
    mode the statistics cover the global batch of all ranks, summed by that differentiable
    all-reduce, so N ranks with B/N rows each normalise exactly as one process with B rows.
    ``torch.nn.SyncBatchNorm`` does the same on GPUs only, and with the one-argument forward.
    """

    all_reduce: Callable[[torch.Tensor], torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if self.all_reduce is None or not self.training:
            return super().forward(x)
        return self._synchronised(x)

    def _synchronised(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> same, with batch statistics over every rank's rows (float64 sums)."""
        c = x.shape[1]
        count = torch.tensor([x.numel() / c], dtype=torch.float64, device=x.device)
        local = torch.cat([x.sum((0, 2, 3), dtype=torch.float64), x.square().sum((0, 2, 3), dtype=torch.float64),
                           count])
        total = self.all_reduce(local)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean.square()).clamp(min=0.0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():  # as nn.BatchNorm2d: the unbiased variance goes into the running estimate
                momentum = 0.1 if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - momentum).add_(mean.to(x.dtype), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_((var * n / (n - 1).clamp(min=1)).to(x.dtype),
                                                         alpha=momentum)
                self.num_batches_tracked.add_(1)
        shape = (1, c, 1, 1)
        scale = torch.rsqrt(var + self.eps).to(x.dtype).reshape(shape)
        y = (x - mean.to(x.dtype).reshape(shape)) * scale
        return y * self.weight.reshape(shape) + self.bias.reshape(shape)


class _Identity(nn.Module):
    """No normalisation, with the masked layers' signature."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x


def norm_layer(kind: Normalisation, channels: int, groups: int) -> nn.Module:
    """A normalisation layer called as ``norm(x [B, C, H, W], mask [B, 1, H, W])``.

    Batch norm's statistics are per batch at training time (padding included) and
    fixed at inference, where it folds into the convolution before it.
    """
    if kind is Normalisation.BATCH:
        return _BatchNorm(channels)
    if kind is Normalisation.GROUP:
        return MaskedGroupNorm(math.gcd(groups, channels), channels)
    return _Identity()


class ConvBlock(nn.Module):
    """conv3x3 -> norm -> ReLU, zeroed on padding. [B, Cin, H, W] -> [B, Cout, H, W]."""

    def __init__(self, c_in: int, c_out: int, norm: Normalisation, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm is Normalisation.NONE)
        self.norm = norm_layer(norm, c_out, groups)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, Cin, H, W], mask [B, 1, H, W] -> [B, Cout, H, W]."""
        return F.relu(self.norm(self.conv(x), mask)) * mask


class ResidualBlock(nn.Module):
    """Two conv3x3 with a skip connection (He et al.), zeroed on padding. [B, C, H, W] -> same."""

    def __init__(self, channels: int, norm: Normalisation, groups: int) -> None:
        super().__init__()
        bias = norm is Normalisation.NONE
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm1 = norm_layer(norm, channels, groups)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm2 = norm_layer(norm, channels, groups)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], mask [B, 1, H, W] -> [B, C, H, W]."""
        y = F.relu(self.norm1(self.conv1(x), mask)) * mask
        y = self.norm2(self.conv2(y), mask)
        return F.relu(x + y) * mask


class AttentionBlock(nn.Module):
    """Multi-head self-attention over board cells, then a feed-forward layer (pre-norm
    transformer layer). Lets every cell see the whole board in one step, which 3×3
    convolutions need about W/2 layers for (a snake's fate often hangs on a far tail).

    Written with ``scaled_dot_product_attention`` (PyTorch's fused CPU kernel:
    several times faster to train than the spelled-out softmax, which the
    exporter produces for ONNX anyway) rather than ``nn.MultiheadAttention``, so
    the padding mask is a plain additive bias. Positions come from the
    convolutional features that feed it (zero padding marks the walls).
    """

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.norm2 = nn.LayerNorm(channels)
        self.ffn = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.ReLU(), nn.Linear(2 * channels, channels)
        )
        self.dropout = nn.Dropout(dropout)
        self.dropout_p = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], mask [B, 1, H, W] -> [B, C, H, W]."""
        b, c, h, w = x.shape
        d = c // self.heads
        tokens = x.flatten(2).transpose(1, 2)  # [B, N, C], N = H*W
        q, k, v = self.qkv(self.norm1(tokens)).chunk(3, dim=-1)
        q = q.reshape(b, -1, self.heads, d).transpose(1, 2)  # [B, heads, N, d]
        k = k.reshape(b, -1, self.heads, d).transpose(1, 2)
        v = v.reshape(b, -1, self.heads, d).transpose(1, 2)
        bias = (mask.flatten(1)[:, None, None, :] - 1.0) * 1e4  # [B, 1, 1, N]: never attend to padding
        p = self.dropout_p if self.training else 0.0
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
        mixed = mixed.transpose(1, 2).reshape(b, -1, c)  # [B, N, C]
        tokens = tokens + self.dropout(self.proj(mixed))
        tokens = tokens + self.dropout(self.ffn(self.norm2(tokens)))
        # contiguous: a channels-last view here sends convolutions down a slow path
        return tokens.transpose(1, 2).reshape(b, c, h, w).contiguous() * mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over playable cells. x [B, C, H, W], mask [B, 1, H, W] -> [B, C]."""
    return (x * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp(min=1.0)


def at_cells(x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Features read at one-hot cells. x [B, C, H, W], where [B, K, H, W] -> [B, K, C]."""
    return torch.matmul(where.flatten(2), x.flatten(2).transpose(1, 2))


class PolicyHead(nn.Module):
    """4 move logits read where the moves go: [B, C, H, W] features -> [B, 4].

    Each move's logit = a shared linear map of the features of the cell it enters
    (one step from my head; zero off the board) + a linear map of my head's
    features and the board average. Reading at the head is what HandyRL's Hungry
    Geese network did; the neighbour term gives each move its own evidence.
    """

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        # Fixed kernels that move the head marker onto the cell each move enters
        # (UP = row - 1, DOWN = row + 1, LEFT = column - 1, RIGHT = column + 1).
        kernel = torch.zeros(4, 1, 3, 3)
        kernel[0, 0, 2, 1] = kernel[1, 0, 0, 1] = kernel[2, 0, 1, 2] = kernel[3, 0, 1, 0] = 1.0
        self.register_buffer("neighbours", kernel, persistent=False)
        self.cell = nn.Linear(channels, 1)
        self.context = nn.Sequential(
            nn.Linear(2 * channels, channels), nn.ReLU(), nn.Dropout(dropout), nn.Linear(channels, 4)
        )

    def forward(self, x: torch.Tensor, head: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], head [B, 1, H, W] (one-hot), mask [B, 1, H, W] -> logits [B, 4]."""
        targets = F.conv2d(head, self.neighbours, padding=1)  # [B, 4, H, W]
        per_move = self.cell(at_cells(x, targets))[..., 0]  # [B, 4]
        context = torch.cat([at_cells(x, head)[:, 0], masked_mean(x, mask)], dim=1)
        return per_move + self.context(context)


class ValueHead(nn.Module):
    """Expected outcome for me in [-1, 1]: [B, C, H, W] features -> [B, 1] (tanh)."""

    def __init__(self, channels: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * channels, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor, head: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W], head [B, 1, H, W], mask [B, 1, H, W] -> [B, 1]."""
        features = torch.cat([at_cells(x, head)[:, 0], masked_mean(x, mask)], dim=1)
        return torch.tanh(self.mlp(features))
