"""Builds the `bsoracle` Go binary once per version of its sources.

The binary lands in ``${OURO_CACHE:-~/.cache/ouroboros}/oracle/<hash>/bsoracle``
where ``<hash>`` covers go.mod, go.sum and every .go file next to this module,
so an edit rebuilds and an unchanged tree reuses the binary. The build writes
to a temporary name in the same folder and renames it into place, so parallel
test sessions never see a half-written binary.

Run as a script to print the binary's path: ``python tests/oracle/build.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ORACLE_DIR = Path(__file__).resolve().parent
BINARY_NAME = "bsoracle"


class OracleUnavailable(RuntimeError):
    """The oracle cannot be built here (no Go toolchain, or the build failed)."""


def cache_root() -> Path:
    """The project's cache folder: $OURO_CACHE, else ~/.cache/ouroboros."""
    env = os.environ.get("OURO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ouroboros"


def oracle_sources() -> list[Path]:
    """The files whose content decides the binary: go.mod, go.sum, *.go."""
    files = [ORACLE_DIR / "go.mod", ORACLE_DIR / "go.sum"]
    files += sorted(ORACLE_DIR.glob("*.go"))
    return files


def oracle_sources_hash() -> str:
    """sha256 (first 16 hex digits) over the names and bytes of the sources."""
    digest = hashlib.sha256()
    for path in oracle_sources():
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_oracle(timeout_s: float = 600.0) -> Path:
    """Return the path of a built `bsoracle`, building it first if needed.

    Raises OracleUnavailable when Go is missing or `go build` fails (the
    fixture turns that into a skip).
    """
    target = cache_root() / "oracle" / oracle_sources_hash() / BINARY_NAME
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise OracleUnavailable("the Go toolchain (`go`) is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{BINARY_NAME}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        proc = subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), "."],
            cwd=ORACLE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if proc.returncode != 0:
            raise OracleUnavailable(f"go build failed:\n{proc.stderr}")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    try:
        print(ensure_oracle())
    except OracleUnavailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
