"""PPO for simultaneous-move self-play: GAE advantages, clipped surrogate, entropy bonus.

Why PPO (Schulman et al., 2017) and not V-trace: our rollouts are played by the
very network that is then updated for a few epochs, so the data are on-policy
up to the clip, and PPO needs no importance-weight truncation machinery. Each
snake is an independent agent with the shared network (every seat is
egocentric), which is how a PPO Battlesnake briefly topped the global arena;
the entropy bonus is not optional: a PPO snake without it collapsed into
circling. Advantages use GAE (λ = 0.95) over each snake's own trajectory.

**Expert iteration** (:mod:`.expert`): rows the neural search decided carry
its visit distribution ``pi`` and root value. On those rows the policy loss is
AlphaZero's cross-entropy ``-sum_a pi(a) log p(a)`` instead of the clipped
surrogate (their move was the search's, not a sample of the policy, so the
PPO ratio means nothing there), and the value target mixes the search's value
into the return (``value_weight``). Rows without targets (and shards written
before expert iteration existed) train by PPO exactly as before.

Shapes: rows N in time order; minibatches of B rows.
"""

from __future__ import annotations

import numpy as np
import torch

from ouroboros.contract.vocabulary import Metric
from ouroboros.trainer.learning import device, distributed
from ouroboros.trainer.learning.checkpoint import TrainState, step_rng
from ouroboros.trainer.learning.phases import expert, policy
from ouroboros.trainer.learning.phases.config import PhaseSettings


