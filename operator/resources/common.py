"""Building blocks shared by the three custom resources.

The pydantic models in this package are the single source of truth for the
`ouroboros.dev/v1alpha1` API: the CRD schemas are generated from them
(`ouroboros.operator.crdgen`), the operator validates with them, and the trainer
reads its run config through them. So every field carries a description (it
becomes `kubectl explain` text), bounds and defaults live here, and a rule that
a JSON schema cannot express is written twice, side by side: as a CEL rule for
the API server (`cel(...)` in `json_schema_extra`) and as a pydantic validator
for Python callers. Tests feed the same bad manifests to both.

Only pydantic is imported here: the trainer image reads these models and must
not pay for kopf or the Kubernetes client.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

GROUP = "ouroboros.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# The JSON-schema keyword under which CEL rules travel from the models to the CRD.
CEL_KEY = "x-kubernetes-validations"


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict:
    """One CEL validation rule in the CRD's `x-kubernetes-validations` shape.

    `field_path` (a JSONPath relative to the object the rule sits on) makes the
    API server name the offending field in its error, which is what a user reads.
    """
    rule_ = {"rule": rule, "message": message}
    if field_path:
        rule_["fieldPath"] = field_path
    if reason:
        rule_["reason"] = reason
    return rule_


class ApiModel(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_api(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase, JSON types, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(ApiModel):
    """Base of status models: tolerant of fields written by a newer operator."""

    model_config = ConfigDict(extra="ignore")


def section(model: type[BaseModel], description: str) -> Any:
    """A nested, fully defaulted section: the API server fills it in when it is left out.

    The schema default is the whole defaulted object, not `{}`: the API server
    checks a default against the CEL rules as written, before nested defaulting.
    """
    default = model().model_dump(mode="json", by_alias=True, exclude_none=True)
    return Field(default_factory=model, description=description, json_schema_extra={"default": default})


# ---------------------------------------------------------------------------
# Shared vocabularies


class PhaseName(StrEnum):
    """The training phases a run can list, in the order they usually come."""

    BOOTSTRAP = "bootstrap"
    HYBRID = "hybrid"
    SELF_PLAY = "self_play"
    CONTINUOUS = "continuous"
    EVALUATE = "evaluate"


class ConditionStatus(StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Ruleset(StrEnum):
    """Battlesnake rulesets (names as the official rules engine spells them)."""

    STANDARD = "standard"
    SOLO = "solo"
    ROYALE = "royale"
    CONSTRICTOR = "constrictor"
    WRAPPED = "wrapped"


class Architecture(StrEnum):
    """Network families the trainer can build."""

    RESNET = "resnet"
    MLP = "mlp"


# ---------------------------------------------------------------------------
# Shared value types

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHA256 = r"^[a-f0-9]{64}$"
# The Kubernetes resource.Quantity grammar (as in the core OpenAPI schema).
QUANTITY = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"

Quantity = Annotated[
    str,
    BeforeValidator(lambda v: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v),
    Field(pattern=QUANTITY, max_length=64),
    # Kubernetes writes quantities as int-or-string; `cpu: 2` must be accepted.
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY,
        }
    ),
]


class Condition(StatusModel):
    """One observation of the object's state, in the standard metav1.Condition shape."""

    type: str = Field(
        description="Type of condition in CamelCase, e.g. Succeeded.",
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="A CamelCase word saying why the condition last changed; always set.",
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    )
    message: str = Field(
        default="", description="Human-readable details of the last transition.", max_length=32768
    )
    last_transition_time: datetime = Field(
        description="When the condition last changed status (not reason or message)."
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this condition was computed from.",
    )


