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


def step(state: TrainState, data: RolloutData, settings: PhaseSettings, seed: int) -> dict[str, float]:
    """One PPO minibatch step (the ``step_fn`` of a ResumableLoop); the minibatch comes
    from :func:`step_rng` so a resumed phase draws the same rows."""
    rng = step_rng(seed, state.step)
    idx = torch.from_numpy(rng.choice(data.rows, size=min(settings.batch_size, data.rows), replace=False))
    net, opt = state.model, state.optimizer
    net.train()
    logits, value = net(data.planes[idx].float())
    logits = policy.masked_logits(logits, data.mask[idx])
    logp_all = torch.log_softmax(logits, dim=1)
    logp = logp_all.gather(1, data.move[idx, None])[:, 0]
    searched = data.searched[idx]
    sampled = ~searched
    adv = data.adv[idx]
    if int(sampled.sum()) > 1:  # normalise over the rows PPO trains on
        adv = (adv - adv[sampled].mean()) / (adv[sampled].std() + 1e-8)
    ratio = torch.exp(logp - data.logp[idx])
    clipped = torch.clamp(ratio, 1 - settings.clip, 1 + settings.clip)
    surrogate = -torch.min(ratio * adv, clipped * adv)
    cross_entropy = -(data.target[idx] * torch.where(data.target[idx] > 0, logp_all, 0.0)).sum(1)
    policy_loss = torch.where(searched, cross_entropy, surrogate).mean()
    probs = logp_all.exp()
    entropy = -(probs * torch.where(probs > 0, logp_all, torch.zeros_like(logp_all))).sum(1).mean()
    value_loss = torch.nn.functional.mse_loss(value[:, 0], data.ret[idx])
    loss = policy_loss + settings.value_coef * value_loss - settings.entropy * entropy
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        on = sampled if sampled.any() else torch.ones_like(sampled)
        kl = (data.logp[idx] - logp)[on].mean()
        clip_frac = ((ratio - 1).abs() > settings.clip)[on].float().mean()
        metrics = {Metric.POLICY_LOSS: policy_loss.item(), Metric.VALUE_LOSS: value_loss.item(),
                   Metric.ENTROPY: entropy.item(), Metric.APPROX_KL: float(kl), Metric.CLIP_FRACTION: float(clip_frac)}
        if searched.any():
            metrics[Metric.SEARCH_POLICY_LOSS] = float(cross_entropy[searched].mean())
    return metrics
