"""The TrainingSchedule resource: when to start TrainingRuns.

Modelled on Kubernetes CronJob (schedule, timeZone, concurrencyPolicy,
startingDeadlineSeconds, suspend, history limits) with data-driven triggers on
top (enough new games, a champion regression, a manual annotation) and a
cooldown between runs. Schedule and run are separate resources, as KubeRay
settled on after reverting a schedule-inside-RayJob design. The schedule
controller itself is a later piece of work; the resource is modelled now so
that its API is reviewed with the others.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from ouroboros.contract.schema import CEL_KEY, ApiModel, StatusModel, cel, section
from ouroboros.operator.resources.common import Condition, conditions_field
from ouroboros.operator.resources.trainingrun import TrainingRunSpec

MANUAL_TRIGGER_ANNOTATION = "ouroboros.dev/trigger"


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while another is still active (CronJob semantics)."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


class TriggerType(StrEnum):
    """Events that start a run outside the cron schedule."""

    NEW_GAMES = "NewGames"
    CHAMPION_REGRESSION = "ChampionRegression"
    MANUAL = "Manual"


class Trigger(ApiModel):
    """One data-driven reason to start a run."""

    model_config = ConfigDict(
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "(self.type == 'NewGames') == has(self.newGames)",
                    "newGames is required for, and only for, a NewGames trigger",
                    ".newGames",
                ),
                cel(
                    "(self.type == 'ChampionRegression') == has(self.winRateBelow)",
                    "winRateBelow is required for, and only for, a ChampionRegression trigger",
                    ".winRateBelow",
                ),
            ]
        }
    )

    type: TriggerType = Field(
        description=(
            "NewGames: enough games were added to the replay store; ChampionRegression: the champion's "
            f"monitored win rate dropped; Manual: the annotation {MANUAL_TRIGGER_ANNOTATION} changed."
        )
    )
    new_games: int | None = Field(
        default=None, ge=1, description="Games recorded since the last run that start a new one."
    )
    win_rate_below: float | None = Field(
        default=None, ge=0, le=1, description="Champion win rate under which a run starts."
    )

    @model_validator(mode="after")
    def _rules(self) -> Trigger:
        """Mirror of the CEL rules."""
        if (self.type == TriggerType.NEW_GAMES) != (self.new_games is not None):
            raise ValueError("newGames is required for, and only for, a NewGames trigger")
        if (self.type == TriggerType.CHAMPION_REGRESSION) != (self.win_rate_below is not None):
            raise ValueError("winRateBelow is required for, and only for, a ChampionRegression trigger")
        return self


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


SCHEDULE_RULES = [
    cel(
        "has(self.schedule) || (has(self.triggers) && size(self.triggers) > 0)",
        "a TrainingSchedule needs a cron schedule, triggers, or both",
        ".schedule",
    ),
    cel(
        "!has(self.schedule) || !self.schedule.contains('TZ=')",
        "set spec.timeZone instead of TZ= or CRON_TZ= in spec.schedule",
        ".schedule",
    ),
]


class TrainingScheduleSpec(ApiModel):
    """When to create TrainingRuns and from what template."""

    model_config = ConfigDict(json_schema_extra={CEL_KEY: SCHEDULE_RULES})

    schedule: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$",
        description="Cron expression (5 fields, or @daily etc.), evaluated in timeZone.",
    )
    time_zone: str = Field(
        default="Etc/UTC", max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_+/-]*$", description="IANA time zone."
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID, description="Allow, Forbid (skip) or Replace a due run while one is active."
    )
    starting_deadline_seconds: int | None = Field(
        default=None, ge=0, description="A firing missed by more than this is skipped."
    )
    suspend: bool = Field(default=False, description="True stops creating runs; active runs continue.")
    successful_runs_history_limit: int = Field(
        default=3, ge=0, le=100, description="Finished successful runs to keep."
    )
    failed_runs_history_limit: int = Field(default=1, ge=0, le=100, description="Failed runs to keep.")
    triggers: list[Trigger] = Field(
        default_factory=list, max_length=8, description="Data-driven reasons to start a run."
    )
    cooldown_seconds: int = Field(
        default=3600, ge=0, le=30 * 86400, description="Least time between two runs started by triggers."
    )
    template: RunTemplate = Field(description="The TrainingRun to create.")

    @model_validator(mode="after")
    def _rules(self) -> TrainingScheduleSpec:
        """Mirror of SCHEDULE_RULES."""
        if self.schedule is None and not self.triggers:
            raise ValueError("a TrainingSchedule needs a cron schedule, triggers, or both")
        if self.schedule is not None and "TZ=" in self.schedule:
            raise ValueError("set spec.timeZone instead of TZ= or CRON_TZ= in spec.schedule")
        return self


class RunReference(StatusModel):
    """A TrainingRun created by the schedule."""

    name: str = Field(max_length=253, description="Run name.")
    uid: str | None = Field(default=None, max_length=64, description="Run UID.")


class TriggerRecord(StatusModel):
    """The last trigger that fired."""

    type: TriggerType = Field(description="Which trigger.")
    time: datetime = Field(description="When it fired.")
    message: str | None = Field(default=None, max_length=1024, description="What was observed.")


class TrainingScheduleConditionType(StrEnum):
    """Condition types of a TrainingSchedule."""

    READY = "Ready"
    SUSPENDED = "Suspended"


class TrainingScheduleStatus(StatusModel):
    """What the schedule has done."""

    active: list[RunReference] = Field(default_factory=list, max_length=100, description="Runs still going.")
    last_schedule_time: datetime | None = Field(default=None, description="Last time a run was created.")
    last_successful_time: datetime | None = Field(default=None, description="Last time a run succeeded.")
    last_trigger: TriggerRecord | None = Field(default=None, description="Last trigger that fired.")
    conditions: list[Condition] = conditions_field("Ready, Suspended")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation reflected.")
