"""The local schedule runner: the cluster's TrainingSchedule controller, on one machine.

`ouro schedule run nightly.yaml` reads the same TrainingSchedule document
`kubectl apply` takes and runs the same decision
(`ouroboros.operator.scheduling.decide`); only the shell differs. Where the
operator creates a TrainingRun, this runner starts `ouro train --run NAME` as
a child process (in its own session, so it outlives a killed runner), and
records it in the SQLite history (`history.History`). Where the operator reads
the owned runs from the API server, this reads the executions table; the data
trigger reads the same replay shards' sidecars, from the local store; the
performance trigger reads the champion's score the last execution reported.

Kill and restart: an execution's name is its primary key, so a restarted
runner never starts the same scheduled time twice; a child that finished while
the runner was down left its exit status in `<out>.rc`, which the next pass
reads; a child that died without one (the machine rebooted) is started again
under the same name, and `ouro train` resumes it from its last shard and
checkpoint. Missed times follow `spec.missedRunPolicy` as in the cluster.

Locally the template's `spec` is not translated into phases: each execution
runs the `--preset` budget (`ouro train --preset`), on `--store`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ouroboros.operator import cron, scheduling
from ouroboros.operator.resources import TrainingSchedule
from ouroboros.operator.resources.trainingschedule import (
    MANUAL_TRIGGER_ANNOTATION,
    TrainingScheduleStatus,
    TriggerType,
)
from ouroboros.trainer.scheduling.data import new_games_since
from ouroboros.trainer.scheduling.history import Execution, History

log = logging.getLogger(__name__)
SCORE_OPPONENT = "heuristic"
"""The champion's score after a run: `ouro train`'s duel score against this baseline."""


@dataclasses.dataclass(frozen=True)
class RunnerOptions:
    """How executions are run."""

    store: str
    """Artifact store `ouro train` writes to and the data trigger reads (a path or fsspec URL)."""
    preset: str = "quick"
    """`ouro train --preset` of each execution."""
    workdir: Path = Path("runs/schedule")
    """Where each execution's stdout (`<name>.out`, the JSON summary), stderr (`<name>.log`) and exit status go."""
    train_command: tuple[str, ...] = (sys.executable, "-m", "ouroboros.trainer.commands.cli", "train")
    """The command an execution runs; `--preset --store --run --json --logdir` are appended."""
    extra_args: tuple[str, ...] = ()
    """More arguments for `ouro train` (e.g. --eval-games 4)."""


