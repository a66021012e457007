"""The artifact store on s3:// against a real S3 server, as the phases, the registry and the operator use it.

The server is the Versity S3 Gateway built from its Go module (tests/s3server.py);
clients find it through the standard AWS variables, as a pod does through its
Secret. tests/unit/test_registry.py runs every store and registry behaviour on
s3:// too; here is what only an object store shared by several processes shows:
what the server really holds (an artifact and its sidecar, no temp objects, a
multipart upload whole),
a store that must see what other processes wrote since it last looked (s3fs
caches listings by default: a reader that listed a folder once never saw a key
written there later), and the operator's readers (progress records, the
schedule's data trigger) on an object store.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import numpy as np
import pytest

from ouroboros.contract import progress as contract_progress
from ouroboros.operator import progress as operator_progress
from ouroboros.operator import replay
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.artifacts import store as st
from ouroboros.trainer.commands import phase as phase_command
from ouroboros.trainer.scheduling import data

pytestmark = pytest.mark.integration
GAME = "standard-7x7-2p"  # the board of the onnx_models fixture (a model must hold its game's board)


def other_process(code: str, env: dict[str, str]) -> None:
    """Run `code` in a new Python process (its own s3fs client, as another pod has)."""
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, check=True, timeout=120)


def raw_keys(s3_server, bucket: str) -> list[str]:
    """Every object in the bucket, as the server lists it to a fresh client."""
    return sorted(p.removeprefix(f"{bucket}/") for p in s3_server.filesystem().find(bucket))


def test_the_server_holds_each_artifact_and_its_sidecar_and_no_temp_object(s3_server, s3_bucket):
    store = st.ArtifactStore(f"s3://{s3_bucket}/store")
    payload = np.random.default_rng(0).bytes(56 << 20)  # over s3fs's 50 MiB block size: a multipart upload
    info = store.put_bytes("models/v1/model.onnx", payload, {"run": "r"})
    store.put_bytes("models/v1/model.onnx", payload[::-1])  # replaced whole
    store.write_json("champions/game.json", {"version": "v1"})
    store.write_json("champions/game.json", {"version": "v2"})
    assert raw_keys(s3_server, s3_bucket) == ["store/champions/game.json", "store/models/v1/model.onnx",
                                              "store/models/v1/model.onnx.meta.json"]
    fresh = s3_server.filesystem()
    stored = fresh.cat_file(f"{s3_bucket}/store/models/v1/model.onnx")
    sidecar = json.loads(fresh.cat_file(f"{s3_bucket}/store/models/v1/model.onnx.meta.json"))
    assert stored == payload[::-1] and sidecar["sha256"] == hashlib.sha256(stored).hexdigest() != info.sha256
    assert sidecar["size"] == len(payload)
    assert json.loads(fresh.cat_file(f"{s3_bucket}/store/champions/game.json")) == {"version": "v2"}


def test_a_corrupt_object_is_refused_and_never_downloaded(s3_server, s3_bucket, tmp_path):
    store = st.ArtifactStore(f"s3://{s3_bucket}/store")
    store.put_bytes("models/v1/model.onnx", b"the model")
    s3_server.filesystem().pipe_file(f"{s3_bucket}/store/models/v1/model.onnx", b"the modeL")  # behind its back
    with pytest.raises(st.ChecksumError, match=f"s3://{s3_bucket}/store/models/v1/model.onnx"):
        store.get_bytes("models/v1/model.onnx")
    with pytest.raises(st.ChecksumError):
        store.get_file("models/v1/model.onnx", tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_the_store_sees_what_other_processes_wrote_since_it_last_looked(s3_server, s3_bucket):
    url = f"s3://{s3_bucket}/store"
    store = st.ArtifactStore(url)
    store.put_bytes("models/v1/model.onnx", b"a")
    assert store.list("models") == ["models/v1/model.onnx"] and not store.exists("models/v1/model.int8.onnx")
    other_process(f"""
        from ouroboros.trainer.artifacts.store import ArtifactStore
        ArtifactStore({url!r}).put_bytes("models/v1/model.int8.onnx", b"b")
        """, s3_server_env(s3_server))
    assert store.exists("models/v1/model.int8.onnx")  # its folder was listed before: no stale answer
    assert store.list("models") == ["models/v1/model.int8.onnx", "models/v1/model.onnx"]
    assert store.get_bytes("models/v1/model.int8.onnx") == b"b"


def test_a_champion_promoted_by_another_process_is_the_one_this_registry_serves(s3_server, s3_bucket, onnx_models,
                                                                               tmp_path):
    url = f"s3://{s3_bucket}/registry"
    registry = reg.Registry.open(url)
    first = registry.register(onnx_models[0], architecture="cnn", run="r1", phase="self_play", game=GAME)
    registry.promote(GAME, first.id, by="test")
    assert registry.champion(GAME).version == first.id
    model = tmp_path / "second.onnx"
    model.write_bytes(onnx_models[1])
    other_process(f"""
        from pathlib import Path
        from ouroboros.trainer.artifacts import registry as reg
        registry = reg.Registry.open({url!r})
        second = registry.register(Path({str(model)!r}).read_bytes(), architecture="cnn", run="r2",
                                   phase="self_play", game={GAME!r})
        registry.promote({GAME!r}, second.id, by="other")
        """, s3_server_env(s3_server))
    state = registry.champion(GAME)
    assert state.version != first.id and [h.version for h in state.history][:2] == [state.version, first.id]
    version, content = registry.load_champion(GAME)
    assert content == onnx_models[1] and version.run == "r2"


def publish_progress(s3_server, url: str, worker: int, games: int, done: bool) -> None:
    """A phase's worker publishing its progress record, in a process of its own (as in its pod)."""
    other_process(f"""
        from ouroboros.trainer.artifacts.store import ArtifactStore
        from ouroboros.trainer.observability import progress
        from ouroboros.contract.progress import progress_key, store_run_id

        class Quiet:
            def task(self, description, total):
                return lambda n: None

            def scalar(self, tag, value, step):
                pass

        key = progress_key(store_run_id("tiny", "ns", "0123456789abcdef"), "self_play", {worker})
        recorder = progress.ProgressRecorder(Quiet(), run="tiny", phase="self_play", worker={worker}, planned=1,
                                             sinks=(progress.store_sink(ArtifactStore({url!r}), key),))
        recorder.task("self_play 1/1: games", 8)({games})
        recorder.publish(done={done})
        """, s3_server_env(s3_server))


