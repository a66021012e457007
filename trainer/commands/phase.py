"""`ouro phase NAME --run-config FILE --result PATH`: what a phase Job runs.

It checks the run config (the run.json the operator mounts from the run's
ConfigMap) and that the run has the named phase, then runs it: bootstrap,
hybrid, self_play and continuous are the training phases of
`ouroboros.trainer.learning.phases` (the same code `ouro train` runs), against
the run's artifact store (`OURO_STORAGE_URL` overrides `storage.url`). A
self-play worker of an Indexed Job takes its index from
`JOB_COMPLETION_INDEX`. A pod of a DDP learner group (`OURO_LEARNER_REPLICAS` > 1,
set by the operator from `spec.learner.replicas`) starts itself again under
torchrun (`torch.distributed.run`, c10d rendezvous at `OURO_RENDEZVOUS_ENDPOINT`,
hosted by index 0) as one rank of the group (`learning.distributed`). `evaluate`
gates the run's candidate against the champion of its game with the run's
`spec.promotion`, through the one promotion path
(`ouroboros.trainer.evaluation.evaluate_phase`), and promotes it on PROMOTE.

The result goes to PATH (in a pod, /dev/termination-log, which kubelet copies
into the pod status where the operator reads it; at most 4096 bytes).
Exit codes: 0 done, 1 the phase failed, 2 bad arguments or config.

Everything a phase needs is checked before its work starts (`preflight`): the
result path (an existing directory, a writable file), the run config (each
invalid field named), `JOB_COMPLETION_INDEX` (an integer in 0..workers-1), and
the artifact store (its fsspec scheme installed, the store reachable and
writable, probed with a write and a delete). A problem there exits 2 naming the
field; a failure during the work exits 1. Either way a result JSON saying what
happened is written whenever the result path allows it, so the operator reads a
termination message instead of only a traceback in the pod's log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from ouroboros.contract.progress import PROGRESS_INTERVAL_SECONDS
from ouroboros.contract.promotion import GateStatistics
from ouroboros.contract.run import RESULT_MAX_BYTES, CandidateResult, PhaseResult, RunConfig
from ouroboros.contract.schema import Artifact
from ouroboros.contract.vocabulary import PhaseName

MAX_ARTIFACTS = 6  # names, URIs and hashes of a few files keep the result far below 4096 bytes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ouro phase", description="Run one training phase of a run.")
    parser.add_argument("name", choices=[p.value for p in PhaseName], help="phase to run")
    parser.add_argument("--run-config", required=True, type=Path, help="run.json written by the operator")
    parser.add_argument("--result", required=True, type=Path, help="where to write the result JSON")
    return parser


class PreflightError(ValueError):
    """Something a phase needs is missing or wrong; `field` names it (a flag, a run-config
    field or an environment variable)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def load_config(path: Path) -> RunConfig:
    """The run config at `path`; raises ValueError with a readable message if it is not valid,
    naming each invalid field by its JSON path (`game.width: ...`)."""
    try:
        return RunConfig.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read run config {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'run config'}: "
            f"{str(error['msg']).removeprefix('Value error, ')}"
            for error in exc.errors(include_url=False))
        raise ValueError(f"invalid run config {path}: {problems}") from exc


def check_result_path(path: Path) -> None:
    """Raises PreflightError(--result) unless a result can be written at `path`: not a
    directory, in an existing directory, writable. Nothing is written."""
    if path.is_dir():
        raise PreflightError("--result", f"{path} is a directory, not a file")
    parent = path.parent
    if not parent.is_dir():
        raise PreflightError("--result", f"directory {parent} does not exist")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK):
        raise PreflightError("--result", f"{target} is not writable")


