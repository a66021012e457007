"""Shared test data for the operator: the bad manifests both test tiers use.

`bad_manifests()` expands tests/data/operator/bad_manifests.yaml into
(case, manifest) pairs: the unit tests check the pydantic models refuse them,
the integration tests check a real API server does, naming the field.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).resolve().parent / "data" / "operator"
REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "manifests" / "examples"


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def _remove(obj: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        obj = obj[key]
    del obj[last]


def bad_manifests() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(case, manifest) for every bad manifest; case has name, kind, field, message."""
    data = yaml.safe_load((DATA / "bad_manifests.yaml").read_text())
    out = []
    for case in data["cases"]:
        manifest = _merge(copy.deepcopy(data["bases"][case["kind"]]), case.get("patch", {}))
        for dotted in case.get("remove", []):
            _remove(manifest, dotted)
        manifest["metadata"]["name"] = case["name"]
        out.append((case, manifest))
    return out


def examples() -> list[Path]:
    """Every example manifest in manifests/examples."""
    return sorted(EXAMPLES.glob("*.yaml"))
