"""Writing or checking a generated, committed file: the shared tail of the scripts that generate docs and manifests."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(path: Path, text: str, check: bool, command: str) -> int:
    """With `check`, 1 (and a line naming `command` on stderr) when `path` differs from `text`, else 0;
    without, write `text` to `path` and print the path."""
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"stale: {path} (run {command})", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(path)
    return 0
