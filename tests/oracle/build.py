"""Builds the `bsoracle` Go binary once per version of its sources.

The binary lands in ``${OURO_CACHE:-~/.cache/ouroboros}/oracle/<hash>/bsoracle``
where ``<hash>`` covers go.mod, go.sum and every .go file next to this module,
so an edit rebuilds and an unchanged tree reuses the binary (`gobuild`).

Run as a script to print the binary's path: ``python tests/oracle/build.py``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make tests/ importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import gobuild  # noqa: E402

ORACLE_DIR = Path(__file__).resolve().parent
BINARY_NAME = "bsoracle"


OracleUnavailable = gobuild.GoUnavailable


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
    target = gobuild.cache_root() / "oracle" / oracle_sources_hash() / BINARY_NAME
    return gobuild.build_once(target, ORACLE_DIR, timeout_s=timeout_s)


if __name__ == "__main__":
    try:
        print(ensure_oracle())
    except OracleUnavailable as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
