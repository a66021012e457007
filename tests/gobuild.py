"""Builds a Go binary that the tests need (the oracle, the official CLI) once, into the cache.

The binary is written under a per-run temporary name in its final folder and
renamed into place, so parallel test sessions never run a half-written file,
and a present binary is reused without calling Go at all. Two sessions that
need the same missing binary at once take turns on a lock file beside it
(`fcntl.flock`, as scripts/build-*.sh do with flock(1)): the second waits and
reuses the first's binary instead of building it again. The cache folder is
``$OURO_CACHE`` (default ``~/.cache/ouroboros``), shared with the control-plane
build script.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class GoUnavailable(RuntimeError):
    """A Go binary cannot be built here (no Go toolchain, or the build failed)."""


def cache_root() -> Path:
    """The project's cache folder: $OURO_CACHE, else ~/.cache/ouroboros."""
    env = os.environ.get("OURO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ouroboros"


def build_once(target: Path, cwd: Path, package: str = ".", *, env: dict[str, str] | None = None,
               timeout_s: float = 600.0) -> Path:
    """`go build -trimpath -o target package` in `cwd`, unless `target` already exists."""
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise GoUnavailable("the Go toolchain (`go`) is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if target.is_file() and os.access(target, os.X_OK):
            return target  # built by the session we waited for
        return _build(go, target, cwd, package, env, timeout_s)


def _build(go: str, target: Path, cwd: Path, package: str, env: dict[str, str] | None,
           timeout_s: float) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        proc = subprocess.run([go, "build", "-trimpath", "-o", str(tmp), package], cwd=cwd,
                              env={**os.environ, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout_s, check=False)
        if proc.returncode != 0:
            raise GoUnavailable(f"go build {package} in {cwd} failed:\n{proc.stderr[-4000:]}")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise GoUnavailable(f"go build {package} took over {timeout_s:.0f}s") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
