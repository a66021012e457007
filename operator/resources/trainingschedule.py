"""The TrainingSchedule resource: when to start TrainingRuns.

Modelled on Kubernetes CronJob (schedule, timeZone, concurrencyPolicy,
startingDeadlineSeconds, suspend, history limits) and Argo's CronWorkflow
(several schedules, a stop strategy), with what their users asked for on top:
a policy for runs missed during downtime, triggers besides time (enough new
games, a weakening champion, a manual "run now"), each with its own cooldown.
Schedule and run are separate resources, as KubeRay settled on after
reverting a schedule-inside-RayJob design. The decision lives in
`ouroboros.operator.scheduling`; this module is the API.

Validation at apply time, exactly: a cron expression is checked by a CEL
regular expression for the five-field grammar that both Kubernetes CronJob
(robfig/cron) and croniter accept (`CRON_GRAMMAR`: numbers in each field's
range, month and weekday names, `*`, `?`, ranges, steps, lists, and the
`@daily`-style macros), and a time zone by membership in the IANA zone list
committed in `timezones.json` (tz database 2026f). What only a cron library
can see (an expression that never fires, such as 30 February) is refused by
the operator with an `InvalidSchedule` condition, through `scheduling`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from ouroboros.contract.schema import CEL_KEY, ApiModel, StatusModel, cel, section
from ouroboros.operator.resources.common import Condition, conditions_field
from ouroboros.operator.resources.trainingrun import TrainingRunSpec

MANUAL_TRIGGER_ANNOTATION = "ouroboros.dev/trigger"
"""Set (or change) this annotation's value to start one run now (`ouro schedule trigger NAME`)."""

# ---------------------------------------------------------------------------
# The cron grammar, as a regular expression (RE2: CEL's `matches` and Python's `re` agree on it)

_NAMES_MONTH = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_NAMES_DAY = "sun|mon|tue|wed|thu|fri|sat"
_VALUES = {
    "minute": "[0-5]?[0-9]",
    "hour": "[01]?[0-9]|2[0-3]",
    "day of month": "0?[1-9]|[12][0-9]|3[01]",
    "month": f"0?[1-9]|1[0-2]|{_NAMES_MONTH}",
    "day of week": f"0?[0-7]|{_NAMES_DAY}",
}
_NO_SPECIFIC_VALUE = ("day of month", "day of week")  # `?`, alone, as Quartz and robfig/cron allow


def _field(name: str) -> str:
    value = f"(?:{_VALUES[name]})"
    item = f"(?:[*]|{value}(?:-{value})?)(?:/[1-9][0-9]?)?"
    items = f"{item}(?:,{item})*"
    return f"(?:[?]|{items})" if name in _NO_SPECIFIC_VALUE else items


MACROS = ("yearly", "annually", "monthly", "weekly", "daily", "midnight", "hourly")
CRON_GRAMMAR = (
    "(?i)^(?:@(?:" + "|".join(MACROS) + ")|" + " +".join(_field(name) for name in _VALUES) + ")$"
)
"""Five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7
or SUN-SAT, separated by spaces; `*`, a lone `?` in the day fields, `a-b`, `/step` 1-99, lists with `,`) or a macro; case-insensitive."""
CRON_MESSAGE = (
    "must be a cron expression of 5 fields (minute 0-59, hour 0-23, day of month 1-31, "
    "month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT) or a macro such as @daily"
)
_CRON_RE = re.compile(CRON_GRAMMAR)

TIMEZONES_FILE = Path(__file__).with_name("timezones.json")
TIMEZONES: tuple[str, ...] = tuple(json.loads(TIMEZONES_FILE.read_text())["zones"])
"""IANA zone names accepted by spec.timeZone (committed, so the CRD does not depend on this machine's tzdata)."""
TIMEZONE_MESSAGE = "must be an IANA time zone name such as Europe/Amsterdam or Etc/UTC"


def check_cron(expression: str) -> str:
    """`expression` if it matches CRON_GRAMMAR; ValueError naming the rule otherwise."""
    if "TZ=" in expression:
        raise ValueError("set spec.timeZone instead of TZ= or CRON_TZ= in a schedule")
    if not _CRON_RE.match(expression.strip()) or expression != expression.strip():
        raise ValueError(CRON_MESSAGE)
    return expression


