"""Reading a finished phase attempt: the result its pods wrote, or why it failed.

A phase Job's pods write a `PhaseResult` (JSON) to their termination log
(`ouro phase --result /dev/termination-log`); the Job controller reports how
the attempt ended. `attempt_failure` turns both into the run's verdict on one
attempt: usable (None), or (reason, message) with the reason one of
`DeadlineExceeded`, `OOMKilled`, `PhaseError` or `InvalidResult`, the message
naming the Job, the exit code and what the pod said (at most
`MESSAGE_LIMIT` characters, what a condition's message should carry). Pure
functions over what `observe` read; `lifecycle.decide` calls them.
"""

from __future__ import annotations

import json

from pydantic import ValidationError

from ouroboros.operator.observe import JobState, ObservedJob
from ouroboros.operator.resources import PhaseName, PhaseResult

MESSAGE_LIMIT = 1024
"""Characters of a failure message kept in a condition (the pod's last ones for plain text)."""



def parse_result(job: ObservedJob, phase: PhaseName) -> PhaseResult:
    """The result a succeeded Job's pods wrote; ValueError if it cannot be read.

    An Indexed Job (parallel self-play workers) has one result per pod: their
    metrics are averaged and their artifacts concatenated.
    """
    pods = [p for p in job.pods if p.phase == "Succeeded"]
    if not pods:
        raise ValueError("no succeeded pod left to read the result from")
    results = []
    for pod in pods:
        if not pod.message:
            raise ValueError(f"pod {pod.name} wrote no result to its termination log")
        try:
            result = PhaseResult.model_validate_json(pod.message)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "result"
            raise ValueError(f"pod {pod.name} wrote an invalid result ({where}: {first['msg']})") from exc
        if result.phase != phase:
            raise ValueError(f"pod {pod.name} reported phase {result.phase.value}, expected {phase.value}")
        results.append(result)
    if len(results) == 1:
        return results[0]
    keys = sorted({k for r in results for k in r.metrics})
    metrics = {k: sum(r.metrics[k] for r in results if k in r.metrics) / sum(k in r.metrics for r in results) for k in keys}
    return PhaseResult(
        phase=phase,
        placeholder=all(r.placeholder for r in results),
        metrics=metrics,
        artifacts=[a for r in results for a in r.artifacts][:64],
        candidate=next((r.candidate for r in results if r.candidate), None),
        gate=next((r.gate for r in results if r.gate), None),
        message=results[0].message,
    )


def _message_text(raw: str | None) -> str:
    """A termination message for humans: the result's `message` if it is JSON, else the text."""
    if not raw:
        return ""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.strip()[-MESSAGE_LIMIT:]
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:MESSAGE_LIMIT]
    return raw.strip()[-MESSAGE_LIMIT:]


def describe_failure(job: ObservedJob) -> tuple[str, str]:
    """(reason, message) of a failed attempt, from the Job's condition and its pod's termination."""
    failed = [p for p in job.pods if p.phase == "Failed"]
    pod = failed[-1] if failed else None
    if job.reason == "DeadlineExceeded":
        reason = "DeadlineExceeded"
    elif pod is not None and pod.reason == "OOMKilled":
        reason = "OOMKilled"
    else:
        reason = "PhaseError"
    parts = [f"Job {job.name}"]
    if pod is not None and pod.exit_code is not None:
        parts.append(f"exit code {pod.exit_code}")
    text = _message_text(pod.message if pod else None) or (job.message or "")
    if text:
        parts.append(text)
    return reason, ": ".join(parts)[:MESSAGE_LIMIT]


def attempt_failure(job: ObservedJob, phase: PhaseName) -> tuple[str, str] | None:
    """Why a finished attempt counts as failed, or None if it succeeded with a usable result."""
    if job.state == JobState.FAILED:
        return describe_failure(job)
    if job.state == JobState.SUCCEEDED:
        try:
            parse_result(job, phase)
        except ValueError as exc:
            return "InvalidResult", f"Job {job.name} succeeded but its result is unusable: {exc}"[:MESSAGE_LIMIT]
    return None
