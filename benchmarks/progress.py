"""What live progress costs: one progress record written, one read back into a status, and the
run's replay buffer summarised from its shards' sidecars.

    python -m benchmarks.progress [--repeats 200] [--shards 500]

A phase writes a record every 15 s and the operator reads each running
phase's records on the same cadence, so both must be negligible next to a
training step. Measured with the worst record a phase keeps: 8 scalars with
full histories (256 points each), resource sampling (psutil, a local store of
500 files) included. The peer: `json.dumps` of the same record to memory, the
floor for any serialised progress channel. Medians of `--repeats` runs.

The replay buffer (`status.progress.replay`) is read on the same cadence from
a run with `--shards` shards written by the trainer's own `ReplayWriter`:
the first read parses every sidecar, a refresh lists the folder and parses
only new ones. The peer: reading every sidecar again, as the schedule's data
trigger does (`operator.replay.new_games_since`). Medians of 20 runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ouroboros.contract.progress import HISTORY_POINTS, progress_key
from ouroboros.operator import progress as operator_progress
from ouroboros.operator import replay
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.learning import shards as replay_shards
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
    parser.add_argument("--shards", type=int, default=500, help="replay shards of the run (default 500)")
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
    cold, warm, peer = _replay(args.shards)
    print(f"progress record: {size / 1024:.1f} KiB with {HISTORY_POINTS}-point histories of 8 scalars")
    print(f"  trainer, sample + build + atomic write: {write:.2f} ms median "
          f"({write / dumps:.1f}x json.dumps of the record alone, {dumps:.2f} ms)")
    print(f"  operator, read + summarise into status.progress: {read:.2f} ms median")
    print(f"  share of a 15 s interval: {100 * write / 15000:.3f}% (trainer), {100 * read / 15000:.3f}% (operator)")
    print(f"replay buffer of {args.shards} shards, operator: first read {cold:.1f} ms, refresh {warm:.2f} ms median "
          f"({peer / warm:.1f}x faster than reading every sidecar again, {peer:.1f} ms)")
    return 0


def _replay(count: int) -> tuple[float, float, float]:
    """(first read, refresh, reading every sidecar) in ms for a run of `count` shards."""
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(Path(tmp) / "store")
        writer = replay_shards.ReplayWriter(store, "bench", "self_play", shard_rows=8)
        for g in range(count):
            writer.add("self", {"game_id": np.full(8, g), "turn": np.arange(8), "seat": np.zeros(8),
                                "value": np.zeros(8), "quality": np.ones(8)})
        url = f"file://{store.root}"
        colds = []
        for _ in range(20):
            reader = replay.ReplayReader()
            t0 = time.perf_counter()
            usage = reader.usage(url, "bench")
            colds.append(time.perf_counter() - t0)
        assert usage.shards == count and usage.positions == 8 * count
        warm = _median_ms(lambda: reader.usage(url, "bench"), 20)
        peer = _median_ms(lambda: replay.new_games_since(url, None), 20)
    return 1000 * statistics.median(colds), warm, peer


if __name__ == "__main__":
    raise SystemExit(main())
