"""What live progress costs: one progress record written, and one read back into a status.

    python -m benchmarks.progress [--repeats 200]

A phase writes a record every 15 s and the operator reads each running
phase's records on the same cadence, so both must be negligible next to a
training step. Measured with the worst record a phase keeps: 8 scalars with
full histories (256 points each), resource sampling (psutil, a local store of
500 files) included. The peer: `json.dumps` of the same record to memory, the
floor for any serialised progress channel. Medians of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from ouroboros.contract.progress import HISTORY_POINTS, progress_key
from ouroboros.operator import progress as operator_progress
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.observability import progress, resources


class _Quiet:
    def task(self, description, total):
        return lambda n: None

    def scalar(self, tag, value, step):
        pass


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print the figures; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(Path(tmp) / "store")
        run_folder = Path(store.path("runs/bench"))
        (run_folder / "replay").mkdir(parents=True)
        for i in range(500):
            (run_folder / "replay" / f"shard-{i:04d}.npz").write_bytes(b"x" * 1000)
        key = progress_key("bench", "hybrid")
        rec = progress.ProgressRecorder(_Quiet(), run="bench", phase="hybrid", planned=8,
                                        sinks=(progress.store_sink(store, key),),
                                        sampler=resources.ResourceSampler(str(run_folder)))
        rec.task("hybrid 1/4: games", 256)(100)
        for step in range(HISTORY_POINTS):
            for tag in ("loss/policy", "loss/value", "entropy", "kl", "clip_fraction", "win_rate/heuristic",
                        "win_rate/snapshot", "win_rate/random_safe"):
                rec.scalar(f"hybrid/{tag}", 1.0 / (step + 1), step)
        record = rec.record()
        size = len(json.dumps(record.to_api()))
        dumps = _median_ms(lambda: json.dumps(record.to_api()), args.repeats)
        write = _median_ms(rec.publish, args.repeats)
        read = _median_ms(lambda: operator_progress.run_progress(
            f"file://{store.root}", "", "bench", "", "hybrid", datetime.now(UTC)), args.repeats)
    print(f"progress record: {size / 1024:.1f} KiB with {HISTORY_POINTS}-point histories of 8 scalars")
    print(f"  trainer, sample + build + atomic write: {write:.2f} ms median "
          f"({write / dumps:.1f}x json.dumps of the record alone, {dumps:.2f} ms)")
    print(f"  operator, read + summarise into status.progress: {read:.2f} ms median")
    print(f"  share of a 15 s interval: {100 * write / 15000:.3f}% (trainer), {100 * read / 15000:.3f}% (operator)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
