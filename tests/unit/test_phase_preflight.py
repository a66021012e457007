"""`ouro phase` checks everything before its work: the result path, the run config (the
field named), JOB_COMPLETION_INDEX and the artifact store. A problem exits 2, a failure
during the work exits 1, and either way a result JSON is written when the path allows."""

from __future__ import annotations

import json

import pytest

from ouroboros.operator.builders import manifests
from ouroboros.operator.resources import PhaseResult, TrainingRun
from ouroboros.trainer.commands import phase

pytestmark = pytest.mark.unit


@pytest.fixture
def run_json(tmp_path, monkeypatch):
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    monkeypatch.setenv("OURO_STORAGE_URL", (tmp_path / "store").as_uri())
    run = TrainingRun.model_validate({
        "metadata": {"name": "tiny", "namespace": "ns", "uid": "u"},
        "spec": {"champion": "c", "selfPlayWorkers": 2, "storage": {"url": "s3://bucket/runs"},
                 "phases": [{"name": "bootstrap"}, {"name": "self_play"}, {"name": "evaluate"}]},
    })
    path = tmp_path / "run.json"
    path.write_text(manifests.config_map(run)["data"]["run.json"])
    return path


def _main(name, run_json, result, capsys) -> tuple[int, str]:
    code = phase.main([name, "--run-config", str(run_json), "--result", str(result)])
    return code, capsys.readouterr().err


def _result(path) -> PhaseResult:
    return PhaseResult.model_validate(json.loads(path.read_text()))


def _never_run(*_args, **_kw):
    raise AssertionError("the phase's work must not start")


@pytest.mark.parametrize("where", ["directory", "missing parent"])
def test_a_result_path_that_cannot_be_written_is_refused_before_the_work(where, run_json, tmp_path,
                                                                         capsys, monkeypatch):
    monkeypatch.setattr(phase, "run_phase", _never_run)
    result = tmp_path if where == "directory" else tmp_path / "no" / "such" / "result.json"
    code, err = _main("bootstrap", run_json, result, capsys)
    assert code == 2 and "--result: " in err


@pytest.mark.parametrize(("value", "needle"), [
    ("abc", "'abc' is not a non-negative integer"), ("-1", "'-1' is not a non-negative integer"),
    ("1.5", "is not a non-negative integer"), ("٣", "is not a non-negative integer"),
    ("2", "2 is not below the 2 workers"), ("99999999999999999999", "not a non-negative integer")])