def test_the_operator_reads_progress_records_as_the_phase_workers_write_them(s3_server, s3_bucket):
    """The operator's process lists the records again on every pass: a worker that starts late and a
    record rewritten since the last pass are both seen."""
    url = f"s3://{s3_bucket}/store"
    run = contract_progress.store_run_id("tiny", "ns", "0123456789abcdef")
    assert operator_progress.read_records(url, run, "self_play") == []
    publish_progress(s3_server, url, worker=0, games=2, done=False)
    (first,) = operator_progress.read_records(url, run, "self_play")
    assert (first.worker, first.games, first.done) == (0, 2, False)
    publish_progress(s3_server, url, worker=1, games=3, done=False)
    publish_progress(s3_server, url, worker=0, games=8, done=True)
    records = operator_progress.read_records(url, run, "self_play")
    assert [(r.worker, r.games, r.done) for r in records] == [(0, 8, True), (1, 3, False)]
    status = operator_progress.run_progress(url, "ns", "tiny", "0123456789abcdef", "self_play", datetime.now(UTC))
    assert status is not None and status.games == 11


def test_the_data_trigger_counts_new_games_on_s3_as_the_trainer_does(s3_server, s3_bucket):
    url = f"s3://{s3_bucket}/store"
    assert replay.new_games_since(url, None) == 0

    def play(run: str, games: int) -> None:  # a phase's worker committing one replay shard, in its own process
        other_process(f"""
            import numpy as np
            from ouroboros.trainer.artifacts.store import ArtifactStore
            from ouroboros.trainer.learning import shards
            writer = shards.ReplayWriter(ArtifactStore({url!r}), {run!r}, "bootstrap", worker=0, shard_rows=1 << 20)
            n = {games} * 2
            writer.add("teacher", {{"game_id": np.repeat(np.arange({games}), 2), "turn": np.arange(n),
                                   "seat": np.zeros(n), "value": np.zeros(n), "quality": np.ones(n)}})
            writer.flush()
            """, s3_server_env(s3_server))

    play("a", 3)
    assert replay.new_games_since(url, None) == data.new_games_since(url, None) == 3
    play("a", 4)  # a second shard in a folder the operator has listed
    play("b", 5)
    for since in (None, datetime(2000, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)):
        assert replay.new_games_since(url, since) == data.new_games_since(url, since)
    assert replay.new_games_since(url, None) == 12


@pytest.mark.parametrize("credentials", ["none", "wrong secret"])
def test_an_operator_without_valid_credentials_reports_progress_unavailable(s3_server, s3_bucket, tmp_path,
                                                                          credentials):
    """Never an exception that would fail the run's reconcile: botocore's NoCredentialsError is no OSError."""
    env = {k: v for k, v in s3_server_env(s3_server).items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env.update(HOME=str(tmp_path), AWS_EC2_METADATA_DISABLED="true")  # no ~/.aws, no instance metadata
    if credentials == "wrong secret":
        env.update(AWS_ACCESS_KEY_ID=s3_server.access_key, AWS_SECRET_ACCESS_KEY="not-the-secret")
    probe = f"""
        from ouroboros.operator import progress
        try:
            progress.read_records("s3://{s3_bucket}/store", "run", "hybrid")
        except progress.ProgressUnavailable as exc:
            raise SystemExit("unavailable: " + str(exc))
        """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"unavailable: cannot list {s3_bucket}/store/runs/run/progress: "), result.stderr


def test_phase_preflight_names_the_store_it_cannot_write(s3_server, s3_bucket):
    phase_command.check_store(f"s3://{s3_bucket}/store", "storage.url")  # writable: no error
    env = {**s3_server_env(s3_server), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    probe = f"""
        from ouroboros.trainer.commands import phase
        try:
            phase.check_store("s3://{s3_bucket}/store", "storage.url")
        except phase.PreflightError as exc:
            raise SystemExit(str(exc))
        """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and result.stderr.startswith(f"storage.url: s3://{s3_bucket}/store cannot be "
                                                               "written"), result.stderr


# ------------------------------------------------------------------ helpers

def s3_server_env(s3_server) -> dict[str, str]:
    """This environment with the AWS variables that reach the server."""
    return {**os.environ, **s3_server.env}
