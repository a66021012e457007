"""Child processes that log to a file and never outlive the test run.

Both the control plane and the node agent start long-lived processes; if
pytest is killed they must not linger holding ports, so each child asks the
kernel to signal it when the thread that started it dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
# Looked up once here: loading a library in a child forked from a threaded
# process could deadlock on the loader's lock.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the starting thread exits."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    niceness: int = 0,
) -> subprocess.Popen:
    """Start `argv` in its own process group, stdout and stderr appended to `log_path`.

    The child is killed when the calling thread exits, so call this from a
    thread that lives as long as the child should. `niceness` (0 to 19) is
    added to the child's scheduling niceness before exec: a positive value
    lets every process at the default priority run first when CPUs are short.
    """
    if not 0 <= niceness <= 19:
        raise ValueError(f"niceness must be in [0, 19], got {niceness}")

    def before_exec() -> None:
        _die_with_parent()
        if niceness:
            os.nice(niceness)

    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=before_exec,
        )


def stop(process: subprocess.Popen, grace_seconds: float = 10.0) -> int:
    """SIGTERM the process group, SIGKILL it after `grace_seconds`; return the exit code."""
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10.0)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
    return process.wait()


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])
