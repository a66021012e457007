"""Replay shards, the replay buffer and `ouro data stats`: what training relies on.

Shards round-trip through a local directory and ``memory://``; a restarted
writer never overwrites; a corrupt shard is skipped with a warning and never
reaches a batch; the window is the newest data; the quality threshold filters
inside it; prioritised sampling draws with the documented probabilities.
"""

import json
import logging

import numpy as np
import pytest

from ouroboros.trainer.commands import cli
from ouroboros.trainer.commands import data as data_cmd
from ouroboros.trainer.learning import replay, shards

pytestmark = pytest.mark.unit

RUN = "r1"


def game(game_id: int, n: int = 4, quality: float = 0.8, seed: int = 0) -> dict[str, np.ndarray]:
    """Positions of one game: [n] columns plus planes [n, 3, 5, 5] and policy [n, 4]."""
    rng = np.random.default_rng([seed, game_id])
    return {
        "value": np.full(n, 1.0 if game_id % 2 else -1.0),
        "game_id": np.full(n, game_id),
        "turn": np.arange(n),
        "seat": np.zeros(n),
        "quality": np.full(n, quality),
        "planes": rng.integers(0, 2, (n, 3, 5, 5), dtype=np.uint8),
        "policy": rng.dirichlet(np.ones(4), n).astype(np.float32),
    }


def write_games(store, games, phase="bootstrap", worker=0, shard_rows=8, producer="heuristic", **kw):
    writer = shards.ReplayWriter(store, RUN, phase, worker, shard_rows=shard_rows)
    for g in games:
        writer.add(producer, game(g, **kw), cursor=g + 1)
    writer.flush()
    return writer


# ---------------------------------------------------------------------------- shards


def test_shards_round_trip_with_metadata(store):
    writer = shards.ReplayWriter(store, RUN, "bootstrap", worker=3, shard_rows=8, extra={"encoding": "v1"})
    writer.add("heuristic", game(0), cursor=1)
    writer.add("neural-v2", game(1, quality=0.4), cursor=2)  # 8 rows: a shard is cut here
    writer.add("heuristic", game(2), cursor=3)
    assert writer.buffered_rows == 4
    writer.flush()
    refs = shards.list_shards(store, RUN, "bootstrap")
    assert [r.key for r in refs] == [shards.shard_key(RUN, "bootstrap", 3, s) for s in (0, 1)]
    first = shards.read_shard(store, refs[0])
    for name, expected in game(0).items():
        np.testing.assert_array_equal(first[name][:4], expected.astype(first[name].dtype))
    np.testing.assert_array_equal(first["planes"][4:], game(1)["planes"])
    assert first["planes"].dtype == np.uint8 and first["planes"].shape == (8, 3, 5, 5)
    np.testing.assert_array_equal(first["producer"], [0] * 4 + [1] * 4)
    meta = refs[0].meta
    assert (meta.schema_version, meta.worker, meta.seq, meta.rows, meta.games) == (1, 3, 0, 8, 2)
    assert meta.producers == ["heuristic", "neural-v2"]
    assert meta.by_producer["neural-v2"].rows == 4
    assert meta.by_producer["neural-v2"].quality_sum == pytest.approx(1.6)
    assert meta.quality_mean == pytest.approx(0.6)
    assert meta.columns["planes"] == ("|u1", [3, 5, 5])
    assert (meta.cursor, meta.extra) == (2, {"encoding": "v1"})
    assert refs[1].meta.cursor == 3
    assert store.info(refs[0].key).metadata["run"] == RUN  # the sidecar describes the shard


def test_restarted_writer_continues_after_the_last_shard(store):
    write_games(store, range(4))  # 2 shards of 2 games
    before = {r.key: r.info.sha256 for r in shards.list_shards(store, RUN)}
    dead = shards.ReplayWriter(store, RUN, "bootstrap", shard_rows=8)
    dead.add("heuristic", game(4), cursor=5)  # buffered only: lost when the process dies
    writer = shards.ReplayWriter(store, RUN, "bootstrap", shard_rows=8)
    assert (writer.next_seq, writer.cursor) == (2, 4)  # resume after game 4 (index 3)
    writer.add("heuristic", game(4), cursor=5)
    writer.flush()
    after = {r.key: r.info.sha256 for r in shards.list_shards(store, RUN)}
    assert {k: after[k] for k in before} == before
    assert len(after) == 3 and shards.parse_shard_key(max(after))[3] == 2
    other = shards.ReplayWriter(store, RUN, "bootstrap", worker=1)
    assert (other.next_seq, other.cursor) == (0, None)  # sequences are per worker


