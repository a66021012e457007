"""Deterministic names and labels of the objects a TrainingRun owns.

Restart safety rests on these: the operator never remembers what it created,
it recomputes the name and treats "already exists" as success. Names must fit
63 characters because the Job controller copies a Job's name into a pod label;
long ones keep a readable head and tail around a hash of the whole, so two
different inputs never share a name.
"""

from __future__ import annotations

import hashlib
import re

from ouroboros.operator.resources import PhaseName

MAX_NAME = 63
HASH_LEN = 8

LABEL_RUN = "ouroboros.dev/run"
LABEL_RUN_UID = "ouroboros.dev/run-uid"
LABEL_PHASE = "ouroboros.dev/phase"
LABEL_PHASE_INDEX = "ouroboros.dev/phase-index"
LABEL_ATTEMPT = "ouroboros.dev/attempt"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "ouroboros-operator"
ANNOTATION_GENERATION = "ouroboros.dev/run-generation"

_INVALID = re.compile(r"[^a-z0-9-]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LEN]


def shorten(name: str, limit: int = MAX_NAME, suffix: str = "") -> str:
    """`name + suffix` if it fits `limit`, else a truncated name, a hash of the whole, and the suffix.

    The result is a valid DNS label (lower-case alphanumerics and '-', starting
    and ending alphanumeric) as long as `name` and `suffix` are made of those.
    """
    full = name + suffix
    if len(full) <= limit:
        return full
    head = name[: limit - len(suffix) - HASH_LEN - 1].rstrip("-.")
    return f"{head}-{_digest(full)}{suffix}"


def phase_slug(phase: PhaseName | str) -> str:
    """The phase's name as a DNS label (self_play -> self-play)."""
    return _INVALID.sub("-", PhaseName(phase).value.lower())


def job_name(run: str, index: int, phase: PhaseName | str, attempt: int = 0) -> str:
    """Name of the Job of attempt `attempt` of phase `index`: `<run>-<i>-<phase>[-r<attempt>]`."""
    suffix = f"-{index}-{phase_slug(phase)}" + (f"-r{attempt}" if attempt else "")
    return shorten(run, MAX_NAME, suffix)


def config_map_name(run: str) -> str:
    """Name of the ConfigMap that holds the run's run.json."""
    return shorten(run, MAX_NAME, "-config")


def label_value(value: str) -> str:
    """`value` fitted into a label value (63 characters), hashed if longer."""
    return shorten(value, MAX_NAME) if len(value) > MAX_NAME else value


def run_labels(run: str, uid: str) -> dict[str, str]:
    """Labels every object owned by a run carries; the uid label selects them."""
    return {
        "app.kubernetes.io/name": "ouroboros-trainer",
        "app.kubernetes.io/part-of": "ouroboros",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_RUN: label_value(run),
        LABEL_RUN_UID: uid,
    }


def phase_labels(run: str, uid: str, index: int, phase: PhaseName | str, attempt: int) -> dict[str, str]:
    """Labels of a phase Job and its pods."""
    return {
        **run_labels(run, uid),
        "app.kubernetes.io/component": "training-phase",
        LABEL_PHASE: PhaseName(phase).value,
        LABEL_PHASE_INDEX: str(index),
        LABEL_ATTEMPT: str(attempt),
    }


def run_selector(uid: str) -> str:
    """Label selector of everything a run owns (by uid, so a recreated run never adopts old Jobs)."""
    return f"{LABEL_RUN_UID}={uid}"


LABEL_CHAMPION = "ouroboros.dev/champion"
LABEL_CHAMPION_UID = "ouroboros.dev/champion-uid"
LABEL_OPERATION = "ouroboros.dev/registry-operation"


def registry_job_name(champion: str, operation: str, trigger: str) -> str:
    """Name of a Champion's registry Job: `<champion>-<operation>-<hash of the trigger>`.

    The trigger (the Champion's uid plus what asked for the Job: a run's uid, a
    generation and pinned version, a promoted version and time) makes the name
    deterministic, so a restarted operator finds the Job instead of running it twice.
    """
    return shorten(champion, MAX_NAME, f"-{operation}-{_digest(trigger)}")


def champion_labels(champion: str, uid: str, operation: str) -> dict[str, str]:
    """Labels of a Champion's registry Job and its pod."""
    return {
        "app.kubernetes.io/name": "ouroboros-trainer",
        "app.kubernetes.io/part-of": "ouroboros",
        "app.kubernetes.io/component": "registry",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_CHAMPION: label_value(champion),
        LABEL_CHAMPION_UID: uid,
        LABEL_OPERATION: operation,
    }


def champion_selector(uid: str) -> str:
    """Label selector of a Champion's registry Jobs."""
    return f"{LABEL_CHAMPION_UID}={uid}"
