"""Renders the plain manifests in manifests/operator/ from the Helm chart.

Users without Helm apply manifests/ with kubectl; those files are what
`helm template` renders for a release named `ouroboros` in `ouroboros-system`
(with the namespace itself, without the CRDs, which manifests/crds/ holds, and
without the `helm test` hook), so the two install paths never drift. A test
runs `--check`.

    python scripts/render_manifests.py           # write manifests/operator/
    python scripts/render_manifests.py --check   # exit 1 if they are stale

The helm binary comes from scripts/build-helm.sh (built once, cached).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import generated

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "ouroboros"
OUTPUT = REPO / "manifests" / "operator" / "ouroboros.yaml"
RELEASE, NAMESPACE = "ouroboros", "ouroboros-system"
VALUES = ("createNamespace=true", "crds.enabled=false", "tests.enabled=false")
HEADER = (
    "# Rendered by `python scripts/render_manifests.py` from charts/ouroboros\n"
    f"# (helm template {RELEASE} -n {NAMESPACE} --set {','.join(VALUES)}).\n"
    "# Do not edit: change the chart and re-render (a test checks this file).\n"
    "# kubectl apply --server-side -f manifests/crds/ && kubectl apply -f manifests/operator/\n"
)


def helm_binary() -> str:
    """The path of the project's helm (building it on first use)."""
    out = subprocess.run(["bash", str(REPO / "scripts" / "build-helm.sh")], stdout=subprocess.PIPE,
                         text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def render(helm: str) -> str:
    """The text of manifests/operator/ouroboros.yaml: header, then helm's output in its install order."""
    argv = [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for value in VALUES:
        argv += ["--set", value]
    body = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=True).stdout
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    """Write the manifests, or with --check report whether they are stale; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed file is current")
    parser.add_argument("--helm", help="helm binary (default: scripts/build-helm.sh's)")
    args = parser.parse_args(argv)
    text = render(args.helm or helm_binary())
    return generated.write_or_check(OUTPUT, text, args.check, "python scripts/render_manifests.py")


if __name__ == "__main__":
    sys.exit(main())
