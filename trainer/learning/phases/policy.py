"""Batched, safety-masked network inference for self-play and evaluation.

Moves that lose at once (off the board, into a body) are masked out of the
policy before sampling, in self-play, in the PPO loss and at evaluation
(invalid-action masking, Huang & Ontañón 2020): the network never spends
capacity or gradient on learning that walls kill, and the served player
(``agents.neural``) masks the same way. When every move loses the mask is
lifted and the network's favourite is played.

Self-play needs log-probabilities and values alongside the moves, so rollouts
call `decide` here; evaluation plays the network as a `Player` through
`agents.neural.TorchPlayer`, the same masked argmax the served model uses.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.learning import networks
from ouroboros.trainer.observation import encoding, safety

NEG = -1e9  # a masked logit: exp() underflows to 0 without producing NaN


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """logits [N, 4], mask [N, 4] bool (True = allowed) -> logits with the rest at NEG.
    Rows with no allowed move keep all four."""
    none = ~mask.any(dim=1, keepdim=True)
    return torch.where(mask | none, logits, torch.full_like(logits, NEG))


@dataclasses.dataclass
class Decision:
    """What the network decided for N (game, seat) pairs."""

    moves: np.ndarray  # int8 [N]
    logp: np.ndarray  # float32 [N]: log-probability of the move under the masked policy
    value: np.ndarray  # float32 [N]: value estimate in [-1, 1]
    mask: np.ndarray  # bool [N, 4]: the moves that did not lose at once
    log_probs: np.ndarray | None = None  # float32 [N, 4]: log-probabilities of all four moves


@torch.no_grad()
def decide(net: networks.PolicyValueNet, planes: np.ndarray, mask: np.ndarray,
           rng: np.random.Generator, temperature: float = 1.0) -> Decision:
    """One forward for planes [N, C, H, W] with safety mask [N, 4]; samples a move per
    row from softmax(masked logits / temperature) (argmax at temperature 0) with
    ``rng``, so a run is reproducible whatever torch's RNG holds."""
    logits, value = net(torch.from_numpy(planes))
    logits = masked_logits(logits, torch.from_numpy(mask))
    logp_all = torch.log_softmax(logits, dim=1).numpy()
    if temperature <= 0:
        moves = np.argmax(logp_all + rng.random(logp_all.shape) * 1e-6, axis=1)
    else:
        scaled = logp_all / temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        p = np.exp(scaled)
        cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
        moves = np.minimum((cdf < rng.random((len(cdf), 1))).sum(axis=1), 3)
    logp = logp_all[np.arange(len(moves)), moves].astype(np.float32)
    return Decision(moves.astype(np.int8), logp, value[:, 0].numpy().astype(np.float32), mask,
                    logp_all.astype(np.float32))


def observe(config: GameConfig, state: BatchState, games: np.ndarray, seats: np.ndarray,
            safe: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Planes float32 [N, C, H, W] and safety mask bool [N, 4] of (games[N], seats[N])."""
    planes = encoding.encode(config, state.select(games), seats)
    if safe is None:
        safe = safety.safe_moves(config, state)
    return planes, safe[games, seats]