def worker_index(environ: Mapping[str, str], workers: int) -> int:
    """This pod's index in an Indexed Job from `JOB_COMPLETION_INDEX` (0 when unset).

    Raises PreflightError unless it is a decimal integer in 0..workers-1."""
    raw = environ.get("JOB_COMPLETION_INDEX", "").strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise PreflightError("JOB_COMPLETION_INDEX", f"{raw[:40]!r} is not a non-negative integer")
    index = int(raw)
    if index >= workers:
        raise PreflightError("JOB_COMPLETION_INDEX", f"{index} is not below the {workers} workers of "
                                                     "this phase")
    return index


def check_store(url: str, field: str) -> None:
    """Raises PreflightError(field) unless the artifact store at `url` can be used: its
    scheme known to fsspec and its package installed, the store reachable, and a probe
    object written and deleted under its root."""
    import fsspec

    from ouroboros.trainer.artifacts.store import ArtifactStore

    protocol = fsspec.core.split_protocol(url)[0] or "file"
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        raise PreflightError(field, f"{url}: the {protocol}:// filesystem is not installed "
                                    f"here ({exc})") from None
    except ValueError:
        raise PreflightError(field, f"{url}: unknown storage scheme {protocol!r}") from None
    probe = f".preflight-{uuid.uuid4().hex}"
    try:
        store = ArtifactStore(url)
        store.fs.makedirs(store.root, exist_ok=True)
        store.fs.pipe_file(f"{store.root}/{probe}", b"")
        store.fs.rm_file(f"{store.root}/{probe}")
    except Exception as exc:  # noqa: BLE001 - any backend's failure means the store is unusable
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise PreflightError(field, f"{url} cannot be written: {reason}") from None


def store_url(config: RunConfig, environ: Mapping[str, str]) -> tuple[str, str]:
    """(the artifact store's URL, the field it came from): OURO_STORAGE_URL overrides storage.url."""
    if environ.get("OURO_STORAGE_URL"):
        return environ["OURO_STORAGE_URL"], "OURO_STORAGE_URL"
    return config.storage.url, "storage.url"


def learner_replicas(name: PhaseName, environ: Mapping[str, str]) -> int:
    """Pods of the phase's DDP learner group: `OURO_LEARNER_REPLICAS` for a training phase (1 when
    unset), 1 for evaluate. Raises PreflightError naming the variable when it is malformed."""
    if not name.trains or not environ.get("OURO_LEARNER_REPLICAS"):
        return 1  # without importing torch.distributed
    from ouroboros.trainer.learning import distributed

    try:
        return distributed.replicas_from(environ)
    except ValueError as exc:
        raise PreflightError(distributed.REPLICAS_ENV, str(exc).split(": ", 1)[1]) from None


def preflight(config: RunConfig, name: PhaseName, environ: Mapping[str, str]) -> int:
    """Every check a phase needs before its work; returns the self-play worker index (0 for
    every rank of a learner group, whose `JOB_COMPLETION_INDEX` is checked against its size).

    Raises KeyError if the run has no such phase, PreflightError naming the field otherwise."""
    config.phase(name)
    replicas = learner_replicas(name, environ)
    if replicas > 1:
        worker_index(environ, replicas)
        worker = 0
    else:
        workers = config.self_play_workers if name is PhaseName.SELF_PLAY else 1
        worker = worker_index(environ, workers)
    if name.trains:
        placement_of(config, environ)
    check_store(*store_url(config, environ))
    return worker


def placement_of(config: RunConfig, environ: Mapping[str, str]):
    """The `learning.device.Placement` of this process for the run's `device` (a rank of a learner
    group takes `cuda:LOCAL_RANK`); PreflightError naming `device` when it cannot be had here,
    e.g. `cuda` on a node whose pod sees no GPU."""
    from ouroboros.trainer.learning import device

    try:
        local_rank = int(environ.get("LOCAL_RANK") or 0)
    except ValueError:
        raise PreflightError("LOCAL_RANK", f"{environ.get('LOCAL_RANK')!r} is not an integer") from None
    try:
        return device.placement(config.device, local_rank=local_rank)
    except ValueError as exc:
        raise PreflightError("device", str(exc).split(": ", 1)[1]) from None