def gae(reward: np.ndarray, done: np.ndarray, value: np.ndarray, traj: np.ndarray,
        gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(advantages [N], returns [N]) from rows in time order: reward, done, value [N] and
    trajectory ids traj [N]. A trajectory's row after the last one is worth 0 (terminal);
    a trajectory cut without ``done`` bootstraps from nothing either (rollouts play whole games)."""
    n = len(reward)
    adv = np.zeros(n, np.float32)
    _, local = np.unique(traj, return_inverse=True)
    next_value = np.zeros(local.max(initial=-1) + 1, np.float64)
    next_adv = np.zeros_like(next_value)
    for i in range(n - 1, -1, -1):
        t = local[i]
        keep = 0.0 if done[i] else 1.0
        delta = reward[i] + gamma * keep * next_value[t] - value[i]
        a = delta + gamma * lam * keep * next_adv[t]
        next_value[t], next_adv[t] = value[i], a
        adv[i] = a
    return adv, (adv + value).astype(np.float32)


class RolloutData:
    """One iteration's rows as tensors, for :func:`step`; minibatches drawn by step number."""

    def __init__(self, columns: dict[str, np.ndarray], settings: PhaseSettings) -> None:
        adv, ret = gae(columns["reward"], columns["done"], columns["v_old"], columns["traj"],
                       settings.gamma, settings.lam)
        self.planes = torch.from_numpy(columns["planes"])
        self.move = torch.from_numpy(columns["move"].astype(np.int64))
        self.logp = torch.from_numpy(columns["logp"])
        self.mask = torch.from_numpy(columns["mask"].astype(bool))
        n = len(adv)
        searched = np.asarray(columns.get("searched", np.zeros(n, bool)), bool)
        self.searched = torch.from_numpy(searched)
        self.target = torch.from_numpy(np.asarray(columns.get("search_policy", np.zeros((n, 4), np.float32)),
                                                  np.float32))
        spec = settings.expert_iteration
        if searched.any():
            weight = spec.value_weight if spec is not None else expert.ExpertIterationSpec().value_weight
            ret = expert.value_target(ret, np.asarray(columns["search_value"], np.float32), searched, weight)
        self.adv = torch.from_numpy(adv)
        self.ret = torch.from_numpy(ret)
        self.rows = n


def steps_per_iteration(rows: int, settings: PhaseSettings) -> int:
    """Optimiser steps for ``epochs`` passes over ``rows`` new rows (at least 1)."""
    return max(1, round(settings.epochs * rows / settings.batch_size))


def step(state: TrainState, data: RolloutData, settings: PhaseSettings, seed: int,
         group: distributed.Group = distributed.SINGLE, model: torch.nn.Module | None = None,
         placement: device.Placement = device.CPU) -> dict[str, float]:
    """One PPO minibatch step (the ``step_fn`` of a ResumableLoop); the minibatch comes
    from :func:`step_rng` so a resumed phase draws the same rows.

    In a learner ``group`` of several ranks the minibatch is global: every rank draws the same
    rows and normalises their advantages together, then runs ``model`` (the DDP wrapper of
    ``state.model``) on its own slice of them (``learning.distributed``).

    ``placement`` (``learning.device``): the rows are drawn from ``data`` on the CPU and moved
    to the network's device (pinned, non-blocking on CUDA; planes as float16, widened there);
    the forward runs under its autocast (bf16, or fp32), the losses and the update in fp32.
    The step's metrics come back to the host in one copy."""
    rng = step_rng(seed, state.step)
    idx = torch.from_numpy(rng.choice(data.rows, size=min(settings.batch_size, data.rows), replace=False))
    n = len(idx)
    searched_all = data.searched[idx]
    sampled_all = ~searched_all
    adv = data.adv[idx]
    if int(sampled_all.sum()) > 1:  # normalise over the rows PPO trains on, all of the global batch
        adv = (adv - adv[sampled_all].mean()) / (adv[sampled_all].std() + 1e-8)
    part = group.rows(n)
    idx, adv, searched = idx[part], adv[part], searched_all[part]
    put = placement.put
    planes = put(data.planes[idx]).float()
    move, logp_old, mask, target, ret = (put(t[idx]) for t in (data.move, data.logp, data.mask, data.target, data.ret))
    adv, searched = put(adv), put(searched)
    net, opt = state.model, state.optimizer
    net.train()
    with placement.autocasting():
        logits, value = (model or net)(planes)
    logits, value = logits.float(), value.float()  # no-ops in fp32; under autocast the losses stay fp32
    logits = policy.masked_logits(logits, mask)
    logp_all = torch.log_softmax(logits, dim=1)
    logp = logp_all.gather(1, move[:, None])[:, 0]
    ratio = torch.exp(logp - logp_old)
    clipped = torch.clamp(ratio, 1 - settings.clip, 1 + settings.clip)
    surrogate = -torch.min(ratio * adv, clipped * adv)
    # rows a search labelled (expert iteration) learn its visit distribution instead of the PPO surrogate
    cross_entropy = -(target * torch.where(target > 0, logp_all, 0.0)).sum(1)
    policy_loss = group.mean(torch.where(searched, cross_entropy, surrogate), n)
    probs = logp_all.exp()
    entropy = group.mean(-(probs * torch.where(probs > 0, logp_all, torch.zeros_like(logp_all))).sum(1), n)
    value_loss = group.mean((value[:, 0] - ret).square(), n)
    loss = policy_loss + settings.value_coef * value_loss - settings.entropy * entropy
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        # KL and clip fraction over the rows PPO trained on (all rows when a search labelled every one)
        on = (~searched if bool(sampled_all.any()) else torch.ones_like(searched)).float()
        values = torch.stack([
            policy_loss.detach(), value_loss.detach(), entropy.detach(),  # this rank's share of each global mean
            ((logp_old - logp) * on).sum(), (((ratio - 1).abs() > settings.clip) * on).sum(),
            on.sum(), (cross_entropy * searched).sum(), searched.sum().float()]).double().cpu().numpy()
    if group.distributed:
        values = group.all_sum(values)
        values[:3] /= group.world  # the ranks' shares of a global mean sum to world x the mean
    ppo_rows = max(values[5], 1.0)
    metrics = {Metric.POLICY_LOSS: float(values[0]), Metric.VALUE_LOSS: float(values[1]),
               Metric.ENTROPY: float(values[2]), Metric.APPROX_KL: float(values[3] / ppo_rows),
               Metric.CLIP_FRACTION: float(values[4] / ppo_rows)}
    if values[7] > 0:
        metrics[Metric.SEARCH_POLICY_LOSS] = float(values[6] / values[7])
    return metrics