def test_half_written_shard_is_invisible_and_replaced(store):
    """A crash between the data file and its sidecar leaves a file nobody lists."""
    write_games(store, range(2))
    orphan = shards.shard_key(RUN, "bootstrap", 0, 1)
    store.fs.pipe_file(store.path(orphan), b"half a shard")
    folder = store.path(shards.replay_prefix(RUN, "bootstrap").rstrip("/"))
    for worker in (0, 1):
        store.fs.pipe_file(f"{folder}/.shard-000{worker}-00000002.npz.tmp-x", b"temp")
    assert [r.key for r in shards.list_shards(store, RUN)] == [shards.shard_key(RUN, "bootstrap", 0, 0)]
    writer = write_games(store, [7])
    assert writer.next_seq == 2
    # the writer removed its own leftover temp file, not worker 1's (maybe a live write)
    names = sorted(p.rsplit("/", 1)[-1] for p in store.fs.ls(folder, detail=False))
    assert [n for n in names if ".tmp-" in n] == [".shard-0001-00000002.npz.tmp-x"]
    ref = shards.list_shards(store, RUN)[-1]
    assert ref.key == orphan and shards.read_shard(store, ref)["game_id"][0] == 7


@pytest.mark.parametrize(
    "columns, message",
    [
        ({**game(0), "value": np.zeros(3)}, "same first dimension"),
        ({k: v for k, v in game(0).items() if k != "quality"}, "missing required columns"),
        ({**game(0), "name": np.array(["a"] * 4, dtype=object)}, "object dtype"),
    ],
)
def test_writer_refuses_malformed_columns(store, columns, message):
    writer = shards.ReplayWriter(store, RUN, "bootstrap")
    with pytest.raises(ValueError, match=message):
        writer.add("heuristic", columns)


def test_names_and_keys():
    assert shards.shard_key("r1", "self_play", 2, 17) == "runs/r1/replay/self_play/shard-0002-00000017.npz"
    assert shards.parse_shard_key("runs/r1/replay/self_play/shard-0002-00000017.npz") == ("r1", "self_play", 2, 17)
    assert shards.parse_shard_key("runs/r1/checkpoints/step-0000000001.pt") is None
    with pytest.raises(ValueError, match="invalid run"):
        shards.shard_key("../x", "bootstrap", 0, 0)


# ---------------------------------------------------------------------------- buffer


def corrupt(store, key: str) -> None:
    data = bytearray(store.fs.cat_file(store.path(key)))
    data[len(data) // 2] ^= 0xFF
    store.fs.pipe_file(store.path(key), bytes(data))


def test_corrupt_shard_is_skipped_with_a_warning(store, caplog):
    write_games(store, range(6))  # shards: games (0,1) (2,3) (4,5)
    refs = shards.list_shards(store, RUN)
    corrupt(store, refs[1].key)
    caplog.set_level(logging.WARNING)
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], replay.ReplayConfig(window_positions=16))
    assert buf.skipped == [refs[1].key]
    assert refs[1].key in caplog.text and "corrupt" in caplog.text
    # the window reaches one shard further back instead of using the corrupt one
    assert sorted(set(buf.columns["game_id"])) == [0, 1, 4, 5]
    assert refs[1].key not in buf.shard_keys


def test_shard_that_disagrees_with_its_metadata_is_skipped(store, caplog):
    write_games(store, range(4))
    refs = shards.list_shards(store, RUN)
    # valid bytes and a matching sha256, but not the arrays the metadata describes
    store.put_bytes(refs[1].key, shards.encode(game(9)), metadata=refs[1].info.metadata)
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], replay.ReplayConfig())
    assert buf.skipped == [refs[1].key] and "does not match its metadata" in caplog.text
    assert 9 not in buf.columns["game_id"]


@pytest.mark.parametrize(
    "window, games",
    [
        ({"window_positions": 16}, [6, 7, 8, 9]),
        ({"window_positions": 14}, [6, 7, 8, 9]),  # oldest shard cut to its newest rows
        ({"window_games": 3}, [7, 8, 9]),
        ({"window_games": 5, "window_positions": 12}, [7, 8, 9]),  # the smaller window wins
        ({"window_positions": None}, list(range(10))),
    ],
)
def test_window_selects_the_newest(store, window, games):
    write_games(store, range(10))  # 5 shards of 2 games of 4 positions
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], replay.ReplayConfig(**window))
    assert sorted(set(buf.columns["game_id"].tolist())) == games
    assert list(buf.columns["game_id"]) == sorted(buf.columns["game_id"])  # oldest first
    if window.get("window_positions") == 14:
        assert len(buf) == 14 and list(buf.columns["turn"][:2]) == [2, 3]
    assert buf.games == len(games)


