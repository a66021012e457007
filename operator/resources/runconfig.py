"""The contract between the operator and a phase's pod.

The operator writes a `RunConfig` (the parts of a TrainingRun's spec that the
trainer needs, plus the run's identity) to a ConfigMap mounted as
`/etc/ouroboros/run.json`; `ouro phase NAME` reads it, runs the phase and
writes a `PhaseResult` as JSON to its termination log, where the operator
reads it back from the pod's status. Kubernetes caps a termination message at
4096 bytes, so a result names artifacts by URI and hash and never carries data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ouroboros.operator.resources.common import (
    API_VERSION,
    ApiModel,
    Artifact,
    GameSpec,
    GateStatistics,
    ModelSpec,
    PhaseName,
    PromotionSpec,
    StatusModel,
)
from ouroboros.operator.resources.trainingrun import PhaseSpec, StorageSpec, TrainingRunSpec

RUN_CONFIG_KEY = "run.json"
RESULT_MAX_BYTES = 4096


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
    promotion: PromotionSpec = Field(description="The gate.")
    storage: StorageSpec = Field(description="Artifact store.")
    self_play_workers: int = Field(default=1, ge=1, description="Parallel self-play pods.")

    @classmethod
    def from_spec(cls, spec: TrainingRunSpec, run: RunIdentity) -> RunConfig:
        """The config of a run, from its validated spec."""
        return cls(
            run=run,
            champion=spec.champion,
            game=spec.game,
            model=spec.model,
            phases=spec.phases,
            promotion=spec.promotion,
            storage=spec.storage,
            self_play_workers=spec.self_play_workers,
        )

    def phase(self, name: PhaseName | str) -> PhaseSpec:
        """The spec of the named phase; KeyError if the run has no such phase."""
        for phase in self.phases:
            if phase.name.value == PhaseName(name).value:
                return phase
        raise KeyError(f"run {self.run.name!r} has no phase {PhaseName(name).value!r}")


class CandidateResult(StatusModel):
    """The model a phase offers as the run's candidate."""

    artifact: Artifact = Field(description="The model file.")


class PhaseResult(StatusModel):
    """What a phase reports back, as JSON in its termination message."""

    phase: PhaseName = Field(description="The phase that ran.")
    placeholder: bool = Field(
        default=False, description="True if no training happened (the config was only checked)."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Numbers to record, e.g. winRate.")
    artifacts: list[Artifact] = Field(default_factory=list, description="Files written, with sha256.")
    candidate: CandidateResult | None = Field(default=None, description="Model offered for gating.")
    gate: GateStatistics | None = Field(default=None, description="Gate statistics (evaluate phase).")
    message: str | None = Field(default=None, max_length=1024, description="One line for humans.")