def test_a_bad_completion_index_exits_2_and_reports(value, needle, run_json, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(phase, "run_phase", _never_run)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", value)
    result = tmp_path / "result.json"
    code, err = _main("self_play", run_json, result, capsys)
    assert code == 2 and "JOB_COMPLETION_INDEX: " in err and needle in err
    assert needle in _result(result).message


def test_a_valid_completion_index_reaches_the_phase(run_json, tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr(phase, "run_phase", lambda config, name, worker, group=None: seen.append(worker) or
                        PhaseResult(phase=name, message="ok"))
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    code, _ = _main("self_play", run_json, tmp_path / "result.json", capsys)
    assert code == 0 and seen == [1]


@pytest.mark.parametrize(("url", "needle"), [
    ("nosuch://bucket/x", "unknown storage scheme 'nosuch'"),
    ("gcs://bucket/x", "the gcs:// filesystem is not installed"),
    ("file:///proc/ouroboros-cannot-be-here", "cannot be written"),
])
def test_an_unusable_store_exits_2_naming_it(url, needle, run_json, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(phase, "run_phase", _never_run)
    monkeypatch.setenv("OURO_STORAGE_URL", url)
    result = tmp_path / "result.json"
    code, err = _main("bootstrap", run_json, result, capsys)
    assert code == 2 and "OURO_STORAGE_URL: " in err and needle in err
    assert needle in _result(result).message


def test_the_store_probe_leaves_nothing_behind(run_json, tmp_path):
    url = (tmp_path / "probe-store").as_uri()
    phase.check_store(url, "storage.url")
    assert list((tmp_path / "probe-store").iterdir()) == []


def test_an_invalid_config_names_the_field(run_json, tmp_path, capsys):
    data = json.loads(run_json.read_text())
    data["game"]["width"] = "wide"
    run_json.write_text(json.dumps(data))
    result = tmp_path / "result.json"
    code, err = _main("bootstrap", run_json, result, capsys)
    assert code == 2 and "game.width: " in err
    assert "game.width" in _result(result).message


def test_a_failure_during_the_work_still_writes_a_result(run_json, tmp_path, capsys, monkeypatch):
    def crash(*_args, **_kw):
        raise RuntimeError("replay shard unreadable")

    monkeypatch.setattr(phase, "run_phase", crash)
    result = tmp_path / "result.json"
    code, err = _main("bootstrap", run_json, result, capsys)
    assert code == 1 and "Traceback" in err
    reported = _result(result)
    assert reported.phase.value == "bootstrap"
    assert reported.message == "failed: RuntimeError: replay shard unreadable"


def test_a_result_too_large_for_the_termination_message_still_reports(run_json, tmp_path, capsys,
                                                                       monkeypatch):
    big = PhaseResult(phase="bootstrap", metrics={f"m{i:04d}": float(i) for i in range(400)}, message="done")
    monkeypatch.setattr(phase, "run_phase", lambda *_a, **_k: big)
    result = tmp_path / "result.json"
    code, err = _main("bootstrap", run_json, result, capsys)
    assert code == 1 and "over the 4096-byte limit" in err
    assert "over the 4096-byte limit" in _result(result).message


@pytest.fixture
def learner_env(monkeypatch):
    """The variables the operator gives a pod of a 2-replica learner group."""
    for key in ("LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    values = {"OURO_LEARNER_REPLICAS": "2", "OURO_RENDEZVOUS_ENDPOINT": "tiny-0-bootstrap-0.tiny-learner:29400",
              "OURO_RENDEZVOUS_ID": "tiny-0-bootstrap", "JOB_COMPLETION_INDEX": "1"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("OURO_LEARNER_REPLICAS", "two", "OURO_LEARNER_REPLICAS: 'two' is not a positive integer"),
    ("OURO_LEARNER_REPLICAS", "0", "OURO_LEARNER_REPLICAS: '0' is not a positive integer"),
    ("OURO_RENDEZVOUS_ENDPOINT", "", "OURO_RENDEZVOUS_ENDPOINT: '' is not host:port"),
    ("OURO_RENDEZVOUS_ENDPOINT", "host:99999", "OURO_RENDEZVOUS_ENDPOINT: 'host:99999' is not host:port"),
    ("OURO_RENDEZVOUS_ID", "", "OURO_RENDEZVOUS_ID: unset"),
    ("JOB_COMPLETION_INDEX", "2", "JOB_COMPLETION_INDEX: 2 is not below the 2 workers"),
])
def test_a_learner_group_pod_with_bad_settings_exits_2_naming_the_variable(key, value, needle, run_json, learner_env,
                                                                           tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(phase, "run_phase", _never_run)
    monkeypatch.setenv(key, value)
    result = tmp_path / "result.json"
    code, err = _main("bootstrap", run_json, result, capsys)
    assert code == 2 and needle in err and needle in _result(result).message


def test_a_learner_group_pod_starts_its_rank_under_torchrun(run_json, learner_env, tmp_path, capsys, monkeypatch):
    from ouroboros.trainer.learning import distributed

    launched = []
    monkeypatch.setattr(phase, "run_phase", _never_run)
    monkeypatch.setattr(distributed, "launch", lambda plan, argv: launched.append((plan, argv)) or 0)
    result = tmp_path / "result.json"
    assert _main("bootstrap", run_json, result, capsys)[0] == 0
    [(plan, argv)] = launched
    assert plan == distributed.Launch(replicas=2, index=1, endpoint=learner_env["OURO_RENDEZVOUS_ENDPOINT"],
                                      rendezvous_id="tiny-0-bootstrap")
    assert argv == ["phase", "bootstrap", "--run-config", str(run_json), "--result", str(result)]
    args = plan.torchrun_arguments(argv)
    assert args[:7] == ["--nnodes=2", "--nproc-per-node=1", "--rdzv-backend=c10d",
                        "--rdzv-endpoint=tiny-0-bootstrap-0.tiny-learner:29400", "--rdzv-id=tiny-0-bootstrap",
                        "--rdzv-conf=is_host=0", "--max-restarts=0"]
    assert args[7:] == ["--module", "ouroboros.trainer.commands.cli", *argv]
    from torch.distributed import run as torchrun

    parsed = torchrun.parse_args(args)  # torchrun itself accepts them
    assert parsed.nnodes == "2" and parsed.rdzv_backend == "c10d" and parsed.module


def test_evaluate_and_a_launched_rank_do_not_launch_again(run_json, learner_env, monkeypatch):
    assert phase._launch_plan(phase.PhaseName.EVALUATE, learner_env) is None
    assert phase._launch_plan(phase.PhaseName.BOOTSTRAP, {**learner_env, "LOCAL_RANK": "0"}) is None
