"""Bases and helpers of every model that travels between the images or to the API server.

A rule a JSON schema cannot express is written twice, side by side: as a CEL
rule for the API server (:func:`cel`, carried under ``x-kubernetes-validations``)
and as a pydantic validator for Python callers. Tests feed the same bad
manifests to both.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "ouroboros.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

CEL_KEY = "x-kubernetes-validations"
"""The JSON-schema keyword under which CEL rules travel from the models to the CRD."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHA256 = r"^[a-f0-9]{64}$"


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict:
    """One CEL validation rule in the CRD's ``x-kubernetes-validations`` shape.

    ``field_path`` (a JSONPath relative to the object the rule sits on) makes the
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
    """Base of status and result models: tolerant of fields written by a newer version."""

    model_config = ConfigDict(extra="ignore")


def section(model: type[BaseModel], description: str) -> Any:
    """A nested, fully defaulted section: the API server fills it in when it is left out.

    The schema default is the whole defaulted object, not ``{}``: the API server
    checks a default against the CEL rules as written, before nested defaulting.
    """
    default = model().model_dump(mode="json", by_alias=True, exclude_none=True)
    return Field(default_factory=model, description=description, json_schema_extra={"default": default})


class Artifact(StatusModel):
    """A file a phase produced, addressed by URI and pinned by its content hash."""

    name: str = Field(description="What the file is, e.g. checkpoint, onnx, replay.", max_length=63)
    uri: str = Field(description="Where it lives (fsspec URL).", max_length=2048)
    sha256: str = Field(description="Hex SHA-256 of the file's bytes.", pattern=SHA256)
    size: int | None = Field(default=None, ge=0, description="Size in bytes.")
