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
``search_policy``), that distribution is the target instead of the one move;
where they carry a search teacher's value of the position (``search_value``),
the value target mixes it with the outcome (``teacher_value_weight``): a
search's verdict on every position, where one game's result says little (two
searches' duels mostly draw at the turn cap; with bootstrap's random moves they
end by a move no search foresaw). With ``teacher_policy_weight`` w below 1 the
policy target is w of the teacher's move and 1 - w of a frozen reference
network's own policy (the network the phase started from): cross-entropy to
it is the KL divergence from it up to a constant, the term that holds a
fine-tuned policy near its starting point (as RLHF's KL penalty to the
reference model), so the value head can learn the teacher's verdicts without
the policy drifting to the teacher's moves.
"""

from __future__ import annotations

import numpy as np
import torch

from ouroboros.contract.vocabulary import Metric
from ouroboros.trainer.learning import device, distributed
from ouroboros.trainer.learning.checkpoint import TrainState, step_rng
from ouroboros.trainer.learning.phases import expert, policy
from ouroboros.trainer.learning.phases.config import PhaseSettings
from ouroboros.trainer.learning.replay import ReplayBuffer
from ouroboros.trainer.observation import encoding

COLUMNS = ("planes", "move", "mask", "value")
SEARCH_COLUMNS = ("search_policy", "searched")
"""Expert iteration's policy targets (``.expert``), used where every shard of the window has them."""
VALUE_COLUMNS = ("search_value", "searched")
"""A scoring teacher's values of the positions (the search's, ``selfplay``), used where every shard has them."""


def step(state: TrainState, buffer: ReplayBuffer, settings: PhaseSettings, seed: int,
         group: distributed.Group = distributed.SINGLE, model: torch.nn.Module | None = None,
         placement: device.Placement = device.CPU,
         reference: torch.nn.Module | None = None) -> dict[str, float]:
    """One optimiser step on a batch of ``settings.batch_size`` rows (a ResumableLoop step_fn).

    planes [B, C, H, W] -> logits [B, 4] vs one-hot(move) [B, 4] (or the search's visit distribution
    [B, 4] on rows that have one); value [B, 1] vs outcome [B] (mixed with a scoring teacher's value
    of the position, ``settings.teacher_value_weight`` of it, on rows that have one). In a learner ``group`` of several
    ranks, B is the global batch: every rank draws and augments the same B rows and runs ``model``
    (the DDP wrapper of ``state.model``) on its own slice (``learning.distributed``); the
    priorities and metrics cover all B rows. ``placement`` (``learning.device``): the batch is
    sampled and augmented on the CPU, moved to the network's device (pinned, non-blocking on
    CUDA), the forward runs under its autocast (bf16, or fp32), the losses and the update in fp32.
    ``reference`` (needed when ``settings.teacher_policy_weight`` < 1, ValueError otherwise): the frozen
    network whose masked softmax [B, 4] makes up the rest of each policy target (module docstring);
    the accuracy stays measured on the teacher's moves."""
    mix = settings.teacher_policy_weight
    if mix < 1 and reference is None:
        raise ValueError(f"imitation: teacher_policy_weight {mix} < 1 needs the reference network")
    rng = step_rng(seed, state.step)
    soft = all(name in buffer.columns for name in SEARCH_COLUMNS)
    valued = settings.teacher_value_weight > 0 and all(name in buffer.columns for name in VALUE_COLUMNS)
    wanted = COLUMNS + (SEARCH_COLUMNS if soft else ()) + (VALUE_COLUMNS if valued else ())
    batch = buffer.sample(settings.batch_size, rng, tuple(dict.fromkeys(wanted)))
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
    put = placement.put
    policy_target = teacher_target = put(torch.from_numpy(target[:, 0]))
    allowed = put(torch.from_numpy(target[:, 1] > 0.5))
    inputs = put(torch.from_numpy(planes))
    weights = put(torch.from_numpy(batch.weights[part]))
    value_target = cols["value"].astype(np.float32)
    if valued:  # the teacher's value of the position joins the game's outcome
        value_target = expert.value_target(value_target, cols["search_value"].astype(np.float32),
                                           cols["searched"].astype(bool), settings.teacher_value_weight)
    outcome = put(torch.from_numpy(value_target[part]))
    net, opt = state.model, state.optimizer
    net.train()
    with placement.autocasting():
        logits, value = (model or net)(inputs)
    logits, value = logits.float(), value.float()  # no-ops in fp32; under autocast the losses stay fp32
    if mix < 1:
        with torch.no_grad(), placement.autocasting():
            held = torch.softmax(policy.masked_logits(reference(inputs)[0].float(), allowed), dim=1)
        policy_target = mix * teacher_target + (1.0 - mix) * held
    logits = policy.masked_logits(logits, allowed)
    ce = -(policy_target * torch.log_softmax(logits, dim=1)).sum(1)
    err = value[:, 0] - outcome
    policy_loss = group.mean(weights * ce, n)
    value_loss = group.mean(weights * err.square(), n)
    loss = policy_loss + value_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    with torch.no_grad():  # one copy back to the host: the errors (priorities) and the metrics
        correct = (logits.argmax(1) == teacher_target.argmax(1)).float()
        host = torch.cat([err.detach(), torch.stack([policy_loss.detach(), value_loss.detach(), correct.sum()])])
        host = host.cpu().numpy()
    errors, (policy_value, value_value, correct_sum) = host[:-3], host[-3:].astype(np.float64)
    if not group.distributed:
        buffer.update_priorities(batch.indices, errors)
        return {Metric.POLICY_LOSS: float(policy_value), Metric.VALUE_LOSS: float(value_value),
                Metric.ACCURACY: float(correct_sum / n)}
    buffer.update_priorities(batch.indices, group.gather_rows(errors, n))
    # each rank's loss is its share of the global mean: their sum is the global batch's
    totals = group.all_sum(np.array([policy_value, value_value, correct_sum]))
    world = group.world
    return {Metric.POLICY_LOSS: float(totals[0] / world), Metric.VALUE_LOSS: float(totals[1] / world),
            Metric.ACCURACY: float(totals[2] / n)}
