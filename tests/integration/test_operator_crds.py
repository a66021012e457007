"""The CRDs on a real API server: installed, explained, defaulted, and guarding their fields."""

from __future__ import annotations

import json

import pytest
import yaml
from operator_cases import bad_manifests, examples

from .operator_support import apply, apply_crds, get, wait_for

pytestmark = pytest.mark.integration
CASES = bad_manifests()


@pytest.fixture(scope="module")
def crds(kube_cluster):
    apply_crds(kube_cluster)
    return kube_cluster


def test_crds_are_established_with_short_names_and_categories(crds):
    out = crds.kubectl("api-resources", "--api-group=ouroboros.dev", "-o", "wide").stdout
    for plural, short in (("trainingruns", "tr"), ("trainingschedules", "ts"), ("champions", "champ")):
        line = next(line for line in out.splitlines() if line.startswith(plural))
        assert f" {short} " in f" {line} " and "ouroboros" in line


def test_kubectl_explain_teaches_the_fields(crds):
    def explain():  # the OpenAPI document catches up with a new CRD within seconds
        result = crds.kubectl("explain", "trainingrun.spec.promotion.sprt", check=False)
        return result.stdout if result.returncode == 0 else None

    out = wait_for(explain, timeout=60, what="kubectl explain to know TrainingRun")
    assert "The sequential test" in out
    assert "elo0" in out and "Elo difference under H0" in out
    out = crds.kubectl("explain", "tr.spec.resources.cpu").stdout
    assert "Quantity (integer or string, e.g. 2 or 500m)" in out  # kubectl itself prints <Object>
    out = crds.kubectl("explain", "tr.spec.model.architecture").stdout
    assert "cnn_simple" in out and "cnn_attention_residual" in out and "mlp" not in out
    out = crds.kubectl("explain", "tr.spec.phases.name").stdout
    assert "bootstrap" in out and "self_play" in out
    out = crds.kubectl("explain", "champ.status.history").stdout
    assert "promotedAt" in out


def test_defaults_are_filled_by_the_api_server(crds, namespace):
    apply(crds, namespace, {
        "apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": "d"},
        "spec": {"champion": "main", "phases": [{"name": "hybrid"}]},
    })
    spec = get(crds, "tr", namespace, "d")["spec"]
    assert spec["game"]["width"] == 11 and "promotion" not in spec  # unset: the Champion's gate applies
    assert spec["backoffLimit"] == 2 and spec["resources"]["memory"] == "2Gi"
    assert spec["phases"][0]["games"] == 1000 and "epochs" not in spec["phases"][0]


@pytest.mark.parametrize(("case", "manifest"), CASES, ids=[c["name"] for c, _ in CASES])
def test_bad_manifest_is_refused_with_a_message_naming_the_field(crds, namespace, case, manifest):
    result = crds.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    err = result.stderr
    assert case["field"] in err, err
    assert case["message"] in err, err
    assert get(crds, case["kind"].lower(), namespace, case["name"]) is None


def test_run_spec_is_immutable_except_operational_fields(crds, namespace):
    run = {
        "apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": "imm"},
        "spec": {"champion": "main", "phases": [{"name": "hybrid"}], "suspend": True},
    }
    apply(crds, namespace, run)
    run["spec"]["phases"] = [{"name": "hybrid"}, {"name": "evaluate"}]
    result = crds.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(run), check=False)
    assert result.returncode != 0
    assert "spec.phases" in result.stderr and "spec.phases is immutable" in result.stderr
    run["spec"]["phases"] = [{"name": "hybrid"}]
    run["spec"]["suspend"] = False
    run["spec"]["backoffLimit"] = 5
    apply(crds, namespace, run)
    assert get(crds, "tr", namespace, "imm")["spec"]["backoffLimit"] == 5


def test_champion_game_is_immutable(crds, namespace):
    champ = {"apiVersion": "ouroboros.dev/v1alpha1", "kind": "Champion", "metadata": {"name": "c"}, "spec": {}}
    apply(crds, namespace, champ)
    assert get(crds, "champ", namespace, "c")["spec"]["game"]["ruleset"] == "standard"
    champ["spec"] = {"game": {"ruleset": "wrapped"}}
    result = crds.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(champ), check=False)
    assert result.returncode != 0 and "spec.game is immutable" in result.stderr


@pytest.mark.parametrize("path", examples(), ids=lambda p: p.name)
def test_every_example_applies(crds, namespace, path):
    crds.kubectl("apply", "-n", namespace, "-f", str(path))
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            assert get(crds, doc["kind"].lower(), namespace, doc["metadata"]["name"]) is not None


def test_status_is_a_subresource(crds, namespace):
    apply(crds, namespace, {
        "apiVersion": "ouroboros.dev/v1alpha1", "kind": "TrainingRun", "metadata": {"name": "s"},
        "spec": {"champion": "main", "phases": [{"name": "hybrid"}], "suspend": True},
        "status": {"phase": "Succeeded"},
    })
    assert "status" not in get(crds, "tr", namespace, "s")  # status is written through /status only
    crds.kubectl("patch", "tr", "s", "-n", namespace, "--subresource=status", "--type=merge",
                 "-p", json.dumps({"status": {"phase": "Running", "currentPhase": "hybrid", "bestWinRate": 0.5,
                                              "progress": {"phase": "hybrid", "percent": 40, "etaSeconds": 90,
                                                           "updatedAt": "2026-01-01T00:00:00Z"}}}))
    table = crds.kubectl("get", "tr", "s", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:7] == ["NAME", "PHASE", "CURRENT", "PHASE", "PROGRESS", "BEST", "WIN"]
    assert row.split()[:6] == ["s", "Running", "hybrid", "40", "0.5", "main"]
    wide = crds.kubectl("get", "tr", "s", "-n", namespace, "-o", "wide").stdout
    assert "ETA" in wide.splitlines()[0] and " 90 " in wide.splitlines()[1]
