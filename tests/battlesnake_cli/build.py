"""Builds the official `battlesnake` CLI (rules v1.2.3) once, for the server tests.

`go install github.com/BattlesnakeOfficial/rules/cli/battlesnake@v1.2.3` would
be the one-liner, but it asks the module proxy for the module's version list
(to check deprecations), which the proxy here refuses. Instead, the go.mod and
go.sum next to this file pin v1.2.3 and every module the CLI needs, by hash,
and `go build -mod=readonly <package>` builds the CLI from them: the same
bytes on every machine, whatever the checksum database says.

The binary lands in ``${OURO_CACHE:-~/.cache/ouroboros}/battlesnake-cli/v1.2.3/
battlesnake``, written under a temporary name in the same folder and renamed
into place, so parallel test sessions never run a half-written binary; a
present binary is reused without calling Go. A cold build (empty module and
build caches) takes about 50 s on a 2-core machine.

Run as a script to print the binary's path: ``python tests/battlesnake_cli/build.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CLI_DIR = Path(__file__).resolve().parent
MODULE = "github.com/BattlesnakeOfficial/rules"
VERSION = "v1.2.3"
PACKAGE = f"{MODULE}/cli/battlesnake"
BINARY_NAME = "battlesnake"


class CliUnavailable(RuntimeError):
    """The CLI cannot be built here (no Go toolchain, no module, or the build failed)."""


def cache_root() -> Path:
    """The project's cache folder: $OURO_CACHE, else ~/.cache/ouroboros."""
    env = os.environ.get("OURO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ouroboros"


def binary_path() -> Path:
    """Where the built CLI lives (whether or not it is built yet)."""
    return cache_root() / "battlesnake-cli" / VERSION / BINARY_NAME


def ensure_cli(timeout_s: float = 600.0) -> Path:
    """The path of a built `battlesnake` CLI, building it first if needed.

    Raises CliUnavailable when Go is missing or the build fails (the fixture
    turns that into a skip with the reason).
    """
    target = binary_path()
    if target.is_file() and os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise CliUnavailable("the Go toolchain (`go`) is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{BINARY_NAME}.", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    env = {**os.environ, "GOFLAGS": "-mod=readonly -buildvcs=false", "GOWORK": "off"}
    try:
        proc = subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), PACKAGE],
            cwd=CLI_DIR, env=env, capture_output=True, text=True,
            timeout=timeout_s, check=False,
        )
        if proc.returncode != 0:
            raise CliUnavailable(f"go build {PACKAGE}@{VERSION} failed:\n{proc.stderr[-4000:]}")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise CliUnavailable(f"go build {PACKAGE} took over {timeout_s:.0f}s") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


if __name__ == "__main__":
    try:
        print(ensure_cli())
    except CliUnavailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
