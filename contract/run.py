"""The run config the operator writes and the phase result it reads back.

The operator writes a :class:`RunConfig` (the parts of a TrainingRun's spec
that the trainer needs, plus the run's identity) to a ConfigMap mounted as
``/etc/ouroboros/run.json``; ``ouro phase NAME`` reads it, runs the phase and
writes a :class:`PhaseResult` as JSON to its termination log, where the
operator reads it back from the pod's status. Kubernetes caps a termination
message at 4096 bytes (:data:`RESULT_MAX_BYTES`), so a result names artifacts
by URI and hash and never carries data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from ouroboros.contract.game import GameSpec
from ouroboros.contract.promotion import GateStatistics, PromotionSpec
from ouroboros.contract.schema import (
    API_VERSION,
    CEL_KEY,
    DNS_LABEL,
    ApiModel,
    Artifact,
    StatusModel,
    cel,
    section,
)
from ouroboros.contract.vocabulary import HEURISTIC_PHASES, ApprovalMode, Architecture, PhaseName

RUN_CONFIG_KEY = "run.json"
"""The ConfigMap key (and file name) of the run config."""
RESULT_MAX_BYTES = 4096
"""Kubernetes' limit on a container's termination message."""

STORE_FILESYSTEM_OPTIONS: dict[str, bool] = {"use_listings_cache": False}
"""fsspec options that every reader and writer of an artifact store opens it with.

Other processes (each phase's pods, the operator, registry Jobs) write the
same store, so a listing cached by this process goes stale: with s3fs's
default listings cache, a process that once listed a folder neither lists nor
``exists()`` a key written there later by another process (found against a
real S3 server, tests/integration/test_object_store.py). Every listing and
existence check therefore asks the store itself.
"""


class ModelSpec(ApiModel):
    """The policy/value network: its family and size (``learning.networks.NetworkConfig``)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "self.architecture != 'cnn_attention_residual' || self.channels % self.heads == 0",
                    "model.channels must be a multiple of model.heads",
                    ".heads",
                ),
                cel(
                    "self.architecture != 'cnn_attention_residual' || self.attentionLayers <= self.blocks",
                    "model.attentionLayers must not exceed model.blocks",
                    ".attentionLayers",
                ),
            ]
        },
    )

    architecture: Architecture = Field(
        default=Architecture.CNN_ATTENTION_RESIDUAL,
        description="Network family: cnn_attention_residual (residual convolutions with board self-attention) "
        "or cnn_simple (a plain convolutional tower, faster on CPUs).",
    )
    blocks: int = Field(
        default=6, ge=1, le=64, description="Residual blocks (cnn_attention_residual) or convolution layers (cnn_simple)."
    )
    channels: int = Field(default=32, ge=4, le=512, description="Feature channels of the trunk.")
    heads: int = Field(default=4, ge=1, le=32, description="Attention heads (cnn_attention_residual); must divide channels.")
    attention_layers: int = Field(
        default=1, ge=0, le=16, description="Attention layers among the residual blocks (cnn_attention_residual)."
    )
    value_hidden: int = Field(default=64, ge=1, le=1024, description="Hidden units of the value head.")

    @model_validator(mode="after")
    def _rules(self) -> ModelSpec:
        """Mirror of the CEL rules."""
        if self.architecture is Architecture.CNN_ATTENTION_RESIDUAL:
            if self.channels % self.heads:
                raise ValueError("model.channels must be a multiple of model.heads")
            if self.attention_layers > self.blocks:
                raise ValueError("model.attentionLayers must not exceed model.blocks")
        return self


