"""Captures known Go math/rand outputs into fixtures/gorand_vectors.json.

The unit tests of ouroboros.trainer.engine.gorand compare against this file,
so they stay pure (no Go needed); the integration tests compare against the
live oracle. Rerun after changing the cases below:
``python tests/oracle/capture_gorand_vectors.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oracle import ensure_oracle, run_oracle  # noqa: E402

OUT = Path(__file__).resolve().parent / "fixtures" / "gorand_vectors.json"

EDGE_SEEDS = [
    1, 42, -5, 0, 1234,
    2**31 - 1, 2**31 - 2, 2**31, -(2**31 - 1), -(2**31), 2 * (2**31 - 1),
    -(2**63), 2**63 - 1, 89482311, -89482311,
]


def op(name: str, n: int = 0, count: int = 1) -> dict:
    """One oracle op: {"op", "n", "count"}."""
    return {"op": name, "n": n, "count": count}


CASES = [
    {
        "name": "every method, edge seeds",
        "seeds": EDGE_SEEDS,
        "ops": [
            op("int63", count=3), op("uint64", count=2), op("uint32", count=2),
            op("int31", count=2), op("int31n", 100, 5), op("int31n", 2**30 + 1, 6),
            op("int31n", 64, 3), op("int63n", 10**18, 2), op("int63n", 2**62 + 1, 4),
            op("intn", 7, 3), op("intn", 2**40 + 3, 2), op("shuffle", 0), op("shuffle", 1),
            op("shuffle", 2), op("shuffle", 10), op("shuffle", 40),
        ],
    },
    {
        "name": "past draw 273 (the full table)",
        "seeds": [7, -7, 123456789],
        "ops": [
            op("intn", 100), op("shuffle", 100), op("skip", count=300), op("int63", count=3),
            op("shuffle", 30), op("skip", count=1000), op("uint64", count=3), op("intn", 100, 3),
            op("shuffle", 700), op("int63", count=2), op("shuffle", 1300), op("int63", count=2),
        ],
    },
    {
        # Seed 1522 rejects once in Shuffle's Lemire int31n over 3000 elements.
        "name": "shuffle with a Lemire rejection",
        "seeds": [1522],
        "ops": [op("shuffle", 3000), op("int63", count=2)],
    },
]


def main() -> int:
    """Ask the oracle for every case and write the fixture atomically."""
    binary = ensure_oracle()
    cases = []
    for case in CASES:
        answers = run_oracle(binary, "rand", [{"seed": s, "ops": case["ops"]} for s in case["seeds"]])
        cases.append(
            {
                "name": case["name"],
                "ops": case["ops"],
                "seeds": case["seeds"],
                "results": [answer["results"] for answer in answers],
            }
        )
    doc = {
        "about": "Outputs of Go's rand.New(rand.NewSource(seed)) from bsoracle rand; "
        "written by tests/oracle/capture_gorand_vectors.py.",
        "cases": cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=OUT.parent, prefix=".vectors.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, separators=(",", ":"))
        handle.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