def conditions_field(types: str) -> Any:
    """The `conditions` list of a status: a map keyed by type, as API conventions ask."""
    return Field(
        default_factory=list,
        max_length=16,
        description=f"Current state of the object, one entry per type ({types}); all are set on the first reconcile.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Artifact(StatusModel):
    """A file a phase produced, addressed by URI and pinned by its content hash."""

    name: str = Field(description="What the file is, e.g. checkpoint, onnx, replay.", max_length=63)
    uri: str = Field(description="Where it lives (fsspec URL).", max_length=2048)
    sha256: str = Field(description="Hex SHA-256 of the file's bytes.", pattern=SHA256)
    size: int | None = Field(default=None, ge=0, description="Size in bytes.")


class GameSpec(ApiModel):
    """The game that is trained and played: ruleset, map, board and seats."""

    model_config = ConfigDict(
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "(self.ruleset == 'solo') == (self.snakes == 1)",
                    "game.snakes must be 1 for the solo ruleset and at least 2 otherwise",
                    ".snakes",
                ),
                cel(
                    "self.snakes * 9 <= self.width * self.height",
                    "game board is too small for that many snakes (needs 9 cells per snake)",
                    ".snakes",
                ),
            ]
        }
    )

    ruleset: Ruleset = Field(default=Ruleset.STANDARD, description="Rules of the game.")
    map: str = Field(
        default="standard",
        description="Map (board layout and hazard placement), as the official engine names it.",
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=63,
    )
    width: int = Field(default=11, ge=3, le=25, description="Board width in cells.")
    height: int = Field(default=11, ge=3, le=25, description="Board height in cells.")
    snakes: int = Field(default=2, ge=1, le=8, description="Snakes per game.")
    food_spawn_chance: int = Field(
        default=15, ge=0, le=100, description="Percent chance per turn that food spawns."
    )
    minimum_food: int = Field(default=1, ge=0, le=100, description="Food kept on the board at least.")
    hazard_damage_per_turn: int = Field(
        default=14, ge=0, le=100, description="Health lost per turn spent in a hazard."
    )
    max_turns: int = Field(
        default=500, ge=0, le=100000, description="Turns after which a game is a draw; 0 = no limit."
    )

    @model_validator(mode="after")
    def _rules(self) -> GameSpec:
        """Mirror of the CEL rules above, for Python callers."""
        if (self.ruleset == Ruleset.SOLO) != (self.snakes == 1):
            raise ValueError("game.snakes must be 1 for the solo ruleset and at least 2 otherwise")
        if self.snakes * 9 > self.width * self.height:
            raise ValueError("game board is too small for that many snakes (needs 9 cells per snake)")
        return self


class ModelSpec(ApiModel):
    """The policy/value network: its family and size."""

    architecture: Architecture = Field(
        default=Architecture.RESNET, description="Network family: resnet (conv tower) or mlp."
    )
    blocks: int = Field(
        default=6, ge=1, le=40, description="Residual blocks (resnet) or hidden layers (mlp)."
    )
    channels: int = Field(
        default=64, ge=4, le=512, description="Filters per convolution (resnet) or units per layer (mlp)."
    )
    value_hidden: int = Field(
        default=64, ge=1, le=1024, description="Hidden units of the value head."
    )


class SprtSpec(ApiModel):
    """Sequential probability ratio test on Elo (fishtest/Leela Zero style)."""

    model_config = ConfigDict(
        json_schema_extra={
            CEL_KEY: [cel("self.elo0 < self.elo1", "sprt.elo0 must be below sprt.elo1", ".elo1")]
        }
    )

    elo0: float = Field(default=0.0, ge=-1000, le=1000, description="Elo of the null hypothesis H0.")
    elo1: float = Field(default=35.0, ge=-1000, le=1000, description="Elo of the alternative H1.")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="False-promotion rate.")
    beta: float = Field(default=0.05, gt=0, lt=0.5, description="False-rejection rate.")

    @model_validator(mode="after")
    def _rules(self) -> SprtSpec:
        """Mirror of the CEL rule."""
        if self.elo0 >= self.elo1:
            raise ValueError("sprt.elo0 must be below sprt.elo1")
        return self


class PromotionSpec(ApiModel):
    """How a candidate must beat the champion to replace it (the gate)."""

    model_config = ConfigDict(
        json_schema_extra={
            CEL_KEY: [
                cel("self.minGames <= self.games", "promotion.minGames must not exceed promotion.games", ".minGames"),
                cel("self.games % 2 == 0", "promotion.games must be even: games are played in seat-swapped pairs", ".games"),
            ]
        }
    )

    games: int = Field(
        default=400, ge=2, le=100000, description="Most gate games (seat-swapped pairs, so even)."
    )
    min_games: int = Field(
        default=100, ge=2, le=100000, description="Games before the SPRT may stop early."
    )
    sprt: SprtSpec = section(SprtSpec, "Early-stopping test; the gate stops once it decides.")
    min_win_rate: float = Field(
        default=0.55, ge=0, le=1, description="Score (wins + draws/2 per game) a candidate needs."
    )

    @model_validator(mode="after")
    def _rules(self) -> PromotionSpec:
        """Mirror of the CEL rules."""
        if self.min_games > self.games:
            raise ValueError("promotion.minGames must not exceed promotion.games")
        if self.games % 2:
            raise ValueError("promotion.games must be even: games are played in seat-swapped pairs")
        return self


class GateStatistics(StatusModel):
    """What a gate (candidate vs champion) measured."""

    games: int = Field(default=0, ge=0, description="Games played.")
    wins: int = Field(default=0, ge=0, description="Candidate wins.")
    losses: int = Field(default=0, ge=0, description="Candidate losses.")
    draws: int = Field(default=0, ge=0, description="Draws.")
    win_rate: float | None = Field(default=None, ge=0, le=1, description="Score per game.")
    win_rate_lower: float | None = Field(default=None, ge=0, le=1, description="Wilson 95% lower bound.")
    elo: float | None = Field(default=None, description="Elo difference estimate.")
    llr: float | None = Field(default=None, description="SPRT log-likelihood ratio.")
