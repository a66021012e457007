"""Production readiness: is an exported model faithful, fast and small enough to serve?

The promotion gate (:mod:`ouroboros.trainer.evaluation.gate`) refuses a
candidate whose :class:`~ouroboros.trainer.evaluation.gate.ReadinessReport`
fails its thresholds; this module measures that report for an ONNX file:

* **Parity** on real positions (games played by the engine, every living
  seat encoded; 10,000 by default): the share of positions where the ONNX
  model's favourite move equals the torch model's, and the largest absolute
  difference of policy logits and of values. fp32 must agree on every
  position. int8 must agree on at least 99% of the *decisive* positions, those
  where the torch model's two best logits are at least ``int8_tie_tolerance``
  (0.05, a 5% probability ratio) apart: int8 rounding moves logits by about
  0.01-0.5, so it flips moves the torch model is itself indifferent between,
  and a partly trained network has many such near-ties (10% of positions
  after a few dozen imitation steps, where 98.5% strict agreement meant 99.8%
  decisive). Both figures are reported; on well-trained networks both pass.
* **Latency**: p50 and p99 of single-position inference (batch 1) on one
  thread, as a server runs it (:func:`ouroboros.trainer.agents.neural.inference_session`).
  This CPU is shared, so the calls run in several rounds and each percentile
  is the median of the rounds' (a burst of load spoils one round, not the
  verdict).
* **Memory**: the peak resident memory an inference session adds to its
  process (session creation and every call included), in a fresh subprocess
  that imports onnxruntime and numpy only: the baseline RSS is read after the
  imports, the kernel's peak counter (VmHWM) is reset, and the peak is read at
  the end. The interpreter and the runtime library themselves are not counted:
  they are the server's fixed cost whatever the model.
* **The leaf net** a model carries (metadata ``leaf_net``, :mod:`..agents.leafnet`) loads and was
  made for the model's board: a broken one would fail every move ``champion+nsearch`` hands to the
  alpha-beta, and one for another board would be left out of them unsaid.

A model that fails any check is not promotable, and the report says why.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ouroboros.contract.promotion import ReadinessSpec
from ouroboros.trainer.agents import leafnet, neural
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.agents.simple import RandomSafe
from ouroboros.trainer.engine.state import Board
from ouroboros.trainer.evaluation import gate
from ouroboros.trainer.learning import positions
from ouroboros.trainer.observation import encoding


class ReadinessConfig(BaseModel):
    """How a model is checked, and what it must reach."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    thresholds: ReadinessSpec = Field(
        default_factory=ReadinessSpec, description="Latency and memory limits."
    )
    positions: int = Field(10_000, ge=1, description="Real positions of the parity check.")
    min_agreement_fp32: float = Field(1.0, ge=0, le=1, description="Move agreement fp32 must reach.")
    min_agreement_int8: float = Field(
        0.99, ge=0, le=1, description="Move agreement int8 must reach on decisive positions."
    )
    int8_tie_tolerance: float = Field(
        0.05, ge=0, description="int8: positions whose torch top-two logits are closer are near-ties."
    )
    latency_calls: int = Field(1000, ge=10, description="Timed calls per latency round.")
    latency_rounds: int = Field(5, ge=1, description="Rounds; percentiles are their medians.")
    warmup_calls: int = Field(100, ge=0, description="Untimed calls before the first round.")
    threads: int = Field(1, ge=1, description="Intra-op threads of the measured session.")
    seed: int = Field(0, description="Seed of the games the positions come from.")


