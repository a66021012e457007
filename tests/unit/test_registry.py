"""Artifact store, model registry and `ouro registry`: what a user relies on.

Every behaviour is checked on a local directory, on ``memory://`` and on ``s3://`` against a
real S3 server (versitygw, built from its Go module; those cases are also marked integration): atomic
writes, sha256 verification, promotion history, rollback, pins, crash safety
(a failure at the commit point of a pointer write leaves the old champion in
force and loadable) and refusal of corrupt artifacts.
"""

import json
import os
import time
import uuid

import pytest

from ouroboros.contract.game import GameKey
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.artifacts import store as st
from ouroboros.trainer.commands import registry as cli

pytestmark = pytest.mark.unit

GAME = "standard-7x7-2p"  # the board of the onnx_models fixture (a model must hold its game's board)


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.integration)])
def url(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "registry")
        return
    if request.param == "s3":  # a real S3 server (versitygw, tests/s3server.py), a new bucket per test
        yield f"s3://{request.getfixturevalue('s3_bucket')}/registry"
        return
    url = f"memory://test-{uuid.uuid4().hex}"
    yield url
    store = st.ArtifactStore(url)
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture
def registry(url):
    return reg.Registry.open(url)


def add(registry, content: bytes, run: str = "run", **kw) -> reg.ModelVersion:
    return registry.register(content, architecture="resnet-6x64", run=run, phase="self_play", **kw)


def corrupt(store: st.ArtifactStore, key: str) -> None:
    """Flip one byte of the stored artifact behind the store's back."""
    data = bytearray(store.fs.cat_file(store.path(key)))
    data[0] ^= 0xFF
    store.fs.pipe_file(store.path(key), bytes(data))


# ------------------------------------------------------------------ store


def test_store_round_trip_with_sidecar(url):
    store = st.ArtifactStore(url)
    info = store.put_bytes("models/a/model.onnx", b"hello", {"k": "v"})
    # sha256("hello"), from `printf hello | sha256sum`
    assert info.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert info.size == 5 and info.uri.endswith("/models/a/model.onnx")
    assert store.get_bytes("models/a/model.onnx") == b"hello"
    sidecar = json.loads(store.fs.cat_file(store.path("models/a/model.onnx") + ".meta.json"))
    assert sidecar["sha256"] == info.sha256 and sidecar["metadata"] == {"k": "v"}
    assert store.info("models/a/model.onnx") == info
    assert store.list() == ["models/a/model.onnx"] == store.list("models")
    store.write_json("docs/x.json", {"a": 1})
    assert store.read_json("docs/x.json") == {"a": 1} and store.read_json("docs/y.json") is None
    assert store.list() == ["models/a/model.onnx"]  # documents are not artifacts


def test_store_streams_files_and_downloads_verified(url, tmp_path):
    store = st.ArtifactStore(url)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * st.CHUNK + 17))
    info = store.put_file("blobs/big.bin", src)
    assert info.size == src.stat().st_size
    out = tmp_path / "out" / "copy.bin"
    store.get_file("blobs/big.bin", out)
    assert out.read_bytes() == src.read_bytes()

    corrupt(store, "blobs/big.bin")
    bad = tmp_path / "out" / "bad.bin"
    with pytest.raises(st.ChecksumError):
        store.get_file("blobs/big.bin", bad)
    assert not bad.exists() and os.listdir(tmp_path / "out") == ["copy.bin"]


def test_checksum_error_names_uri_and_both_digests(url):
    store = st.ArtifactStore(url)
    info = store.put_bytes("m/model.onnx", b"weights")
    corrupt(store, "m/model.onnx")
    with pytest.raises(st.ChecksumError) as caught:
        store.get_bytes("m/model.onnx")
    err = caught.value
    assert err.uri == info.uri and err.expected == info.sha256 and err.actual != info.sha256
    assert info.uri in str(err) and info.sha256 in str(err) and err.actual in str(err)
    with pytest.raises(st.ChecksumError):
        store.verify("m/model.onnx")