def test_window_spans_phases_and_only_loads_what_it_needs(store, monkeypatch):
    write_games(store, range(6), phase="bootstrap")
    write_games(store, range(100, 104), phase="hybrid")
    read = []
    original = shards.read_shard
    monkeypatch.setattr(shards, "read_shard", lambda s, ref: read.append(ref.key) or original(s, ref))
    config = replay.ReplayConfig(window_positions=20)
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap", "hybrid"], config)
    assert sorted(set(buf.columns["game_id"].tolist())) == [5, 100, 101, 102, 103]
    assert len(read) == 3  # the two oldest bootstrap shards are never read (nor decompressed)


def test_a_window_across_producers_keeps_the_columns_they_share(store):
    """Self-play shards carry columns teacher shards lack (logp, search targets): a window over both
    loads their common columns instead of failing on the first shard without one."""
    writer = shards.ReplayWriter(store, RUN, "self_play", 0, shard_rows=8)
    extra = game(200)
    extra["search_policy"] = np.full((4, 4), 0.25, np.float32)
    writer.add("network+search", extra, cursor=1)
    writer.flush()
    write_games(store, range(2), phase="bootstrap")
    buf = replay.ReplayBuffer.load(store, RUN, ["self_play", "bootstrap"], replay.ReplayConfig())
    assert "search_policy" not in buf.columns and len(buf) == 12
    assert buf.columns["policy"].shape == (12, 4)
    only = replay.ReplayBuffer.load(store, RUN, ["self_play"], replay.ReplayConfig())
    assert only.columns["search_policy"].shape == (4, 4)


def test_quality_threshold_filters_inside_the_window(store):
    writer = shards.ReplayWriter(store, RUN, "bootstrap", shard_rows=8)
    for g in range(8):
        writer.add("heuristic", game(g, quality=0.1 if g % 2 else 0.9))
    writer.flush()
    config = replay.ReplayConfig(window_positions=16, quality_threshold=0.5)
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], config)
    assert sorted(set(buf.columns["game_id"].tolist())) == [4, 6]  # never reaches back to 0, 2
    assert (buf.columns["quality"] >= 0.5).all()
    assert len(replay.ReplayBuffer.load(store, RUN, ["bootstrap"], config.model_copy(update={"quality_threshold": 0.0}))) == 16


def test_position_quality():
    q = replay.position_quality(
        game_length=np.array([100, 25, 100, 100, 0]),
        decisive=np.array([True, True, False, True, True]),
        strength=np.array([1.0, 1.0, 1.0, 0.5, 1.0]),
        blunder=np.array([False, False, False, False, True]),
    )
    np.testing.assert_allclose(q, [1.0, 0.85, 0.7, 0.8, 0.0], atol=1e-6)
    assert q.dtype == np.float32
    s = replay.strength_from_elo(np.array([1500.0, 1900.0, 1100.0]), reference=1500.0)
    np.testing.assert_allclose(s, [0.5, 1 / 1.1, 1 - 1 / 1.1], rtol=1e-5)


def uniform_buffer(n: int, **config) -> replay.ReplayBuffer:
    columns = {"game_id": np.arange(n), "x": np.arange(n) * 10}
    return replay.ReplayBuffer(
        columns, ["k"], np.zeros(n, np.int32), np.arange(n, dtype=np.int32), replay.ReplayConfig(**config)
    )


def chi_square(counts: np.ndarray, p: np.ndarray) -> float:
    expected = counts.sum() * p
    return float(((counts - expected) ** 2 / expected).sum())