class Parity(BaseModel):
    """How closely an ONNX model follows its torch network."""

    positions: int = Field(description="Positions compared.")
    agreement: float = Field(description="Share of positions with the same favourite move.")
    disagreements: int = Field(description="Positions where the favourite moves differ.")
    max_abs_diff_policy: float = Field(description="Largest |logit difference|.")
    max_abs_diff_value: float = Field(description="Largest |value difference|.")
    required: float = Field(description="The agreement this precision must reach.")
    tie_tolerance: float = Field(0.0, description="Top-two logit gap below which a position is a near-tie.")
    decisive_positions: int = Field(description="Positions whose torch top-two gap >= tie_tolerance.")
    decisive_agreement: float = Field(description="Agreement on the decisive positions.")

    @property
    def ok(self) -> bool:
        """Strict agreement with no tolerance (fp32), else agreement on decisive positions."""
        measured = self.decisive_agreement if self.tie_tolerance > 0 else self.agreement
        return measured >= self.required


class Serving(BaseModel):
    """Latency and memory of one inference session, measured in a subprocess."""

    p50_latency_ms: float = Field(description="Median over rounds of each round's p50.")
    p99_latency_ms: float = Field(description="Median over rounds of each round's p99.")
    rounds_p99_ms: list[float] = Field(description="Each round's p99 (spread = noise).")
    peak_memory_mb: float = Field(description="Peak RSS the session added to its process.")
    process_peak_mb: float = Field(description="Peak RSS of the whole probe process.")
    model_size_mb: float = Field(description="Size of the ONNX file.")
    threads: int = Field(description="Intra-op threads.")
    calls: int = Field(description="Timed calls in all.")


class Readiness(BaseModel):
    """The verdict on one ONNX file: the gate's report plus the evidence behind it."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="Path of the ONNX file.")
    precision: str = Field(description="fp32 or int8, from the model's metadata.")
    report: gate.ReadinessReport = Field(description="What the promotion gate reads.")
    parity: Parity | None = Field(description="Parity with torch (None when not measured).")
    serving: Serving
    thresholds: ReadinessSpec
    failures: list[str] = Field(description="Why it is not promotable; empty when it is.")

    @property
    def promotable(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        """One line per figure and the verdict, for logs and the CLI."""
        s = self.serving
        lines = [f"{self.model} ({self.precision})"]
        if self.parity is not None:
            p = self.parity
            needs = (f"needs {p.required:.0%} of the {p.decisive_positions:,} decisive: "
                     f"{p.decisive_agreement:.4%}" if p.tie_tolerance else f"needs {p.required:.0%}")
            lines.append(
                f"  parity    {p.agreement:.4%} same move on {p.positions:,} positions "
                f"({needs}); max |diff| policy {p.max_abs_diff_policy:.2e}, "
                f"value {p.max_abs_diff_value:.2e}"
            )
        lines.append(
            f"  latency   p50 {s.p50_latency_ms:.3f} ms, p99 {s.p99_latency_ms:.3f} ms "
            f"(batch 1, {s.threads} thread; limit {self.thresholds.max_p99_latency_ms:g} ms)"
        )
        lines.append(
            f"  memory    {s.peak_memory_mb:.1f} MB session peak (process {s.process_peak_mb:.1f} MB; "
            f"limit {self.thresholds.max_peak_memory_mb:g} MB), file {s.model_size_mb:.2f} MB"
        )
        verdict = "promotable" if self.promotable else "NOT promotable: " + "; ".join(self.failures)
        lines.append(f"  verdict   {verdict}")
        return "\n".join(lines)


def _metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(os.fspath(path), load_external_data=False).metadata_props}


def precision_of(path: str | os.PathLike[str]) -> str:
    """The ``precision`` entry of a model's metadata (fp32 when absent)."""
    return _metadata(path).get("precision", "fp32")


def _input_planes(meta: dict[str, str], planes: np.ndarray) -> np.ndarray:
    """``planes`` [N, C, H, W] cut to the planes the model's contract takes (``neural.contract_input``:
    ModelContractError for a contract that is not readable); as they are for a bare graph."""
    if "contract" not in meta:
        return planes
    try:
        contract = json.loads(meta["contract"])
    except ValueError:
        raise neural.ModelContractError("not an Ouroboros model: its 'contract' metadata is not JSON") from None
    return encoding.prefix(planes, neural.contract_input(contract)[0])


