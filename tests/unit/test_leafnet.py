"""The search's leaf net: the kernel computes the documented function of the documented inputs,
a net that says nothing leaves the search unchanged, a trained model exports to the kernel
exactly, and bad files are refused with what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from leafnets import random_net

from ouroboros.trainer.agents import compact, leafnet, registry, search
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.engine import maps, rules
from ouroboros.trainer.engine.types import GameConfig

pytestmark = pytest.mark.unit

if not search.compiled_available():  # pragma: no cover - numba is in the trainer and serve extras
    pytest.skip("numba is not installed", allow_module_level=True)

from ouroboros.trainer.agents import search_kernel  # noqa: E402


def test_the_kernel_reads_the_inputs_the_module_documents():
    assert len(leafnet.CHANNELS) == search_kernel.LEAF_CHANNELS
    assert len(leafnet.SCALARS) == search_kernel.LEAF_SCALARS


def played(config: GameConfig, turns: int = 20, games: int = 3):
    state = maps.new_games(config, np.arange(games) + 3)
    rng = np.random.default_rng(1)
    player = Heuristic()
    for _ in range(turns):
        moves = np.stack([player.act(config, state, s, rng) for s in range(config.n_snakes)], 1)
        state = rules.step(config, state, moves)
    over = state.game_over(False)
    return [(compact.Rules.of(config, state, g), compact.from_batch(state, g), state.alive[g])
            for g in range(games) if not over[g]]


def by_formula(net: leafnet.LeafNet, dense: np.ndarray) -> float:
    """The module docstring's formula, in numpy, on the dense inputs."""
    cells = 7 * net.cells
    h = np.clip(net.b1 + dense[:cells] @ net.w1 + dense[cells:] @ net.ws, 0, 1)
    return float(net.nn[0] * (net.w3 @ np.clip(net.w2 @ h + net.b2, 0, 1) + net.nn[1]))


@pytest.mark.parametrize("config", [GameConfig(11, 11, 2), GameConfig(11, 11, 4), GameConfig(7, 7, 2)],
                         ids=["duel", "4 snakes", "7x7 duel"])
def test_kernel_adds_the_documented_net_to_the_count(config):
    checked = 0
    for rules_, pos, alive in played(config):
        net = random_net(rules_.geo.board.n_cells)
        delta, wrap, inside, _, params, weights, kernel_net = search._arrays(rules_, 2, search.SearchWeights(), net)
        position = search._position(rules_, pos)
        for me in np.flatnonzero(alive):
            count, dense = search.leaf_inputs(rules_, pos, int(me))
            bare = search_kernel._evaluate(delta, wrap, inside, params, weights, leafnet.NONE.kernel(),
                                           rules_.geo.width, rules_.geo.height, *position, int(me))
            full = search_kernel._evaluate(delta, wrap, inside, params, weights, kernel_net,
                                           rules_.geo.width, rules_.geo.height, *position, int(me))
            assert count == bare  # the count is untouched by recording its territory
            assert full - bare == pytest.approx(by_formula(net, dense), rel=1e-6)  # inputs are float32
            # the inputs are the documented ones: one head, the body, food, both territories
            grid = dense[: 7 * net.cells].reshape(7, net.cells)
            snakes, food = pos
            assert grid[0].sum() == 1 and grid[0, snakes[me][0][0]] == 1
            assert grid[1].sum() == len(snakes[me][0]) - 1
            assert grid[2].sum() == sum(1 for i, s in enumerate(snakes) if s is not None and i != me)
            assert grid[4].sum() == bin(food).count("1")
            assert dense[-5] == pytest.approx(snakes[me][2] / 100)
            checked += 1
    assert checked >= 3


def test_a_silent_net_leaves_the_search_as_it_was():
    for rules_, pos, alive in played(GameConfig(11, 11, 2)):
        silent = random_net(rules_.geo.board.n_cells)
        silent = leafnet.LeafNet(silent.w1, silent.b1, silent.w2, silent.b2, np.zeros_like(silent.w3),
                                 silent.ws, np.array([100.0, 0.0]))
        for me in np.flatnonzero(alive):
            plain = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=3)
            with_net = search.choose_compiled(rules_, pos, int(me), 1e6, max_depth=3, net=silent)
            assert (with_net.move, with_net.score, with_net.nodes) == (plain.move, plain.score, plain.nodes)


