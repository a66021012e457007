"""Rollout forwards (`learning.inference`): the onnxruntime copy a rollout plays by default
computes what the torch network computes, and the log-probabilities a rollout records are
the network's own (what PPO's ratio starts from)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ouroboros.contract.game import GameSpec
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.learning import inference, networks
from ouroboros.trainer.learning.phases import policy, selfplay

pytestmark = pytest.mark.unit

TINY = networks.NetworkConfig(blocks=2, channels=8, attention_layers=1, heads=2)


def _rollout(net, forward):
    game = GameSpec()
    learner = [selfplay.Seat.LEARNER] * game.snakes
    return selfplay.play(game_config(game), games=8, parallel=8, max_turns=40, seed=3,
                         assign=lambda i, rng: learner, rng=np.random.default_rng(3), learner=net,
                         forward=forward)


def test_onnxruntime_forward_equals_torch_forward():
    net = networks.build_network(TINY, seed=1).eval()
    planes = _rollout(net, inference.InferenceBackend.TORCH).columns["planes"].astype(np.float32)
    frozen = inference.for_rollout(net, 11, 11, inference.InferenceBackend.ONNXRUNTIME)
    assert isinstance(frozen, inference.OnnxRuntimeForward)
    with torch.no_grad():
        want = net(torch.from_numpy(planes))
    got = frozen(torch.from_numpy(planes))
    for w, g in zip(want, got, strict=True):
        assert g.shape == w.shape
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_rollout_logp_is_the_networks_own():
    net = networks.build_network(TINY, seed=2)
    rollout = _rollout(net, inference.InferenceBackend.ONNXRUNTIME)
    cols = rollout.columns
    assert rollout.rows > 100
    with torch.no_grad():
        logits, value = net.eval()(torch.from_numpy(cols["planes"].astype(np.float32)))
        logp = torch.log_softmax(policy.masked_logits(logits, torch.from_numpy(cols["mask"].astype(bool))), 1)
    moves = torch.from_numpy(cols["move"].astype(np.int64))
    np.testing.assert_allclose(cols["logp"], logp.gather(1, moves[:, None])[:, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(cols["v_old"], value[:, 0].numpy(), atol=1e-4)


def test_torch_backend_plays_the_module_itself():
    net = networks.build_network(TINY, seed=0)
    assert inference.for_rollout(net, 11, 11, "torch") is net
    with pytest.raises(ValueError, match="'tpu' is not a valid InferenceBackend"):
        inference.for_rollout(net, 11, 11, "tpu")
