"""Replays an oracle op list (`bsoracle rand`'s JSON form) on our scalar Go generator.

Shared by the unit test (captured vectors) and the integration test (live oracle).
"""

from __future__ import annotations

from ouroboros.trainer.engine.gorand import GoRand

BOUNDED = ("int31n", "int63n", "intn")


def scalar_results(seed: int, ops: list[dict]) -> list[list[int]]:
    """Run an oracle op list on a GoRand."""
    g = GoRand(seed)
    results = []
    for op in ops:
        name, n, count = op["op"], op["n"], op["count"]
        if name == "shuffle":
            results.append(g.permutation(n))
        elif name == "skip":
            for _ in range(count):
                g.uint64()
            results.append([])
        elif name in BOUNDED:
            results.append([getattr(g, name)(n) for _ in range(count)])
        else:
            results.append([getattr(g, name)() for _ in range(count)])
    return results