def test_a_net_changes_what_the_search_scores():
    rules_, pos, alive = played(GameConfig(11, 11, 2))[0]
    loud = random_net(rules_.geo.board.n_cells, scale=50.0)
    plain = search.choose_compiled(rules_, pos, 0, 1e6, max_depth=2)
    with_net = search.choose_compiled(rules_, pos, 0, 1e6, max_depth=2, net=loud)
    assert with_net.score != plain.score


def test_a_trained_model_exports_to_the_kernel_exactly():
    torch = pytest.importorskip("torch")
    from ouroboros.trainer.learning import leaf

    data = leaf.collect(seed=5, games=2, ms=2.0, max_turns=30)
    assert data.inputs.shape[1] == 7 * 169 + 5 and len(data.result) == len(data.count) > 20
    assert set(np.unique(data.result)) <= {0.0, 0.5, 1.0}
    model = leaf.fit(data, hidden=4, epochs=2.0, batch=64)
    net = model.export()
    rows = np.arange(0, len(data.result), 7)
    with torch.no_grad():
        want = model.net(torch.from_numpy(data.inputs[rows].astype(np.float32))).double().numpy() * net.nn[0]
    got = [by_formula(net, data.inputs[r].astype(np.float64)) for r in rows]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * net.nn[0])


def test_the_spread_penalty_shrinks_the_corrections():
    torch = pytest.importorskip("torch")
    from ouroboros.trainer.learning import leaf

    data = leaf.collect(seed=11, games=2, ms=2.0, max_turns=40)
    x = torch.from_numpy(data.inputs.astype(np.float32))

    def size(spread: float) -> float:
        model = leaf.fit(data, hidden=8, epochs=4.0, batch=64, lr=1e-2, spread=spread)
        with torch.no_grad():
            return float(model.net(x).square().mean())

    free, held = size(0.0), size(10.0)
    assert held < free / 4, (held, free)


