"""`ouro phase NAME --run-config FILE --result PATH`: what a phase Job runs.

It checks the run config (the run.json the operator mounts from the run's
ConfigMap) and that the run has the named phase, then runs it: bootstrap,
hybrid, self_play and continuous are the training phases of
`ouroboros.trainer.learning.phases` (the same code `ouro train` runs), against
the run's artifact store (`OURO_STORAGE_URL` overrides `storage.url`). A
self-play worker of an Indexed Job takes its index from
`JOB_COMPLETION_INDEX`. `evaluate` is still a placeholder that says plainly
that nothing was measured (`"placeholder": true`).

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

from ouroboros.operator.resources import PhaseName, PhaseResult, RunConfig
from ouroboros.operator.resources.common import Artifact
from ouroboros.operator.resources.progress import PROGRESS_INTERVAL_SECONDS
from ouroboros.operator.resources.runconfig import RESULT_MAX_BYTES, CandidateResult

PLACEHOLDER_MESSAGE = "placeholder: run config checked, nothing evaluated (no evaluation phase yet)"
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
    if name is PhaseName.EVALUATE:
        return PhaseResult(phase=name, placeholder=True, metrics={}, artifacts=[], message=PLACEHOLDER_MESSAGE)
    from ouroboros.trainer.learning.phases import config as phase_config
    from ouroboros.trainer.learning.phases import execute

    worker = int(os.environ.get("JOB_COMPLETION_INDEX", "0") or 0)
    run, phase = phase_config.from_run_config(config, phase_config.PhaseKind(name.value), worker)
    if os.environ.get("OURO_STORAGE_URL"):
        run = run.model_copy(update={"store": os.environ["OURO_STORAGE_URL"]})
    from ouroboros.trainer.observability import progress

    lines = progress.line_sink(logging.getLogger("ouroboros.progress").info)  # the pod's log shows progress too
    return to_result(name, execute.execute(run, phase, sinks=(lines,), interval=progress_interval(os.environ)))


def progress_interval(env) -> float:
    """Seconds between progress records: $OURO_PROGRESS_SECONDS (set by the operator), else 15; at most 30."""
    text = env.get("OURO_PROGRESS_SECONDS") or ""
    try:
        value = float(text) if text else PROGRESS_INTERVAL_SECONDS
    except ValueError:
        logging.getLogger(__name__).warning("OURO_PROGRESS_SECONDS=%r is not a number; using %s s", text,
                                            PROGRESS_INTERVAL_SECONDS)
        value = PROGRESS_INTERVAL_SECONDS
    return min(30.0, value) if value > 0 else PROGRESS_INTERVAL_SECONDS


def to_result(name: PhaseName, outcome) -> PhaseResult:
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
    return PhaseResult(phase=name, metrics=metrics, artifacts=artifacts, candidate=candidate,
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
    result = run_phase(config, name)  # a crash is exit 1 with its traceback in the pod's log
    text = write_result(result, args.result)
    print(f"ouro phase {name.value}: run {config.run.namespace}/{config.run.name}: {result.message}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
