"""The `ouroboros.dev/v1alpha1` API: TrainingRun, TrainingSchedule and Champion.

This package is the single source of truth for the custom resources. Each
resource is described once here (`DEFINITIONS`): its names, its spec and
status models, its printer columns and its object-level CEL rules. The CRD
generator (`ouroboros.operator.crdgen`) and the operator both read from it.

The models the trainer shares (game, network, phases, gate, run config) come
from `ouroboros.contract`; the names are re-exported here for the operator's
modules. Nothing here imports kopf or the Kubernetes client (crdgen and the
API-server tests read these models without them).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_snake

from ouroboros.contract.game import GameSpec
from ouroboros.contract.promotion import PromotionSpec
from ouroboros.contract.run import ModelSpec, PhaseResult, PhaseSpec, RunConfig, RunIdentity
from ouroboros.contract.schema import API_VERSION, GROUP, VERSION, Artifact, StatusModel, cel
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.operator.resources.champion import ChampionSpec, ChampionStatus
from ouroboros.operator.resources.common import Condition, ConditionStatus
from ouroboros.operator.resources.trainingrun import (
    IMMUTABLE_SPEC_FIELDS,
    PhaseState,
    PhaseStatus,
    PromotionDecision,
    RunConditionType,
    RunPhase,
    TrainingRunSpec,
    TrainingRunStatus,
)
from ouroboros.operator.resources.trainingschedule import (
    TrainingScheduleSpec,
    TrainingScheduleStatus,
)

__all__ = [
    "API_VERSION",
    "DEFINITIONS",
    "GROUP",
    "VERSION",
    "Artifact",
    "Champion",
    "Condition",
    "ConditionStatus",
    "CustomResource",
    "GameSpec",
    "ModelSpec",
    "ObjectMeta",
    "PhaseName",
    "PhaseResult",
    "PhaseSpec",
    "PhaseState",
    "PhaseStatus",
    "PromotionDecision",
    "PromotionSpec",
    "RunConditionType",
    "RunConfig",
    "RunIdentity",
    "RunPhase",
    "TrainingRun",
    "TrainingRunSpec",
    "TrainingRunStatus",
    "TrainingSchedule",
    "TrainingScheduleSpec",
    "TrainingScheduleStatus",
    "ChampionSpec",
    "ChampionStatus",
]


class ObjectMeta(StatusModel):
    """The few metadata fields the operator reads."""

    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    creation_timestamp: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TrainingRun(StatusModel):
    """A TrainingRun object as read from the API server."""

    api_version: str = API_VERSION
    kind: str = "TrainingRun"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TrainingRunSpec
    status: TrainingRunStatus = Field(default_factory=TrainingRunStatus)


class TrainingSchedule(StatusModel):
    """A TrainingSchedule object as read from the API server."""

    api_version: str = API_VERSION
    kind: str = "TrainingSchedule"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: TrainingScheduleSpec
    status: TrainingScheduleStatus = Field(default_factory=TrainingScheduleStatus)


class Champion(StatusModel):
    """A Champion object as read from the API server."""

    api_version: str = API_VERSION
    kind: str = "Champion"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ChampionSpec = Field(default_factory=ChampionSpec)
    status: ChampionStatus = Field(default_factory=ChampionStatus)


@dataclasses.dataclass(frozen=True)
class CustomResource:
    """Everything the CRD generator needs to know about one kind."""

    kind: str
    """CamelCase kind, e.g. TrainingRun."""
    plural: str
    """Lower-case plural used in URLs and `kubectl get`."""
    short_names: tuple[str, ...]
    """Abbreviations accepted by kubectl."""
    description: str
    """Top-level `kubectl explain` text."""
    spec: type[BaseModel]
    """Model of `.spec`."""
    status: type[BaseModel]
    """Model of `.status` (served through the status subresource)."""
    printer_columns: tuple[dict[str, Any], ...]
    """`additionalPrinterColumns` for `kubectl get`."""
    spec_rules: tuple[dict[str, Any], ...] = ()
    """CEL rules placed on `.spec` at the top of this kind only (e.g. transition rules)."""
    spec_required: bool = True
    """Whether `.spec` must be given (a Champion may be created empty)."""

    @property
    def singular(self) -> str:
        """Lower-case singular name."""
        return self.kind.lower()

    @property
    def name(self) -> str:
        """The CRD's metadata.name: <plural>.<group>."""
        return f"{self.plural}.{GROUP}"


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _unchanged(field: str) -> str:
    """CEL: spec.<field> (camelCase) is as it was; an optional field may not appear or vanish either
    (CEL errors on a missing key, so it is compared only when present)."""
    if TrainingRunSpec.model_fields[to_snake(field)].default is None:
        return (f"has(self.{field}) == has(oldSelf.{field}) && "
                f"(!has(self.{field}) || self.{field} == oldSelf.{field})")
    return f"self.{field} == oldSelf.{field}"