def test_prioritised_sampling_matches_the_documented_probabilities():
    n, draws = 20, 200_000
    buf = uniform_buffer(n, priority_alpha=0.7, priority_beta=0.5, recency_half_life=10)
    errors = np.linspace(0.0, 3.0, n)
    buf.update_priorities(np.arange(n), errors)
    recency = 0.5 ** ((n - 1 - np.arange(n)) / 10)
    p = recency * (errors + 1e-3) ** 0.7
    p /= p.sum()
    np.testing.assert_allclose(buf.probabilities(), p)
    batch = buf.sample(draws, np.random.default_rng(7))
    counts = np.bincount(batch.indices, minlength=n)
    # chi-square with 19 degrees of freedom: the 99.9% quantile is 43.8
    assert chi_square(counts, p) < 43.8
    np.testing.assert_array_equal(batch.columns["x"], batch.indices * 10)
    np.testing.assert_allclose(batch.weights, (p.min() / p[batch.indices]) ** 0.5, rtol=1e-5)
    assert batch.weights.max() <= 1.0
    again = buf.sample(draws, np.random.default_rng(7))
    np.testing.assert_array_equal(again.indices, batch.indices)  # seeded: reproducible


def test_uniform_sampling_without_priorities():
    buf = uniform_buffer(10, priority_alpha=0.0)
    buf.update_priorities(np.arange(5), np.full(5, 100.0))
    counts = np.bincount(buf.sample(100_000, np.random.default_rng(1)).indices, minlength=10)
    assert chi_square(counts, np.full(10, 0.1)) < 27.9  # 9 dof, 99.9%
    assert np.allclose(buf.sample(10, np.random.default_rng(1)).weights, 1.0)


def test_priorities_carry_over_to_the_next_window(store):
    write_games(store, range(4))
    config = replay.ReplayConfig(window_positions=12)
    first = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], config)
    first.update_priorities(np.arange(len(first)), np.arange(len(first)) + 1.0)
    write_games(store, [4, 5])
    second = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], config, state=first.state_dict())
    # games 2..3 stay (rows 4..11 of the first window), games 4..5 are new
    np.testing.assert_allclose(second.priority[:4], first.priority[8:12])
    assert (second.priority[4:] == first.max_priority).all()
    assert second.max_priority == pytest.approx(12.001)


def test_empty_buffer_refuses_to_sample(store):
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], replay.ReplayConfig())
    assert len(buf) == 0 and buf.games == 0
    with pytest.raises(ValueError, match="empty replay buffer"):
        buf.sample(4, np.random.default_rng(0))


# ---------------------------------------------------------------------------- ouro data stats


