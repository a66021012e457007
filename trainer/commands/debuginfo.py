"""`ouro debug-info`: write the support bundle to attach to a bug report.

    ouro debug-info                         # ./ouro-debug-<time>.json for the default store
    ouro debug-info --store s3://b/ouro -o - # to stdout

The bundle (see `ouroboros.trainer.observability.debuginfo`) holds versions,
configuration with secrets left out, store statistics, system facts and the
last errors. It is written atomically (temp file + rename). Exit codes: 0
written, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from ouroboros.trainer.artifacts import registry as reg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouro debug-info", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", default=reg.default_store(), help="artifact store (default %(default)s)")
    p.add_argument("-o", "--output", default=None,
                   help="where to write the JSON bundle; '-' for stdout (default ./ouro-debug-TIME.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro debug-info`; returns the exit code."""
    args = _parser().parse_args(argv)
    from ouroboros.trainer.observability import debuginfo

    store = str(Path(args.store).resolve()) if "://" not in args.store else args.store
    text = json.dumps(debuginfo.bundle(store, dict(os.environ)), indent=2, sort_keys=True, default=str) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output or f"ouro-debug-{datetime.now(UTC):%Y%m%d-%H%M%S}.json")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as exc:
        print(f"ouro debug-info: --output {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"ouro debug-info: wrote {out} ({len(text.encode())} bytes); attach it to your report", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