def test_bad_files_are_refused_with_what_is_wrong(tmp_path):
    good = random_net(169)
    path = tmp_path / "net.npz"
    good.save(path)
    assert leafnet.LeafNet.load(path).cells == 169
    arrays = {k: getattr(good, k) for k in leafnet.KEYS}
    for change, message in [({"nn": None}, "missing nn"), ({"w2": np.zeros((8, 7))}, "w2 has shape"),
                            ({"b2": np.full(8, np.nan)}, "b2 holds values that are not finite"),
                            ({"w1": np.zeros((100, 8))}, "not 7 channels")]:
        bad = {k: v for k, v in {**arrays, **change}.items() if v is not None}
        np.savez(tmp_path / "bad.npz", **bad)
        with pytest.raises(ValueError, match=message):
            leafnet.LeafNet.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad.npz", **{**arrays, "nn": np.array([-5.0, 0.0])})
    with pytest.raises(ValueError, match=r"nn\[0\] .* is -5, must be above 0"):
        leafnet.LeafNet.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "bad.npz", **{**arrays, "b1": np.zeros((8, 1))})
    with pytest.raises(ValueError, match=r"b1 has shape \(8, 1\), expected \(H,\)"):
        leafnet.LeafNet.load(tmp_path / "bad.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "text.npz").write_text("not a net\n")
    for name in ("empty.npz", "text.npz"):
        with pytest.raises(ValueError, match=f"{name}: not an .npz of a leaf net's arrays"):
            leafnet.LeafNet.load(tmp_path / name)
    np.save(tmp_path / "one.npy", good.w1)
    with pytest.raises(ValueError, match="a single .npy array, not an .npz"):
        leafnet.LeafNet.load(tmp_path / "one.npy")
    rules_, pos, _ = played(GameConfig(7, 7, 2))[0]
    with pytest.raises(ValueError, match="169 padded cells, this one has 81"):
        search.choose_compiled(rules_, pos, 0, 1.0, max_depth=1, net=good)
    with pytest.raises(ValueError, match="numba kernel only"):
        registry.make_player(f"search:kernel=python,leafnet={path}")
    with pytest.raises(OSError):
        registry.make_player(f"search:leafnet={tmp_path / 'missing.npz'}")


def test_targets_blend_the_result_and_the_search_score():
    pytest.importorskip("torch")
    from ouroboros.trainer.learning import leaf

    rng = np.random.default_rng(0)
    count = rng.normal(0, 300, 400)
    result = (rng.random(400) < 1 / (1 + np.exp(-count / 300))).astype(float)  # outcomes follow the count
    searched = np.where(np.arange(400) % 4 == 0, np.nan, np.where(np.arange(400) % 2 == 0, 1e6, -1e6))
    data = leaf.LeafData(np.zeros((400, 7 * 169 + 5), np.float16), count, result, np.arange(400),
                         np.zeros(400, np.int64), searched)
    rows = np.arange(400)
    np.testing.assert_array_equal(leaf.targets(data, rows, 1.0), result)
    only_search = leaf.targets(data, rows, 0.0)
    unscored = np.isnan(searched)
    np.testing.assert_array_equal(only_search[unscored], result[unscored])  # no search score: the result
    assert np.all(only_search[~unscored & (searched > 0)] > 0.99)  # a won search: a win, in the count's scale
    assert np.all(only_search[~unscored & (searched < 0)] < 0.01)
    half = leaf.targets(data, rows, 0.5)
    np.testing.assert_allclose(half, 0.5 * result + 0.5 * only_search)


def as_float32(net: leafnet.LeafNet) -> leafnet.LeafNet:
    return leafnet.LeafNet(*(getattr(net, k).astype(np.float32).astype(np.float64) for k in leafnet.KEYS))


def test_a_model_carries_its_leaf_net_in_its_metadata(tmp_path):
    """`with_leaf_net` puts the net in an exported ONNX file's metadata, where onnxruntime reads it
    back (`carried`), as float32; the graph, the contract and the other metadata stay; a model
    without one carries None."""
    import onnxruntime as ort

    from ouroboros.trainer.learning import networks, onnx_export

    model = networks.build_network(networks.NetworkConfig(architecture="cnn_simple", blocks=1, channels=8), seed=0)
    plain = onnx_export.to_onnx(model, 7, 7)
    net = random_net(81)
    carrying = onnx_export.with_leaf_net(plain, net)
    assert leafnet.carried(ort.InferenceSession(plain).get_modelmeta().custom_metadata_map) is None
    meta = ort.InferenceSession(carrying).get_modelmeta().custom_metadata_map
    back = leafnet.carried(meta)
    for key in leafnet.KEYS:
        np.testing.assert_array_equal(getattr(back, key), getattr(as_float32(net), key))
    assert onnx_export.read_contract(carrying) == onnx_export.read_contract(plain)
    other = random_net(81, seed=1)
    again = leafnet.carried(ort.InferenceSession(onnx_export.with_leaf_net(carrying, other))
                            .get_modelmeta().custom_metadata_map)
    np.testing.assert_array_equal(again.w1, as_float32(other).w1)  # replaced, not added
    with pytest.raises(ValueError, match="made for a board of 169 padded cells, this one has 81"):
        onnx_export.with_leaf_net(plain, random_net(169))
    with pytest.raises(ValueError, match="not an Ouroboros model"):
        onnx_export.with_leaf_net(_bare_onnx(), net)


def _bare_onnx() -> bytes:
    import onnx
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "bare",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    return helper.make_model(graph).SerializeToString()


def _metadata_with(change) -> str:
    import json

    doc = json.loads(random_net(81).to_metadata())
    change(doc)
    return json.dumps(doc)


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not JSON"),
    ('[1, 2]', "format 'list', this trainer reads format 1"),
    (_metadata_with(lambda d: d.update(format=2)), "format 2, this trainer reads format 1"),
    (_metadata_with(lambda d: d.update(format=True)), "format True, this trainer reads format 1"),
    (_metadata_with(lambda d: d.update(format=1.0)), "format 1.0, this trainer reads format 1"),
    (_metadata_with(lambda d: d.update(cells=169)), "'cells' says 169, its arrays hold 81"),
    (_metadata_with(lambda d: d.update(hidden=16)), "'hidden' says 16, its arrays hold 8"),
    (_metadata_with(lambda d: d["arrays"]["b1"].update(shape=[10**12, 10**12])),
     r"arrays.b1 holds 8 values, its shape \[1000000000000, 1000000000000\] needs 1000000000000000000000000$"),
    (_metadata_with(lambda d: d.pop("arrays")), "no 'arrays' object"),
    (_metadata_with(lambda d: d["arrays"].pop("w2")), "arrays.w2 is missing"),
    (_metadata_with(lambda d: d["arrays"]["b1"].update(float32="%%%")), "arrays.b1 is not base64"),
    (_metadata_with(lambda d: d["arrays"]["b1"].update(shape=["eight"])), "arrays.b1 is not base64 with a shape"),
    (_metadata_with(lambda d: d["arrays"]["b1"].update(shape=[9])), r"arrays.b1 holds 8 values, its shape \[9\]"),
    (_metadata_with(lambda d: d["arrays"]["b1"].update(shape=[float("inf")])), "arrays.b1 is not base64 with a shape"),
    (_metadata_with(lambda d: d["arrays"]["b1"].update(shape=[8.0])), "arrays.b1 is not base64 with a shape"),
    (_metadata_with(lambda d: d["arrays"]["b2"].update(
        float32=__import__("base64").b64encode(np.full(8, np.inf, "<f4").tobytes()).decode())),
     "b2 holds values that are not finite"),
])
def test_a_broken_carried_net_is_refused_with_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        leafnet.carried({leafnet.METADATA_KEY: text})


