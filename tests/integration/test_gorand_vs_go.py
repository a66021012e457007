"""The Go math/rand port against Go itself (bsoracle rand), at scale.

Thousands of int64 seeds (negative, zero, huge, multiples of 2**31 - 1) and
random op sequences; the batched generator is driven with per-row masks and
bounds, the way the rules engine drives it, and every row must reproduce the
stream Go gives for the ops that row took part in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gorand_ops import BOUNDED, scalar_results
from oracle import run_oracle

from ouroboros.trainer.engine.gorand import GoRand
from ouroboros.trainer.engine.gorand_batch import GoRandBatch

pytestmark = pytest.mark.integration

M = 2**31 - 1
EDGE_SEEDS = [0, 1, -1, M, -M, M - 1, 2 * M, -(2**63), 2**63 - 1, 89482311, -89482311, 2**31]


def random_seeds(rng: np.random.Generator, n: int) -> list[int]:
    """Edge seeds, then a mix of small, 32-bit-ish and full int64 seeds."""
    pools = [
        rng.integers(-1000, 1000, size=n),
        rng.integers(-(2**33), 2**33, size=n),
        rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64),
    ]
    pick = rng.integers(0, 3, size=n)
    mixed = [int(pools[p][i]) for i, p in enumerate(pick)]
    return (EDGE_SEEDS + mixed)[:n]


def random_bound(rng: np.random.Generator, name: str) -> int:
    """A bound that exercises masks, rejection-heavy values and both Intn paths."""
    if name == "int31n":
        choices = [
            int(rng.integers(1, 200)),
            1 << int(rng.integers(0, 31)),
            2**30 + 1,
            M,
            3 * 2**29,
        ]
    elif name == "int63n":
        choices = [int(rng.integers(1, 10**6)), 1 << int(rng.integers(0, 63)), 2**62 + 1, 2**63 - 1]
    else:
        choices = [int(rng.integers(1, 200)), 2**30 + 1, M, 2**31, int(rng.integers(2**31, 2**62))]
    return choices[int(rng.integers(len(choices)))]


def random_op(rng: np.random.Generator) -> dict:
    """One oracle op: mostly cheap draws, some shuffles and deep skips."""
    name = str(
        rng.choice(
            ["int63", "uint64", "uint32", "int31", "int31n", "int63n", "intn", "shuffle", "skip"],
            p=[0.1, 0.1, 0.05, 0.05, 0.15, 0.1, 0.2, 0.15, 0.1],
        )
    )
    if name == "shuffle":
        return {
            "op": name,
            "n": int(rng.choice([0, 1, 2, int(rng.integers(3, 130)), 400])),
            "count": 1,
        }
    if name == "skip":
        return {"op": name, "n": 0, "count": int(rng.choice([50, 300, 700]))}
    n = random_bound(rng, name) if name in BOUNDED else 0
    return {"op": name, "n": n, "count": int(rng.integers(1, 4))}


def test_scalar_random_op_sequences(oracle: Path) -> None:
    rng = np.random.default_rng(20240601)
    seeds = random_seeds(rng, 600)
    requests = [{"seed": s, "ops": [random_op(rng) for _ in range(8)]} for s in seeds]
    answers = run_oracle(oracle, "rand", requests)
    for request, answer in zip(requests, answers, strict=True):
        assert answer["seed"] == request["seed"]
        assert scalar_results(request["seed"], request["ops"]) == answer["results"], request


def test_first_draws_of_many_seeds(oracle: Path) -> None:
    rng = np.random.default_rng(7)
    seeds = random_seeds(rng, 5000)
    ops = [{"op": "int63", "n": 0, "count": 2}, {"op": "intn", "n": 100, "count": 1}]
    answers = run_oracle(oracle, "rand", [{"seed": s, "ops": ops} for s in seeds])
    batch = GoRandBatch(np.array(seeds, dtype=np.int64))
    first, second, third = batch.int63(), batch.int63(), batch.intn(100)
    for row, answer in enumerate(answers):
        assert [[int(first[row]), int(second[row])], [int(third[row])]] == answer["results"]
    for row in range(0, 5000, 50):
        g = GoRand(seeds[row])
        assert [[g.int63(), g.int63()], [g.intn(100)]] == answers[row]["results"]


def test_batch_masked_schedule(oracle: Path) -> None:
    """A schedule of batched calls; row r's Go ops are the calls it was active in."""
    rng = np.random.default_rng(99)
    seeds = random_seeds(rng, 2500)
    n_rows = len(seeds)
    batch = GoRandBatch(np.array(seeds, dtype=np.int64))
    row_ops: list[list[dict]] = [[] for _ in range(n_rows)]
    row_got: list[list[list[int]]] = [[] for _ in range(n_rows)]
    for _ in range(30):
        op = random_op(rng)
        name = op["op"]
        active = None if rng.random() < 0.25 else rng.random(n_rows) < rng.uniform(0.2, 0.9)
        rows = range(n_rows) if active is None else np.flatnonzero(active)
        if name == "shuffle":
            lengths = rng.integers(0, 130, size=n_rows)
            lengths[rng.random(n_rows) < 0.05] = 400
            lengths[rng.random(n_rows) < 0.01] = 1300  # look-ahead past 607 draws
            perm = batch.shuffle(lengths, active)
            for r in rows:
                row_ops[r].append({"op": name, "n": int(lengths[r]), "count": 1})
                row_got[r].append(perm[r, : lengths[r]].tolist())
            continue
        if name == "skip":
            for _ in range(op["count"]):
                batch.uint64(active)
            for r in rows:
                row_ops[r].append(op)
                row_got[r].append([])
            continue
        if name in BOUNDED:
            bounds = np.array([random_bound(rng, name) for _ in range(n_rows)], dtype=np.int64)
            draws = [getattr(batch, name)(bounds, active) for _ in range(op["count"])]
        else:
            bounds = np.zeros(n_rows, dtype=np.int64)
            draws = [getattr(batch, name)(active) for _ in range(op["count"])]
        for r in rows:
            row_ops[r].append({"op": name, "n": int(bounds[r]), "count": op["count"]})
            row_got[r].append([int(d[r]) for d in draws])
    answers = run_oracle(
        oracle, "rand", [{"seed": s, "ops": o} for s, o in zip(seeds, row_ops, strict=True)]
    )
    for r, answer in enumerate(answers):
        assert row_got[r] == answer["results"], f"row {r}, seed {seeds[r]}"
    assert batch.draws.max() > 273  # some rows used the full table


