"""The Go math/rand port against captured Go outputs, and batch against scalar.

The vectors in tests/oracle/fixtures/gorand_vectors.json were captured from
Go by tests/oracle/capture_gorand_vectors.py; these tests need no Go.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gorand_ops import scalar_results

from ouroboros.trainer.engine import gorand
from ouroboros.trainer.engine.gorand import GoRand
from ouroboros.trainer.engine.gorand_batch import GoRandBatch

pytestmark = pytest.mark.unit

VECTORS = Path(__file__).resolve().parents[1] / "oracle" / "fixtures" / "gorand_vectors.json"
CASES = json.loads(VECTORS.read_text())["cases"]
M = 2**31 - 1


def batch_results(seeds: list[int], ops: list[dict]) -> list[list[list[int]]]:
    """Run an oracle op list on a GoRandBatch over all seeds at once."""
    b = GoRandBatch(np.array(seeds, dtype=np.int64))
    per_op = []
    for op in ops:
        name, n, count = op["op"], op["n"], op["count"]
        if name == "shuffle":
            per_op.append(b.shuffle(n).tolist())
        elif name == "skip":
            for _ in range(count):
                b.uint64()
            per_op.append([[] for _ in seeds])
        else:
            call = getattr(b, name)
            draws = [
                call(n) if name in ("int31n", "int63n", "intn") else call() for _ in range(count)
            ]
            per_op.append(np.stack(draws, axis=1).tolist() if draws else [[] for _ in seeds])
    return [
        [[int(v) for v in per_op[k][row]] for k in range(len(ops))] for row in range(len(seeds))
    ]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_scalar_matches_go(case: dict) -> None:
    for seed, expected in zip(case["seeds"], case["results"], strict=True):
        assert scalar_results(seed, case["ops"]) == expected, f"seed {seed}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_batch_matches_go(case: dict) -> None:
    got = batch_results(case["seeds"], case["ops"])
    for seed, row, expected in zip(case["seeds"], got, case["results"], strict=True):
        assert row == expected, f"seed {seed}"


def test_lemire_rejection_case_really_rejects() -> None:
    # The fixture's last case exists to cover Shuffle's rare redraw; make sure it does.
    b = GoRandBatch(np.array([1522]))
    b.shuffle(3000)
    assert b.draws[0] == 3000  # 2999 steps plus one rejected draw


@pytest.mark.parametrize(
    ("seed", "reduced"),
    [
        (0, 89482311),
        (1, 1),
        (-1, M - 1),
        (-5, M - 5),
        (M, 89482311),
        (-M, 89482311),
        (M + 3, 3),
        (-(M + 3), M - 3),
        (2**63 - 1, (2**63 - 1) % M),
        (-(2**63), M - (2**63 % M)),
    ],
)
def test_seed_reduction_uses_truncated_division(seed: int, reduced: int) -> None:
    assert gorand.reduce_seed(seed) == reduced
    batch_state = gorand._reduce_seeds(np.array([seed], dtype=np.int64))
    assert int(batch_state[0]) == reduced


def test_seeds_equal_mod_m_give_equal_streams() -> None:
    a, b = GoRand(5), GoRand(5 + 7 * M)
    assert [a.int63() for _ in range(300)] == [b.int63() for _ in range(300)]


def test_masked_mixed_calls_follow_each_rows_scalar_stream() -> None:
    # Rows draw different amounts, some past draw 273 while others stay lazy,
    # and every row must still see exactly its own scalar stream.
    rng = np.random.default_rng(7)
    seeds = rng.integers(-(2**63), 2**63 - 1, size=24, dtype=np.int64)
    batch = GoRandBatch(seeds)
    scalars = [GoRand(int(s)) for s in seeds]
    for step in range(40):
        active = rng.random(len(seeds)) < 0.6
        kind = step % 4
        if kind == 0:
            n = rng.integers(1, 2**31 - 1, size=len(seeds))
            got = batch.intn(n, active)
            want = [
                sc.intn(int(k)) if a else -1 for sc, k, a in zip(scalars, n, active, strict=True)
            ]
        elif kind == 1:
            got = batch.int63(active)
            want = [sc.int63() if a else -1 for sc, a in zip(scalars, active, strict=True)]
        elif kind == 2:
            lengths = rng.integers(0, 60, size=len(seeds))
            got = batch.shuffle(lengths, active)
            width = got.shape[1]
            want = [
                (sc.permutation(int(n)) + [-1] * (width - int(n))) if a else [-1] * width
                for sc, n, a in zip(scalars, lengths, active, strict=True)
            ]
        else:
            got = batch.uint64(active)
            want = [sc.uint64() if a else 0 for sc, a in zip(scalars, active, strict=True)]
        assert np.asarray(got).tolist() == want, f"step {step}"
    assert batch.draws.tolist() == [sc.draws for sc in scalars]
    assert batch.draws.max() > gorand.RNG_TAP > batch.draws.min()


def test_intn_mixes_int31n_and_int63n_rows() -> None:
    seeds = np.arange(1, 9)
    n = np.array([100, 2**40 + 3, 7, 2**31 - 1, 2**31, 1, 2**62 + 1, 64])
    got = GoRandBatch(seeds).intn(n)
    want = [GoRand(int(s)).intn(int(k)) for s, k in zip(seeds, n, strict=True)]
    assert got.tolist() == want


def test_shuffle_prefix_is_the_head_of_shuffle() -> None:
    seeds = np.arange(-50, 50)
    lengths = np.arange(100) % 13
    full = GoRandBatch(seeds).shuffle(lengths)
    prefix = GoRandBatch(seeds).shuffle_prefix(lengths, 3)
    assert prefix.tolist() == full[:, :3].tolist()
    assert GoRandBatch(seeds).shuffle_prefix(lengths, 20)[:, 13:].tolist() == [[-1] * 7] * 100


def test_shuffle_list_matches_permutation() -> None:
    items = list("abcdefghij")
    GoRand(99).shuffle_list(items)
    assert items == [list("abcdefghij")[i] for i in GoRand(99).permutation(10)]


def test_fresh_batch_first_intn_uses_only_two_entries_per_row() -> None:
    # The engine's hot path: a fresh batch, one Intn(100). It must not build tables.
    batch = GoRandBatch(np.arange(1, 4097))
    batch.intn(100)
    assert len(batch._tables) == 0


@pytest.mark.parametrize(
    ("method", "arg"),
    [("int31n", 0), ("int31n", 2**31), ("int63n", -1), ("intn", 0), ("intn", 2**63)],
)
def test_invalid_bounds_raise(method: str, arg: int) -> None:
    with pytest.raises(ValueError):
        getattr(GoRand(1), method)(arg)
    with pytest.raises(ValueError):
        getattr(GoRandBatch(np.array([1, 2])), method)(arg)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        gorand.reduce_seed(2**63)
    with pytest.raises(TypeError):
        GoRandBatch(np.array([1.5]))
    with pytest.raises(ValueError):
        GoRandBatch(np.array([1, 2])).int63(np.array([True]))
    with pytest.raises(ValueError):
        GoRandBatch(np.array([1, 2])).shuffle(np.array([3, -1]))


def test_unmasked_draws_after_an_uneven_shuffle() -> None:
    # Rows that shuffled different lengths no longer share a draw count.
    seeds = np.arange(10, 20)
    lengths = np.arange(10) * 7
    batch = GoRandBatch(seeds)
    batch.shuffle(lengths)
    got = [batch.int63().tolist(), batch.shuffle(300).tolist()]
    scalars = [GoRand(int(s)) for s in seeds]
    for sc, n in zip(scalars, lengths, strict=True):
        sc.permutation(int(n))
    assert got[0] == [sc.int63() for sc in scalars]
    assert got[1] == [sc.permutation(300) for sc in scalars]


def test_shuffle_prefix_traces_back_to_the_full_shuffle():
    """shuffle_prefix follows writes backwards instead of replaying swaps: same answer."""
    rng = np.random.default_rng(7)
    for trial in range(60):
        seeds = rng.integers(-(2**40), 2**40, 40)
        lengths = rng.integers(0, 400 if trial % 4 == 0 else 60, 40)
        k = int(rng.integers(1, 6))
        full = GoRandBatch(seeds).shuffle(lengths)
        prefix = GoRandBatch(seeds).shuffle_prefix(lengths, k)
        want = np.full((40, k), -1)
        width = min(k, full.shape[1])
        want[:, :width] = full[:, :width]
        np.testing.assert_array_equal(prefix, want)