class PhaseSpec(ApiModel):
    """One phase of a run and its own budget; unset knobs take the phase's defaults."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "!has(self.heuristicRatio) || self.name in ['bootstrap', 'hybrid']",
                    "heuristicRatio applies only to the bootstrap and hybrid phases",
                    ".heuristicRatio",
                ),
                cel(
                    "self.name != 'evaluate' || (!has(self.epochs) && !has(self.learningRate) && !has(self.batchSize))",
                    "an evaluate phase does not train: leave epochs, learningRate and batchSize unset",
                    ".name",
                ),
            ]
        },
    )

    name: PhaseName = Field(description="Which phase: bootstrap, hybrid, self_play, continuous or evaluate.")
    games: int = Field(
        default=1000,
        ge=1,
        le=10_000_000,
        description="Games per iteration (training phases; bootstrap: in total); evaluate: the gate's "
        "games come from spec.promotion and this many are played against each baseline.",
    )
    epochs: int | None = Field(
        default=None, ge=1, le=10_000, description="Passes over the new data per iteration; unset: the phase's default."
    )
    learning_rate: float | None = Field(
        default=None, gt=0, le=1, description="Adam step size; unset: the phase's default."
    )
    batch_size: int | None = Field(
        default=None, ge=1, le=65536, description="Positions per optimizer step; unset: the phase's default."
    )
    heuristic_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Fraction of games whose opponents are the heuristic teacher (bootstrap, hybrid).",
    )
    replay_window: int | None = Field(
        default=None, ge=1, le=100_000_000, description="Newest positions that imitation samples from."
    )
    iterations: int = Field(
        default=1, ge=1, le=10_000, description="Generate-then-train rounds within the phase."
    )
    temperature: float = Field(
        default=1.0, ge=0, le=10, description="Move-sampling temperature during self-play; 0 = greedy."
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Wall-clock limit of one attempt of this phase; overrides spec.activeDeadlineSeconds.",
    )

    @model_validator(mode="after")
    def _rules(self) -> PhaseSpec:
        """Mirror of the CEL rules."""
        if self.heuristic_ratio is not None and self.name not in HEURISTIC_PHASES:
            raise ValueError("heuristicRatio applies only to the bootstrap and hybrid phases")
        if self.name == PhaseName.EVALUATE and (
            self.epochs is not None or self.learning_rate is not None or self.batch_size is not None
        ):
            raise ValueError(
                "an evaluate phase does not train: leave epochs, learningRate and batchSize unset"
            )
        return self


class StorageSpec(ApiModel):
    """Where phases read and write artifacts (replay shards, checkpoints, ONNX, the model registry).

    Each phase is its own pod, on any node, so the store must be shared: an object
    store URL (s3://, gs://, ...), or a file:// URL under ``mountPath`` where a
    PersistentVolumeClaim (ReadWriteMany on a multi-node cluster) is mounted in
    every phase: ``persistentVolumeClaim``, else the operator's default claim
    (``ouroboros-artifacts``). A file:// URL anywhere else would be a private
    disk per pod, and is refused.
    """

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "!self.url.startsWith('file://') || self.url.startsWith('file://' + self.mountPath)",
                    "storage.url: a file:// store must lie under storage.mountPath, where the PersistentVolumeClaim "
                    "that every phase shares is mounted (or use an object store URL such as s3://bucket/prefix)",
                    ".url",
                ),
                cel(
                    "!has(self.persistentVolumeClaim) || self.url.startsWith('file://')",
                    "storage.persistentVolumeClaim is mounted only for a file:// storage.url",
                    ".persistentVolumeClaim",
                ),
            ]
        },
    )

    url: str = Field(
        default="file:///var/lib/ouroboros/artifacts",
        max_length=1024,
        pattern=r"^[a-z][a-z0-9+.-]*://.+$",
        description="fsspec URL of the artifact store, e.g. s3://bucket/prefix or file:///data.",
    )
    persistent_volume_claim: str | None = Field(
        default=None, max_length=253, pattern=DNS_LABEL,
        description="PersistentVolumeClaim mounted at mountPath in every phase (file:// stores); unset: "
        "the operator's default claim, ouroboros-artifacts.",
    )
    mount_path: str = Field(
        default="/var/lib/ouroboros/artifacts",
        max_length=512,
        pattern=r"^/.*$",
        description="Where the PVC is mounted in the pod.",
    )
    secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_LABEL,
        description="Secret whose keys become environment variables of every phase pod and registry Job "
        "(envFrom): for s3:// the standard AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION and, "
        "for an S3-compatible server, AWS_ENDPOINT_URL.",
    )

    @model_validator(mode="after")
    def _rules(self) -> StorageSpec:
        """Mirror of the CEL rules."""
        if self.url.startswith("file://") and not self.url.startswith("file://" + self.mount_path):
            raise ValueError(
                "storage.url: a file:// store must lie under storage.mountPath, where the PersistentVolumeClaim "
                "that every phase shares is mounted (or use an object store URL such as s3://bucket/prefix)")
        if self.persistent_volume_claim and not self.url.startswith("file://"):
            raise ValueError("storage.persistentVolumeClaim is mounted only for a file:// storage.url")
        return self

    @property
    def shared_by_volume(self) -> bool:
        """True when the store is a file:// path on the shared volume (not an object store)."""
        return self.url.startswith("file://")


class RunIdentity(ApiModel):
    """Which TrainingRun the config belongs to."""

    name: str = Field(description="TrainingRun name.")
    namespace: str = Field(description="TrainingRun namespace.")
    uid: str = Field(default="", description="TrainingRun UID (empty when run locally).")
    generation: int = Field(default=1, ge=0, description="metadata.generation the config was written from.")


class RunConfig(ApiModel):
    """Everything a phase needs to know about its run (the run.json file)."""

    api_version: Literal["ouroboros.dev/v1alpha1"] = Field(default=API_VERSION, description="Format version.")
    kind: Literal["RunConfig"] = Field(default="RunConfig", description="Always RunConfig.")
    run: RunIdentity = Field(description="The run.")
    champion: str = Field(description="Champion the run challenges.")
    game: GameSpec = Field(description="The game.")
    model: ModelSpec = Field(description="The network.")
    phases: list[PhaseSpec] = Field(min_length=1, description="All phases of the run, in order.")
    promotion: PromotionSpec = section(PromotionSpec, "The gate.")
    storage: StorageSpec = Field(description="Artifact store.")
    self_play_workers: int = Field(default=1, ge=1, description="Parallel self-play pods.")
    approval: ApprovalMode = Field(
        default=ApprovalMode.AUTOMATIC,
        description="The Champion's spec.policy.approval when the run started: Automatic promotes on the "
        "gate's PROMOTE; Manual leaves the champion alone and reports the candidate as awaiting approval.",
    )

    def phase(self, name: PhaseName | str) -> PhaseSpec:
        """The spec of the named phase; KeyError if the run has no such phase."""
        for phase in self.phases:
            if phase.name == PhaseName(name):
                return phase
        raise KeyError(f"run {self.run.name!r} has no phase {PhaseName(name).value!r}")


class CandidateResult(StatusModel):
    """The model a phase offers as the run's candidate."""

    artifact: Artifact = Field(description="The model file.")


class PhaseResult(StatusModel):
    """What a phase reports back, as JSON in its termination message (at most RESULT_MAX_BYTES)."""

    phase: PhaseName = Field(description="The phase that ran.")
    placeholder: bool = Field(
        default=False, description="True if nothing was trained or measured (the config was only checked)."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Numbers to record, named by contract.vocabulary.Metric (e.g. winRate)."
    )
    artifacts: list[Artifact] = Field(default_factory=list, description="Files written, with sha256.")
    candidate: CandidateResult | None = Field(default=None, description="Model offered for gating.")
    gate: GateStatistics | None = Field(default=None, description="Gate statistics (evaluate phase).")
    message: str | None = Field(default=None, max_length=1024, description="One line for humans.")
