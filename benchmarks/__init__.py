"""Benchmarks: `python -m benchmarks.NAME` from the checkout (not installed). Each prints its figures
with the commit it measured (:func:`commit`), the machine and its load."""

from __future__ import annotations

import subprocess


def commit() -> str:
    """The checkout's short HEAD commit, or "unknown" outside a git checkout (or without git)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
