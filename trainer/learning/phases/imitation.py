"""Imitation: cross-entropy on the teacher's moves and regression of the game outcome.

The bootstrap phase starts the network from the heuristic teacher rather than
from random play (the Hungry Geese 3rd place went imitation -> RL, and a
random snake rarely lives long enough to learn anything by RL). Every sample
gets one random board symmetry (rotations/flips with the moves relabelled),
which multiplies the data by up to 8 for free: the rules have no preferred
direction. The policy loss only ranks the moves that do not lose at once
(the same mask the player applies), so no capacity goes to "walls kill".
Samples come from the prioritised replay window; the value error sets the
priorities, and the importance weights undo their bias. Where the window's
positions carry a search's visit distribution (expert iteration's
``search_policy``), that distribution is the target instead of the one move.
"""

from __future__ import annotations

import numpy as np
import torch

from ouroboros.contract.vocabulary import Metric
from ouroboros.trainer.learning import distributed
from ouroboros.trainer.learning.checkpoint import TrainState, step_rng
from ouroboros.trainer.learning.phases import policy
from ouroboros.trainer.learning.phases.config import PhaseSettings
from ouroboros.trainer.learning.replay import ReplayBuffer
from ouroboros.trainer.observation import encoding

COLUMNS = ("planes", "move", "mask", "value")
SEARCH_COLUMNS = ("search_policy", "searched")
"""Expert iteration's policy targets (``.expert``), used where every shard of the window has them."""


def step(state: TrainState, buffer: ReplayBuffer, settings: PhaseSettings, seed: int,
         group: distributed.Group = distributed.SINGLE, model: torch.nn.Module | None = None) -> dict[str, float]:
    """One optimiser step on a batch of ``settings.batch_size`` rows (a ResumableLoop step_fn).

    planes [B, C, H, W] -> logits [B, 4] vs one-hot(move) [B, 4] (or the search's visit distribution
    [B, 4] on rows that have one); value [B, 1] vs outcome [B]. In a learner ``group`` of several
    ranks, B is the global batch: every rank draws and augments the same B rows and runs ``model``
    (the DDP wrapper of ``state.model``) on its own slice (``learning.distributed``); the
    priorities and metrics cover all B rows."""
    rng = step_rng(seed, state.step)
    soft = all(name in buffer.columns for name in SEARCH_COLUMNS)
    batch = buffer.sample(settings.batch_size, rng, COLUMNS + (SEARCH_COLUMNS if soft else ()))
    cols = batch.columns
    n = len(cols["move"])
    target = np.zeros((n, 2, 4), np.float32)
    target[np.arange(n), 0, cols["move"].astype(np.int64)] = 1.0
    if soft:  # positions a search labelled: its visit distribution instead of the one move
        searched = cols["searched"].astype(bool)
        target[searched, 0] = cols["search_policy"][searched]
    target[:, 1] = cols["mask"]
    planes, target = encoding.augment(cols["planes"].astype(np.float32), target, rng)
    part = group.rows(n)
    planes, target = planes[part], target[part]
    net, opt = state.model, state.optimizer
    net.train()
    logits, value = (model or net)(torch.from_numpy(planes))
    logits = policy.masked_logits(logits, torch.from_numpy(target[:, 1] > 0.5))
    weights = torch.from_numpy(batch.weights[part])
    ce = -(torch.from_numpy(target[:, 0]) * torch.log_softmax(logits, dim=1)).sum(1)
    err = value[:, 0] - torch.from_numpy(cols["value"][part].astype(np.float32))
    policy_loss = group.mean(weights * ce, n)
    value_loss = group.mean(weights * err.square(), n)
    loss = policy_loss + value_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    correct = (logits.argmax(1) == torch.from_numpy(target[:, 0]).argmax(1)).float()
    if not group.distributed:
        buffer.update_priorities(batch.indices, err.detach().numpy())
        return {Metric.POLICY_LOSS: policy_loss.item(), Metric.VALUE_LOSS: value_loss.item(),
                Metric.ACCURACY: float(correct.mean())}
    buffer.update_priorities(batch.indices, group.gather_rows(err.detach().numpy(), n))
    # each rank's loss is its share of the global mean: their sum is the global batch's
    totals = group.all_sum(np.array([policy_loss.item(), value_loss.item(), float(correct.sum())]))
    world = group.world
    return {Metric.POLICY_LOSS: float(totals[0] / world), Metric.VALUE_LOSS: float(totals[1] / world),
            Metric.ACCURACY: float(totals[2] / n)}
