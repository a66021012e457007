"""The project's `helm` (scripts/build-helm.sh: Go module helm.sh/helm/v3, built once and cached).

`helm_binary()` builds it on first use (about two minutes cold) and returns its
path; `Helm` runs it with an environment of the caller's choosing and raises
`HelmError` with helm's stderr when a command fails.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build-helm.sh"
CHART = REPO / "charts" / "ouroboros"


class HelmUnavailable(RuntimeError):
    """helm cannot be built here (no Go toolchain, or the build failed)."""


class HelmError(subprocess.CalledProcessError):
    """helm exited non-zero; str() shows its stderr."""

    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def helm_binary() -> Path:
    """Path of the helm binary, building it if needed; raises HelmUnavailable."""
    if shutil.which("go") is None and not Path(_cached_path()).exists():
        raise HelmUnavailable("the Go toolchain (`go`) is not on PATH")
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise HelmUnavailable(f"scripts/build-helm.sh exited {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


def _cached_path() -> str:
    return subprocess.run(["bash", str(BUILD_SCRIPT), "--path"], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()


@dataclass
class Helm:
    """helm with a fixed environment (e.g. a kubeconfig) and a scratch home for its state."""

    binary: Path
    home: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `helm ARGS`; raise HelmError when it fails and `check`."""
        env = {**self.env, "HELM_CACHE_HOME": str(self.home / "cache"),
               "HELM_CONFIG_HOME": str(self.home / "config"), "HELM_DATA_HOME": str(self.home / "data")}
        argv = [str(self.binary), *args]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise HelmError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def template(self, *args: str, chart: Path = CHART, release: str = "r",
                 namespace: str = "ouro") -> list[dict]:
        """`helm template` as a list of objects (empty documents dropped)."""
        out = self("template", release, str(chart), "--namespace", namespace, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]