def reference_outputs(net: Any, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torch network's (policy [N, 4], value [N, 1]) on planes [N, C, H, W], in eval mode."""
    import torch

    was_training = net.training
    net.eval()
    policy, value = [], []
    try:
        with torch.inference_mode():
            for chunk in np.array_split(planes, max(1, len(planes) // 1024)):
                p, v = net(torch.from_numpy(chunk))
                policy.append(p.numpy())
                value.append(v.numpy())
    finally:
        net.train(was_training)
    return np.concatenate(policy), np.concatenate(value)


def parity(
    net: Any,
    model: str | os.PathLike[str],
    planes: np.ndarray,
    required: float,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    tie_tolerance: float = 0.0,
) -> Parity:
    """Compare the torch network and the ONNX model on planes [N, C, H, W].

    reference: the network's outputs on ``planes`` when already computed
    (:func:`reference_outputs`), to check several files against one network.
    tie_tolerance: judge agreement on positions whose torch top-two logits are at
    least this far apart (0: every position, strictly).
    """
    tp, tv = reference if reference is not None else reference_outputs(net, planes)
    session = neural.inference_session(model, threads=os.cpu_count() or 1)
    outputs = [session.run(["policy", "value"], {"board": chunk})
               for chunk in np.array_split(planes, max(1, len(planes) // 1024))]
    op = np.concatenate([o[0] for o in outputs])
    ov = np.concatenate([o[1] for o in outputs])
    same = tp.argmax(axis=1) == op.argmax(axis=1)
    top2 = np.sort(tp, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) >= tie_tolerance
    return Parity(
        tie_tolerance=tie_tolerance,
        decisive_positions=int(decisive.sum()),
        decisive_agreement=float(same[decisive].mean()) if decisive.any() else 1.0,
        positions=len(planes),
        agreement=float(same.mean()),
        disagreements=int((~same).sum()),
        max_abs_diff_policy=float(np.abs(tp - op).max()),
        max_abs_diff_value=float(np.abs(tv - ov).max()),
        required=required,
    )


def measure_serving(
    model: str | os.PathLike[str], planes: np.ndarray, config: ReadinessConfig
) -> Serving:
    """Latency and memory of ``model`` in a fresh subprocess (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, np.ascontiguousarray(planes[: min(len(planes), 512)], np.float32))
        cmd = [
            sys.executable, "-m", __name__, "probe", os.fspath(model), "--inputs", str(inputs),
            "--calls", str(config.latency_calls), "--rounds", str(config.latency_rounds),
            "--warmup", str(config.warmup_calls), "--threads", str(config.threads),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"latency probe of {model} failed ({done.returncode}): {done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["model_size_mb"] = Path(model).stat().st_size / 1e6
    return Serving.model_validate(figures)


def check(
    model: str | os.PathLike[str],
    net: Any | None,
    planes: np.ndarray,
    config: ReadinessConfig | None = None,
) -> Readiness:
    """The readiness verdict of one ONNX file. ``net`` is the torch network it was
    exported from (None skips parity: then the gate sees ``parity_ok=None``);
    ``planes`` [N, C, H, W] are real positions (:func:`real_positions`). A leaf net
    in its metadata (``leaf_net``) that does not load, or was made for another board,
    is a failure too."""
    config = config or ReadinessConfig()
    meta = _metadata(model)  # one read of the file for both
    precision = meta.get("precision", "fp32")
    planes = _input_planes(meta, planes)
    int8 = precision == "int8"
    required = config.min_agreement_int8 if int8 else config.min_agreement_fp32
    tolerance = config.int8_tie_tolerance if int8 else 0.0
    measured = None if net is None else parity(net, model, planes, required, tie_tolerance=tolerance)
    serving = measure_serving(model, planes, config)
    report = gate.ReadinessReport(
        p50_latency_ms=round(serving.p50_latency_ms, 4),
        p99_latency_ms=round(serving.p99_latency_ms, 4),
        peak_memory_mb=round(serving.peak_memory_mb, 2),
        parity_ok=None if measured is None else measured.ok,
    )
    # The gate's own wording for latency and memory; parity gets the figures.
    failures = gate.readiness_failures(report.model_copy(update={"parity_ok": None}), config.thresholds)
    if measured is not None and not measured.ok:
        scope = (f"{measured.decisive_positions:,} decisive positions (torch top-two logits "
                 f">= {measured.tie_tolerance:g} apart)" if measured.tie_tolerance
                 else f"{measured.positions:,} positions")
        share = measured.decisive_agreement if measured.tie_tolerance else measured.agreement
        failures.append(
            f"{precision} ONNX picks the torch model's move on {share:.2%} of {scope} "
            f"({measured.disagreements} of all {measured.positions:,} differ); "
            f"needs {measured.required:.0%}"
        )
    try:  # a leaf net the served search could not load, or one made for another board, plays no move
        carried = leafnet.carried(meta)
        if carried is not None and "contract" in meta:
            height, width = json.loads(meta["contract"])["input"]["shape"][2:]
            carried.check_board(Board(width, height).n_cells)
    except ValueError as err:
        failures.append(f"the leaf net in its metadata does not load: {err}")
    return Readiness(
        model=os.fspath(model), precision=precision, report=report, parity=measured,
        serving=serving, thresholds=config.thresholds, failures=failures,
    )


def real_positions(game: Any, count: int, seed: int = 0) -> np.ndarray:
    """Planes [count, C, H, W] from games between the heuristic teacher and random-safe
    players (a mix of long, purposeful games and erratic ones)."""
    players = [Heuristic(), RandomSafe()]
    return positions.play_positions(game, count, seed=seed, players=players).planes


# -- the probe: runs in its own process, imports onnxruntime and numpy only -----------------


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _probe(args: argparse.Namespace) -> dict[str, Any]:
    inputs = np.load(args.inputs)
    samples = [np.ascontiguousarray(inputs[i : i + 1]) for i in range(len(inputs))]
    import onnxruntime  # noqa: F401  (loaded before the baseline: a fixed cost of any server)

    gc.collect()
    base = _rss_kb("VmRSS")
    try:  # reset the peak counter to the current RSS (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    session = neural.inference_session(args.model, threads=args.threads)
    feed = {"board": samples[0]}
    for i in range(args.warmup):
        feed["board"] = samples[i % len(samples)]
        session.run(None, feed)
    p50s, p99s = [], []
    gc.disable()
    for _ in range(args.rounds):
        times = np.empty(args.calls)
        for i in range(args.calls):
            feed["board"] = samples[i % len(samples)]
            start = time.perf_counter_ns()
            session.run(None, feed)
            times[i] = time.perf_counter_ns() - start
        p50s.append(float(np.percentile(times, 50)) / 1e6)
        p99s.append(float(np.percentile(times, 99)) / 1e6)
    gc.enable()
    peak = _rss_kb("VmHWM")
    return {
        "p50_latency_ms": float(np.median(p50s)),
        "p99_latency_ms": float(np.median(p99s)),
        "rounds_p99_ms": [round(x, 4) for x in p99s],
        "peak_memory_mb": max(peak - base, 0) * 1024 / 1e6,
        "process_peak_mb": peak * 1024 / 1e6,
        "model_size_mb": 0.0,
        "threads": args.threads,
        "calls": args.calls * args.rounds,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m ouroboros.trainer.evaluation.readiness probe MODEL --inputs X.npy``:
    prints one JSON line of latency and memory figures (used by :func:`measure_serving`)."""
    parser = argparse.ArgumentParser(prog="readiness", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="measure one model in this process")
    probe.add_argument("model")
    probe.add_argument("--inputs", required=True, help=".npy of planes [N, C, H, W]")
    probe.add_argument("--calls", type=int, default=1000)
    probe.add_argument("--rounds", type=int, default=5)
    probe.add_argument("--warmup", type=int, default=100)
    probe.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(_probe(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
