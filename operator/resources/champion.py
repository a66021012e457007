"""The Champion resource: the model a game server plays, and its history.

A Champion is a mutable pointer (like an MLflow alias) plus the audit trail
that MLflow aliases lack: every promotion is kept in a bounded history with
the gate statistics that justified it, so a rollback (`pinnedVersion`, or the
automatic post-promotion check, in the style of Argo Rollouts' abort) points
back at a version whose provenance is still on record.

The model registry in the artifact store (``champions/<game>.json``) is the
source of truth for which version is in force; the status mirrors it (every
registry write is a trainer Job of the Champion controller, which reports the
registry's state back) and the spec carries the user's intent (pin, policy).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from ouroboros.contract.game import GameSpec
from ouroboros.contract.promotion import GateStatistics, PromotionSpec
from ouroboros.contract.run import StorageSpec
from ouroboros.contract.schema import ApiModel, Artifact, StatusModel, section
from ouroboros.contract.vocabulary import ApprovalMode
from ouroboros.operator.resources.common import Condition, conditions_field

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class PostPromotionCheck(ApiModel):
    """Games played right after a promotion; failing them rolls back automatically.

    Both versions play the way ``policy.gate`` plays them (its ``player``, ``moveBudgetMs``,
    ``maxVisits`` and ``endgameShare``), which is the way they are served.
    """

    games: int = Field(default=100, ge=0, le=100000,
                       description="Games against the previous champion, both playing as policy.gate plays them "
                       "(player, moveBudgetMs, maxVisits, endgameShare); 0 disables.")
    min_win_rate: float = Field(
        default=0.45, ge=0, le=1, description="Score under which the promotion is rolled back."
    )


class ChampionPolicy(ApiModel):
    """How candidates are gated and how much history is kept."""

    approval: ApprovalMode = Field(
        default=ApprovalMode.AUTOMATIC,
        description="Automatic: a candidate whose gate says promote becomes champion at once. Manual: it waits "
        "(status.pending, condition AwaitingApproval) until the annotation ouroboros.dev/approve names its run "
        "(`ouro champion approve NAME`); ouroboros.dev/reject refuses it.",
    )
    gate: PromotionSpec = section(
        PromotionSpec, "Gate of the runs that challenge this champion and set no spec.promotion of their own "
        "(read when such a run starts; later edits apply to later runs).")
    post_promotion_check: PostPromotionCheck = section(
        PostPromotionCheck, "Check after promotion; a failure rolls back."
    )
    history_limit: int = Field(default=20, ge=1, le=100, description="Promotions kept in status.history.")


class ChampionSpec(ApiModel):
    """What the champion plays and how it may change."""

    game: GameSpec = section(GameSpec, "The game; runs challenging this champion must use the same.")
    pinned_version: str | None = Field(
        default=None,
        max_length=128,
        pattern=VERSION_PATTERN,
        description="Serve this version from history regardless of promotions (manual rollback); unset to follow promotions.",
    )
    policy: ChampionPolicy = section(ChampionPolicy, "Promotion policy.")
    storage: StorageSpec = section(
        StorageSpec, "Artifact store holding the model registry; runs challenging this champion use the same URL."
    )
    image: str | None = Field(
        default=None, min_length=1, max_length=512,
        description="Trainer image of the registry Jobs (promote, pin, check); unset: the operator's default.",
    )


class ChampionArtifact(StatusModel):
    """The champion's ONNX file."""

    uri: str = Field(max_length=2048, description="Where the ONNX file lives.")
    sha256: str = Field(pattern=r"^[a-f0-9]{64}$", description="Hex SHA-256 of the file.")
    size: int | None = Field(default=None, ge=0, description="Size in bytes.")


class HistoryReason(StrEnum):
    """Why a version became the champion."""

    INITIAL = "Initial"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    PINNED = "Pinned"
    UNPINNED = "Unpinned"
    REJECTED = "Rejected"


