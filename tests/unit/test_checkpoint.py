"""Checkpoints and the resumable loop: what a killed phase relies on to continue.

A checkpoint restores model, optimiser, counters, RNGs, config and extra state
exactly; the pointer moves only after the checkpoint is complete; a corrupt
newest checkpoint falls back to the previous one with a warning; and a loop
interrupted at any step and restored ends with the same weights as one that
never stopped.
"""

import io
import logging
import random
import uuid

import numpy as np
import pytest
import torch
from pydantic import BaseModel, Field

from ouroboros.trainer.artifacts import store as st
from ouroboros.trainer.learning import checkpoint as ck

pytestmark = pytest.mark.unit

PREFIX = "runs/r1/checkpoints/bootstrap"


class TinyConfig(BaseModel):
    """A phase config section."""

    lr: float = Field(0.01, description="Learning rate.")
    hidden: int = Field(8, description="Hidden units.")


def make_state(seed: int = 0) -> ck.TrainState:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(8, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return ck.TrainState(model, optimizer)


class Data:
    """A data source with state (like a replay buffer's priorities)."""

    def __init__(self) -> None:
        self.seen = np.zeros(3, np.int64)

    def state_dict(self):
        return {"seen": self.seen.copy()}


def step_fn(state: ck.TrainState, data: Data, step: int) -> dict[str, float]:
    rng = ck.step_rng(42, step)
    x = torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, 16))
    state.model.train()
    loss = torch.nn.functional.cross_entropy(state.model(x), y)  # dropout draws from torch's RNG
    state.optimizer.zero_grad()
    loss.backward()
    state.optimizer.step()
    data.seen[step % 3] += 1
    return {"loss": loss.item()}


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


def test_round_trip_restores_everything(store):
    state = make_state()
    data = Data()
    for step in range(3):
        step_fn(state, data, step)
    ckpt_er = ck.Checkpointer(store, PREFIX)
    info = ckpt_er.save(
        model=state.model, optimizer=state.optimizer, step=3, iteration=1, config=TinyConfig(),
        metrics={"loss": 0.5}, extra={"data": data.state_dict(), "note": "x"},
    )
    assert info.metadata["step"] == 3 and info.metadata["config"] == {"lr": 0.01, "hidden": 8}
    assert store.read_json(f"{PREFIX}/latest.json")["sha256"] == info.sha256
    loaded = ck.Checkpointer(store, PREFIX).load_latest()
    assert (loaded.step, loaded.iteration, loaded.metrics, loaded.config) == (3, 1, {"loss": 0.5}, TinyConfig().model_dump())
    np.testing.assert_array_equal(loaded.extra["data"]["seen"], [1, 1, 1])
    assert loaded.extra["note"] == "x"
    fresh = make_state(seed=99)
    fresh.model.load_state_dict(loaded.model)
    fresh.optimizer.load_state_dict(loaded.optimizer)
    for a, b in zip(weights(fresh.model), weights(state.model), strict=True):
        assert torch.equal(a, b)
    assert fresh.optimizer.state_dict()["state"][0]["step"] == 3


def test_rng_states_are_restored():
    saved = ck.capture_rng()
    expected = (random.random(), np.random.random(), torch.rand(3))
    random.random(), np.random.random(), torch.rand(5)  # move them on
    ck.restore_rng(saved)
    got = (random.random(), np.random.random(), torch.rand(3))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_pointer_moves_only_after_the_checkpoint_is_complete(store, monkeypatch):
    state = make_state()
    ckpt_er = ck.Checkpointer(store, PREFIX)
    ckpt_er.save(model=state.model, optimizer=state.optimizer, step=1)

    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(store, "_write_atomic", die)
    with pytest.raises(KeyboardInterrupt):
        ckpt_er.save(model=state.model, optimizer=state.optimizer, step=2)
    monkeypatch.undo()
    assert store.read_json(f"{PREFIX}/latest.json")["step"] == 1
    assert ckpt_er.list() == [(1, ckpt_er.key(1))] and ckpt_er.load_latest().step == 1


