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

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ouroboros.contract.game import GameSpec
from ouroboros.contract.promotion import GateSource, GateStatistics, PromotionSpec
from ouroboros.contract.schema import (
    API_VERSION,
    CEL_KEY,
    DNS_LABEL,
    SHA256,
    ApiModel,
    Artifact,
    StatusModel,
    cel,
    section,
)
from ouroboros.contract.vocabulary import (
    EXPERT_ITERATION_PHASES,
    HEURISTIC_PHASES,
    TEACHER_PHASES,
    ApprovalMode,
    Architecture,
    BootstrapPositions,
    BootstrapTeacher,
    PhaseName,
)

DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]{1,2})?)$"
"""What a run's ``device`` may say: ``auto`` (CUDA when the trainer sees a GPU, else the CPU),
``cpu``, ``cuda`` (the process's GPU: ``cuda:LOCAL_RANK`` in a learner group) or ``cuda:N``."""

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


class ExpertIterationSpec(ApiModel):
    """Training from search (expert iteration): the neural search's root statistics become targets.

    A share of the learner's moves in self-play is decided by the neural search
    (``agents/nsearch.py``, decoupled PUCT MCTS guided by the network being
    trained); for those positions the search's visit distribution is the policy
    target and its root value joins the game's outcome as the value target, as
    AlphaZero (Silver et al. 2018), Expert Iteration (Anthony, Tian and Barber
    2017) and KataGo (Wu 2019) train. The other moves are the network's own
    samples and train by PPO, so ``fraction`` runs from plain PPO (near 0) to
    AlphaZero-style training (1); searching only a share of the moves is
    KataGo's *playout cap randomisation*.
    """

    model_config = ConfigDict(frozen=True)

    fraction: float = Field(
        default=0.25, gt=0, le=1,
        description="Share of the learner's moves decided by the search (their visit distribution is the "
        "policy target); the rest are sampled from the network and train by PPO.",
    )
    visits: int = Field(
        default=32, ge=2, le=4096,
        description="Simulations per searched move (a cap, no time limit: the same games on any machine).",
    )
    value_weight: float = Field(
        default=0.5, ge=0, le=1,
        description="Value target of a searched position: this share of the search's root value, the rest "
        "the game's outcome (0: the outcome alone, as AlphaZero).",
    )
    c_puct: float = Field(default=1.5, gt=0, le=20, description="PUCT exploration constant of the search.")
    temperature: float = Field(
        default=1.0, ge=0, le=10,
        description="A searched move is drawn from visits^(1/temperature); 0 plays the most-visited move.",
    )


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
                    "!has(self.expertIteration) || self.name in ['self_play', 'continuous']",
                    "expertIteration applies only to the self_play and continuous phases",
                    ".expertIteration",
                ),
                cel(
                    "(!has(self.teacher) && !has(self.teacherMoveMs)) || self.name in ['bootstrap', 'distill']",
                    "teacher and teacherMoveMs apply only to the bootstrap and distill phases",
                    ".teacher",
                ),
                cel(
                    "!has(self.teacherMoveMs) || (has(self.teacher) ? self.teacher == 'search' : self.name == 'distill')",
                    "teacherMoveMs needs teacher: search (the heuristic has no per-move budget)",
                    ".teacherMoveMs",
                ),
                cel(
                    "!has(self.teacherValueWeight) || (has(self.teacher) ? self.teacher == 'search' "
                    ": self.name == 'distill')",
                    "teacherValueWeight needs teacher: search (the heuristic does not score positions)",
                    ".teacherValueWeight",
                ),
                cel(
                    "!has(self.positions) || self.name == 'bootstrap'",
                    "positions applies only to the bootstrap phase (distill always labels the student's games)",
                    ".positions",
                ),
                cel(
                    "!has(self.studentVisits) || self.name in ['bootstrap', 'distill']",
                    "studentVisits applies only to the bootstrap and distill phases",
                    ".studentVisits",
                ),
                cel(
                    "!has(self.teacherPolicyWeight) || self.name in ['bootstrap', 'distill']",
                    "teacherPolicyWeight applies only to the bootstrap and distill phases",
                    ".teacherPolicyWeight",
                ),
                cel(
                    "!has(self.studentVisits) || self.name == 'distill' || "
                    "(has(self.positions) && self.positions == 'student')",
                    "studentVisits needs positions: student (the teacher's own games have no student)",
                    ".studentVisits",
                ),
                cel(
                    "!has(self.leafGames) || self.name == 'bootstrap'",
                    "leafGames applies only to the bootstrap phase",
                    ".leafGames",
                ),
                cel(
                    "self.name != 'evaluate' || (!has(self.epochs) && !has(self.learningRate) && !has(self.batchSize))",
                    "an evaluate phase does not train: leave epochs, learningRate and batchSize unset",
                    ".name",
                ),
            ]
        },
    )

    name: PhaseName = Field(description="Which phase: bootstrap, hybrid, self_play, distill, continuous or evaluate.")
    games: int = Field(
        default=1000,
        ge=1,
        le=10_000_000,
        description="Games per iteration (training phases; bootstrap, distill: in total); evaluate: unused (the "
        "gate's games, baselines' included, come from spec.promotion).",
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
    expert_iteration: ExpertIterationSpec | None = Field(
        default=None,
        description="Train from search (self_play, continuous): the neural search decides a share of the "
        "learner's moves and its visit counts and values become the targets; unset: plain PPO.",
    )
    teacher: BootstrapTeacher | None = Field(
        default=None,
        description="Bootstrap, distill: whose moves the network imitates: heuristic (bootstrap's default, "
        "batched) or search (distill's default: the compiled alpha-beta search player, one game at a time, "
        "teacherMoveMs per move).",
    )
    teacher_move_ms: int | None = Field(
        default=None, ge=1, le=10_000,
        description="Bootstrap, distill with teacher search: the search's budget per move in milliseconds "
        "(default: bootstrap 20, distill 10).",
    )
    teacher_value_weight: float | None = Field(
        default=None, ge=0, le=1,
        description="Bootstrap, distill with teacher search: the value target of a searched position is this share of "
        "the search's value of it (its score's lead over the best rival, squashed to [-1, 1]), the rest the "
        "game's outcome; 0: the outcome alone. Unset: 0.5.",
    )

    positions: BootstrapPositions | None = Field(
        default=None,
        description="Bootstrap: whose games give the positions the teacher labels: teacher (its own games, 10% "
        "of its moves random; the default) or student (the run's initialModel inside the neural search, "
        "studentVisits descents a move, against the teacher, which labels every seat's positions with its "
        "move and, teacher search, its value: DAgger). student needs spec.initialModel. A distill phase always "
        "plays the student (the previous phase's network).",
    )
    student_visits: int | None = Field(
        default=None, ge=1, le=4096,
        description="Bootstrap with positions student, distill: the neural search's descents per student move (a cap, "
        "no clock: the same games on any machine). Unset: 48.",
    )
    teacher_policy_weight: float | None = Field(
        default=None, ge=0, le=1,
        description="Bootstrap, distill: the policy target is this share of the teacher's move, the rest the "
        "starting network's own policy, which holds the policy near where it started (a KL term) while the "
        "value learns the teacher's verdicts; 0: the value alone is taught. Unset: bootstrap 1, distill 0.",
    )
    leaf_games: int | None = Field(
        default=None, ge=1, le=100_000,
        description="Bootstrap: also play this many games of the compiled search against itself (10 ms a move, the "
        "run's game; stored as they are played) and fit the search's leaf net to their outcomes, kept if it predicts "
        "held-out games better than the search's count; every later model of the run carries it in its ONNX "
        "metadata (leaf_net) and champion+nsearch adds it to the alpha-beta's leaf scores where it hands moves off "
        "(endgameShare). 1,000 11x11 duels: served with every move handed off, against the search at 50 ms over 200 "
        "duels, three such nets scored 58.25% [51.3%, 64.9%] (a benchmark's), 46.75% [40.0%, 53.7%] and 63.75% "
        "[56.9%, 70.1%] (the medium preset's, seeds 11 and 12): the result varies with the games; about 43 "
        "minutes on 2 cores, and the positions take 1.6 GB of memory, twice that while they are joined. Unset: "
        "no leaf net.",
    )

    @model_validator(mode="after")
    def _rules(self) -> PhaseSpec:
        """Mirror of the CEL rules."""
        if self.heuristic_ratio is not None and self.name not in HEURISTIC_PHASES:
            raise ValueError("heuristicRatio applies only to the bootstrap and hybrid phases")
        if self.expert_iteration is not None and self.name not in EXPERT_ITERATION_PHASES:
            raise ValueError("expertIteration applies only to the self_play and continuous phases")
        if (self.teacher is not None or self.teacher_move_ms is not None) and self.name not in TEACHER_PHASES:
            raise ValueError("teacher and teacherMoveMs apply only to the bootstrap and distill phases")
        searching = self.teacher is BootstrapTeacher.SEARCH or (self.teacher is None and self.name == PhaseName.DISTILL)
        if self.teacher_move_ms is not None and not searching:
            raise ValueError("teacherMoveMs needs teacher: search (the heuristic has no per-move budget)")
        if self.teacher_value_weight is not None and not searching:
            raise ValueError("teacherValueWeight needs teacher: search (the heuristic does not score positions)")
        if self.positions is not None and self.name != PhaseName.BOOTSTRAP:
            raise ValueError("positions applies only to the bootstrap phase (distill always labels the student's games)")
        for field, given in (("studentVisits", self.student_visits), ("teacherPolicyWeight", self.teacher_policy_weight)):
            if given is not None and self.name not in TEACHER_PHASES:
                raise ValueError(f"{field} applies only to the bootstrap and distill phases")
        if (self.student_visits is not None and self.name != PhaseName.DISTILL
                and self.positions is not BootstrapPositions.STUDENT):
            raise ValueError("studentVisits needs positions: student (the teacher's own games have no student)")
        if self.leaf_games is not None and self.name != PhaseName.BOOTSTRAP:
            raise ValueError("leafGames applies only to the bootstrap phase")
        if self.name == PhaseName.EVALUATE and (
            self.epochs is not None or self.learning_rate is not None or self.batch_size is not None
        ):
            raise ValueError(
                "an evaluate phase does not train: leave epochs, learningRate and batchSize unset"
            )
        return self


class LearnerSpec(ApiModel):
    """How each training phase's learner runs: one pod, or a PyTorch DDP group of pods.

    With ``replicas`` > 1 a training phase's Job is an Indexed Job of that many pods (plus a
    headless Service that names them), each one rank started by torchrun with a c10d rendezvous
    hosted by the pod of index 0, gloo on CPUs and NCCL on GPUs, as Kubeflow's PyTorchJob and
    JobSet run it. Every rank trains on its slice of the same global batch (``batchSize``), so
    the result equals one learner's; rank 0 alone writes checkpoints and models. A failed pod
    fails the Job, and the phase is retried as a whole group (``backoffLimit``), resuming from
    rank 0's last checkpoint.
    """

    model_config = ConfigDict(frozen=True)

    replicas: int = Field(
        default=1, ge=1, le=64,
        description="Pods of each training phase's learner (a DDP group when above 1); the evaluate "
        "phase runs one pod. Generation (the teacher's or the rollouts' games) runs on rank 0.",
    )

class InitialModelSpec(ApiModel):
    """The network a run starts from instead of a freshly initialised one: exactly one source.

    The first phase that would build a fresh network (bootstrap; or any phase
    with no earlier phase of the run to start from) loads it instead; the
    continuous phase takes it in place of the champion. Its architecture must
    be the run's ``model`` and its board the run's ``game``, or the phase fails
    naming what differs.
    """

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel(
                    "(has(self.registryVersion) ? 1 : 0) + (has(self.onnx) ? 1 : 0) + (has(self.checkpoint) ? 1 : 0)"
                    " == 1",
                    "initialModel: set exactly one of registryVersion, onnx and checkpoint",
                ),
                cel(
                    "!has(self.sha256) || !has(self.registryVersion)",
                    "initialModel.sha256 checks an onnx or checkpoint file; a registry version carries its own",
                    ".sha256",
                ),
            ]
        },
    )

    registry_version: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$",
        description="A model version of the registry in the run's store (its training weights when the "
        "version names them, else its ONNX file).",
    )
    onnx: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="An ONNX file with the project's contract (inputs 'board', outputs 'policy' and 'value'), "
        "as exported by ouro export or a phase: a key in the run's store or a URL (file://, s3:// ...). "
        "Its weights are loaded into the run's architecture and checked to give the same outputs.",
    )
    checkpoint: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="Network weights (a phase's models/PHASE.pt, a league snapshot) or a training "
        "checkpoint (checkpoints/PHASE/step-N.pt): a key in the run's store or a URL.",
    )
    sha256: str | None = Field(
        default=None, pattern=SHA256, description="Expected sha256 of the onnx or checkpoint file (checked).",
    )

    @model_validator(mode="after")
    def _rules(self) -> InitialModelSpec:
        """Mirror of the CEL rules."""
        if sum(x is not None for x in (self.registry_version, self.onnx, self.checkpoint)) != 1:
            raise ValueError("initialModel: set exactly one of registryVersion, onnx and checkpoint")
        if self.sha256 is not None and self.registry_version is not None:
            raise ValueError(
                "initialModel.sha256 checks an onnx or checkpoint file; a registry version carries its own")
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
    initial_model: InitialModelSpec | None = Field(
        default=None, description="Start from this network instead of a fresh one (unset: from scratch)."
    )
    promotion: PromotionSpec = section(PromotionSpec, "The gate (resolved: the run's or its Champion's).")
    promotion_source: GateSource = Field(
        default=GateSource.TRAINING_RUN,
        description="Where promotion came from: the run's spec.promotion, or its Champion's spec.policy.gate "
        "when the run left spec.promotion unset.",
    )
    storage: StorageSpec = Field(description="Artifact store.")
    self_play_workers: int = Field(default=1, ge=1, description="Parallel self-play pods.")
    device: str = Field(
        default="auto", pattern=DEVICE_PATTERN,
        description="Where the phases train and play: auto (a GPU when the trainer sees one, else the CPU), "
        "cpu, cuda (fails when no GPU is visible) or cuda:N. The operator writes cuda when spec.resources.gpu "
        "is above 0 and cpu otherwise, so a pod never silently trains on the other kind.")
    approval: ApprovalMode = Field(
        default=ApprovalMode.AUTOMATIC,
        description="The Champion's spec.policy.approval when the run started: Automatic promotes on the "
        "gate's PROMOTE; Manual leaves the champion alone and reports the candidate as awaiting approval.",
    )

    @field_validator("device", mode="before")
    @classmethod
    def _device_words(cls, value: object) -> object:
        """The refusal in the device's words, not the pattern's regex (``ouro train --device`` says the same)."""
        if isinstance(value, str) and not re.match(DEVICE_PATTERN, value):
            raise ValueError(f"{value!r} is not auto, cpu, cuda or cuda:N")
        return value

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