def run_phase(config: RunConfig, name: PhaseName, worker: int = 0, group=None) -> PhaseResult:
    """Run phase `name` of the run (KeyError if the run has no such phase); `group` is this
    process's `learning.distributed.Group` in a DDP learner (None: a learner of one process)."""
    config.phase(name)
    store = store_url(config, os.environ)[0]
    from ouroboros.trainer.observability import progress

    lines = progress.line_sink(logging.getLogger("ouroboros.progress").info)  # the pod's log shows progress too
    interval = progress_interval(os.environ)
    if name is PhaseName.EVALUATE:
        from ouroboros.trainer.evaluation import evaluate_phase

        outcome, gate = evaluate_phase.run(config, store, sinks=(lines,), interval=interval)
        return to_result(name, outcome, gate)
    from ouroboros.trainer.learning.phases import config as phase_config
    from ouroboros.trainer.learning.phases import execute

    run, phase = phase_config.from_run_config(config, name, worker)
    run = run.model_copy(update={"store": store})
    from ouroboros.trainer.learning import distributed

    execute.configure_process(run, group.local_rank if group is not None else 0)

    outcome = execute.execute(run, phase, sinks=(lines,), interval=interval, group=group or distributed.SINGLE)
    return to_result(name, outcome)


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
    from ouroboros.trainer.evaluation import strength

    metrics = {k: round(float(v), 6) for k, v in outcome.metrics.items()}
    metrics.update(strength.elo_metrics(getattr(outcome, "records", {}) or {}))
    metrics["seconds"] = round(outcome.seconds, 3)
    result = PhaseResult(phase=name, metrics=metrics, artifacts=artifacts, candidate=candidate, gate=gate,
                         message=outcome.message[:1000])
    return fit(result)


def _size(result: PhaseResult) -> int:
    return len(json.dumps(result.to_api(), separators=(",", ":"), sort_keys=True).encode())


def fit(result: PhaseResult) -> PhaseResult:
    """``result`` within RESULT_MAX_BYTES: per-opponent metrics are dropped until it fits, Elo interval
    ends first, then Elo, then win rates, each against the opponents with the longest names first (league
    snapshots; the built-in opponents stay). Everything else is kept; a result still too large is left
    for `write_result` to refuse."""
    if _size(result) <= RESULT_MAX_BYTES:
        return result
    from ouroboros.contract.vocabulary import ELO_BOUNDS, ELO_PREFIX, WIN_RATE_PREFIX

    metrics = dict(result.metrics)
    tiers = [
        [k for k in metrics if k.startswith(ELO_PREFIX) and k.endswith(ELO_BOUNDS)],
        [k for k in metrics if k.startswith(ELO_PREFIX) and not k.endswith(ELO_BOUNDS)],
        [k for k in metrics if k.startswith(WIN_RATE_PREFIX)],
    ]
    dropped = []
    for tier in tiers:
        for key in sorted(tier, key=lambda k: (-len(k), k)):
            metrics.pop(key)
            dropped.append(key)
            result = result.model_copy(update={"metrics": dict(metrics)})
            if _size(result) <= RESULT_MAX_BYTES:
                logging.getLogger(__name__).warning("result over %d bytes: left out %s", RESULT_MAX_BYTES,
                                                    ", ".join(dropped))
                return result
    return result


def fit_result(result: PhaseResult) -> PhaseResult:
    """``result`` within the termination-message limit: a gate's statistics shed, in this order, their
    later reasons (the first stays), their game-log folders and their baseline lines, all of which
    the gate's report (``gate.report``) keeps in full. Anything else over the limit is left as is."""

    def size(r: PhaseResult) -> int:
        return len(json.dumps(r.to_api(), separators=(",", ":"), sort_keys=True).encode())

    gate = result.gate
    while gate is not None and size(result) > RESULT_MAX_BYTES:
        if len(gate.reasons) > 1:
            gate = gate.model_copy(update={"reasons": gate.reasons[:-1]})
        elif gate.game_logs:
            gate = gate.model_copy(update={"game_logs": []})
        elif gate.baselines:
            gate = gate.model_copy(update={"baselines": gate.baselines[:-1]})
        else:
            break
        result = result.model_copy(update={"gate": gate})
    return result