def test_newer_checkpoint_than_the_pointer_is_used(store, monkeypatch):
    """Killed between the checkpoint and the pointer swap: the complete checkpoint counts."""
    state = make_state()
    ckpt_er = ck.Checkpointer(store, PREFIX)
    ckpt_er.save(model=state.model, optimizer=state.optimizer, step=1)
    real = store.write_json

    def die(key, doc):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "write_json", die)
    with pytest.raises(KeyboardInterrupt):
        ckpt_er.save(model=state.model, optimizer=state.optimizer, step=2)
    monkeypatch.setattr(store, "write_json", real)
    assert store.read_json(f"{PREFIX}/latest.json")["step"] == 1
    assert ckpt_er.load_latest().step == 2


def test_corrupt_newest_falls_back_with_a_warning(store, caplog):
    state = make_state()
    ckpt_er = ck.Checkpointer(store, PREFIX)
    for step in (1, 2, 3):
        ckpt_er.save(model=state.model, optimizer=state.optimizer, step=step)
    path = store.path(ckpt_er.key(3))
    data = bytearray(store.fs.cat_file(path))
    data[-100] ^= 0xFF
    store.fs.pipe_file(path, bytes(data))
    caplog.set_level(logging.WARNING)
    assert ckpt_er.load_latest().step == 2
    assert "step-0000000003.pt is unusable" in caplog.text and "checksum mismatch" in caplog.text
    for step in (1, 2):
        store.fs.pipe_file(store.path(ckpt_er.key(step)), b"garbage")
    with pytest.raises(ck.CheckpointError, match="all 3 checkpoints"):
        ckpt_er.load_latest()


def rewrite_payload(store, ckpt_er: ck.Checkpointer, step: int, change) -> None:
    """Rewrite checkpoint ``step`` as ``change(payload)`` and point latest.json at it, as a
    trainer that writes that payload would have left it."""
    payload = torch.load(io.BytesIO(store.get_bytes(ckpt_er.key(step))), weights_only=True)
    buf = io.BytesIO()
    torch.save(change(payload), buf)
    info = store.put_bytes(ckpt_er.key(step), buf.getvalue())
    store.write_json(f"{PREFIX}/latest.json", {"key": ckpt_er.key(step), "sha256": info.sha256, "step": step})


def format_1(payload: dict) -> dict:
    """The payload as format 1 wrote it: the round counter called ``epoch``."""
    payload = dict(payload, format=1, epoch=payload["iteration"])
    del payload["iteration"]
    return payload


