"""`ouro report RUN`: a run's report as one self-contained HTML file.

    ouro report local-quick-20261130-061500                 # ./report-RUN.html from ./runs/registry
    ouro report ns.my-run --store s3://bucket/ouro -o r.html

Training curves, the phase table, the strength table with Wilson and Elo
intervals, the run's model versions and its game's champion history (see
`ouroboros.trainer.evaluation.report`). The file needs no server and no
network: open it in a browser. Exit codes: 0 written, 1 no such run, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from ouroboros.trainer.artifacts import registry as reg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouro report", description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run id (its folder runs/RUN/ in the store; `ouro train` prints it)")
    p.add_argument("--store", default=reg.default_store(), help="artifact store (default %(default)s)")
    p.add_argument("-o", "--output", type=Path, default=None, help="HTML file to write (default ./report-RUN.html)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro report`; returns the exit code."""
    args = _parser().parse_args(argv)
    from ouroboros.trainer.artifacts.store import ArtifactStore
    from ouroboros.trainer.evaluation import report

    store = ArtifactStore(str(Path(args.store).resolve()) if "://" not in args.store else args.store)
    try:
        data = report.collect(store, args.run, datetime.now(UTC))
    except report.RunNotFoundError as exc:
        print(f"ouro report: {exc}", file=sys.stderr)
        return 1
    out = args.output or Path(f"report-{args.run}.html")
    html = report.render(data)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        print(f"ouro report: --output {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"ouro report: wrote {out} ({len(html.encode()) // 1024} KiB); open it in a browser")
    return 0


if __name__ == "__main__":
    sys.exit(main())