def write_result(result: PhaseResult, path: Path) -> str:
    """Write the result JSON to `path` (compact, within the termination-message limit); returns it."""
    text = json.dumps(fit_result(result).to_api(), separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > RESULT_MAX_BYTES:
        raise ValueError(f"result is {len(text.encode())} bytes, over the {RESULT_MAX_BYTES}-byte limit")
    path.write_text(text)
    return text


def _report_failure(name: PhaseName, message: str, path: Path) -> None:
    """The failure on stderr, and as a result JSON at `path` when that can be written."""
    print(f"ouro phase {name.value}: {message}", file=sys.stderr)
    failure = PhaseResult(phase=name, placeholder=True, message=message[:1000])
    with contextlib.suppress(OSError, ValueError):  # stderr is all that is left then
        write_result(failure, path)


def _launch_plan(name: PhaseName, environ: Mapping[str, str]):
    """The torchrun launch of a learner group's pod (`learning.distributed.launch_plan`), or None;
    PreflightError naming the variable when the group's settings are wrong."""
    if learner_replicas(name, environ) == 1:
        return None
    from ouroboros.trainer.learning import distributed

    try:
        return distributed.launch_plan(environ)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise PreflightError(field, message) from None


def _launch(plan, argv: list[str], name: PhaseName, result: Path) -> int:
    """Run this pod's rank under torchrun; its exit code. The rank writes its own result; a
    rendezvous that fails before any rank ran leaves the launcher's failure there instead."""
    from ouroboros.trainer.learning import distributed

    print(f"ouro phase {name.value}: learner rank of {plan.replicas} (index {plan.index}), "
          f"c10d rendezvous {plan.endpoint} id {plan.rendezvous_id}", flush=True)
    try:
        code = distributed.launch(plan, argv)
    except Exception as exc:  # noqa: BLE001 - torch's rendezvous and launch errors are many classes
        traceback.print_exc()
        _report_failure(name, f"failed: the learner group did not form: {type(exc).__name__}: {exc}", result)
        return 1
    if code and (not result.exists() or not result.read_text().strip()):
        _report_failure(name, f"failed: learner rank exited with {code} without a result", result)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ouro phase`; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    name = PhaseName(args.name)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_result_path(args.result)
        config = load_config(args.run_config)
        worker = preflight(config, name, os.environ)
        plan = _launch_plan(name, os.environ)
    except (ValueError, KeyError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
        _report_failure(name, message, args.result)
        return 2
    if plan is not None:
        return _launch(plan, ["phase", *argv], name, args.result)
    group = None
    try:
        if learner_replicas(name, os.environ) > 1:  # a rank torchrun started: join the group
            from ouroboros.trainer.learning import distributed

            group = distributed.from_environment(device=placement_of(config, os.environ).device)
        result = run_phase(config, name, worker, group)
    except Exception as exc:  # noqa: BLE001 - reported in the result, the traceback in the log
        traceback.print_exc()
        _report_failure(name, f"failed: {type(exc).__name__}: {exc}", args.result)
        return 1
    finally:
        if group is not None and group.distributed:
            import torch.distributed

            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
    try:
        text = write_result(result, args.result)
    except (OSError, ValueError) as exc:  # e.g. the result outgrew the termination message
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _report_failure(name, f"failed: the result could not be written: {reason}", args.result)
        return 1
    print(f"ouro phase {name.value}: run {config.run.namespace}/{config.run.name}: {result.message}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