def test_a_format_1_checkpoint_resumes_with_its_epoch_as_the_iteration(store):
    state = make_state()
    ckpt_er = ck.Checkpointer(store, PREFIX)
    ckpt_er.save(model=state.model, optimizer=state.optimizer, step=4, iteration=2)
    rewrite_payload(store, ckpt_er, 4, format_1)
    restored = ck.ResumableLoop(ck.Checkpointer(store, PREFIX), step_fn).restore(make_state(seed=1))
    assert (restored.step, restored.iteration) == (4, 2)
    for a, b in zip(weights(restored.model), weights(state.model), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_of_an_unknown_format_is_refused_not_skipped(store):
    state = make_state()
    ckpt_er = ck.Checkpointer(store, PREFIX)
    for step in (1, 2):
        ckpt_er.save(model=state.model, optimizer=state.optimizer, step=step)
    rewrite_payload(store, ckpt_er, 2, lambda p: dict(p, format=ck.FORMAT_VERSION + 1))
    with pytest.raises(ck.CheckpointFormatError, match=r"step-0000000002\.pt: format 3; this trainer reads formats 1, 2"):
        ckpt_er.load_latest()  # not step 1: that would silently drop what the newer trainer did


def test_keeps_the_newest_few(store):
    state = make_state()
    ckpt_er = ck.Checkpointer(store, PREFIX, keep=2)
    for step in range(1, 6):
        ckpt_er.save(model=state.model, optimizer=state.optimizer, step=step)
    assert [s for s, _ in ckpt_er.list()] == [4, 5]
    leftover = f"{store.path(PREFIX)}/.step-0000000006.pt.tmp-0123"
    store.fs.pipe_file(leftover, b"killed mid-save")
    assert ck.Checkpointer(store, PREFIX).list() == ckpt_er.list()
    assert not store.fs.exists(leftover)  # swept when the next trainer opens the prefix
    with pytest.raises(ValueError, match="keep"):
        ck.Checkpointer(store, PREFIX, keep=1)


def test_no_checkpoint_means_a_fresh_start(store):
    loop = ck.ResumableLoop(ck.Checkpointer(store, PREFIX), step_fn)
    state = make_state()
    assert loop.checkpointer.load_latest() is None
    assert loop.restore(state) is state and state.step == 0


def test_loop_checkpoints_periodically_and_at_the_end(store):
    saved = []
    loop = ck.ResumableLoop(ck.Checkpointer(store, PREFIX, keep=10), step_fn, every=3, config=TinyConfig())
    state = loop.run(make_state(), Data(), steps=10, hook=lambda s: saved.append(s.step))
    assert state.step == 10 and saved == list(range(1, 11))
    assert [s for s, _ in loop.checkpointer.list()] == [3, 6, 9, 10]
    assert loop.run(state, Data(), steps=10).step == 10  # nothing left to do


@pytest.mark.parametrize("fail_at", [1, 4, 6, 9])
def test_interrupted_loop_resumes_to_the_same_weights(store, fail_at):
    reference = ck.ResumableLoop(ck.Checkpointer(st.ArtifactStore("memory://" + uuid.uuid4().hex), PREFIX),
                                 step_fn, every=3)
    ref_data = Data()
    ref = reference.run(make_state(), ref_data, steps=10)

    def failing(state, data, step):
        if step == fail_at:
            raise KeyboardInterrupt("SIGKILL stand-in")
        return step_fn(state, data, step)

    with pytest.raises(KeyboardInterrupt):
        ck.ResumableLoop(ck.Checkpointer(store, PREFIX), failing, every=3).run(make_state(), Data(), steps=10)
    loop = ck.ResumableLoop(ck.Checkpointer(store, PREFIX), step_fn, every=3)
    state = make_state()  # a restarted phase: seed, build, restore
    if loop.checkpointer.list():
        torch.rand(7), np.random.random(3)  # RNGs wherever: the restore must put them back
    state = loop.restore(state)
    assert state.step == fail_at // 3 * 3
    data = Data()
    if state.data_state is not None:
        data.seen = state.data_state["seen"].copy()
    state = loop.run(state, data, steps=10)
    for a, b in zip(weights(state.model), weights(ref.model), strict=True):
        assert torch.equal(a, b)
    assert state.optimizer.state_dict()["state"][0]["step"] == 10
    np.testing.assert_array_equal(data.seen, ref_data.seen)  # no step counted twice


def test_a_checkpoint_saved_before_the_territory_planes_resumes_widened(store):
    """A phase interrupted before an upgrade to encoding version 2 resumes after it: the run's network
    now reads 19 planes, its checkpoint 17. The weights and Adam moments reading the input get zeros
    for the added planes, so the restored network computes what it did, and it trains on; a checkpoint
    that differs in any other shape is refused naming the tensor."""
    from ouroboros.trainer.learning import networks
    from ouroboros.trainer.observation import encoding

    tiny = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=1, channels=8)
    old = networks.build_network(tiny.model_copy(update={"in_channels": 17}), seed=0)
    optimizer = torch.optim.Adam(old.parameters(), lr=0.01)
    planes = torch.rand(8, encoding.N_CHANNELS, 7, 7)
    for _ in range(2):
        logits, value = old(planes[:, :17])
        optimizer.zero_grad()
        (logits.sum() + value.sum()).backward()
        optimizer.step()
    ck.Checkpointer(store, PREFIX).save(model=old, optimizer=optimizer, step=2, iteration=0, config=TinyConfig(),
                                        metrics={}, extra={})
    new = networks.build_network(tiny, seed=1)
    state = ck.TrainState(new, torch.optim.Adam(new.parameters(), lr=0.01))
    state = ck.ResumableLoop(ck.Checkpointer(store, PREFIX), step_fn).restore(state)
    old.eval(), new.eval()
    with torch.no_grad():
        for a, b in zip(old(planes[:, :17]), new(planes), strict=True):
            torch.testing.assert_close(a, b)
    first = next(iter(new.parameters()))
    moments = state.optimizer.state_dict()["state"][0]
    assert first.shape[1] == encoding.N_CHANNELS and moments["exp_avg"].shape == first.shape
    assert not moments["exp_avg"][:, 17:].any() and moments["step"] == 2
    new.train()
    logits, value = new(planes)
    (logits.sum() + value.sum()).backward()
    state.optimizer.step()  # the widened moments fit their parameters

    wider = networks.build_network(tiny.model_copy(update={"channels": 16}), seed=1)
    with pytest.raises(ck.CheckpointError, match=r"trunk.0.conv.weight \(8, 17, 3, 3\) does not fit the "
                                                 r"network's \(16, 19, 3, 3\)"):
        ck.ResumableLoop(ck.Checkpointer(store, PREFIX), step_fn).restore(
            ck.TrainState(wider, torch.optim.Adam(wider.parameters())))


