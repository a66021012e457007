"""Models of either encoding version, and models whose contract lies: what every verb that loads one does.

A version-1 model (17 input planes, before the territory planes) is still
registered, put in force, served over real HTTP (fed the prefix of the
current planes) and played in tournaments. A model whose contract cannot be
played by (a plane count of no encoding version, an ``encoding_version`` that
disagrees with it, a graph that takes another plane count or board than its
contract says) is refused at load time by ``check_model`` and by
``OnnxPlayer`` alike, with a message naming the field, never a traceback and
never a server that answers every move with its fallback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from test_server import Client, request_body, serve  # noqa: F401 - the real-HTTP fixture

from ouroboros.trainer.agents import neural
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.commands import evaluate as evaluate_command
from ouroboros.trainer.commands import registry as registry_command
from ouroboros.trainer.learning import networks, onnx_export
from ouroboros.trainer.observation import encoding, safety
from ouroboros.trainer.serving import players, protocol

pytestmark = pytest.mark.unit

GAME = "standard-11x11-2p"
TINY = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=1, channels=8)
V1 = encoding.VERSION_CHANNELS[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Real exports on 11x11: ``v2`` (the current encoding), ``v1`` (17 planes), with their networks."""
    folder = tmp_path_factory.mktemp("contract-models")
    nets = {"v2": networks.build_network(TINY, seed=0),
            "v1": networks.build_network(TINY.model_copy(update={"in_channels": V1}), seed=1)}
    paths = {}
    for name, net in nets.items():
        paths[name] = folder / f"{name}.onnx"
        onnx_export.export(net, paths[name], height=11, width=11)
    paths["nets"] = nets  # type: ignore[assignment]
    return paths


