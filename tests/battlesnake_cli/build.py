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

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make tests/ importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gobuild  # noqa: E402

CLI_DIR = Path(__file__).resolve().parent
MODULE = "github.com/BattlesnakeOfficial/rules"
VERSION = "v1.2.3"
PACKAGE = f"{MODULE}/cli/battlesnake"
BINARY_NAME = "battlesnake"


CliUnavailable = gobuild.GoUnavailable


def binary_path() -> Path:
    """Where the built CLI lives (whether or not it is built yet)."""
    return gobuild.cache_root() / "battlesnake-cli" / VERSION / BINARY_NAME


def ensure_cli(timeout_s: float = 600.0) -> Path:
    """The path of a built `battlesnake` CLI, building it first if needed.

    Raises CliUnavailable when Go is missing or the build fails (the fixture
    turns that into a skip with the reason).
    """
    env = {"GOFLAGS": "-mod=readonly -buildvcs=false", "GOWORK": "off"}
    return gobuild.build_once(binary_path(), CLI_DIR, PACKAGE, env=env, timeout_s=timeout_s)


if __name__ == "__main__":
    try:
        print(ensure_cli())
    except CliUnavailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
