"""Building blocks of the operator's custom resources that the trainer never reads.

What the operator and the trainer share (the game, the network, phases, the
gate, the run config, the model bases and CEL helpers) is the contract,
`ouroboros.contract`; this module adds the Kubernetes-only pieces: conditions
in the metav1.Condition shape and resource quantities. Only pydantic is
imported here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from ouroboros.contract.schema import StatusModel


class ConditionStatus(StrEnum):
    """metav1.ConditionStatus."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


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