def tampered(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    """``source`` with its contract metadata changed by ``change`` (the graph untouched)."""
    model = onnx.load(str(source))
    for prop in model.metadata_props:
        if prop.key == "contract":
            contract = json.loads(prop.value)
            change(contract)
            prop.value = json.dumps(contract)
    onnx.save(model, str(target))
    return target


def _planes(n):
    return lambda c: c["input"]["shape"].__setitem__(1, n)


def _version(v):
    return lambda c: c["input"].__setitem__("encoding_version", v)


def _both(n, v):
    return lambda c: (c["input"]["shape"].__setitem__(1, n), c["input"].__setitem__("encoding_version", v))


# (source model, change to its contract, what the refusal says)
LIES = {
    "18 planes": ("v2", _planes(18), r"input.shape\[1\]: 18 input planes match no encoding version this trainer "
                                     r"makes \(17 for version 1, 19 for version 2\)"),
    "0 planes": ("v2", _planes(0), r"input.shape\[1\]: 0 input planes match no encoding version"),
    "'x' planes": ("v2", _planes("x"), r"input.shape\[1\] must be an integer plane count, got 'x'"),
    "19.5 planes": ("v2", _planes(19.5), r"input.shape\[1\] must be an integer plane count, got 19.5"),
    "true planes": ("v2", _planes(True), r"input.shape\[1\] must be an integer plane count, got True"),
    "version 1 on 19 planes": ("v2", _version(1), r"input.encoding_version is 1, but its 19 input planes "
                                                  r"\(input.shape\[1\]\) are encoding version 2's"),
    "version 2 on 17 planes": ("v1", _version(2), r"input.encoding_version is 2, but its 17 input planes"),
    "version '2' as text": ("v2", _version("2"), r"input.encoding_version must be an integer, got '2'"),
    "graph 17, contract 19": ("v1", _both(19, 2), r"the graph's input 'board' has 17 in dimension 1 \(C\), "
                                                  r"its contract's input.shape\[1\] says 19"),
    "graph 19, contract 17": ("v2", _both(17, 1), r"the graph's input 'board' has 19 in dimension 1 \(C\), "
                                                  r"its contract's input.shape\[1\] says 17"),
    "graph 11x11, contract 13x13": ("v2", lambda c: c["board"].update(height=13, width=13),
                                    r"has 11 in dimension 2 \(H\), its contract's board.height says 13"),
    "board 0": ("v2", lambda c: c["board"].update(height=0), r"board.height must be an integer in \[1, 64\], got 0"),
    "no shape": ("v2", lambda c: c["input"].pop("shape"), r"not an Ouroboros model: its 'contract' metadata lacks"),
}


@pytest.fixture(scope="module")
def lies(models, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lying-models")
    return {name: tampered(models[src], folder / f"{i}.onnx", change)
            for i, (name, (src, change, _)) in enumerate(LIES.items())}


@pytest.mark.parametrize("name", list(LIES))
def test_a_lying_contract_is_refused_by_the_check_and_the_player_naming_the_field(lies, name):
    message = LIES[name][2]
    with pytest.raises(neural.ModelContractError, match=message):
        neural.check_model(lies[name], GAME)
    with pytest.raises(neural.ModelContractError, match=message):  # what serve, evaluate and nsearch build
        neural.OnnxPlayer(lies[name])


@pytest.mark.parametrize("name", ["18 planes", "version 1 on 19 planes", "graph 17, contract 19"])
def test_ouro_registry_add_refuses_a_lying_contract_with_exit_3(lies, tmp_path, capsys, name):
    store = str(tmp_path / "store")
    argv = ["--store", store, "add", str(lies[name]), "--game", GAME, "--arch", "a", "--run", "r", "--phase", "p"]
    assert registry_command.main(argv) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert reg.Registry.open(store).versions() == []


@pytest.mark.parametrize("name", ["graph 17, contract 19", "'x' planes"])
def test_ouro_evaluate_refuses_a_lying_contract_in_one_line(lies, capsys, name):
    assert evaluate_command.main(["--players", f"onnx:{lies[name]},random-safe", "--games", "2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("the graph's input" in err or "must be an integer" in err)


def test_a_version_1_model_is_registered_promoted_and_played(models, tmp_path, capsys):
    """`ouro registry add` and `promote` take a 17-plane model; `ouro evaluate` plays it, and the
    registry's champion, against the current encoding's model."""
    assert neural.check_model(models["v1"], GAME)["input"]["encoding_version"] == 1
    store = str(tmp_path / "store")
    argv = ["--store", store, "add", str(models["v1"]), "--game", GAME, "--arch", "a", "--run", "r", "--phase", "p"]
    assert registry_command.main(argv) == 0
    version = reg.Registry.open(store).versions()[0].id
    assert registry_command.main(["--store", store, "promote", version, "--game", GAME]) == 0
    capsys.readouterr()
    argv = ["--players", f"champion,onnx:{models['v2']}", "--games", "2", "--store", store, "--game", GAME,
            "--json", "-"]
    assert evaluate_command.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["games"] == 2 and report["pairs"][0]["player"].startswith("champion")


def _expected_move(net: networks.PolicyValueNet, body: dict) -> str:
    """The move the 17-plane network picks among the safe ones, computed here in torch."""
    request = protocol.parse_move_request(body)
    config, state = request.game.config, request.game.state
    planes = encoding.encode(config, state, request.seat)[:, :V1]
    net.eval()
    with torch.no_grad():
        logits = net(torch.from_numpy(planes))[0].numpy()
    safe = safety.safe_moves(config, state)[0, request.seat]
    return onnx_export.MOVES[int(np.argmax(np.where(safe, logits[0], -np.inf)))]


def _open_body(game_id: str, turn: int) -> dict:
    """`me` in the middle of the board, three safe moves: the network decides, not the rules."""
    body = request_body(game_id, turn=turn)
    me = [{"x": 5, "y": 5}, {"x": 5, "y": 4}, {"x": 5, "y": 3}]
    body["board"]["snakes"][0].update(body=me, head=me[0])
    body["you"].update(body=me, head=me[0])
    return body


@pytest.mark.parametrize("spec", ["onnx", "champion", "champion+nsearch:ms=20"])
def test_a_version_1_model_is_served_over_http(models, serve, caplog, tmp_path, spec):  # noqa: F811
    """`ouro serve` with a 17-plane model, as a file, as the registry's champion, and guiding
    nsearch: every /move is answered by the model (no fallback), the plain player with the very
    move the network picks on the prefix of the current planes."""
    source = None

    def factory(text, champion):
        return players.make_player(text, source or champion)

    if spec == "onnx":
        spec = f"onnx:{models['v1']}"
    else:
        store = str(tmp_path / "store")
        registry = reg.Registry.open(store)
        version = registry.register(models["v1"].read_bytes(), architecture="a", run="r", phase="p", game=GAME)
        registry.promote(GAME, version.id)
        source = players.ChampionSource(registry_url=store, game=GAME)
    client = Client(serve(spec, factory=factory))
    with caplog.at_level(logging.WARNING):
        for turn in range(3):
            body = _open_body(f"v1-{turn}", turn)
            status, answer, _ = client.call("POST", "/move", body)
            assert status == 200 and answer["move"] in ("up", "left", "right")
            if "nsearch" not in spec:
                assert answer["move"] == _expected_move(models["nets"]["v1"], body)
    assert "answering a safe move" not in caplog.text
    client.close()


def test_an_int8_export_of_a_version_1_network_calibrates_on_the_prefix(models):
    """`ouro export --int8` of a checkpoint saved before the territory planes: the calibration positions
    are the current encoding's, the 17-plane model is calibrated on their prefix (it crashed in
    onnxruntime's calibrator), and the int8 file keeps its version-1 contract."""
    net = models["nets"]["v1"]
    rng = np.random.default_rng(0)
    calibration = (rng.random((32, encoding.N_CHANNELS, 11, 11)) < 0.3).astype(np.float32)
    int8 = onnx_export.quantise_int8(onnx_export.to_onnx(net, 11, 11), calibration)
    contract = neural.check_model(int8, GAME)
    assert contract["precision"] == "int8" and contract["input"]["encoding_version"] == 1
    with pytest.raises(ValueError, match=r"calibration planes \(32, 5, 11, 11\) do not hold the model's 17"):
        onnx_export.quantise_int8(onnx_export.to_onnx(net, 11, 11), calibration[:, :5])
