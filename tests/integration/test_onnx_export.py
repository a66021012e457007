"""ONNX export with the real onnxruntime: contract, checksums, parity on 10,000 real
positions, the readiness report the promotion gate reads, the ONNX player, `ouro export`.

Each network is first fitted for a few dozen steps to the heuristic teacher's
moves: a trained network's logits have the structure (clear favourites,
strongly negative fatal moves) that quantisation must preserve, which a
randomly initialised one lacks. fp32 must pick the torch model's move on every
one of 10,000 positions; int8 on >= 99% of the decisive ones (torch's top two
logits >= 0.05 apart: see `readiness`), the strict figure is printed beside it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from ouroboros.contract.promotion import GateVerdict, ReadinessSpec
from ouroboros.trainer.agents import neural
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.commands import export as export_command
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import gate, readiness, stats
from ouroboros.trainer.learning import networks, onnx_export, positions
from ouroboros.trainer.learning.networks import Architecture, NetworkConfig, Normalisation
from ouroboros.trainer.observation import encoding

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

GAME = GameConfig(11, 11, 4)
CONFIGS = {
    "simple": NetworkConfig(architecture=Architecture.CNN_SIMPLE),
    "attention": NetworkConfig(),  # the default
    "attention-group": NetworkConfig(blocks=2, channels=16, heads=2, attention_layers=2,
                                     normalisation=Normalisation.GROUP),
}


@pytest.fixture(scope="module")
def parity_planes() -> np.ndarray:
    """10,000 real positions, from games the calibration and training never saw."""
    return readiness.real_positions(GAME, 10_000, seed=101)


@pytest.fixture(scope="module")
def teacher() -> positions.Positions:
    return positions.play_positions(GAME, 2000, seed=102, players=[Heuristic()])


def fitted(config: NetworkConfig, data: positions.Positions, steps: int = 40) -> networks.PolicyValueNet:
    """A network fitted briefly to the teacher's moves (imitation, cross-entropy)."""
    net = networks.build_network(config, seed=0)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    net.train()
    for _ in range(steps):
        i = rng.integers(len(data), size=64)
        logits, _ = net(torch.from_numpy(data.planes[i]))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(data.moves[i].astype(np.int64)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return net.eval()


@pytest.fixture(scope="module")
def exports(tmp_path_factory, teacher):
    """name -> (net, ExportResult, folder), each architecture fitted and exported once
    (int8 included) on first use."""
    cache: dict[str, tuple] = {}
    calibration = readiness.real_positions(GAME, 1500, seed=103)

    def get(name: str) -> tuple:
        if name not in cache:
            net = fitted(CONFIGS[name], teacher)
            folder = tmp_path_factory.mktemp(name)
            result = onnx_export.export(net, folder / "model.onnx", int8=True,
                                        calibration=calibration, metadata={"run": "test"})
            cache[name] = (net, result, folder)
        return cache[name]

    return get


@pytest.fixture(params=list(CONFIGS))
def exported(request, exports):
    """(net, ExportResult, folder) for each architecture."""
    return exports(request.param)


def test_files_carry_the_contract_and_their_checksums(exported):
    net, result, folder = exported
    assert [f.key for f in result.files()] == ["model.onnx", "model.opt.onnx", "model.int8.onnx"]
    for info in result.files():
        data = (folder / info.key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info.sha256
        sidecar = json.loads((folder / f"{info.key}.meta.json").read_text())
        assert sidecar["sha256"] == info.sha256 and sidecar["metadata"]["onnx"]["run"] == "test"
        spec = onnx_export.read_contract(folder / info.key)
        assert spec["input"]["name"] == "board" and spec["input"]["dtype"] == "float32"
        assert spec["input"]["shape"] == ["N", encoding.N_CHANNELS, 11, 11]
        assert [(c["name"], c["meaning"]) for c in spec["input"]["channels"]] == list(encoding.CHANNELS)
        assert [o["name"] for o in spec["outputs"]] == ["policy", "value"]
        assert spec["network"] == net.config.model_dump(mode="json")
        assert spec["precision"] == ("int8" if "int8" in info.key else "fp32")

        session = neural.inference_session(folder / info.key)
        (board,) = session.get_inputs()
        assert board.name == "board" and board.type == "tensor(float)"
        assert board.shape == ["N", encoding.N_CHANNELS, 11, 11]  # dynamic batch
        assert [o.name for o in session.get_outputs()] == ["policy", "value"]
        meta = session.get_modelmeta().custom_metadata_map
        assert meta["architecture"] == net.config.name and json.loads(meta["contract"]) == spec
        policy, value = session.run(None, {"board": np.zeros((3, encoding.N_CHANNELS, 11, 11), np.float32)})
        assert policy.shape == (3, 4) and value.shape == (3, 1)


def test_parity_on_ten_thousand_real_positions(exported, parity_planes):
    net, result, folder = exported
    reference = readiness.reference_outputs(net, parity_planes)
    for info in result.files():
        int8 = "int8" in info.key
        p = readiness.parity(net, folder / info.key, parity_planes, 0.99 if int8 else 1.0, reference,
                             tie_tolerance=0.05 if int8 else 0.0)
        print(f"{net.config.name} {info.key}: agreement {p.agreement:.4%} on {p.positions:,} "
              f"({p.decisive_agreement:.4%} of {p.decisive_positions:,} decisive), max |diff| "
              f"policy {p.max_abs_diff_policy:.2e} value {p.max_abs_diff_value:.2e}")
        assert p.positions == 10_000
        assert p.ok, f"{info.key}: {p}"
        if not int8:
            assert p.disagreements == 0 and p.max_abs_diff_policy < 1e-4 and p.max_abs_diff_value < 1e-4


def test_readiness_report_feeds_the_promotion_gate(exports, parity_planes):
    net, result, folder = exports("attention")  # the default architecture
    # limits a loaded test machine always meets: what is checked is that a report within its
    # limits is promotable and feeds the gate (benchmarks/onnx.py measures the latency itself)
    roomy = ReadinessSpec(max_p99_latency_ms=1000, max_peak_memory_mb=200)
    quick = readiness.ReadinessConfig(latency_calls=300, latency_rounds=3, warmup_calls=30, thresholds=roomy)
    ready = readiness.check(folder / result.optimised.key, net, parity_planes, quick)
    print(ready.summary())
    assert isinstance(ready.report, gate.ReadinessReport) and ready.report.parity_ok
    assert 0 < ready.report.p50_latency_ms <= ready.report.p99_latency_ms
    assert 0 < ready.report.peak_memory_mb < 200 and ready.precision == "fp32"
    assert ready.promotable, ready.failures
    decision = gate.decide(gate.TournamentResult(stats.WDL(70, 0, 30)),
                           gate.GateConfig(method="winRate", min_games=100, max_games=100, readiness=roomy),
                           ready.report)
    assert decision.verdict is GateVerdict.PROMOTE

    strict = readiness.ReadinessConfig(
        latency_calls=50, latency_rounds=1, warmup_calls=5, min_agreement_fp32=1.0,
        thresholds=ReadinessSpec(max_p99_latency_ms=0.001, max_peak_memory_mb=0.01))
    slow = readiness.check(folder / result.optimised.key, None, parity_planes[:100], strict)
    assert not slow.promotable and slow.parity is None and slow.report.parity_ok is None
    assert any("p99 latency" in f for f in slow.failures)
    assert any("peak memory" in f for f in slow.failures)
    assert "NOT promotable" in slow.summary()
    decision = gate.decide(gate.TournamentResult(stats.WDL(70, 0, 30)),
                           gate.GateConfig(method="winRate", min_games=100, max_games=100,
                                           readiness=strict.thresholds), slow.report)
    assert decision.verdict is GateVerdict.REJECT


def test_a_model_that_disagrees_is_not_promotable(exports, parity_planes):
    net, result, folder = exports("simple")
    other = networks.build_network(net.config, seed=99).eval()  # not the network exported
    quick = readiness.ReadinessConfig(latency_calls=50, latency_rounds=1, warmup_calls=5)
    verdict = readiness.check(folder / result.optimised.key, other, parity_planes[:2000], quick)
    assert verdict.report.parity_ok is False and not verdict.promotable
    assert any("picks the torch model's move on" in f for f in verdict.failures)


def test_a_model_whose_leaf_net_does_not_load_is_not_promotable(exports, parity_planes, tmp_path):
    """A leaf net in the metadata (`leaf_net`) that the served search could not load, or one made for
    another board, fails readiness, naming it; the same model without it passes the same check."""
    import onnx

    from ouroboros.trainer.agents import leafnet

    _, result, folder = exports("simple")
    plain = (folder / result.fp32.key).read_bytes()
    model = onnx.load_from_string(plain)
    model.metadata_props.add(key=leafnet.METADATA_KEY, value='{"format": 1, "arrays": {}}')
    (tmp_path / "broken.onnx").write_bytes(model.SerializeToString())
    (tmp_path / "plain.onnx").write_bytes(plain)
    roomy = readiness.ReadinessConfig(latency_calls=50, latency_rounds=1, warmup_calls=5,
                                      thresholds=ReadinessSpec(max_p99_latency_ms=1000, max_peak_memory_mb=500))
    broken = readiness.check(tmp_path / "broken.onnx", None, parity_planes[:100], roomy)
    assert not broken.promotable
    assert broken.failures == ["the leaf net in its metadata does not load: leaf net metadata: arrays.w1 is "
                               "missing or lacks shape and float32"]
    seven = leafnet.LeafNet(np.zeros((7 * 81, 2)), np.zeros(2), np.zeros((2, 2)), np.zeros(2), np.zeros(2),
                            np.zeros((5, 2)), np.array([100.0, 0.0]))  # a net for 7x7 in an 11x11 model
    model = onnx.load_from_string(plain)
    model.metadata_props.add(key=leafnet.METADATA_KEY, value=seven.to_metadata())
    (tmp_path / "other-board.onnx").write_bytes(model.SerializeToString())
    other = readiness.check(tmp_path / "other-board.onnx", None, parity_planes[:100], roomy)
    assert other.failures == ["the leaf net in its metadata does not load: leaf net: made for a board of 81 "
                              "padded cells, this one has 169"]
    assert readiness.check(tmp_path / "plain.onnx", None, parity_planes[:100], roomy).promotable


def test_onnx_player_plays_like_the_torch_player(exported):
    net, result, folder = exported
    onnx_player = neural.OnnxPlayer(folder / result.optimised.key)
    torch_player = neural.TorchPlayer(net)
    state = maps.new_games(GAME, np.arange(32))
    rng = np.random.default_rng(0)
    for _ in range(12):
        moves = onnx_player.act_all(GAME, state, rng)
        assert np.array_equal(moves, torch_player.act_all(GAME, state, rng))
        alive = state.alive[:, 1]  # an eliminated snake's "move" is never played
        assert np.array_equal(onnx_player.act(GAME, state, 1, rng)[alive], moves[alive, 1])
        rules.advance(GAME, state, moves)
    # a smaller game is padded into the model's 11x11 input and plays as the bare board
    small = GameConfig(7, 7, 2)
    state = maps.new_games(small, np.arange(16))
    assert np.array_equal(onnx_player.act_all(small, state, rng), torch_player.act_all(small, state, rng))
    with pytest.raises(ValueError, match="up to 11x11"):
        onnx_player.act_all(GameConfig(13, 13, 2), maps.new_games(GameConfig(13, 13, 2), [0]), rng)


def test_ouro_export_command(tmp_path, capsys):
    out = tmp_path / "net.onnx"
    rc = export_command.main(["--arch", "cnn_simple", "--random-init", "--blocks", "3", "--int8",
                              "--calibration-positions", "300", "--out", str(out), "--check",
                              "--positions", "2000"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "cnn_simple-3x32" in printed and "sha256" in printed and "promotable" in printed
    assert all((tmp_path / n).exists() for n in ("net.onnx", "net.opt.onnx", "net.int8.onnx"))
    assert onnx_export.read_contract(out)["architecture"] == "cnn_simple-3x32"

    net = networks.build_network(NetworkConfig(architecture="cnn_simple", blocks=2), seed=4)
    torch.save(networks.checkpoint(net), tmp_path / "ckpt.pt")
    assert export_command.main(["--checkpoint", str(tmp_path / "ckpt.pt"), "--out", str(tmp_path / "c.onnx")]) == 0
    assert onnx_export.read_contract(tmp_path / "c.onnx")["architecture"] == "cnn_simple-2x32"
    assert export_command.main(["--arch", "cnn_simple", "--out", str(tmp_path / "x.onnx")]) == 2
    assert export_command.main(["--arch", "cnn_simple", "--random-init", "--out", str(tmp_path / "x.bin")]) == 2
