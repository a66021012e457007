"""The custom-resource models: examples parse, bad manifests are refused, imports stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from operator_cases import bad_manifests, examples
from pydantic import ValidationError

from ouroboros.operator import resources
from ouroboros.operator.resources import PhaseName, RunConfig, RunIdentity, TrainingRunSpec

pytestmark = pytest.mark.unit

MODELS = {
    "TrainingRun": resources.TrainingRun,
    "TrainingSchedule": resources.TrainingSchedule,
    "Champion": resources.Champion,
}
CASES = bad_manifests()


@pytest.mark.parametrize("path", examples(), ids=lambda p: p.name)
def test_every_example_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        if doc["kind"] in MODELS:  # core objects an example needs (the shared PVC) are the API server's to check
            MODELS[doc["kind"]].model_validate(doc)


def test_examples_cover_every_kind():
    kinds = {d["kind"] for p in examples() for d in yaml.safe_load_all(p.read_text()) if d}
    assert kinds >= set(MODELS)


def test_at_least_ten_bad_manifests_per_design():
    assert len(CASES) >= 10
    assert {case["kind"] for case, _ in CASES} == set(MODELS)


@pytest.mark.parametrize(("case", "manifest"), CASES, ids=[c["name"] for c, _ in CASES])
def test_bad_manifest_is_refused_by_the_models(case, manifest):
    with pytest.raises(ValidationError) as info:
        MODELS[case["kind"]].model_validate(manifest)
    if case.get("python_message"):
        assert case["message"] in str(info.value)


def test_defaults_fill_a_minimal_spec():
    spec = TrainingRunSpec.model_validate({"champion": "c", "phases": [{"name": "hybrid"}]})
    assert spec.game.width == 11 and spec.game.snakes == 2
    assert spec.promotion is None  # the Champion's spec.policy.gate applies (builders.manifests.run_config)
    assert spec.backoff_limit == 2 and spec.self_play_workers == 1
    assert spec.resources.cpu == "1" and spec.resources.memory == "2Gi"
    assert spec.phases[0].name is PhaseName.HYBRID and spec.phases[0].epochs is None


def test_quantities_accept_integers_like_kubernetes():
    spec = TrainingRunSpec.model_validate(
        {"champion": "c", "phases": [{"name": "hybrid"}], "resources": {"cpu": 2, "memory": "512Mi"}}
    )
    assert spec.resources.cpu == "2"


def test_wire_format_is_camel_case_and_round_trips():
    spec = TrainingRunSpec.model_validate(
        {"champion": "c", "phases": [{"name": "self_play", "learningRate": 0.01}], "selfPlayWorkers": 1}
    )
    wire = spec.to_api()
    assert wire["phases"][0]["learningRate"] == 0.01 and "selfPlayWorkers" in wire
    assert "self_play_workers" not in wire
    assert TrainingRunSpec.model_validate(wire) == spec


def test_run_config_finds_phases_by_name():
    spec = TrainingRunSpec.model_validate({"champion": "c", "phases": [{"name": "bootstrap"}, {"name": "hybrid"}]})
    config = RunConfig(run=RunIdentity(name="r", namespace="n"), champion=spec.champion, game=spec.game,
                       model=spec.model, phases=spec.phases, storage=spec.storage)
    assert config.phase("hybrid").name is PhaseName.HYBRID
    with pytest.raises(KeyError):
        config.phase(PhaseName.EVALUATE)
    assert RunConfig.model_validate_json(config.model_dump_json(by_alias=True)) == config


def test_definitions_are_complete():
    for definition in resources.DEFINITIONS:
        assert definition.short_names and definition.printer_columns
        assert definition.name == f"{definition.plural}.ouroboros.dev"
    run = resources.DEFINITIONS[0]
    columns = [c["name"] for c in run.printer_columns]
    for wanted in ("Phase", "Current Phase", "Best Win Rate", "Champion", "Age"):
        assert wanted in columns


def test_models_import_neither_kopf_nor_kubernetes_nor_torch():
    code = (
        "import sys, ouroboros.operator.resources, ouroboros.trainer.commands.phase;"
        "bad = [m for m in ('kopf', 'kubernetes', 'torch') if m in sys.modules];"
        "print(*bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
