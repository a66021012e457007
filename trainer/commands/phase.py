"""`ouro phase NAME --run-config FILE --result PATH`: what a phase Job runs.

It checks the run config (the run.json the operator mounts from the run's
ConfigMap) and that the run has the named phase, then runs it: bootstrap,
hybrid, self_play and continuous are the training phases of
`ouroboros.trainer.learning.phases` (the same code `ouro train` runs), against
the run's artifact store (`OURO_STORAGE_URL` overrides `storage.url`). A
self-play worker of an Indexed Job takes its index from
`JOB_COMPLETION_INDEX`. `evaluate` gates the run's candidate against the
champion of its game with the run's `spec.promotion`, through the one promotion
path (`ouroboros.trainer.evaluation.evaluate_phase`), and promotes it on PROMOTE.

The result goes to PATH (in a pod, /dev/termination-log, which kubelet copies
into the pod status where the operator reads it; at most 4096 bytes).
Exit codes: 0 done, 1 the phase failed, 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from ouroboros.contract.promotion import GateStatistics
from ouroboros.contract.run import RESULT_MAX_BYTES, CandidateResult, PhaseResult, RunConfig
from ouroboros.contract.schema import Artifact
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.agents.neural import ModelContractError
from ouroboros.trainer.artifacts.registry import RegistryError
from ouroboros.trainer.artifacts.store import ArtifactError

MAX_ARTIFACTS = 6  # names, URIs and hashes of a few files keep the result far below 4096 bytes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ouro phase", description="Run one training phase of a run.")
    parser.add_argument("name", choices=[p.value for p in PhaseName], help="phase to run")
    parser.add_argument("--run-config", required=True, type=Path, help="run.json written by the operator")
    parser.add_argument("--result", required=True, type=Path, help="where to write the result JSON")
    return parser


def load_config(path: Path) -> RunConfig:
    """The run config at `path`; raises ValueError with a readable message if it is not valid."""
    try:
        return RunConfig.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read run config {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise ValueError(f"invalid run config {path}: {exc}") from exc


def run_phase(config: RunConfig, name: PhaseName) -> PhaseResult:
    """Run phase `name` of the run (KeyError if the run has no such phase)."""
    config.phase(name)
    store = os.environ.get("OURO_STORAGE_URL") or None
    if name is PhaseName.EVALUATE:
        from ouroboros.trainer.evaluation import evaluate_phase

        outcome, gate = evaluate_phase.run(config, store)
        return to_result(name, outcome, gate)
    from ouroboros.trainer.learning.phases import config as phase_config
    from ouroboros.trainer.learning.phases import execute

    worker = int(os.environ.get("JOB_COMPLETION_INDEX", "0") or 0)
    run, phase = phase_config.from_run_config(config, name, worker)
    if store:
        run = run.model_copy(update={"store": store})
    execute.configure_process(run)
    return to_result(name, execute.execute(run, phase))


def to_result(name: PhaseName, outcome, gate: GateStatistics | None = None) -> PhaseResult:
    """The operator's PhaseResult of a phase outcome (artifacts by URI and sha256 only)."""
    artifacts = [
        Artifact(name=key, uri=info.uri, sha256=info.sha256, size=info.size)
        for key, info in list(outcome.artifacts.items())[:MAX_ARTIFACTS]
    ]
    candidate = None
    if outcome.candidate is not None:
        c = outcome.candidate
        candidate = CandidateResult(artifact=Artifact(name="onnx", uri=c.uri, sha256=c.sha256, size=c.size))
    metrics = {k: round(float(v), 6) for k, v in outcome.metrics.items()}
    metrics["seconds"] = round(outcome.seconds, 3)
    return PhaseResult(phase=name, metrics=metrics, artifacts=artifacts, candidate=candidate, gate=gate,
                       message=outcome.message[:1000])


def write_result(result: PhaseResult, path: Path) -> str:
    """Write the result JSON to `path` (compact, within the termination-message limit); returns it."""
    text = json.dumps(result.to_api(), separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > RESULT_MAX_BYTES:
        raise ValueError(f"result is {len(text.encode())} bytes, over the {RESULT_MAX_BYTES}-byte limit")
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro phase`; returns the exit code."""
    args = _parser().parse_args(argv)
    name = PhaseName(args.name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.run_config)
        config.phase(name)  # KeyError if the run has no such phase
    except (ValueError, KeyError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
        print(f"ouro phase {name.value}: {message}", file=sys.stderr)
        failure = PhaseResult(phase=name, placeholder=True, message=message[:1000])
        with contextlib.suppress(OSError):  # the message on stderr is what matters then
            write_result(failure, args.result)
        return 2
    try:
        result = run_phase(config, name)  # any other crash is exit 1 with its traceback in the pod's log
    except (ArtifactError, ModelContractError, RegistryError) as exc:
        print(f"ouro phase {name.value}: {exc}", file=sys.stderr)
        with contextlib.suppress(OSError):
            write_result(PhaseResult(phase=name, message=str(exc)[:1000]), args.result)
        return 1
    text = write_result(result, args.result)
    print(f"ouro phase {name.value}: run {config.run.namespace}/{config.run.name}: {result.message}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