TRAINING_RUN = CustomResource(
    kind="TrainingRun",
    plural="trainingruns",
    short_names=("tr",),
    description=(
        "A TrainingRun trains a Battlesnake agent through a list of phases (bootstrap, hybrid, "
        "self_play, distill, continuous, evaluate), each run as a Kubernetes Job from the trainer image, "
        "and offers the result as a candidate to its Champion."
    ),
    spec=TrainingRunSpec,
    status=TrainingRunStatus,
    printer_columns=(
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Run phase."},
        {"name": "Current Phase", "type": "string", "jsonPath": ".status.currentPhase",
         "description": "Training phase running now."},
        {"name": "Progress", "type": "integer", "jsonPath": ".status.progress.percent",
         "description": "Estimated share of the running phase done, percent."},
        {"name": "ETA", "type": "integer", "jsonPath": ".status.progress.etaSeconds", "priority": 1,
         "description": "Estimated seconds left in the running phase."},
        {"name": "Best Win Rate", "type": "number", "format": "float", "jsonPath": ".status.bestWinRate",
         "description": "Highest win rate reported by a phase."},
        {"name": "Champion", "type": "string", "jsonPath": ".spec.champion",
         "description": "Champion challenged."},
        {"name": "Suspended", "type": "boolean", "jsonPath": ".spec.suspend", "priority": 1,
         "description": "Whether the run is suspended."},
        {"name": "Queue", "type": "string", "jsonPath": r".metadata.labels.kueue\.x-k8s\.io/queue-name",
         "priority": 1, "description": "Kueue LocalQueue the phase Jobs are submitted to (label kueue.x-k8s.io/queue-name)."},
        {"name": "Promotion", "type": "string", "jsonPath": ".status.promotion.decision",
         "description": "Gate decision: Promoted, Rejected, Inconclusive or Pending (awaiting approval)."},
        _age(),
    ),
    spec_rules=tuple(
        cel(_unchanged(field), f"spec.{field} is immutable once the run exists", f".{field}")
        for field in IMMUTABLE_SPEC_FIELDS
    ),
)

TRAINING_SCHEDULE = CustomResource(
    kind="TrainingSchedule",
    plural="trainingschedules",
    short_names=("ts",),
    description=(
        "A TrainingSchedule creates TrainingRuns from a template on cron schedules and on triggers "
        "(new games, a weakening champion, a manual annotation), like a CronJob creates Jobs."
    ),
    spec=TrainingScheduleSpec,
    status=TrainingScheduleStatus,
    printer_columns=(
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedules", "description": "Cron expressions."},
        {"name": "Time Zone", "type": "string", "jsonPath": ".spec.timeZone", "priority": 1,
         "description": "IANA time zone."},
        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend", "description": "Suspended."},
        {"name": "Active", "type": "string", "jsonPath": ".status.active[*].name",
         "description": "Runs still going."},
        {"name": "Last Schedule", "type": "date", "jsonPath": ".status.lastScheduleTime",
         "description": "Latest scheduled time handled."},
        {"name": "Next Schedule", "type": "date", "jsonPath": ".status.nextScheduleTime",
         "description": "Next time a schedule fires."},
        {"name": "Last Trigger", "type": "string", "jsonPath": ".status.lastTrigger.type",
         "description": "What started the last run: cron, data, performance or manual."},
        {"name": "Champion", "type": "string", "jsonPath": ".spec.template.spec.champion", "priority": 1,
         "description": "Champion the runs challenge."},
        {"name": "Last Success", "type": "date", "jsonPath": ".status.lastSuccessfulTime", "priority": 1,
         "description": "Last time a run succeeded."},
        _age(),
    ),
)

CHAMPION = CustomResource(
    kind="Champion",
    plural="champions",
    short_names=("champ",),
    description=(
        "A Champion is the model a game server plays: a pointer to a versioned ONNX file with its "
        "ratings and a bounded history of promotions and rollbacks."
    ),
    spec=ChampionSpec,
    status=ChampionStatus,
    printer_columns=(
        {"name": "Version", "type": "string", "jsonPath": ".status.version",
         "description": "Version in force (mirrors the registry)."},
        {"name": "Score", "type": "number", "format": "float", "jsonPath": ".status.score",
         "description": "Its gate score against the champion it replaced."},
        {"name": "Pinned", "type": "string", "jsonPath": ".spec.pinnedVersion",
         "description": "Version pinned by hand (rollback)."},
        {"name": "Pending", "type": "string", "jsonPath": ".status.pending.run",
         "description": "Run whose candidate awaits approval."},
        {"name": "Promoted", "type": "date", "jsonPath": ".status.promotedAt",
         "description": "When the version in force was put there."},
        {"name": "Ruleset", "type": "string", "jsonPath": ".spec.game.ruleset", "priority": 1,
         "description": "Game ruleset."},
        _age(),
    ),
    spec_rules=(cel("self.game == oldSelf.game", "spec.game is immutable: a champion plays one game", ".game"),),
    spec_required=False,
)

DEFINITIONS: tuple[CustomResource, ...] = (TRAINING_RUN, TRAINING_SCHEDULE, CHAMPION)