def test_ouro_export_puts_a_leaf_net_in_the_model(tmp_path, capsys):
    """`ouro export --leaf-net NPZ`: the model carries it; a net for another board, a missing file and a
    file that is not a net are refused (exit 2) naming the option."""
    import onnxruntime as ort

    from ouroboros.trainer.commands import export

    base = ["--arch", "cnn_simple", "--random-init", "--blocks", "1", "--channels", "8", "--width", "7",
            "--height", "7"]
    random_net(81).save(tmp_path / "seven.npz")
    assert export.main([*base, "--leaf-net", str(tmp_path / "seven.npz"), "--out", str(tmp_path / "m.onnx")]) == 0
    for name in ("m.onnx", "m.opt.onnx"):
        meta = ort.InferenceSession(str(tmp_path / name)).get_modelmeta().custom_metadata_map
        assert leafnet.carried(meta).cells == 81
    random_net(169).save(tmp_path / "eleven.npz")
    (tmp_path / "junk.npz").write_text("junk")
    for leaf, words in [("eleven.npz", "made for a board of 169 padded cells, this one has 81"),
                        ("missing.npz", "No such file or directory"), ("junk.npz", "not an .npz of a leaf net")]:
        capsys.readouterr()
        assert export.main([*base, "--leaf-net", str(tmp_path / leaf), "--out", str(tmp_path / "n.onnx")]) == 2
        err = capsys.readouterr().err
        assert f"ouro export: --leaf-net {tmp_path / leaf}: " in err and words in err, err
    assert not (tmp_path / "n.onnx").exists()



def synthetic(games: int, rows_per_game: int, learnable: bool, seed: int = 0):
    """LeafData on 7x7 (81 padded cells) whose count says nothing; with `learnable` each game's
    result is written in one input cell of its positions, else it is a coin toss."""
    from ouroboros.trainer.learning import leaf

    rng = np.random.default_rng(seed)
    n = games * rows_per_game
    game = np.repeat(np.arange(games), rows_per_game)
    result = np.repeat(rng.integers(0, 2, games).astype(np.float64), rows_per_game)
    inputs = (rng.random((n, 7 * 81 + 5)) < 0.05).astype(np.float16)
    if learnable:
        inputs[:, 5 * 81:6 * 81] = result[:, None]  # own territory everywhere when it won
    return leaf.LeafData(inputs, rng.normal(0, 50, n), result, game, np.full(n, 10), np.full(n, np.nan))


