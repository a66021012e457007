"""Starting a run from an existing model (`learning/initial.py`): ONNX, checkpoints, registry versions.

The round trip torch -> ONNX (the real exporter of `onnx_export.to_onnx`) ->
torch must give the same outputs for every architecture and normalisation,
with BatchNorm statistics far from their defaults so that the exporter's
Conv+BatchNorm fusion matters. A file of another architecture, board, or
precision is refused naming what differs, and a phase starts from the model.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from leafnets import random_net

from ouroboros.contract.game import GameSpec
from ouroboros.contract.run import InitialModelSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.artifacts import registry
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.commands import train
from ouroboros.trainer.learning import initial, networks, onnx_export
from ouroboros.trainer.learning.blocks import Normalisation
from ouroboros.trainer.learning.checkpoint import Checkpointer
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, runner

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("one_torch_thread")]

GAME = GameSpec(width=7, height=7, max_turns=30)
SIMPLE = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=2, channels=8)
ARCHITECTURES = {
    "simple-batchnorm": SIMPLE,
    "attention-residual": networks.NetworkConfig(blocks=2, channels=8, heads=2, attention_layers=1),
    "simple-groupnorm": SIMPLE.model_copy(update={"normalisation": Normalisation.GROUP, "groups": 2}),
    "simple-no-norm": SIMPLE.model_copy(update={"normalisation": Normalisation.NONE}),
}


def trained_looking(config: networks.NetworkConfig, seed: int = 1) -> networks.PolicyValueNet:
    """A network whose normalisation statistics are far from a fresh one's (as after training)."""
    net = networks.build_network(config, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 2 - 1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
    return net.eval()


def outputs(net: networks.PolicyValueNet, planes: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    net.eval()
    with torch.no_grad():
        logits, value = net(planes)
    return logits.numpy(), value.numpy()


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_torch_onnx_torch_round_trip_gives_equal_outputs(name):
    config = ARCHITECTURES[name]
    net = trained_looking(config)
    back = initial.network_from_onnx(onnx_export.to_onnx(net, 7, 7), config, GAME)
    planes = torch.rand(16, config.in_channels, 7, 7)
    planes[:, 0] = 1.0  # the board plane
    for a, b in zip(outputs(net, planes), outputs(back, planes), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)
    assert isinstance(back, networks.PolicyValueNet) and back.config == config
    back.train()  # trainable: a step changes its outputs
    opt = torch.optim.SGD(back.parameters(), lr=0.1)
    loss = back(planes)[0].square().mean()
    loss.backward()
    opt.step()
    assert not np.allclose(outputs(back, planes)[0], outputs(net, planes)[0], atol=1e-4)


def test_a_mismatched_architecture_is_refused_naming_the_fields():
    data = onnx_export.to_onnx(trained_looking(SIMPLE), 7, 7)
    bigger = SIMPLE.model_copy(update={"blocks": 3, "channels": 16})
    with pytest.raises(initial.InitialModelError, match=r"blocks 2 \(the run's model: 3\), channels 8 "
                                                        r"\(the run's model: 16\)"):
        initial.network_from_onnx(data, bigger, GAME)


def test_a_mismatched_board_is_refused():
    data = onnx_export.to_onnx(trained_looking(SIMPLE), 11, 11)
    with pytest.raises(initial.InitialModelError, match="for a 11x11 board, the run plays 7x7"):
        initial.network_from_onnx(data, SIMPLE, GAME)


def test_optimised_quantised_and_foreign_files_are_refused():
    plain = onnx_export.to_onnx(trained_looking(SIMPLE), 7, 7)
    with pytest.raises(initial.InitialModelError, match="give the plain export"):
        initial.network_from_onnx(onnx_export.optimise(plain), SIMPLE, GAME)
    with pytest.raises(initial.InitialModelError, match="not an ONNX file"):
        initial.network_from_onnx(b"not a model", SIMPLE, GAME)
    import onnx

    proto = onnx.load_from_string(plain)
    del proto.metadata_props[:]
    with pytest.raises(initial.InitialModelError, match="not an Ouroboros model"):
        initial.network_from_onnx(proto.SerializeToString(), SIMPLE, GAME)


def test_a_file_whose_weights_do_not_reproduce_its_outputs_is_refused(monkeypatch):
    """The parity check is what stands behind "same outputs": a loader that lost one tensor fails it."""
    data = onnx_export.to_onnx(trained_looking(SIMPLE), 7, 7)
    real = initial._map_weights

    def lossy(*args):
        state = real(*args)
        state["value.mlp.3.bias"] = state["value.mlp.3.bias"] + 0.5
        return state

    monkeypatch.setattr(initial, "_map_weights", lossy)
    with pytest.raises(initial.InitialModelError, match="differs from the file on real positions"):
        initial.network_from_onnx(data, SIMPLE, GAME)


def put_weights(store: ArtifactStore, key: str, net: networks.PolicyValueNet) -> str:
    return runner.save_weights(store, key, net).key


def test_checkpoints_load_weights_and_training_checkpoints(tmp_path):
    store = ArtifactStore(str(tmp_path))
    net = trained_looking(SIMPLE)
    key = put_weights(store, "models/old.pt", net)
    loaded = initial.load(store, InitialModelSpec(checkpoint=key), SIMPLE, GAME)
    planes = torch.rand(4, SIMPLE.in_channels, 7, 7)
    np.testing.assert_array_equal(outputs(loaded, planes)[0], outputs(net, planes)[0])
    # a training checkpoint names no network (its config is the phase's): the run's is used
    ckpt = Checkpointer(store, "runs/x/checkpoints/self_play")
    ckpt.save(model=net, optimizer=torch.optim.Adam(net.parameters()), step=3,
              config=pc.phase_settings(PhaseName.SELF_PLAY, games=1))
    from_ckpt = initial.load(store, InitialModelSpec(checkpoint=ckpt.list()[-1][1]), SIMPLE, GAME)
    np.testing.assert_array_equal(outputs(from_ckpt, planes)[0], outputs(net, planes)[0])
    # by URL, with its sha256 checked
    url = (tmp_path / "models" / "old.pt").as_uri()
    digest = store.info(key).sha256
    assert initial.load(store, InitialModelSpec(checkpoint=url, sha256=digest), SIMPLE, GAME) is not None
    with pytest.raises(initial.InitialModelError, match="not the expected"):
        initial.load(store, InitialModelSpec(checkpoint=url, sha256="0" * 64), SIMPLE, GAME)


def test_a_mismatched_checkpoint_is_refused_naming_what_differs(tmp_path):
    store = ArtifactStore(str(tmp_path))
    key = put_weights(store, "models/big.pt", trained_looking(SIMPLE.model_copy(update={"channels": 16})))
    with pytest.raises(initial.InitialModelError, match=r"initialModel.checkpoint \(models/big.pt\): the model is "
                                                        r"cnn_simple-2x16, the run's is cnn_simple-2x8"):
        initial.load(store, InitialModelSpec(checkpoint=key), SIMPLE, GAME)
    bare = io.BytesIO()  # no network named: the tensors themselves are checked
    torch.save({"model": trained_looking(SIMPLE.model_copy(update={"channels": 16})).state_dict()}, bare)
    (tmp_path / "bare.pt").write_bytes(bare.getvalue())
    with pytest.raises(initial.InitialModelError, match=r"do not fit the run's model cnn_simple-2x8: shape of "
                                                        r"trunk.0.conv.weight \(16, 19, 3, 3\)"):
        initial.load(store, InitialModelSpec(checkpoint="bare.pt"), SIMPLE, GAME)
    with pytest.raises(initial.InitialModelError, match="no file at 'models/none.pt'"):
        initial.load(store, InitialModelSpec(checkpoint="models/none.pt"), SIMPLE, GAME)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(initial.InitialModelError, match="not a torch checkpoint"):
        initial.load(store, InitialModelSpec(checkpoint="junk.pt"), SIMPLE, GAME)


def test_registry_versions_load_their_weights_or_their_onnx(tmp_path):
    store = ArtifactStore(str(tmp_path))
    reg = registry.Registry(store)
    net = trained_looking(SIMPLE)
    weights = runner.save_weights(store, "runs/a/models/self_play.pt", net)
    with_weights = reg.register(onnx_export.to_onnx(net, 7, 7), architecture=SIMPLE.name, run="a",
                                phase="self_play", game=str(GAME.key),
                                metadata={"weights": weights.key, "weights_sha256": weights.sha256})
    onnx_only = reg.register(onnx_export.to_onnx(trained_looking(SIMPLE, seed=2), 7, 7), architecture=SIMPLE.name,
                             run="imported", phase="outside", game=str(GAME.key))
    planes = torch.rand(4, SIMPLE.in_channels, 7, 7)
    a = initial.load(store, InitialModelSpec(registry_version=with_weights.id), SIMPLE, GAME)
    np.testing.assert_array_equal(outputs(a, planes)[0], outputs(net, planes)[0])
    b = initial.load(store, InitialModelSpec(registry_version=onnx_only.id), SIMPLE, GAME)
    np.testing.assert_allclose(outputs(b, planes)[0], outputs(trained_looking(SIMPLE, seed=2), planes)[0],
                               atol=2e-5)
    with pytest.raises(initial.InitialModelError, match="no such version"):
        initial.load(store, InitialModelSpec(registry_version="nope"), SIMPLE, GAME)
    other = GameSpec(width=7, height=7, snakes=4)
    with pytest.raises(initial.InitialModelError, match=f"trained for {GAME.key}, the run plays {other.key}"):
        initial.load(store, InitialModelSpec(registry_version=with_weights.id), SIMPLE, other)


def test_a_phase_starts_from_the_initial_model(tmp_path):
    """A self_play phase with nothing earlier in its run starts from the ONNX file: its first
    league snapshot (written before any step) holds the file's weights."""
    source = trained_looking(SIMPLE, seed=5)
    path = tmp_path / "given.onnx"
    path.write_bytes(onnx_export.to_onnx(source, 7, 7))
    run = pc.RunSettings(run="t", store=str(tmp_path / "store"), game=GAME, network=SIMPLE, seed=3,
                         initial_model=train.initial_model(str(path)))
    execute.execute(run, pc.phase_settings(PhaseName.SELF_PLAY, games=2, parallel_games=2, batch_size=16, epochs=1))
    start = runner.load_weights(ArtifactStore(run.store), "runs/t/league/self_play-0000.pt")
    planes = torch.rand(4, SIMPLE.in_channels, 7, 7)
    np.testing.assert_allclose(outputs(start, planes)[0], outputs(source, planes)[0], atol=2e-5)
    bad = run.model_copy(update={"network": SIMPLE.model_copy(update={"blocks": 3}), "run": "u"})
    with pytest.raises(initial.InitialModelError, match=r"initialModel.onnx \(file://.*given.onnx\): the model is"):
        execute.execute(bad, pc.phase_settings(PhaseName.BOOTSTRAP, games=2, parallel_games=2, batch_size=16))


def test_ouro_train_initial_model_argument(tmp_path):
    assert train.initial_model(None) is None
    assert train.initial_model("registry:v1") == InitialModelSpec(registry_version="v1")
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "w.pt").write_bytes(b"x")
    assert train.initial_model(str(tmp_path / "m.onnx")).onnx == (tmp_path / "m.onnx").as_uri()
    assert train.initial_model(str(tmp_path / "w.pt")).checkpoint == (tmp_path / "w.pt").as_uri()
    assert train.initial_model("s3://bucket/m.onnx").onnx == "s3://bucket/m.onnx"
    with pytest.raises(ValueError, match="no such file"):
        train.initial_model(str(tmp_path / "missing.onnx"))


@pytest.mark.parametrize("name", ["simple-batchnorm", "attention-residual"])
@pytest.mark.parametrize("source", ["onnx", "checkpoint", "phase-weights"])
def test_a_model_of_encoding_version_1_starts_a_run_widened(name, source, tmp_path):
    """A model trained on the 17 planes of encoding version 1 (before the territory planes) loads into
    the run's network of the current encoding: the weights reading the added planes are zero, so it
    plays exactly as the file did (the old planes are a prefix), and it trains on from there."""
    from ouroboros.trainer.agents import neural
    from ouroboros.trainer.observation import encoding

    config = ARCHITECTURES[name]
    old = trained_looking(config.model_copy(update={"in_channels": encoding.VERSION_CHANNELS[1]}))
    data = onnx_export.to_onnx(old, 7, 7)
    assert onnx_export.read_contract(data)["input"]["encoding_version"] == 1
    if source == "onnx":
        back = initial.network_from_onnx(data, config, GAME)
    elif source == "checkpoint":
        back = initial.network_from_checkpoint(_checkpoint_bytes(old), config, "checkpoint")
    else:  # a champion's or an earlier phase's weights, saved before the upgrade
        store = ArtifactStore(str(tmp_path / "store"))
        store.put_bytes("runs/r/models/bootstrap.pt", _checkpoint_bytes(old))
        back = runner.load_weights(store, "runs/r/models/bootstrap.pt")
    assert back.config == config and config.in_channels == encoding.N_CHANNELS
    planes = torch.rand(16, encoding.N_CHANNELS, 7, 7)
    planes[:, 0] = 1.0
    for a, b in zip(outputs(old, planes[:, :17]), outputs(back, planes), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)

    player = neural.OnnxPlayer(data)  # and served as it is: fed the prefix
    assert neural.check_model(data)["input"]["encoding_version"] == 1
    logits, _ = player.evaluate(planes.numpy())
    np.testing.assert_allclose(logits, outputs(old, planes[:, :17])[0], atol=2e-5, rtol=1e-4)


def _checkpoint_bytes(net: networks.PolicyValueNet) -> bytes:
    buffer = io.BytesIO()
    torch.save(networks.checkpoint(net), buffer)
    return buffer.getvalue()


def _carried(model: bytes):
    import onnxruntime as ort

    from ouroboros.trainer.agents import leafnet

    return leafnet.carried(ort.InferenceSession(model).get_modelmeta().custom_metadata_map)


def test_a_run_hands_on_the_leaf_net_its_initial_model_carries(tmp_path, capsys):
    """A run that trains no leaf net of its own exports every model with the one its initial model
    (ONNX file or registry version) carries, and continuous with the champion's it started from, so
    a champion trained on keeps the net it was served with; a checkpoint carries none; a net that does not load, or was made for another board, fails
    the phase naming the field rather than export a model without it."""
    import onnx

    net = random_net(81)
    given = onnx_export.with_leaf_net(onnx_export.to_onnx(trained_looking(SIMPLE, seed=5), 7, 7), net)
    path = tmp_path / "given.onnx"
    path.write_bytes(given)
    run = pc.RunSettings(run="t", store=str(tmp_path / "store"), game=GAME, network=SIMPLE, seed=3,
                         initial_model=train.initial_model(str(path)))
    execute.execute(run, pc.phase_settings(PhaseName.SELF_PLAY, games=2, parallel_games=2, batch_size=16, epochs=1))
    store = ArtifactStore(run.store)
    np.testing.assert_array_equal(_carried(store.get_bytes("runs/t/models/self_play.onnx")).w1, _carried(given).w1)

    reg = registry.Registry(store)
    weights = runner.save_weights(store, "runs/a/models/self_play.pt", trained_looking(SIMPLE, seed=5))
    version = reg.register(given, architecture=SIMPLE.name, run="a", phase="self_play", game=str(GAME.key),
                           metadata={"weights": weights.key, "weights_sha256": weights.sha256})
    found = initial.leaf_net(store, InitialModelSpec(registry_version=version.id), GAME)
    np.testing.assert_array_equal(found.w1, _carried(given).w1)
    # continuous starts from the champion's weights, and its model keeps the champion's net
    reg.promote(str(GAME.key), version.id)
    execute.execute(run.model_copy(update={"run": "c", "initial_model": None}),
                    pc.phase_settings(PhaseName.CONTINUOUS, games=2, parallel_games=2, batch_size=16, epochs=1))
    np.testing.assert_array_equal(_carried(store.get_bytes("runs/c/models/continuous.onnx")).w1, _carried(given).w1)
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(onnx_export.to_onnx(trained_looking(SIMPLE), 7, 7))
    assert initial.leaf_net(store, train.initial_model(str(plain)), GAME) is None
    assert initial.leaf_net(store, InitialModelSpec(checkpoint="any.pt"), GAME) is None  # not even read

    broken = onnx.load_from_string(onnx_export.to_onnx(trained_looking(SIMPLE), 7, 7))
    broken.metadata_props.add(key="leaf_net", value="not json")
    (tmp_path / "broken.onnx").write_bytes(broken.SerializeToString())
    bad = run.model_copy(update={"run": "u", "initial_model": train.initial_model(str(tmp_path / "broken.onnx"))})
    with pytest.raises(initial.InitialModelError,
                       match=r"initialModel.onnx \(file://.*broken.onnx\): the leaf net in its metadata does not "
                             r"load: leaf net metadata \('leaf_net'\) is not JSON"):
        execute.execute(bad, pc.phase_settings(PhaseName.SELF_PLAY, games=2, parallel_games=2, batch_size=16,
                                               epochs=1))
    assert not store.list("runs/u/")  # refused before any game
    smoke = onnx.load_from_string(onnx_export.to_onnx(networks.build_network(train.PRESETS["smoke"].network), 7, 7))
    smoke.metadata_props.add(key="leaf_net", value="not json")
    (tmp_path / "smoke.onnx").write_bytes(smoke.SerializeToString())
    argv = ["--preset", "smoke", "--store", str(tmp_path / "cli"), "--initial-model", str(tmp_path / "smoke.onnx")]
    assert train.main(argv) == 2  # `ouro train` refuses it as a usage error, not a traceback
    assert "--initial-model: initialModel.onnx" in capsys.readouterr().err and not (tmp_path / "cli").exists()
    wrong_board = onnx.load_from_string(onnx_export.to_onnx(trained_looking(SIMPLE), 7, 7))
    wrong_board.metadata_props.add(key="leaf_net", value=random_net(169).to_metadata())
    (tmp_path / "wrong.onnx").write_bytes(wrong_board.SerializeToString())
    with pytest.raises(initial.InitialModelError, match="made for a board of 169 padded cells, this one has 81"):
        initial.leaf_net(store, train.initial_model(str(tmp_path / "wrong.onnx")), GAME)
    (tmp_path / "cut.onnx").write_bytes(given[: len(given) // 2])
    with pytest.raises(initial.InitialModelError, match=r"initialModel.onnx \(file://.*cut.onnx\): not an ONNX file"):
        initial.leaf_net(store, train.initial_model(str(tmp_path / "cut.onnx")), GAME)
