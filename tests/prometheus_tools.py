"""Prometheus and promtool for the tests: from PATH, else installed by scripts/install-prometheus.sh.

Debian's `prometheus` package ships both. The install runs at most once per
test session; where it cannot run (no apt-get, not root) the tests that need
the tools skip with the script's reason.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-prometheus.sh"


@functools.cache
def _install() -> tuple[str | None, str]:
    if shutil.which("promtool") and shutil.which("prometheus"):
        return str(Path(shutil.which("promtool")).parent), ""
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return done.stdout.strip().splitlines()[-1], ""


def tool(name: str) -> str:
    """Path of `promtool` or `prometheus`; skips the test with the reason if they cannot be had."""
    where, why = _install()
    if where is None:
        pytest.skip(f"needs Debian's prometheus package: {why}")
    return str(Path(where) / name)