def test_engine_pattern_spawn_then_shuffle(oracle: Path) -> None:
    """GoRandBatch(seeds + turn): Intn(100), then a shuffle only where food spawns."""
    rng = np.random.default_rng(3)
    base = np.array(random_seeds(rng, 1500), dtype=np.int64)
    for turn in (0, 1, 57, 400):
        with np.errstate(over="ignore"):
            seeds = base + np.int64(turn)  # int64 wraps like Go's seed + int64(turn)
        batch = GoRandBatch(seeds)
        roll = batch.intn(100)
        spawn = (100 - roll) < 15
        free = rng.integers(60, 118, size=len(seeds))
        prefix = batch.shuffle_prefix(free, 2, spawn)
        requests = []
        for r, s in enumerate(seeds):
            ops = [{"op": "intn", "n": 100, "count": 1}]
            if spawn[r]:
                ops.append({"op": "shuffle", "n": int(free[r]), "count": 1})
            requests.append({"seed": int(s), "ops": ops})
        answers = run_oracle(oracle, "rand", requests)
        for r, answer in enumerate(answers):
            assert answer["results"][0] == [int(roll[r])]
            if spawn[r]:
                assert answer["results"][1][:2] == prefix[r].tolist()
            else:
                assert prefix[r].tolist() == [-1, -1]
