"""`ouro phase NAME --run-config FILE --result PATH`: what a phase Job runs.

For now this is a placeholder: it checks the run config (the run.json the
operator mounts from the run's ConfigMap) and that the run has the named
phase, then writes a result that says plainly that nothing was trained
(`"placeholder": true`, no metrics, no artifacts). The learning pipeline
replaces the body of `run_phase` with the real phases; the command line, the
config and the result format stay.

The result goes to PATH (in a pod, /dev/termination-log, which kubelet copies
into the pod status where the operator reads it; at most 4096 bytes).
Exit codes: 0 done, 2 bad arguments or config.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from ouroboros.operator.resources import PhaseName, PhaseResult, RunConfig
from ouroboros.operator.resources.runconfig import RESULT_MAX_BYTES

PLACEHOLDER_MESSAGE = "placeholder: run config checked, nothing trained (no training pipeline yet)"


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
    """Run phase `name` of the run; for now only checks it exists and reports a placeholder."""
    config.phase(name)  # KeyError if the run has no such phase
    return PhaseResult(phase=name, placeholder=True, metrics={}, artifacts=[], message=PLACEHOLDER_MESSAGE)


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
    try:
        config = load_config(args.run_config)
        result = run_phase(config, name)
    except (ValueError, KeyError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
        print(f"ouro phase {name.value}: {message}", file=sys.stderr)
        failure = PhaseResult(phase=name, placeholder=True, message=message[:1000])
        with contextlib.suppress(OSError):  # the message on stderr is what matters then
            write_result(failure, args.result)
        return 2
    text = write_result(result, args.result)
    print(f"ouro phase {name.value}: run {config.run.namespace}/{config.run.name}: {PLACEHOLDER_MESSAGE}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