def _running_pid(pid: int | None, marker: str) -> int | None:
    """The pid of a live process whose command line contains `marker` (our execution's output path).

    Tries the recorded `pid` first, then scans /proc: a runner killed between
    starting a child and recording its pid must not start a second one.
    """
    candidates = ([pid] if pid else []) + [int(p.name) for p in Path("/proc").glob("[0-9]*")]
    for candidate in candidates:
        try:
            cmdline = Path(f"/proc/{candidate}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline.split("\0") and candidate != os.getpid():
            return candidate
    return None


def champion_score(out_path: str | None) -> float | None:
    """The score against SCORE_OPPONENT in an `ouro train --json` summary, if the file holds one."""
    if not out_path:
        return None
    try:
        summary = json.loads(Path(out_path).read_text())
    except (OSError, ValueError):
        return None
    for duel in summary.get("strength", []) if isinstance(summary, dict) else []:
        if duel.get("opponent") == SCORE_OPPONENT:
            return float(duel["score"])
    return None


class LocalRunner:
    """One schedule document, its history, and the child processes this runner started."""

    def __init__(self, document: dict[str, Any], history: History, options: RunnerOptions,
                 clock: Callable[[], datetime]):
        self.document = document
        self.name = (document.get("metadata") or {}).get("name") or ""
        if not self.name:
            raise ValueError("metadata.name: a TrainingSchedule needs a name")
        TrainingSchedule.model_validate({**document, "metadata": {"name": self.name}})  # refuse bad input now
        self.history = history
        self.options = options
        self.clock = clock
        self.children: dict[str, subprocess.Popen] = {}
        options.workdir.mkdir(parents=True, exist_ok=True)

    # -- observing ----------------------------------------------------------

    def _schedule(self, now: datetime) -> tuple[TrainingSchedule, bool]:
        created, status_json, stopped = self.history.schedule_state(self.name, now)
        manual = self.history.latest_manual(self.name)
        body = {
            **self.document,
            "metadata": {"name": self.name, "generation": 1, "creationTimestamp": created.isoformat(),
                         "annotations": {MANUAL_TRIGGER_ANNOTATION: manual} if manual else {}},
            "status": json.loads(status_json or "{}"),
        }
        schedule = TrainingSchedule.model_validate(body)
        if stopped:
            schedule.spec.suspend = True
        return schedule, stopped

    def _collect(self, now: datetime) -> None:
        """Record executions that ended; start again those that died without a word (they resume)."""
        for ex in self.history.executions(self.name):
            if ex.finished_at is not None:
                continue
            child = self.children.get(ex.name)
            if child is not None and child.poll() is None:
                continue
            rc_file = Path(f"{ex.out_path}.rc")
            if rc_file.exists():
                try:
                    code = int(rc_file.read_text().strip())
                except ValueError:
                    code = None
                self.children.pop(ex.name, None)
                message = "ouro train succeeded" if code == 0 else f"ouro train exited with {code} (see {ex.log_path})"
                self.history.finish(ex.name, now, code, champion_score(ex.out_path), message)
                continue
            if child is None and _running_pid(ex.pid, str(ex.out_path)) is not None:
                continue  # started by an earlier runner and still going
            log.warning("execution %s ended without an exit status: starting it again (ouro train resumes)", ex.name)
            self._launch(ex.name, Path(ex.out_path), Path(ex.log_path))

    def _owned(self) -> list[scheduling.OwnedRun]:
        runs = []
        for ex in self.history.executions(self.name, include_pruned=False):
            phase = "Running" if ex.finished_at is None else ("Succeeded" if ex.success else "Failed")
            runs.append(scheduling.OwnedRun(
                name=ex.name, trigger=TriggerType(ex.trigger), scheduled_time=ex.scheduled_time,
                created=ex.started_at, phase=phase, completion_time=ex.finished_at))
        return runs

    def _observe(self, schedule: TrainingSchedule, runs: list[scheduling.OwnedRun]) -> scheduling.Observations:
        new_games = score = None
        if schedule.spec.triggers.data is not None:
            try:
                new_games = new_games_since(self.options.store, scheduling.data_window_start(schedule, runs))
            except Exception as exc:  # noqa: BLE001 - an unreadable store only pauses the trigger
                log.warning("cannot count new games in %s: %s", self.options.store, exc)
        if schedule.spec.triggers.performance is not None:
            scores = [ex.champion_score for ex in self.history.executions(self.name) if ex.champion_score is not None]
            score = scores[-1] if scores else None
        return scheduling.Observations(new_games=new_games, score=score)

    # -- acting ---------------------------------------------------------------

    def _launch(self, name: str, out_path: Path, log_path: Path) -> None:
        o = self.options
        command = [*o.train_command, "--preset", o.preset, "--store", o.store, "--run", name, "--json",
                   "--logdir", str(o.workdir / "tensorboard"), *o.extra_args]
        # sh records the exit status even when this runner is gone by then
        wrapper = ["sh", "-c", 'out="$1"; err="$2"; shift 2; "$@" > "$out" 2> "$err"; echo $? > "$out.rc"',
                   "sh", str(out_path), str(log_path), *command]
        Path(f"{out_path}.rc").unlink(missing_ok=True)
        child = subprocess.Popen(wrapper, start_new_session=True, stdin=subprocess.DEVNULL)
        self.children[name] = child
        self.history.set_pid(name, child.pid)

    def _stop(self, ex: Execution, reason: str, now: datetime) -> None:
        child = self.children.pop(ex.name, None)
        pid = child.pid if child is not None else _running_pid(ex.pid, str(ex.out_path))
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if child is not None:
                child.wait(timeout=60)
        self.history.finish(ex.name, now, None, None, reason)

    def _act(self, action: scheduling.Action, now: datetime) -> None:
        if isinstance(action, scheduling.CreateRun):
            out_path = self.options.workdir / f"{action.name}.out"
            log_path = self.options.workdir / f"{action.name}.log"
            if self.history.start(action.name, self.name, action.trigger.value, action.scheduled_time, now,
                                  str(out_path), str(log_path)):
                self._launch(action.name, out_path, log_path)
        elif isinstance(action, scheduling.DeleteRun):
            ex = next((e for e in self.history.executions(self.name) if e.name == action.name), None)
            if ex is not None and ex.finished_at is None:
                self._stop(ex, f"stopped: {action.reason}", now)
            else:
                self.history.prune(action.name)

    def step(self) -> scheduling.Decision:
        """One pass: collect ended executions, decide, act, record."""
        now = self.clock()
        self._collect(now)
        schedule, stopped = self._schedule(now)
        runs = self._owned()
        decision = scheduling.decide(schedule, runs, self._observe(schedule, runs), now)
        for action in decision.actions:
            self._act(action, now)
        for event in decision.events:
            log.log(logging.WARNING if event.type == "Warning" else logging.INFO, "%s: %s", event.reason, event.message)
        stop = any(isinstance(a, scheduling.SuspendSchedule) for a in decision.actions)
        self.history.save_status(self.name, json.dumps(decision.status.to_api()), json.dumps(self.document),
                                 stopped=True if stop else None)
        return decision

    def busy(self) -> bool:
        """Whether an execution is still running."""
        return any(ex.finished_at is None for ex in self.history.executions(self.name))

    def run(self, poll_seconds: float, until_idle: bool = False, max_passes: int | None = None) -> int:
        """Pass after pass until interrupted (or, with `until_idle`, until nothing is due or running)."""
        passes = 0
        while True:
            decision = self.step()
            passes += 1
            created = any(isinstance(a, scheduling.CreateRun) for a in decision.actions)
            if max_passes is not None and passes >= max_passes:
                return 0
            if until_idle and not created and not self.busy():
                return 0
            time.sleep(min(poll_seconds, decision.requeue_after or poll_seconds))


def status_lines(history: History, now: datetime, upcoming: int = 5) -> list[str]:
    """Human lines for `ouro schedule status`: each schedule's state and its next scheduled times."""
    lines = []
    for row in history.schedules():
        status = TrainingScheduleStatus.model_validate(json.loads(row["status"] or "{}"))
        document = json.loads(row["document"] or "{}")
        spec = document.get("spec") or {}
        state = "stopped by stopStrategy" if row["stopped"] else ("suspended" if spec.get("suspend") else "active")
        lines.append(f"{row['name']}: {state}; schedules {spec.get('schedules') or '[]'} in "
                     f"{spec.get('timeZone', 'Etc/UTC')}; running {[a.name for a in status.active] or 'nothing'}")
        if status.last_trigger is not None:
            t = status.last_trigger
            lines.append(f"  last run {t.run} ({t.type.value}: {t.reason})")
        if spec.get("schedules") and not row["stopped"] and not spec.get("suspend"):
            tz = cron.zone(spec.get("timeZone", "Etc/UTC"))
            t = now
            for _ in range(upcoming):
                t = cron.next_time(spec["schedules"], tz, t)
                if t is None:
                    break
                lines.append(f"  next {t.astimezone(tz).isoformat()}  ({t.strftime('%Y-%m-%dT%H:%M:%SZ')})")
    return lines
