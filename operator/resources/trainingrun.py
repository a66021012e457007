"""The TrainingRun resource: one champion-challenging run of training phases.

A run is a list of phases, each executed as one Kubernetes Job from the trainer
image. The spec says what to train and on what hardware; the status is the
operator's record of what happened (phase by phase, with metrics and artifact
hashes), written so that a restarted operator can continue from it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from ouroboros.contract.game import GameSpec
from ouroboros.contract.progress import RunProgress
from ouroboros.contract.promotion import GateStatistics, PromotionSpec
from ouroboros.contract.run import InitialModelSpec, LearnerSpec, ModelSpec, PhaseSpec, StorageSpec
from ouroboros.contract.schema import (
    CEL_KEY,
    DNS_LABEL,
    ApiModel,
    Artifact,
    StatusModel,
    cel,
    section,
)
from ouroboros.contract.vocabulary import BootstrapPositions, PhaseName
from ouroboros.operator.resources.common import Condition, Quantity, conditions_field


class ResourceSpec(ApiModel):
    """Compute requested for each phase's pod (requests = limits)."""

    gpu: int = Field(default=0, ge=0, le=16, description="GPUs per pod; 0 runs on CPU.")
    gpu_resource_name: str = Field(
        default="nvidia.com/gpu",
        max_length=253,
        pattern=r"^[a-z0-9.-]+/[a-z0-9-]+$",
        description="Extended resource that counts GPUs on the nodes.",
    )
    # kubectl explain shows every int-or-string field of a CRD as <Object> (it names a type only
    # from `type` or a $ref, and a CRD schema may have neither here): the text says what it is.
    cpu: Quantity = Field(default="1", description="Quantity (integer or string, e.g. 2 or 500m): CPU cores per pod.")
    memory: Quantity = Field(default="2Gi", description="Quantity (integer or string, e.g. 2Gi or 512Mi): memory per pod.")


class TolerationOperator(StrEnum):
    """core/v1 Toleration operators."""

    EQUAL = "Equal"
    EXISTS = "Exists"


