"""Policy-value networks: shapes, parameter counts, determinism, board-size and padding
independence, the move readout's geometry, checkpoints, and the neural players."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ouroboros.trainer.agents import neural
from ouroboros.trainer.engine import maps
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.learning import blocks, networks, positions
from ouroboros.trainer.learning.networks import Architecture, NetworkConfig, Normalisation
from ouroboros.trainer.observation import encoding, safety

pytestmark = pytest.mark.unit

ARCHS = list(Architecture)


@pytest.fixture(scope="module")
def real() -> positions.Positions:
    return positions.play_positions(GameConfig(11, 11, 4), 256, seed=7)


def small(arch: Architecture, **kw) -> NetworkConfig:
    return NetworkConfig(architecture=arch, blocks=2, channels=16, **kw)


@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_value_range(arch, real):
    net = networks.build_network(small(arch), seed=0).eval()
    policy, value = net(torch.from_numpy(real.planes))
    assert policy.shape == (256, 4) and value.shape == (256, 1)
    assert policy.dtype == value.dtype == torch.float32
    assert torch.all(value.abs() <= 1)


def test_parameter_count_follows_the_architecture():
    """6 conv layers of 32 with batch norm and the two heads, counted by hand."""
    c, cin = 32, encoding.N_CHANNELS
    conv = lambda a, b: a * b * 9 + 2 * b  # noqa: E731  (no conv bias: batch norm's shift replaces it)
    heads = (c + 1) + (2 * c * c + c) + (c * 4 + 4) + (2 * c * 64 + 64) + (64 + 1)
    simple = conv(cin, c) + 5 * conv(c, c) + heads
    net = networks.build_network(NetworkConfig(architecture=Architecture.CNN_SIMPLE))
    assert networks.count_parameters(net) == simple == 58_406
    attention = 2 * c + 3 * c * c + 3 * c + c * c + c + 2 * c + (2 * c * c + 2 * c) + (2 * c * c + c)
    residual = conv(cin, c) + 6 * 2 * conv(c, c) + attention + heads
    assert networks.count_parameters(networks.build_network(NetworkConfig())) == residual == 131_910


def test_parameter_count_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="ouroboros.trainer.learning.networks"):
        networks.build_network(small(Architecture.CNN_SIMPLE))
    assert "cnn_simple-2x16" in caplog.text and "parameters" in caplog.text


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_builds_are_reproducible_and_private(arch, real):
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = networks.build_network(small(arch), seed=5).eval()
    assert torch.equal(torch.rand(1), expected_next)  # the caller's RNG was not consumed
    b = networks.build_network(small(arch), seed=5).eval()
    c = networks.build_network(small(arch), seed=6).eval()
    x = torch.from_numpy(real.planes)
    with torch.no_grad():
        assert torch.equal(a(x)[0], b(x)[0]) and torch.equal(a(x)[0], a(x)[0])
        assert not torch.equal(a(x)[0], c(x)[0])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("norm", list(Normalisation))
def test_padding_does_not_change_the_answer(arch, norm):
    """A 7x7 board padded into 11x11 (board mask 0 outside) evaluates like the bare board."""
    net = networks.build_network(small(arch, normalisation=norm), seed=1).eval()
    config = GameConfig(7, 7, 2)
    state = maps.new_games(config, [1, 2, 3])
    bare = torch.from_numpy(encoding.encode(config, state, 0))
    padded = torch.from_numpy(encoding.encode(config, state, 0, size=(11, 11)))
    with torch.no_grad():
        for got, want in zip(net(padded), net(bare), strict=True):
            assert torch.allclose(got, want, atol=1e-5)


def test_one_network_plays_every_board_size():
    net = networks.build_network(small(Architecture.CNN_ATTENTION_RESIDUAL), seed=0).eval()
    for w, h in ((7, 7), (11, 11), (19, 19), (9, 13)):
        config = GameConfig(w, h, 2)
        planes = encoding.encode(config, maps.new_games(config, [0]), 0)
        policy, value = net(torch.from_numpy(planes))
        assert policy.shape == (1, 4) and value.shape == (1, 1)


@pytest.mark.parametrize("sym", list(encoding.Symmetry))
def test_each_logit_reads_the_cell_its_move_enters(sym):
    """The policy head's per-move readout, checked against the encoding's move geometry:
    in any orientation of the board, move m reads the cell one step from the head in
    direction m, so relabelling moves under a symmetry relabels the readout."""
    head_plane = np.zeros((1, 1, 5, 5), np.float32)
    head_plane[0, 0, 2, 1] = 1.0
    features = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
    head = blocks.PolicyHead(1, 0.0)

    def readout(h: np.ndarray, f: np.ndarray) -> np.ndarray:
        targets = torch.nn.functional.conv2d(torch.from_numpy(h), head.neighbours, padding=1)
        return blocks.at_cells(torch.from_numpy(f), targets)[0, :, 0].numpy()

    plain = readout(head_plane, features)
    assert plain.tolist() == [features[0, 0, 1, 1], features[0, 0, 3, 1],
                              features[0, 0, 2, 0], features[0, 0, 2, 2]]  # up, down, left, right
    moved = readout(encoding.transform_planes(head_plane, sym), encoding.transform_planes(features, sym))
    assert np.array_equal(moved, encoding.transform_policy(plain, sym))


def test_config_is_validated():
    with pytest.raises(ValueError, match="multiple of heads"):
        NetworkConfig(channels=30, heads=4)
    with pytest.raises(ValueError, match="exceeds blocks"):
        NetworkConfig(blocks=2, attention_layers=3)
    with pytest.raises(ValueError, match="extra"):
        NetworkConfig(layers=3)
    assert NetworkConfig(architecture="cnn_simple", channels=30).name == "cnn_simple-6x30"


def test_attention_layers_are_spread_with_the_last_block_always_followed():
    net = networks.build_network(NetworkConfig(blocks=6, attention_layers=2))
    kinds = [type(m).__name__ for m in net.trunk]
    assert kinds == ["ConvBlock", "ResidualBlock", "ResidualBlock", "ResidualBlock",
                     "AttentionBlock", "ResidualBlock", "ResidualBlock", "ResidualBlock",
                     "AttentionBlock"]


def test_dropout_only_in_training(real):
    net = networks.build_network(small(Architecture.CNN_ATTENTION_RESIDUAL, dropout=0.5), seed=0)
    x = torch.from_numpy(real.planes[:32])
    torch.manual_seed(0)
    assert not torch.equal(net.train()(x)[0], net(x)[0])
    with torch.no_grad():
        assert torch.equal(net.eval()(x)[0], net(x)[0])


def test_checkpoint_round_trip(tmp_path, real):
    net = networks.build_network(small(Architecture.CNN_ATTENTION_RESIDUAL), seed=3).eval()
    torch.save(networks.checkpoint(net, step=10), tmp_path / "a.pt")
    loaded, config = networks.load_checkpoint(tmp_path / "a.pt")
    assert config == net.config and not loaded.training
    x = torch.from_numpy(real.planes[:16])
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], net(x)[0])
    # the training loop's Checkpointer payload keeps the network in its phase config
    torch.save({"format": 1, "model": net.state_dict(),
                "config": {"lr": 0.1, "network": net.config.model_dump(mode="json")}}, tmp_path / "b.pt")
    assert networks.load_checkpoint(tmp_path / "b.pt")[1] == net.config
    torch.save({"model": net.state_dict()}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="does not say which network"):
        networks.load_checkpoint(tmp_path / "c.pt")
    assert networks.load_checkpoint(tmp_path / "c.pt", config=net.config)[1] == net.config
    torch.save([1, 2], tmp_path / "d.pt")
    with pytest.raises(ValueError, match="not a network checkpoint"):
        networks.load_checkpoint(tmp_path / "d.pt")


# -- players ------------------------------------------------------------------------------


def test_choose_prefers_safe_moves_and_samples_with_temperature():
    rng = np.random.default_rng(0)
    logits = np.array([[5.0, 1.0, 0.0, 0.0], [5.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]])
    allowed = np.array([[False, True, True, True], [False] * 4, [True] * 4])
    assert neural.choose(logits, allowed, 0.0, rng).tolist() == [1, 0, 3]
    draws = neural.choose(np.repeat(logits[2:], 4000, 0), np.ones((4000, 4), bool), 1.0, rng)
    share = np.bincount(draws, minlength=4) / 4000
    expected = np.exp([0, 0, 0, 3.0]) / np.exp([0, 0, 0, 3.0]).sum()
    assert np.allclose(share, expected, atol=0.03)
    unsafe = neural.choose(np.zeros((500, 4)), np.tile(allowed[:1], (500, 1)), 5.0, rng)
    assert 0 not in unsafe


def test_torch_player_plays_safe_moves_for_every_seat():
    config = GameConfig(11, 11, 4)
    state = maps.new_games(config, np.arange(16))
    net = networks.build_network(small(Architecture.CNN_SIMPLE), seed=0)
    net.train()
    player = neural.TorchPlayer(net)
    rng = np.random.default_rng(0)
    moves = player.act_all(config, state, rng)
    assert moves.shape == (16, 4) and moves.dtype == np.int8
    safe = safety.safe_moves(config, state)
    assert np.take_along_axis(safe, moves[..., None].astype(np.int64), 2).all()
    assert np.array_equal(player.act(config, state, 2, rng), moves[:, 2])
    assert net.training  # restored after inference