CronExpression = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="A cron expression (5 fields, or @daily etc.) evaluated in spec.timeZone.",
        json_schema_extra={
            CEL_KEY: [
                cel("!self.contains('TZ=')", "set spec.timeZone instead of TZ= or CRON_TZ= in a schedule"),
                cel(f"self.matches('{CRON_GRAMMAR}')", CRON_MESSAGE),
            ]
        },
    ),
]


# ---------------------------------------------------------------------------
# Vocabularies


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while another is still active (CronJob's names)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class MissedRunPolicy(StrEnum):
    """What to do with scheduled times that passed while the operator (or the local runner) was down."""

    SKIP = "Skip"
    """Start nothing for missed times; only a time that is due now (within the on-time window) runs."""
    RUN_ONCE = "RunOnce"
    """Start one run for the latest missed time (CronJob's behaviour)."""
    RUN_ALL = "RunAll"
    """Start a run for each missed time, oldest first, at most maxMissedRuns (the newest ones)."""


class TriggerType(StrEnum):
    """Why a run was started (status.lastTrigger.type, and each run's trigger annotation)."""

    CRON = "cron"
    DATA = "data"
    PERFORMANCE = "performance"
    MANUAL = "manual"


# ---------------------------------------------------------------------------
# Spec


def _cooldown(default: int) -> object:
    return Field(
        default=default, ge=0, le=30 * 86400,
        description="Least time in seconds between two runs started by this trigger.",
    )


class DataTrigger(ApiModel):
    """Start a run when enough new games reached the artifact store."""

    min_new_games: int = Field(
        ge=1, le=10**9,
        description=(
            "Games in replay shards committed to the template's storage since the last run of this "
            "schedule started (read from the shards' metadata) that start a new run."
        ),
    )
    cooldown_seconds: int = _cooldown(3600)


class PerformanceTrigger(ApiModel):
    """Start a run when the champion weakens."""

    metric: str = Field(
        default="winRate", min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="Key of the Champion's status.ratings watched (locally: the score `ouro train` reports).",
    )
    below: float = Field(ge=0, le=1e6, description="A run starts when the metric is below this.")
    cooldown_seconds: int = _cooldown(21600)


class ManualTrigger(ApiModel):
    """The "run now" trigger: the annotation ouroboros.dev/trigger, or `ouro schedule trigger NAME`."""

    cooldown_seconds: int = _cooldown(0)


class Triggers(ApiModel):
    """Reasons to start a run besides the clock; each has its own cooldown."""

    data: DataTrigger | None = Field(default=None, description="Enough new games in the replay store.")
    performance: PerformanceTrigger | None = Field(default=None, description="The champion's score fell.")
    manual: ManualTrigger = section(
        ManualTrigger,
        f"Changing the annotation {MANUAL_TRIGGER_ANNOTATION} starts one run (always on; this sets its cooldown).",
    )


class StopStrategy(ApiModel):
    """When the schedule stops itself (Argo CronWorkflow's stopStrategy)."""

    max_consecutive_failures: int = Field(
        ge=1, le=100,
        description="After this many runs failed in a row, spec.suspend is set to true and the Suspended "
        "condition says why; set it back to false to resume (the count starts again).",
    )


class RunTemplateMetadata(ApiModel):
    """Labels and annotations copied onto each created TrainingRun."""

    labels: dict[str, str] = Field(default_factory=dict, max_length=64, description="Labels of created runs.")
    annotations: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Annotations of created runs."
    )


class RunTemplate(ApiModel):
    """The TrainingRun each firing creates."""

    metadata: RunTemplateMetadata = section(RunTemplateMetadata, "Metadata of created runs.")
    spec: TrainingRunSpec = Field(description="Spec of created runs.")


