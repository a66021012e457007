"""The CRD YAML: generated from the models, committed, structural and documented."""

from __future__ import annotations

import difflib

import pytest
import yaml

from ouroboros.operator import crdgen, resources

pytestmark = pytest.mark.unit


def test_committed_crds_match_the_generator():
    stale = crdgen.stale()
    if stale:  # the first difference, so a failure says what changed
        path = stale[0]
        old = path.read_text().splitlines(True) if path.exists() else []
        diff = "".join(list(difflib.unified_diff(old, crdgen.outputs()[path].splitlines(True), str(path),
                                                 "generated"))[:60])
        pytest.fail(f"regenerate with `python -m ouroboros.operator.crdgen`: {stale}\n{diff}")


def test_check_mode_reports_stale_files(tmp_path, capsys):
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 1
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--root", str(tmp_path)]) == 0


def _walk(node, path="$"):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


@pytest.mark.parametrize("definition", resources.DEFINITIONS, ids=lambda d: d.kind)
def test_schema_is_structural(definition):
    schema = crdgen.openapi_schema(definition)
    for path, node in _walk(schema):
        if not isinstance(node, dict):
            continue
        assert "$ref" not in node and "$defs" not in node and "title" not in node, path
        assert node.get("additionalProperties") is not False, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf outside int-or-string"
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


@pytest.mark.parametrize("definition", resources.DEFINITIONS, ids=lambda d: d.kind)
def test_every_field_is_documented_and_typed(definition):
    schema = crdgen.openapi_schema(definition)

    def check(node, path):
        for name, sub in node.get("properties", {}).items():
            if path == "" and name == "metadata":
                continue
            assert sub.get("description"), f"{path}.{name} has no description"
            assert "type" in sub or sub.get("x-kubernetes-int-or-string"), f"{path}.{name} has no type"
            check(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            check(node["items"], f"{path}[]")

    check(schema, "")


def test_crd_names_subresources_and_columns():
    docs = {d.kind: yaml.safe_load(crdgen.render(d)) for d in resources.DEFINITIONS}
    run = docs["TrainingRun"]["spec"]
    assert run["names"]["shortNames"] == ["tr"] and run["names"]["categories"] == ["ouroboros"]
    assert docs["TrainingSchedule"]["spec"]["names"]["shortNames"] == ["ts"]
    assert docs["Champion"]["spec"]["names"]["shortNames"] == ["champ"]
    version = run["versions"][0]
    assert version["subresources"] == {"status": {}}
    paths = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert paths["Phase"] == ".status.phase" and paths["Champion"] == ".spec.champion"
    assert paths["Best Win Rate"] == ".status.bestWinRate"


def test_cel_rules_and_defaults_reach_the_schema():
    schema = crdgen.openapi_schema(resources.DEFINITIONS[0])
    spec = schema["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("exists_one" in r for r in rules)
    assert any("oldSelf.phases" in r for r in rules)
    assert all(r.get("fieldPath") for r in spec["x-kubernetes-validations"])
    sprt = spec["properties"]["promotion"]["properties"]["sprt"]
    assert sprt["x-kubernetes-validations"][0]["rule"] == "self.elo0 < self.elo1"
    # a nested section's default is the whole defaulted object (CEL checks defaults as written)
    assert spec["properties"]["game"]["default"]["width"] == 11
    assert spec["properties"]["promotion"]["properties"]["sprt"]["default"]["elo1"] == 35
    # an unset spec.promotion means "the Champion's gate": the API server must not fill it in
    assert "default" not in spec["properties"]["promotion"]
    assert any(r["rule"].startswith("has(self.promotion) == has(oldSelf.promotion)")
               for r in spec["x-kubernetes-validations"])
    status = schema["properties"]["status"]
    assert all("default" not in n for _, n in _walk(status) if isinstance(n, dict))
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert set(conditions["items"]["required"]) >= {"type", "status", "reason", "lastTransitionTime"}
    metrics = status["properties"]["phases"]["items"]["properties"]["metrics"]
    assert metrics["additionalProperties"] == {"type": "number"}