class HistoryEntry(StatusModel):
    """One change of champion, kept for audit and rollback."""

    version: str = Field(max_length=128, description="Version that became the champion.")
    promoted_at: datetime = Field(description="When.")
    run: str | None = Field(default=None, max_length=253, description="TrainingRun that produced it.")
    artifact: ChampionArtifact | None = Field(default=None, description="Its file.")
    statistics: GateStatistics | None = Field(default=None, description="Gate that admitted it.")
    reason: HistoryReason = Field(description="Initial, Promoted, RolledBack, Pinned, Unpinned or Rejected.")
    message: str | None = Field(default=None, max_length=1024, description="Details.")
    previous: str | None = Field(default=None, max_length=128, description="Version in force before.")
    by: str | None = Field(
        default=None, max_length=253, description="Who made the change (the approver, the evaluate phase, the operator)."
    )


class ChampionConditionType(StrEnum):
    """Condition types of a Champion."""

    READY = "Ready"
    PINNED = "Pinned"
    DEGRADED = "Degraded"
    AWAITING_APPROVAL = "AwaitingApproval"


class PendingCandidate(StatusModel):
    """A candidate that passed its gate and waits for manual approval."""

    run: str = Field(max_length=253, description="TrainingRun whose evaluate phase judged it.")
    version: str = Field(max_length=128, description="Registry version id of the candidate.")
    since: datetime | None = Field(default=None, description="When the gate decided.")
    statistics: GateStatistics | None = Field(default=None, description="The gate's statistics.")


class CheckStatus(StatusModel):
    """The post-promotion check of the version now in force."""

    version: str = Field(max_length=128, description="Version checked.")
    against: str | None = Field(default=None, max_length=128, description="Previous champion it played.")
    passed: bool = Field(description="Whether it scored at least policy.postPromotionCheck.minWinRate.")
    games: int = Field(default=0, ge=0, description="Games played.")
    win_rate: float | None = Field(default=None, ge=0, le=1, description="Score per game (wins + draws/2).")
    player: str | None = Field(
        default=None, max_length=64,
        description="How both versions played, as policy.gate plays them: policy, or nsearch:ms=N[,visits=N] "
        "(the neural search at that budget).")
    checked_at: datetime | None = Field(default=None, description="When.")
    message: str | None = Field(default=None, max_length=1024, description="Details.")


class ChampionStatus(StatusModel):
    """The version being served, its ratings and how it got there."""

    version: str | None = Field(default=None, max_length=128, description="Version served now (the registry's).")
    pinned_version: str | None = Field(
        default=None, max_length=128, description="Version the registry pointer is pinned to (mirrors the store)."
    )
    registry_generation: int | None = Field(
        default=None, ge=0, description="Generation of the registry pointer this status mirrors (unset: never read)."
    )
    promoted_at: datetime | None = Field(default=None, description="When the version in force was put there.")
    from_run: str | None = Field(default=None, max_length=253, description="TrainingRun that produced it.")
    score: float | None = Field(
        default=None, ge=0, le=1, description="Its gate score against the champion it replaced (wins + draws/2)."
    )
    pending: PendingCandidate | None = Field(default=None, description="Candidate awaiting approval.")
    last_check: CheckStatus | None = Field(default=None, description="Post-promotion check of the latest promotion.")
    artifact: ChampionArtifact | None = Field(default=None, description="The served ONNX file.")
    ratings: dict[str, float] = Field(
        default_factory=dict,
        description="The gate figures of the version in force against the one it replaced: winRateVsPrevious "
        "and eloVsPrevious with their 95% interval ends (...Lower, ...Upper).",
    )
    history: list[HistoryEntry] = Field(
        default_factory=list, max_length=100, description="Changes of champion, newest first (bounded by policy.historyLimit)."
    )
    artifacts: list[Artifact] = Field(
        default_factory=list, max_length=16, description="Other files of the served version (checkpoint, metadata)."
    )
    conditions: list[Condition] = conditions_field("Ready, Pinned, Degraded, AwaitingApproval")
    observed_generation: int | None = Field(default=None, ge=0, description="Generation reflected.")