def test_failed_write_keeps_old_content_and_leaves_no_temp(url, monkeypatch):
    store = st.ArtifactStore(url)
    store.write_json("champions/x.json", {"version": "old"})

    def crash(self, tmp, path):
        raise OSError("simulated crash between temp write and rename")

    monkeypatch.setattr(st.ArtifactStore, "_replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.write_json("champions/x.json", {"version": "new"})
    assert store.read_json("champions/x.json") == {"version": "old"}
    assert [p.rsplit("/", 1)[-1] for p in store.fs.find(store.root)] == ["x.json"]


@pytest.mark.parametrize(
    "key", ["", "/abs", "a/../b", "a//b", ".hidden/x", "a/.tmp", "x.meta.json"]
)
def test_store_refuses_bad_keys(url, key):
    with pytest.raises(ValueError, match="invalid artifact key"):
        st.ArtifactStore(url).put_bytes(key, b"x")


def test_store_missing_artifact(url):
    with pytest.raises(st.ArtifactNotFoundError, match="no artifact at"):
        st.ArtifactStore(url).get_bytes("nope/model.onnx")


# ------------------------------------------------------------------ registry


def test_register_records_provenance(registry):
    v = add(registry, b"abc", run="run-7", game=GAME, metrics={"loss": 0.25}, metadata={"x": 1})
    assert (v.architecture, v.run, v.phase, v.game) == ("resnet-6x64", "run-7", "self_play", GAME)
    assert v.metrics == {"loss": 0.25} and v.metadata == {"x": 1}
    # sha256("abc"), FIPS 180-2 test vector
    assert v.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert v.size == 3 and registry.get(v.id) == v
    again = add(registry, b"abd", run="run-7")
    assert again.id != v.id and [x.id for x in registry.versions()] == [v.id, again.id]
    assert registry.load(v.id) == b"abc"
    with pytest.raises(reg.RegistryError, match="already exists"):
        add(registry, b"x", version_id=v.id)
    with pytest.raises(reg.VersionNotFoundError, match="no model version 'zzz'"):
        registry.get("zzz")


def test_promote_rollback_and_history(registry):
    a, b, c = (add(registry, bytes([i]) * 10, run=f"run{i}") for i in range(3))
    registry.promote(GAME, a.id, by="alice", reason="first")
    registry.promote(GAME, b.id, by="ci", reason="gate passed", statistics={"llr": 3.1})
    state = registry.promote(GAME, c.id, by="ci", run="run-x", reason="gate passed")
    assert state.version == c.id and state.sha256 == c.sha256 and state.generation == 3
    latest = state.history[0]
    assert (latest.version, latest.previous, latest.by, latest.run) == (c.id, b.id, "ci", "run-x")
    assert state.history[1].statistics == {"llr": 3.1} and state.history[1].run == "run1"

    state = registry.rollback(GAME, by="bob", reason="regression")
    assert state.version == b.id and state.history[0].action is reg.ChampionAction.ROLLBACK
    assert registry.load_champion(GAME) == (b, bytes([1]) * 10)
    assert registry.rollback(GAME).version == c.id  # previous twice swaps back, as `cd -`
    assert registry.rollback(GAME, a.id).version == a.id  # any earlier champion, one call
    assert registry.promote(GAME, a.id).generation == 6  # already champion: no new record
    assert registry.games() == [GAME]


def test_history_is_bounded(url):
    registry = reg.Registry.open(url, history_limit=3)
    versions = [add(registry, bytes([i]), run=f"r{i}") for i in range(5)]
    for v in versions:
        state = registry.promote(GAME, v.id)
    assert [r.version for r in state.history] == [v.id for v in versions[::-1][:3]]


def test_rollback_refusals(registry):
    a, b = add(registry, b"a"), add(registry, b"b")
    with pytest.raises(reg.RegistryError, match="nothing to roll back"):
        registry.rollback(GAME)
    registry.promote(GAME, a.id)
    with pytest.raises(reg.RegistryError, match="no previous version"):
        registry.rollback(GAME)
    with pytest.raises(reg.RegistryError, match="never champion.*use promote"):
        registry.rollback(GAME, b.id)


def test_pin_freezes_the_pointer(registry):
    a, b = add(registry, b"a"), add(registry, b"b")
    registry.promote(GAME, a.id)
    state = registry.pin(GAME, a.id, by="oncall", reason="incident")
    assert state.pinned_version == a.id
    with pytest.raises(reg.ChampionPinnedError, match="pinned to"):
        registry.promote(GAME, b.id)
    with pytest.raises(reg.ChampionPinnedError):
        registry.rollback(GAME)
    state = registry.unpin(GAME)
    assert state.pinned_version is None and state.version == a.id
    assert registry.promote(GAME, b.id).version == b.id
    assert registry.rollback(GAME).version == a.id  # unpin did not change "previous"


def test_promotion_refuses_other_games_and_bad_keys(registry):
    v = add(registry, b"x", game="royale-11x11-4p")
    with pytest.raises(reg.RegistryError, match="trained for 'royale-11x11-4p'"):
        registry.promote(GAME, v.id)
    with pytest.raises(ValueError, match="game key must look like RULESET-WxH-Np"):
        registry.promote("Bad Key", v.id)
    with pytest.raises(ValueError, match="invalid version id"):
        registry.get("../etc")
    assert str(GameKey.parse(GAME)) == GAME == str(GameKey("standard", 7, 7, 2))


def test_crash_during_promotion_keeps_old_champion(registry, monkeypatch):
    old, new = add(registry, b"old"), add(registry, b"new")
    registry.promote(GAME, old.id)
    real = st.ArtifactStore._replace

    def crash_on_pointer(self, tmp, path):
        if "/champions/" in path:
            raise OSError("simulated crash between temp write and rename")
        real(self, tmp, path)

    monkeypatch.setattr(st.ArtifactStore, "_replace", crash_on_pointer)
    with pytest.raises(OSError, match="simulated crash"):
        registry.promote(GAME, new.id)
    monkeypatch.undo()
    state = registry.champion(GAME)
    assert state.version == old.id and len(state.history) == 1
    assert registry.load_champion(GAME) == (old, b"old")
    assert registry.promote(GAME, new.id).version == new.id  # and it works afterwards


def test_corrupt_version_is_refused_and_never_promoted(registry, caplog):
    good, bad = add(registry, b"good"), add(registry, b"bad")
    registry.promote(GAME, good.id)
    corrupt(registry.store, bad.artifact)
    with pytest.raises(reg.ChecksumError, match=bad.sha256):
        registry.promote(GAME, bad.id)
    assert "is corrupt" in caplog.text  # reported, not only raised
    assert registry.champion(GAME).version == good.id
    with pytest.raises(reg.ChecksumError):
        registry.load(bad.id)


def test_corrupt_or_replaced_champion_is_refused_on_load(registry):
    a = add(registry, b"a")
    registry.promote(GAME, a.id)
    # re-upload different bytes with a matching sidecar: only the pointer's sha256 catches it
    sidecar = registry.store.info(a.artifact).metadata
    registry.store.put_bytes(a.artifact, b"tampered", sidecar)
    assert registry.get(a.id).sha256 != a.sha256
    with pytest.raises(reg.ChecksumError, match=a.sha256):
        registry.load_champion(GAME)


# ------------------------------------------------------------------ CLI


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_add_list_promote_show_rollback(url, tmp_path, capsys, onnx_models):
    files = []
    for name, model in zip(("a", "b"), onnx_models, strict=True):
        f = tmp_path / f"{name}.onnx"
        f.write_bytes(model)
        files.append(f)
    ids = []
    for i, f in enumerate(files):
        code, out, _ = run(
            capsys, "add", str(f), "--arch", "resnet-6x64", "--run", f"run{i}", "--phase",
            "bootstrap", "--metric", "loss=0.5", "--game", GAME, "--store", url, "--json",
        )  # fmt: skip
        assert code == 0
        doc = json.loads(out)
        assert doc["metrics"] == {"loss": 0.5} and doc["artifact"].endswith(f.name)
        ids.append(doc["id"])

    assert (
        run(capsys, "promote", ids[0], "--game", GAME, "--store", url, "--reason", "first")[0] == 0
    )
    stats_file = tmp_path / "gate.json"
    stats_file.write_text(json.dumps({"llr": 2.97, "verdict": "promote"}))
    code, out, _ = run(capsys, "promote", ids[1], "--game", GAME, "--store", url,
                       "--stats", str(stats_file), "--by", "ci", "--json")  # fmt: skip
    assert code == 0 and json.loads(out)["version"] == ids[1] and json.loads(out)["changed"]

    code, out, _ = run(capsys, "list", "--store", url, "--json")
    listing = json.loads(out)
    assert [v["id"] for v in listing] == ids and listing[1]["champion_of"] == [GAME]
    code, out, _ = run(capsys, "list", "--store", url)  # human table
    assert code == 0 and ids[0] in out and ids[1] in out and GAME in out

    code, out, _ = run(capsys, "show", "--game", GAME, "--store", url, "--json")
    state = json.loads(out)
    assert state["history"][0]["by"] == "ci" and state["history"][0]["statistics"]["llr"] == 2.97
    code, out, _ = run(capsys, "show", "--game", GAME, "--store", url)
    assert code == 0 and "promote" in out and ids[1] in out
    code, out, _ = run(capsys, "show", ids[0], "--store", url)
    assert code == 0 and "resnet-6x64" in out

    code, out, _ = run(capsys, "rollback", "--game", GAME, "--store", url, "--reason", "bad")
    assert code == 0 and ids[0] in out
    assert reg.Registry.open(url).champion(GAME).version == ids[0]
    code, out, _ = run(capsys, "verify", ids[1], "--store", url, "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_cli_errors_and_exit_codes(url, capsys, monkeypatch, onnx_models):
    registry = reg.Registry.open(url)
    v = add(registry, onnx_models[0])
    code, _, err = run(capsys, "promote", "missing", "--game", GAME, "--store", url)
    assert code == 1 and "no model version 'missing'" in err
    code, _, err = run(capsys, "rollback", "--game", GAME, "--store", url)
    assert code == 1 and "nothing to roll back" in err
    code, _, err = run(capsys, "promote", v.id, "--store", url)  # --game is required
    assert code == 2 and "--game" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "rollback" in out

    corrupt(registry.store, v.artifact)
    code, _, err = run(capsys, "promote", v.id, "--game", GAME, "--store", url)
    assert code == 3 and "checksum mismatch" in err and v.sha256 in err
    assert registry.champion(GAME).version is None
    code, _, err = run(capsys, "verify", v.id, "--store", url)
    assert code == 3

    monkeypatch.setenv("OURO_STORE", url)  # the default store comes from the environment
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0 and [x["id"] for x in json.loads(out)] == [v.id]


def test_cli_add_refuses_missing_file_and_bad_metric(url, tmp_path, capsys):
    """Flags in error are usage errors (2) found before the registry is opened, each naming its flag."""
    base = ["--arch", "a", "--run", "r", "--phase", "p", "--store", url]
    code, _, err = run(capsys, "add", str(tmp_path / "none.onnx"), *base)
    assert code == 2 and "no such file" in err
    f = tmp_path / "m.onnx"
    f.write_bytes(b"m")
    code, _, err = run(capsys, "add", str(f), *base, "--metric", "loss=low")
    assert code == 2 and "--metric 'loss' must be a number" in err
    code, _, err = run(capsys, "add", str(f), *base, "--meta", "novalue")
    assert code == 2 and "--meta must look like NAME=VALUE, got 'novalue'" in err
    for value in ("nan", "inf", "-inf", "1e999"):  # accepted by float(), refused by JSON: the record would be unreadable
        code, _, err = run(capsys, "add", str(f), *base, "--metric", f"loss={value}")
        assert code == 2 and f"--metric 'loss' must be a finite number, got '{value}'" in err
    code, _, err = run(capsys, "add", str(f), *base, "--game", "junk")
    assert code == 2 and "--game: game key must look like" in err
    code, _, err = run(capsys, "add", str(tmp_path), *base)
    assert code == 2 and f"{tmp_path} is not a regular file" in err
    for bad in ("bad id", "../up", "previous", "x" * 129):  # found before the model is read
        code, _, err = run(capsys, "add", str(f), *base, "--id", bad)
        assert code == 2 and f"--id: invalid version id {bad!r}" in err
    assert reg.Registry.open(url).versions() == []


def test_a_model_too_small_for_the_game_is_never_registered_or_put_in_force(url, tmp_path, capsys, onnx_models):
    """A 7x7 model cannot play an 11x11 game: `add --game` refuses it and no verb makes it that game's champion
    (exit 3 naming both boards); it stays good for the 7x7 game (and a larger model plays smaller boards, padded)."""
    f = tmp_path / "m7.onnx"
    f.write_bytes(onnx_models[0])
    base = ["--arch", "a", "--run", "r", "--phase", "p", "--store", url]
    code, _, err = run(capsys, "add", str(f), *base, "--game", "standard-11x11-2p")
    assert code == 3 and "model plays boards up to 7x7 (its contract's board), the game standard-11x11-2p is 11x11" in err
    assert reg.Registry.open(url).versions() == []
    assert run(capsys, "add", str(f), *base, "--id", "m7")[0] == 0
    for argv in (["promote", "m7"], ["pin", "m7"], ["promote", "m7", "--gate"]):
        for game in ("standard-11x11-2p", "royale-7x8-4p"):
            code, _, err = run(capsys, *argv, "--game", game, "--store", url)
            assert code == 3 and f"the game {game} is" in err and "Traceback" not in err, (argv, game)
            assert reg.Registry.open(url).champion(game).version is None
    assert run(capsys, "promote", "m7", "--game", "standard-5x7-2p", "--store", url)[0] == 0
    assert run(capsys, "promote", "m7", "--game", GAME, "--store", url)[0] == 0


def test_store_flag_before_or_after_the_verb(url, capsys, onnx_models):
    v = add(reg.Registry.open(url), onnx_models[0])
    for argv in (["--store", url, "list", "--json"], ["list", "--json", "--store", url], ["--registry", url, "list",
                                                                                          "--json"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0 and [x["id"] for x in json.loads(out)] == [v.id], argv
    code, out, _ = run(capsys, "--store", "/nonexistent-elsewhere", "list", "--json", "--store", url)
    assert code == 0 and [x["id"] for x in json.loads(out)] == [v.id]  # the verb's own flag wins


@pytest.mark.parametrize("junk", [b"not a model at all", b"\x00" * 64, None], ids=["text", "zeros", "half"])
def test_cli_add_refuses_a_file_no_server_could_load(url, tmp_path, capsys, onnx_models, junk):
    """`ouro registry add` checks the ONNX contract as promotion does: exit 3 naming the problem, nothing kept."""
    f = tmp_path / "junk.onnx"
    f.write_bytes(junk if junk is not None else onnx_models[0][: len(onnx_models[0]) // 2])
    code, _, err = run(capsys, "add", str(f), "--arch", "a", "--run", "r", "--phase", "p", "--store", url)
    assert code == 3 and "not a loadable ONNX model" in err and "Traceback" not in err
    assert reg.Registry.open(url).versions() == []


@pytest.mark.parametrize(("content", "words"), [
    (None, "--stats: cannot read"),
    ("[1", "--stats: {path} is not JSON: Expecting"),
    ("[1, 2]", "--stats: {path} must hold a JSON object, not list"),
    ("\"text\"", "must hold a JSON object, not str"),
    ('{"llr": 1e999}', "--stats: {path}: 1e999 is not a finite number"),
    ('{"llr": NaN}', "--stats: {path}: NaN is not a finite number"),
    ('{"llr": -Infinity}', "--stats: {path}: -Infinity is not a finite number"),
    ('{"games": ' + "9" * 5000 + "}", "--stats: {path}: an integer of 5000 digits is too long"),
    ("[" * 100_000 + "]" * 100_000, "--stats: {path} is nested too deeply"),
    ("", "--stats: {path} is not JSON: Expecting value"),
])
def test_promote_refuses_stats_that_are_not_a_json_object(url, tmp_path, capsys, onnx_models, content, words):
    registry = reg.Registry.open(url)
    v = add(registry, onnx_models[0])
    stats = tmp_path / "gate.json"
    if content is not None:
        stats.write_text(content)
    code, _, err = run(capsys, "promote", v.id, "--game", GAME, "--store", url, "--stats", str(stats))
    assert code == 2 and words.format(path=stats) in err and "Traceback" not in err
    assert registry.champion(GAME).version is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["folder", "pipe"])
def test_promote_refuses_stats_that_are_not_a_file(url, tmp_path, capsys, onnx_models, where):
    """A --stats path that is no regular file is refused before it is read (a pipe with no writer would
    block for ever, /dev/zero would fill the memory)."""
    registry = reg.Registry.open(url)
    v = add(registry, onnx_models[0])
    stats = tmp_path / where
    if where == "folder":
        stats.mkdir()
    else:
        os.mkfifo(stats)
    code, _, err = run(capsys, "promote", v.id, "--game", GAME, "--store", url, "--stats", str(stats))
    assert code == 2 and f"--stats: cannot read {stats}: not a regular file" in err
    assert registry.champion(GAME).version is None


def test_promote_gate_refuses_stats_of_its_own(url, tmp_path, capsys, onnx_models):
    """--stats records a manual promotion's statistics; with --gate they would be dropped, so the pair is refused."""
    v = add(reg.Registry.open(url), onnx_models[0])
    stats = tmp_path / "gate.json"
    stats.write_text("{}")
    code, _, err = run(capsys, "promote", v.id, "--game", GAME, "--store", url, "--gate", "--stats", str(stats))
    assert code == 2 and "--stats records the statistics of a manual promotion" in err
    assert reg.Registry.open(url).champion(GAME).version is None


def test_registry_game_flag_is_a_usage_error(url, capsys, onnx_models):
    """A malformed --game is a bad flag (2), named, before the registry is opened."""
    v = add(reg.Registry.open(url), onnx_models[0])
    code, _, err = run(capsys, "promote", v.id, "--game", "junk", "--store", url)
    assert code == 2 and "--game: game key must look like RULESET-WxH-Np" in err


@pytest.mark.parametrize("verb", ["promote", "pin"])
def test_a_model_that_does_not_load_is_never_put_in_force(url, tmp_path, capsys, onnx_models, verb):
    """The registry's API stores any bytes (`ouro registry add` refuses them at the door), but no verb puts
    in force a model that a server could not load."""
    registry = reg.Registry.open(url)
    good = add(registry, onnx_models[0], run="good")
    registry.promote(GAME, good.id)
    for junk in (b"\x00" * 64, b"not a model at all", onnx_models[0][: len(onnx_models[0]) // 2]):
        bad = add(registry, junk, run=f"junk{len(junk)}")
        code, _, err = run(capsys, verb, bad.id, "--game", GAME, "--store", url)
        assert code == 3 and "ouro registry: error:" in err and "Traceback" not in err
        assert registry.champion(GAME).version == good.id
    code, _, err = run(capsys, "promote", bad.id, "--game", GAME, "--store", url, "--gate")
    assert code == 3 and "Traceback" not in err


def test_rollback_refuses_a_version_whose_bytes_and_sidecar_were_both_rewritten(url, onnx_models):
    registry = reg.Registry.open(url)
    first, second = (add(registry, m, run=f"r{i}") for i, m in enumerate(onnx_models))
    registry.promote(GAME, first.id)
    registry.promote(GAME, second.id)
    # an attacker rewrites the old version's file and its sidecar consistently
    info = registry.store.info(first.artifact)
    registry.store.put_bytes(first.artifact, onnx_models[1], info.metadata)
    with pytest.raises(st.ChecksumError, match="checksum mismatch"):
        registry.rollback(GAME)
    assert registry.champion(GAME).version == second.id


@pytest.mark.parametrize("content", [b"null", b"[]", b"{}", b'{"game": 3}', b"{"])
def test_a_damaged_champion_pointer_is_an_error_not_a_fresh_start(url, onnx_models, content):
    registry = reg.Registry.open(url)
    v = add(registry, onnx_models[0])
    registry.promote(GAME, v.id)
    registry.store.fs.pipe_file(registry.store.path(f"champions/{GAME}.json"), content)
    with pytest.raises(st.ArtifactError):
        registry.champion(GAME)
    with pytest.raises(st.ArtifactError):
        registry.promote(GAME, v.id)


def test_registering_the_same_run_and_bytes_again_returns_the_existing_version(registry, onnx_models):
    first = add(registry, onnx_models[0], run="again")
    assert add(registry, onnx_models[0], run="again").id == first.id
    assert add(registry, onnx_models[1], run="again").id != first.id  # other bytes: a new version
    assert len(registry.versions()) == 2


def test_temp_files_of_killed_writes_are_swept_once_stale(registry, onnx_models):
    v = add(registry, onnx_models[0])
    store = registry.store
    folder = store.path(v.artifact).rsplit("/", 1)[0]
    stale, fresh = f"{folder}/.model.onnx.meta.json.tmp-{'a' * 32}", f"{folder}/.model.onnx.tmp-{'b' * 32}"
    store.fs.pipe_file(stale, b"half a sidecar")
    store.fs.pipe_file(fresh, b"a write in progress")
    if store.is_local:  # memory:// has no mtime: files of unknown age are kept
        os.utime(stale, (time.time() - 7200, time.time() - 7200))
    add(registry, onnx_models[1], run="other")  # any registration sweeps models/
    assert store.fs.exists(fresh) and store.fs.exists(stale) is not store.is_local
    assert [x.id for x in registry.versions()] == [v.id, registry.versions()[1].id]


@pytest.mark.parametrize(("argv", "served"), [
    ([], "policy"),
    (["--player", "nsearch"], "nsearch:ms=100"),
    (["--player", "nsearch", "--move-budget-ms", "30", "--max-visits", "64"], "nsearch:ms=30,visits=64"),
    (["--player", "nsearch:ms=40"], "nsearch:ms=40"),
    (["--player", "champion+nsearch:ms=0,visits=8", "--move-budget-ms", "30"], "nsearch:ms=0,visits=8"),
])
def test_promote_gate_player_takes_the_words_of_ouro_serve(argv, served):
    """`--player` reads what the gate's other verbs read (`ouro train --gate-player`, the check's --player)."""
    args = cli.build_parser().parse_args(["promote", "v1", "--game", GAME, "--gate", *argv])
    assert cli.promotion_spec(args).served_player == served


def test_promote_gate_refuses_a_player_it_cannot_serve(url, capsys):
    code, _, err = run(capsys, "promote", "v1", "--game", GAME, "--store", url, "--gate", "--player", "search:ms=5")
    assert code == 2 and "--player: unknown player 'search:ms=5'" in err


@pytest.mark.parametrize(("argv", "line"), [
    (["--games", "-4"], "--games: Input should be greater than or equal to 2"),
    (["--min-games", "0"], "--min-games: Input should be greater than or equal to 2"),
    (["--min-win-rate", "5"], "--min-win-rate: Input should be less than or equal to 1"),
    (["--max-p99-ms", "-1"], "--max-p99-ms: Input should be greater than 0"),
    (["--max-memory-mb", "0"], "--max-memory-mb: Input should be greater than 0"),
    (["--move-budget-ms", "-3"], "--move-budget-ms: Input should be greater than or equal to 0"),
    (["--max-visits", "-1"], "--max-visits: Input should be greater than or equal to 0"),
    (["--seed", "-1"], "--seed: Input should be greater than or equal to 0"),
    (["--sprt", "garbage"], "--sprt expects numbers"),
    (["--baseline", "junk"], "--baseline 'junk': player:"),
    (["--player", "nsearch", "--move-budget-ms", "0"], "--player: 'nsearch': promotion.player nsearch needs a budget"),
])
def test_a_bad_gate_flag_is_a_usage_error_of_one_line_naming_the_flag(tmp_path, capsys, argv, line):
    """Exit 2 (usage) with the flag's name, not pydantic's multi-line report on a field (exit 1), and
    before the store is touched."""
    store = tmp_path / "store"
    code, _, err = run(capsys, "promote", "v1", "--game", GAME, "--store", str(store), "--gate", *argv)
    assert code == 2 and err.count("\n") == 1 and line in err, err
    assert not store.exists()