def test_a_net_is_adopted_only_when_it_predicts_held_out_games_better_than_the_count():
    from ouroboros.trainer.learning import leaf

    net, held, why = leaf.adopt(synthetic(40, 200, learnable=True), hidden=4)
    assert net is not None and why == "" and held[1] < held[0] - 0.1
    net, held, why = leaf.adopt(synthetic(40, 200, learnable=False), hidden=4)
    assert net is None and held[1] >= held[0]
    assert why.startswith("count + net predicted the held-out games no better than the count alone")
    drawn = synthetic(4, 10, learnable=False)
    drawn.result[:] = 0.5
    assert leaf.adopt(drawn) == (None, None, "every game ended alike (result 0.5 for every snake): nothing to learn")


def test_games_a_leaf_net_cannot_learn_from_are_refused_naming_why():
    from ouroboros.trainer.engine.types import Ruleset
    from ouroboros.trainer.learning import leaf

    leaf.check_game(GameConfig(7, 7, 2))
    with pytest.raises(ValueError, match="the board is 9x7; its training needs a square board"):
        leaf.check_game(GameConfig(9, 7, 2))
    with pytest.raises(ValueError, match="a solo game has no outcome to learn"):
        leaf.check_game(GameConfig(7, 7, 1, ruleset=Ruleset.SOLO))


def test_a_training_runs_leaf_games_reach_the_bootstrap_phase():
    from ouroboros.contract.run import RunConfig
    from ouroboros.contract.vocabulary import PhaseName
    from ouroboros.trainer.learning.phases import config as pc

    config = RunConfig.model_validate({
        "run": {"name": "r", "namespace": "ns"}, "champion": "c", "game": {}, "model": {}, "storage": {},
        "phases": [{"name": "bootstrap", "games": 10, "leafGames": 300}, {"name": "hybrid", "games": 10}]})
    assert pc.from_run_config(config, PhaseName.BOOTSTRAP)[1].leaf_games == 300
    assert pc.from_run_config(config, PhaseName.HYBRID)[1].leaf_games == 0


def test_leaf_data_round_trips_through_its_file_and_bad_files_are_refused(tmp_path):
    """`LeafData.save` writes an .npz numpy reads, deflated (mostly zeros: far smaller than the arrays);
    `load` gives back the same arrays, fills `searched` for files written before it, and refuses what is
    not leaf data naming the file."""
    import io

    from ouroboros.trainer.learning import leaf

    data = synthetic(10, 30, learnable=True)
    buffer = io.BytesIO()
    data.save(buffer)
    assert len(buffer.getvalue()) < data.inputs.nbytes / 5
    back = leaf.LeafData.load(io.BytesIO(buffer.getvalue()))
    for name in ("inputs", "count", "result", "game", "left", "searched"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name))
    np.savez(tmp_path / "old.npz", inputs=data.inputs, count=data.count, result=data.result, game=data.game,
             left=data.left)
    assert np.isnan(leaf.LeafData.load(tmp_path / "old.npz").searched).all()
    np.savez(tmp_path / "short.npz", inputs=data.inputs, count=data.count[:5], result=data.result, game=data.game,
             left=data.left)
    (tmp_path / "text.npz").write_text("not data")
    np.savez(tmp_path / "other.npz", w1=np.zeros(3))
    for name, words in [("short.npz", r"its arrays have \[5, 300\] rows"), ("text.npz", "not an .npz archive"),
                        ("other.npz", "missing inputs, count, result, game, left")]:
        with pytest.raises(ValueError, match=f"{name}: not leaf data: {words}"):
            leaf.LeafData.load(tmp_path / name)
