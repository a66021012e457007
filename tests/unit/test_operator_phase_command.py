"""`ouro phase`: checks the run config and always reports (the phases themselves, evaluate
included, are tested end to end in test_phases.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ouroboros.operator.builders import manifests
from ouroboros.operator.resources import PhaseResult, TrainingRun
from ouroboros.trainer.commands import cli, phase

pytestmark = pytest.mark.unit


@pytest.fixture
def run_json(tmp_path):
    run = TrainingRun.model_validate({
        "metadata": {"name": "tiny", "namespace": "ns", "uid": "u"},
        "spec": {"champion": "c", "phases": [{"name": "bootstrap"}, {"name": "evaluate"}]},
    })
    path = tmp_path / "run.json"
    path.write_text(manifests.config_map(run)["data"]["run.json"])
    return path


def test_evaluate_without_a_candidate_fails_with_a_message_and_a_result(run_json, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert cli.main(["phase", "evaluate", "--run-config", str(run_json), "--result", str(out)]) == 1
    assert "no candidate" in capsys.readouterr().err
    data = PhaseResult.model_validate_json(out.read_text())
    assert data.phase.value == "evaluate" and "bootstrap phase of this run has not finished" in data.message


def test_a_phase_the_run_lacks_is_an_error(run_json, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert phase.main(["hybrid", "--run-config", str(run_json), "--result", str(out)]) == 2
    assert "no phase 'hybrid'" in capsys.readouterr().err
    assert "no phase" in json.loads(out.read_text())["message"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{", "invalid run config"), ('{"kind": "RunConfig"}', "invalid run config"), (None, "cannot read")],
)
def test_a_bad_config_is_an_error(tmp_path, content, needle, capsys):
    config = tmp_path / "run.json"
    if content is not None:
        config.write_text(content)
    assert phase.main(["bootstrap", "--run-config", str(config), "--result", str(tmp_path / "r")]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize(("device", "line"), [
    ("gpu", "device: 'gpu' is not auto, cpu, cuda or cuda:N"),  # was the pattern's regex
    ("cuda:x", "device: 'cuda:x' is not auto, cpu, cuda or cuda:N"),
    (3, "device: Input should be a valid string"),
])
def test_a_bad_device_in_the_run_config_is_named_in_its_words(run_json, tmp_path, capsys, device, line):
    """The stderr line and the result's message both say what the field takes; nothing ran."""
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({**json.loads(run_json.read_text()), "device": device}))
    out = tmp_path / "result.json"
    assert phase.main(["bootstrap", "--run-config", str(config), "--result", str(out)]) == 2
    assert line in capsys.readouterr().err and "Value error" not in out.read_text()
    result = PhaseResult.model_validate_json(out.read_text())
    assert line in result.message and result.placeholder


def test_runs_as_the_console_script(run_json, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "ouroboros.trainer.commands.cli", "phase", "hybrid",
         "--run-config", str(run_json), "--result", str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "no phase 'hybrid'" in proc.stderr
    assert json.loads(out.read_text())["phase"] == "hybrid"
