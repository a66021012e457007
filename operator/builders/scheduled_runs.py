"""Deterministic names, labels and manifests of the TrainingRuns a TrainingSchedule creates.

Restart safety rests on the names: a cron run is named by its scheduled time,
a manual run by a hash of the annotation value that asked for it, so the
operator recomputes a name and treats "already exists" as done.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from ouroboros.operator.builders import names
from ouroboros.operator.cron import utc
from ouroboros.operator.resources import API_VERSION, TrainingSchedule
from ouroboros.operator.resources.trainingschedule import TriggerType

LABEL_SCHEDULE = "ouroboros.dev/schedule"
LABEL_SCHEDULE_UID = "ouroboros.dev/schedule-uid"
ANNOTATION_SCHEDULED_AT = "ouroboros.dev/scheduled-at"
ANNOTATION_STARTED_BY = "ouroboros.dev/started-by"


def run_name(schedule: str, trigger: TriggerType, at: datetime, token: str | None = None) -> str:
    """Deterministic name of a run: `<schedule>-<yyyymmddhhmm>` (UTC) for cron, `<schedule>-<trigger>-...` else.

    Manual runs are named by a hash of the annotation's value, so one value
    makes one run whatever the clock says.
    """
    stamp = utc(at).strftime("%Y%m%d%H%M")
    if trigger == TriggerType.CRON:
        suffix = f"-{stamp}"
    elif trigger == TriggerType.MANUAL:
        suffix = f"-manual-{hashlib.sha256((token or '').encode()).hexdigest()[:8]}"
    else:
        suffix = f"-{trigger.value}-{utc(at).strftime('%Y%m%d%H%M%S')}"
    return names.shorten(schedule, names.MAX_NAME, suffix)


def run_manifest(schedule: TrainingSchedule, name: str, trigger: TriggerType, at: datetime) -> dict[str, Any]:
    """The TrainingRun a firing creates: the template's spec, labels and annotations, owned by the schedule."""
    meta = schedule.metadata
    template = schedule.spec.template
    labels = {**template.metadata.labels, LABEL_SCHEDULE: names.label_value(meta.name)}
    if meta.uid:
        labels[LABEL_SCHEDULE_UID] = meta.uid
    annotations = {
        **template.metadata.annotations,
        ANNOTATION_SCHEDULED_AT: utc(at).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ANNOTATION_STARTED_BY: trigger.value,
    }
    metadata: dict[str, Any] = {"name": name, "labels": labels, "annotations": annotations}
    if meta.namespace:
        metadata["namespace"] = meta.namespace
    if meta.uid:
        metadata["ownerReferences"] = [{
            "apiVersion": API_VERSION, "kind": "TrainingSchedule", "name": meta.name, "uid": meta.uid,
            "controller": True, "blockOwnerDeletion": True,
        }]
    return {"apiVersion": API_VERSION, "kind": "TrainingRun", "metadata": metadata, "spec": template.spec.to_api()}