def test_a_phase_checkpoint_records_its_network_and_ouro_export_reads_it(store, tmp_path, capsys):
    """A phase's checkpoint of the run's network says which network it holds, so `ouro export
    --checkpoint` (and `--initial-model`) rebuild it from the file alone. One written before
    checkpoints recorded it is refused with the way out named, and exports once --arch names it."""
    from ouroboros.trainer.commands import export
    from ouroboros.trainer.learning import networks
    from ouroboros.trainer.observation import encoding

    tiny = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=1, channels=8)
    net = networks.build_network(tiny, seed=3).eval()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    info = ck.Checkpointer(store, PREFIX).save(model=net, optimizer=optimizer, step=5, config=TinyConfig())
    path = str(tmp_path / "step-5.pt")
    (tmp_path / "step-5.pt").write_bytes(store.get_bytes(info.key))
    loaded, config = networks.load_checkpoint(path)
    assert config == tiny
    planes = torch.rand(4, encoding.N_CHANNELS, 7, 7)
    with torch.no_grad():
        for a, b in zip(net(planes), loaded(planes), strict=True):
            torch.testing.assert_close(a, b)
    assert export.main(["--checkpoint", path, "--width", "7", "--height", "7", "--out", str(tmp_path / "a.onnx")]) == 0
    assert (tmp_path / "a.onnx").stat().st_size > 0

    raw = torch.load(path, map_location="cpu", weights_only=True)
    del raw["network"]  # as a phase checkpoint was written before
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    capsys.readouterr()
    out = str(tmp_path / "b.onnx")
    assert export.main(["--checkpoint", str(old), "--width", "7", "--height", "7", "--out", out]) == 2
    assert "does not say which network it holds" in capsys.readouterr().err
    assert export.main(["--checkpoint", str(old), "--arch", "cnn_simple", "--blocks", "1", "--channels", "8",
                        "--attention-layers", "0", "--width", "7", "--height", "7", "--out", out]) == 0
    assert export.main(["--checkpoint", str(old), "--random-init", "--out", out]) == 2
    assert "not with --checkpoint" in capsys.readouterr().err
    assert export.main(["--out", out]) == 2
    assert "name the weights" in capsys.readouterr().err
    # the wrong network named, and a file that is no checkpoint: refused by name, never a traceback
    assert export.main(["--checkpoint", str(old), "--arch", "cnn_simple", "--blocks", "2", "--channels", "8",
                        "--attention-layers", "0", "--out", out]) == 2
    assert "the weights do not fit a cnn_simple-2x8 network: Missing key(s)" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert export.main(["--checkpoint", str(tmp_path / "junk.pt"), "--out", out]) == 2
    assert "junk.pt: not a readable torch checkpoint" in capsys.readouterr().err
