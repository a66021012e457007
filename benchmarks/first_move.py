"""The first `/move` of a fresh `ouro serve` process, with and without the warm-up move.

A network player's first move compiles (or loads from numba's cache) the encoding
and safety kernels and runs onnxruntime for the first time. `ouro serve` plays one
warm-up move before its port opens (`App.warm_up`) so that no game pays for it.
Each sample is a fresh Python process that builds the served player as `ouro
serve` does, optionally warms it up, then times the first and second `App.move`
on a real 11x11 duel position (parse + player, no HTTP). Numba's cache is either
a new empty folder (`cold`: a fresh install's first game) or the usual one
(`cached`). Usage:

    python -m benchmarks.first_move --player onnx:model.onnx [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from benchmarks.server import positions
from ouroboros.trainer.serving import app as app_module
spec, warm = sys.argv[1], sys.argv[2] == "1"
body = positions(2, 4, seed=7)[40]
body["game"]["timeout"] = 500
app = app_module.App(spec)
warm_ms = app.warm_up() * 1e3 if warm else 0.0
times = []
for _ in range(2):
    began = time.perf_counter()
    app.move(json.loads(json.dumps(body)))
    times.append((time.perf_counter() - began) * 1e3)
print(json.dumps({"warm_up_ms": warm_ms, "first_ms": times[0], "second_ms": times[1]}))
"""


def sample(spec: str, warm: bool, cold: bool) -> dict:
    """One fresh process's timings (ms)."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["NUMBA_CACHE_DIR"] = cache
        out = subprocess.run([sys.executable, "-c", CHILD, spec, "1" if warm else "0"], env=env,
                             capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--player", required=True, help="a served player spec, e.g. onnx:PATH or nsearch:model=PATH")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per row (medians are printed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for cold in (True, False):
        for warm in (False, True):
            samples = [sample(args.player, warm, cold) for _ in range(args.repeat)]
            rows.append({"cache": "cold" if cold else "cached", "warm_up": warm,
                         **{k: statistics.median(s[k] for s in samples) for k in samples[0]}})
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{args.player}: medians of {args.repeat} fresh processes, ms (11x11 duel, timeout 500)")
    print(f"{'numba cache':<12} {'warm-up':<8} {'warm-up ms':>10} {'first move':>11} {'second move':>12}")
    for r in rows:
        print(f"{r['cache']:<12} {'yes' if r['warm_up'] else 'no':<8} {r['warm_up_ms']:>10.0f} "
              f"{r['first_ms']:>11.0f} {r['second_ms']:>12.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