class TaintEffect(StrEnum):
    """core/v1 taint effects."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(ApiModel):
    """A core/v1 Toleration, copied onto every phase pod (e.g. to reach GPU nodes)."""

    model_config = ConfigDict(
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "self.operator == 'Exists' || has(self.key)",
                    "a toleration with operator Equal needs a key",
                    ".key",
                ),
                cel(
                    "self.operator != 'Exists' || !has(self.value) || self.value == ''",
                    "a toleration with operator Exists must not set a value",
                    ".value",
                ),
                cel(
                    "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                    "tolerationSeconds applies only to the NoExecute effect",
                    ".tolerationSeconds",
                ),
            ]
        }
    )

    key: str | None = Field(default=None, max_length=317, description="Taint key; empty with Exists matches all.")
    operator: TolerationOperator = Field(default=TolerationOperator.EQUAL, description="Equal or Exists.")
    value: str | None = Field(default=None, max_length=63, description="Taint value (operator Equal).")
    effect: TaintEffect | None = Field(default=None, description="Taint effect to match; unset matches all.")
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated before eviction."
    )

    @model_validator(mode="after")
    def _rules(self) -> Toleration:
        """Mirror of the CEL rules."""
        if self.operator == TolerationOperator.EQUAL and not self.key:
            raise ValueError("a toleration with operator Equal needs a key")
        if self.operator == TolerationOperator.EXISTS and self.value:
            raise ValueError("a toleration with operator Exists must not set a value")
        if self.toleration_seconds is not None and self.effect != TaintEffect.NO_EXECUTE:
            raise ValueError("tolerationSeconds applies only to the NoExecute effect")
        return self


PHASES_MAX = 10
"""Most entries of spec.phases (and of status.phases)."""

SPEC_RULES = [
    cel(
        "self.phases.all(p, self.phases.exists_one(q, q.name == p.name))",
        "each phase name may appear only once in spec.phases",
        ".phases",
    ),
    cel(
        "self.phases.exists(p, p.name != 'evaluate')",
        "spec.phases needs at least one training phase (evaluate alone trains nothing)",
        ".phases",
    ),
    cel(
        "!self.phases.exists(p, p.name == 'bootstrap') || self.phases[0].name == 'bootstrap'",
        "the bootstrap phase must come first in spec.phases",
        ".phases",
    ),
    cel(
        "!self.phases.exists(p, p.name == 'evaluate') || self.phases[size(self.phases) - 1].name == 'evaluate'",
        "the evaluate phase must come last in spec.phases",
        ".phases",
    ),
    cel(
        "!self.phases.exists(p, has(p.positions) && p.positions == 'student') || has(self.initialModel)",
        "positions: student needs spec.initialModel (the student whose games the teacher labels)",
        ".initialModel",
    ),
    cel(
        "self.phases[0].name != 'distill' || has(self.initialModel)",
        "a distill phase first in spec.phases needs spec.initialModel (the student whose games the teacher labels)",
        ".initialModel",
    ),
    cel(
        # bootstrap is first anyway; no hybrid or self_play at index j after a distill at i < j (index
        # literals up to maxItems keep the estimated cost that of the uniqueness rule; indexOf over a map
        # of the names was refused as 100x over the budget)
        f"!self.phases.exists(p, p.name == 'distill') || {list(range(1, PHASES_MAX))}.all(j, "
        f"j >= size(self.phases) || !(self.phases[j].name in ['hybrid', 'self_play']) || "
        f"!{list(range(PHASES_MAX - 1))}.exists(i, i < j && self.phases[i].name == 'distill'))",
        "the distill phase must come after bootstrap, hybrid and self_play in spec.phases (it distils the search "
        "into the network they trained)",
        ".phases",
    ),
    cel(
        "self.learner.replicas == 1 || self.selfPlayWorkers == 1",
        "spec.learner.replicas above 1 cannot be combined with spec.selfPlayWorkers above 1: a phase's Job "
        "is either a self-play fan-out or a DDP learner group",
        ".learner.replicas",
    ),
]


class TrainingRunSpec(ApiModel):
    """What to train, how, and on what hardware."""

    model_config = ConfigDict(json_schema_extra={CEL_KEY: SPEC_RULES})

    champion: str = Field(
        max_length=63, pattern=DNS_LABEL, description="Name of the Champion (same namespace) this run challenges."
    )
    image: str | None = Field(
        default=None, min_length=1, max_length=512, description="Trainer image; unset: the operator's default."
    )
    game: GameSpec = section(GameSpec, "The game trained on; must match the champion's.")
    model: ModelSpec = section(ModelSpec, "Network architecture and size.")
    phases: list[PhaseSpec] = Field(
        min_length=1, max_length=PHASES_MAX, description="Phases run in order, one Job each."
    )
    initial_model: InitialModelSpec | None = Field(
        default=None,
        description="Start from an existing network (a registry version, an ONNX file with the contract, or a "
        "checkpoint) instead of a fresh one; its architecture must match spec.model and its board spec.game.",
    )
    promotion: PromotionSpec | None = Field(
        default=None,
        description="Gate the candidate must pass to become champion; unset: the Champion's spec.policy.gate "
        "as it is when the run starts (status.promotion.statistics.gateSource says which applied).",
    )
    resources: ResourceSpec = section(ResourceSpec, "Compute for each phase's pod.")
    self_play_workers: int = Field(
        default=1, ge=1, le=256, description="Parallel pods for self-play generation (Indexed Job)."
    )
    learner: LearnerSpec = section(LearnerSpec, "The training phases' learner: one pod or a DDP group.")
    storage: StorageSpec = section(StorageSpec, "Artifact store.")
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Wall-clock limit of one phase attempt (the Job's activeDeadlineSeconds)."
    )
    backoff_limit: int = Field(
        default=2, ge=0, le=20, description="Retries of a failed phase before the run fails."
    )
    suspend: bool = Field(
        default=False, description="True stops starting phases and suspends the running one; false resumes."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Delete the run (and its Jobs) this long after it finished."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict,
        max_length=32,
        description="Node labels a phase pod requires (e.g. a GPU node pool).",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Taints the phase pods tolerate."
    )
    priority_class_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_LABEL, description="PriorityClass of the phase pods."
    )
    service_account_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_LABEL, description="ServiceAccount the phase pods run as."
    )

    @model_validator(mode="after")
    def _rules(self) -> TrainingRunSpec:
        """Mirror of SPEC_RULES."""
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            raise ValueError("each phase name may appear only once in spec.phases")
        if all(n == PhaseName.EVALUATE for n in names):
            raise ValueError("spec.phases needs at least one training phase (evaluate alone trains nothing)")
        if PhaseName.BOOTSTRAP in names and names[0] != PhaseName.BOOTSTRAP:
            raise ValueError("the bootstrap phase must come first in spec.phases")
        if PhaseName.EVALUATE in names and names[-1] != PhaseName.EVALUATE:
            raise ValueError("the evaluate phase must come last in spec.phases")
        if any(p.positions is BootstrapPositions.STUDENT for p in self.phases) and self.initial_model is None:
            raise ValueError("positions: student needs spec.initialModel (the student whose games the teacher labels)")
        if names[0] == PhaseName.DISTILL and self.initial_model is None:
            raise ValueError("a distill phase first in spec.phases needs spec.initialModel (the student whose games "
                             "the teacher labels)")
        if PhaseName.DISTILL in names and any(
                n in names[names.index(PhaseName.DISTILL):] for n in (PhaseName.BOOTSTRAP, PhaseName.HYBRID,
                                                                     PhaseName.SELF_PLAY)):
            raise ValueError("the distill phase must come after bootstrap, hybrid and self_play in spec.phases (it "
                             "distils the search into the network they trained)")
        if self.learner.replicas > 1 and self.self_play_workers > 1:
            raise ValueError(
                "spec.learner.replicas above 1 cannot be combined with spec.selfPlayWorkers above 1: a phase's "
                "Job is either a self-play fan-out or a DDP learner group")
        return self


# Fields that define what the run trains; changing them mid-run would mix two runs.
IMMUTABLE_SPEC_FIELDS = ("champion", "game", "model", "phases", "initialModel", "promotion", "storage")


# ---------------------------------------------------------------------------
# Status


class RunPhase(StrEnum):
    """Where the run as a whole stands."""

    PENDING = "Pending"
    QUEUED = "Queued"
    """The current phase's Job waits in its Kueue LocalQueue (not admitted yet, or preempted)."""
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class PhaseState(StrEnum):
    """Where one phase stands."""

    PENDING = "Pending"
    QUEUED = "Queued"
    """Its Job is held suspended by Kueue until its ClusterQueue admits it."""
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class RunConditionType(StrEnum):
    """Condition types of a TrainingRun (`kubectl wait --for=condition=Succeeded`)."""

    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PromotionDecision(StrEnum):
    """Outcome of the gate."""

    PENDING = "Pending"
    PROMOTED = "Promoted"
    REJECTED = "Rejected"
    INCONCLUSIVE = "Inconclusive"
    SKIPPED = "Skipped"