class TrainingScheduleSpec(ApiModel):
    """When to create TrainingRuns and from what template."""

    schedules: list[CronExpression] = Field(
        default_factory=list, max_length=16,
        description="Cron expressions, each evaluated in timeZone; a run starts at every time any of them "
        "gives (times two expressions share start one run). Empty: only triggers start runs.",
    )
    time_zone: str = Field(
        default="Etc/UTC", min_length=1, max_length=64,
        description="IANA time zone of the schedules. Daylight-saving changes as CronJob: a time skipped "
        "by the spring-forward gap does not run that day, a time repeated by the fall-back runs twice.",
        json_schema_extra={CEL_KEY: [cel(f"self in {json.dumps(list(TIMEZONES))}", TIMEZONE_MESSAGE)]},
    )
    suspend: bool = Field(default=False, description="True stops creating runs; active runs continue.")
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID,
        description="When a run is due while another is active: Allow starts it too; Forbid skips it "
        "(a cron time is dropped with an Event, a trigger waits); Replace deletes the active run first.",
    )
    starting_deadline_seconds: int | None = Field(
        default=None, ge=0, le=30 * 86400,
        description="A scheduled time more than this many seconds in the past is not started any more.",
    )
    missed_run_policy: MissedRunPolicy = Field(
        default=MissedRunPolicy.RUN_ONCE,
        description="Scheduled times missed while the operator was down: Skip, RunOnce (one run for the "
        "latest, as CronJob) or RunAll (each, up to maxMissedRuns). More than 100 missed times are also "
        "reported with a Warning Event, as CronJob does.",
    )
    max_missed_runs: int = Field(
        default=10, ge=1, le=100, description="With RunAll, at most this many missed times run (the newest)."
    )
    successful_runs_history_limit: int = Field(
        default=3, ge=0, le=100, description="Finished successful runs kept; older ones are deleted."
    )
    failed_runs_history_limit: int = Field(
        default=1, ge=0, le=100, description="Finished failed runs kept; older ones are deleted."
    )
    triggers: Triggers = section(Triggers, "Reasons to start a run besides the clock.")
    stop_strategy: StopStrategy | None = Field(
        default=None, description="Suspend the schedule after repeated failures."
    )
    template: RunTemplate = Field(description="The TrainingRun to create.")

    @field_validator("schedules")
    @classmethod
    def _schedules(cls, value: list[str]) -> list[str]:
        """Mirror of the CEL rules on each expression."""
        for i, expression in enumerate(value):
            try:
                check_cron(expression)
            except ValueError as exc:
                raise ValueError(f"schedules[{i}]: {exc}") from None
        return value

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        """Mirror of the CEL rule."""
        if value not in TIMEZONES:
            raise ValueError(f"{value!r} {TIMEZONE_MESSAGE}")
        return value


# ---------------------------------------------------------------------------
# Status


class RunReference(StatusModel):
    """A TrainingRun created by the schedule."""

    name: str = Field(max_length=253, description="Run name.")
    uid: str | None = Field(default=None, max_length=64, description="Run UID.")
    trigger: TriggerType | None = Field(default=None, description="What started it.")
    scheduled_time: datetime | None = Field(default=None, description="The time it was started for.")


class TriggerRecord(StatusModel):
    """The last reason a run was started."""

    type: TriggerType = Field(description="cron, data, performance or manual.")
    reason: str = Field(max_length=1024, description="What was observed, in words.")
    at: datetime = Field(description="The scheduled time (cron) or when the trigger fired.")
    run: str = Field(max_length=253, description="The TrainingRun it started.")


class TriggerTimes(StatusModel):
    """When each trigger last started a run (what the cooldowns count from)."""

    cron: datetime | None = Field(default=None, description="Last run started by a schedule.")
    data: datetime | None = Field(default=None, description="Last run started by the data trigger.")
    performance: datetime | None = Field(default=None, description="Last run started by the performance trigger.")
    manual: datetime | None = Field(default=None, description="Last run started by hand.")


class TrainingScheduleConditionType(StrEnum):
    """Condition types of a TrainingSchedule."""

    READY = "Ready"
    SUSPENDED = "Suspended"


class TrainingScheduleStatus(StatusModel):
    """What the schedule has done."""

    active: list[RunReference] = Field(default_factory=list, max_length=100, description="Runs still going.")
    last_schedule_time: datetime | None = Field(
        default=None, description="Latest scheduled time handled (started, skipped or replaced)."
    )
    last_successful_time: datetime | None = Field(default=None, description="Last time a run succeeded.")
    next_schedule_time: datetime | None = Field(default=None, description="Next time a schedule fires.")
    last_trigger: TriggerRecord | None = Field(default=None, description="The last reason a run was started.")
    trigger_times: TriggerTimes = Field(
        default_factory=TriggerTimes, description="When each trigger last started a run."
    )
    manual_trigger: str | None = Field(
        default=None, max_length=253, description=f"The {MANUAL_TRIGGER_ANNOTATION} value last acted on."
    )
    consecutive_failures: int = Field(default=0, ge=0, description="Runs failed in a row (stopStrategy).")
    conditions: list[Condition] = conditions_field("Ready, Suspended")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation reflected.")