def test_data_stats_json(store, capsys):
    write_games(store, range(4), producer="heuristic", quality=0.5)
    write_games(store, range(10, 12), phase="hybrid", producer="neural-v1", quality=1.0)
    write_games(store, range(20, 22), phase="hybrid", worker=1, producer="heuristic", quality=0.0)
    assert cli.main(["data", "stats", "--store", store.url, "--run", RUN, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"]["games"] == 8 and doc["total"]["positions"] == 32 and doc["total"]["shards"] == 4
    assert doc["total"]["quality_mean"] == pytest.approx((16 * 0.5 + 8 * 1.0) / 32)
    phases = {p["phase"]: p for p in doc["phases"]}
    assert (phases["bootstrap"]["games"], phases["hybrid"]["games"]) == (4, 4)
    assert phases["hybrid"]["quality_mean"] == pytest.approx(0.5)
    producers = {(p["phase"], p["producer"]): p for p in doc["producers"]}
    assert producers[("hybrid", "neural-v1")]["positions"] == 8
    assert producers[("hybrid", "heuristic")]["quality_mean"] == pytest.approx(0.0)
    assert 0 <= doc["total"]["newest_age_s"] <= doc["total"]["oldest_age_s"] < 60
    assert doc["total"]["oldest_at"].endswith("+00:00")


def test_data_stats_table_and_verify(store, capsys):
    write_games(store, range(4), producer="heuristic")
    write_games(store, range(4), phase="self_play", producer="neural-v3")
    assert data_cmd.main(["stats", "--store", store.url]) == 0
    out = capsys.readouterr().out
    for text in ("bootstrap", "self_play", "heuristic", "neural-v3", "total", "all runs"):
        assert text in out
    corrupt(store, shards.list_shards(store, RUN, "self_play")[0].key)
    assert data_cmd.main(["stats", "--store", store.url, "--verify"]) == data_cmd.EXIT_CORRUPT
    assert "corrupt shard" in capsys.readouterr().out


def test_data_stats_empty_store_and_usage(tmp_path, capsys):
    assert data_cmd.main(["stats", "--store", str(tmp_path / "nothing")]) == 0
    assert "no replay shards" in capsys.readouterr().out
    assert data_cmd.main(["stats", "--store", str(tmp_path), "--phase", "hybrid"]) == 2
    assert data_cmd.main(["stats", "--store", str(tmp_path), "--run", "../x"]) == 1
    assert data_cmd.main(["nonsense"]) == 2


def test_a_window_of_older_encoding_shards_is_completed_to_the_current_encoding(store):
    """Replay written before the territory planes (17 planes, encoding version 1) still trains: the
    window gets the current planes, territory computed from the old ones (a run continued across an
    upgrade mixes both)."""
    from ouroboros.trainer.engine import maps, rules
    from ouroboros.trainer.engine.types import GameConfig
    from ouroboros.trainer.observation import encoding, safety

    config = GameConfig(7, 7, 2)
    state = maps.new_games(config, np.arange(4))
    rng = np.random.default_rng(0)
    for _ in range(6):
        rules.advance(config, state, safety.choose(safety.safe_moves(config, state).astype(float), rng))
    planes, _, _ = encoding.encode_all(config, state)
    n = len(planes)
    columns = {"value": np.zeros(n), "game_id": np.arange(n), "turn": np.zeros(n), "seat": np.zeros(n),
               "quality": np.ones(n)}
    old = shards.ReplayWriter(store, RUN, "bootstrap", 0, shard_rows=n)
    old.add("heuristic", {**columns, "planes": planes[:, :17].astype(np.float16)}, cursor=1)
    old.flush()
    new = shards.ReplayWriter(store, RUN, "hybrid", 0, shard_rows=n)
    new.add("heuristic", {**columns, "game_id": np.arange(n) + n, "planes": planes.astype(np.float16)}, cursor=1)
    new.flush()
    buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap", "hybrid"], replay.ReplayConfig())
    window = buf.columns["planes"]
    assert window.shape == (2 * n, encoding.N_CHANNELS, 7, 7) and window.dtype == np.float16
    assert np.array_equal(window[:n], window[n:]) and np.array_equal(window[:n, 17:], planes[:, 17:])


@pytest.mark.parametrize("shape", [(4, 18, 7, 7), (4, 0, 7, 7), (4, 19, 9, 9), (4, 19, 7)])
def test_a_shard_whose_planes_do_not_fit_the_window_is_skipped_naming_it(store, caplog, shape):
    """A window cannot hold planes of two layouts (another plane count or board: a foreign producer, an
    encoding of no version): the older shard is skipped with a warning naming it and both layouts, listed
    in ``skipped``, and the rest trains. A phase checks the window against its network's input planes."""
    from ouroboros.trainer.observation import encoding

    n = shape[0]
    columns = {"value": np.zeros(n), "game_id": np.arange(n), "turn": np.zeros(n), "seat": np.zeros(n),
               "quality": np.ones(n)}
    bad = shards.ReplayWriter(store, RUN, "bootstrap", 0, shard_rows=n)
    bad.add("heuristic", {**columns, "planes": np.zeros(shape, np.float16)}, cursor=1)
    bad.flush()
    good = shards.ReplayWriter(store, RUN, "hybrid", 0, shard_rows=n)
    planes = np.zeros((n, encoding.N_CHANNELS, 7, 7), np.float16)
    good.add("heuristic", {**columns, "game_id": np.arange(n) + n, "planes": planes}, cursor=1)
    good.flush()
    with caplog.at_level(logging.WARNING):
        buf = replay.ReplayBuffer.load(store, RUN, ["bootstrap", "hybrid"], replay.ReplayConfig())
    key = shards.shard_key(RUN, "bootstrap", 0, 0)
    assert buf.skipped == [key] and buf.columns["planes"].shape == (n, encoding.N_CHANNELS, 7, 7)
    layout = ", ".join(map(str, shape[1:]))
    assert f"{key}: planes [N, {layout}] differ from the window's newest shard's [N, 19, 7, 7]" in caplog.text
    replay.check_planes(buf.columns, encoding.N_CHANNELS, "bootstrap")
    alone = replay.ReplayBuffer.load(store, RUN, ["bootstrap"], replay.ReplayConfig())
    if len(shape) == 4 and shape[1] != encoding.N_CHANNELS:
        with pytest.raises(ValueError, match=rf"bootstrap: replay planes \({n}, {shape[1]}, .* do not fit the "
                                             r"network's 19 input planes \(encoding versions: 17 for version 1, "
                                             r"19 for version 2\)"):
            replay.check_planes(alone.columns, encoding.N_CHANNELS, "bootstrap")