class PhaseStatus(StatusModel):
    """What happened in one phase."""

    name: PhaseName = Field(description="The phase.")
    state: PhaseState = Field(default=PhaseState.PENDING, description="Where the phase stands.")
    job: str | None = Field(default=None, max_length=63, description="Job of the latest attempt.")
    attempts: int = Field(default=0, ge=0, description="Jobs started for this phase (1 + retries).")
    start_time: datetime | None = Field(default=None, description="When the first attempt started.")
    completion_time: datetime | None = Field(default=None, description="When the phase succeeded or finally failed.")
    reason: str | None = Field(default=None, max_length=128, description="CamelCase reason of the last failure.")
    message: str | None = Field(default=None, max_length=4096, description="Details of the last failure.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Numbers the phase reported.")
    artifacts: list[Artifact] = Field(default_factory=list, max_length=64, description="Files the phase produced.")
    placeholder: bool = Field(
        default=False, description="True if the trainer only checked the config and trained nothing."
    )


class CandidateStatus(StatusModel):
    """The model this run produced, to be gated against the champion."""

    phase: PhaseName = Field(description="Phase that produced it.")
    artifact: Artifact = Field(description="The model file.")


class PromotionStatus(StatusModel):
    """The gate's decision and its statistics."""

    decision: PromotionDecision = Field(default=PromotionDecision.PENDING, description="Outcome.")
    reason: str | None = Field(default=None, max_length=128, description="CamelCase reason.")
    message: str | None = Field(default=None, max_length=4096, description="Details.")
    statistics: GateStatistics | None = Field(default=None, description="Gate measurements.")
    decided_at: datetime | None = Field(default=None, description="When the gate decided.")


class TrainingRunStatus(StatusModel):
    """The operator's record of the run."""

    phase: RunPhase = Field(default=RunPhase.PENDING, description="Where the run as a whole stands.")
    current_phase: PhaseName | None = Field(default=None, description="Phase running now, or the last one.")
    current_phase_index: int | None = Field(default=None, ge=0, description="Index of currentPhase in spec.phases.")
    phases: list[PhaseStatus] = Field(
        default_factory=list, max_length=PHASES_MAX, description="One entry per spec.phases entry, same order."
    )
    candidate: CandidateStatus | None = Field(default=None, description="Model produced by the run.")
    promotion: PromotionStatus | None = Field(default=None, description="Gate outcome.")
    best_win_rate: float | None = Field(
        default=None, ge=0, le=1, description="Highest winRate any phase reported."
    )
    start_time: datetime | None = Field(default=None, description="When the first phase started.")
    completion_time: datetime | None = Field(default=None, description="When the run succeeded or failed.")
    conditions: list[Condition] = conditions_field("Running, Suspended, Succeeded, Failed")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the status reflects."
    )
    progress: RunProgress | None = Field(
        default=None,
        description="Live progress of the running phase, read from the trainers' progress records in the "
                    "artifact store at least every 30 s; unset when no phase is running.",
    )
