"""Talks to `bsoracle` in batch: many JSON lines in, as many out.

One process per call keeps it simple and still cheap: the oracle answers
thousands of lines per call, so a differential test sends a whole batch of
turns at once.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from os import PathLike


class OracleError(RuntimeError):
    """The oracle failed, or answered a line with {"error": ...} in strict mode."""


def run_oracle(
    binary: str | PathLike[str],
    subcommand: str,
    lines: Iterable[dict],
    *,
    args: Sequence[str] = (),
    strict: bool = True,
    timeout_s: float = 600.0,
) -> list[dict]:
    """Send `lines` to `bsoracle <subcommand> [args]` and return its answers.

    subcommand: "init", "step" or "rand" (line-based); each input dict is one
    JSON line and the i-th answer belongs to the i-th line. With strict=True an
    answer of the form {"error": ...} raises OracleError naming the line;
    with strict=False it is returned as is.

    For `bench` (no input lines) pass lines=[] and the flags in `args`; the
    single JSON object it prints comes back as a one-element list.
    """
    payload = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
    proc = subprocess.run(
        [str(binary), subcommand, *args],
        input=payload,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if proc.returncode != 0:
        raise OracleError(f"bsoracle {subcommand} exited {proc.returncode}: {proc.stderr.strip()}")
    answers = [json.loads(text) for text in proc.stdout.splitlines() if text.strip()]
    n_in = payload.count("\n")
    if n_in and len(answers) != n_in:
        raise OracleError(f"bsoracle {subcommand}: sent {n_in} lines, got {len(answers)} answers")
    if strict:
        for index, answer in enumerate(answers):
            if isinstance(answer, dict) and "error" in answer:
                raise OracleError(f"bsoracle {subcommand}, line {index}: {answer['error']}")
    return answers
