"""Typed settings of a training run and of each phase.

Each phase reads its own :class:`PhaseSettings` section and the run-wide
:class:`RunSettings` (game, network, store, seed); nothing reads a root config.
Two sources build them: the operator's ``RunConfig`` (``ouro phase``, see
:func:`from_run_config`) and the presets of ``ouro train``. The game is the
contract's ``GameSpec`` and the phase names the contract's ``PhaseName``: the
operator and the trainer spell them once. Fields the
TrainingRun spec leaves unset take the phase's defaults here
(:data:`PHASE_DEFAULTS`), so a one-line spec still trains sensibly.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ouroboros.contract.game import GameSpec
from ouroboros.contract.progress import store_run_id
from ouroboros.contract.run import (
    DEVICE_PATTERN,
    ExpertIterationSpec,
    InitialModelSpec,
    PhaseSpec,
    RunConfig,
)
from ouroboros.contract.vocabulary import (
    EXPERT_ITERATION_PHASES,
    BootstrapPositions,
    BootstrapTeacher,
    PhaseName,
)
from ouroboros.trainer.learning import networks

DEFAULT_TEACHER_VALUE_WEIGHT = 0.5
"""The search's share of a bootstrap value target when a spec leaves ``teacherValueWeight`` unset: half
verdict, half outcome, as expert iteration's ``value_weight`` (the README's *Value distillation* measured it)."""


DEFAULT_STUDENT_VISITS = 48
"""Descents per move of the student's neural search when a spec leaves ``studentVisits`` unset (about a quarter
of what 100 ms gives a 6x32 network on one core: the student's games take little more than the teacher's)."""


class PhaseSettings(BaseModel):
    """One phase's budget and algorithm knobs."""

    model_config = ConfigDict(frozen=True)

    kind: PhaseName = Field(description="Which training phase (not evaluate).")
    games: int = Field(description="Games generated per iteration (bootstrap, distill: in total).")
    iterations: int = Field(1, ge=1, description="Generate-then-train rounds (RL phases).")
    epochs: float = Field(description="Passes over the new data per round (imitation: over the window).")
    learning_rate: float = Field(description="Adam step size.")
    batch_size: int = Field(description="Positions per optimiser step.")
    heuristic_ratio: float = Field(0.0, ge=0, le=1, description="Games whose opponent is the heuristic teacher.")
    random_ratio: float = Field(
        0.0, ge=0, le=1, description="Games whose opponent plays random-safe: the floor every model must "
        "clear; the teacher itself loses ~11% of duels to it, so imitation alone does not get there.")
    league_ratio: float = Field(0.0, ge=0, le=1, description="Games whose opponent is an earlier snapshot.")
    temperature: float = Field(1.0, ge=0, description="Move-sampling temperature of the learner.")
    parallel_games: int = Field(256, ge=1, description="Games advanced together in one batch.")
    replay_window: int = Field(100_000, ge=1, description="Newest positions imitation samples from.")
    entropy: float = Field(0.01, ge=0, description="PPO entropy bonus (keeps play from collapsing).")
    clip: float = Field(0.2, gt=0, description="PPO ratio clip.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount.")
    lam: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    value_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")
    checkpoint_every: int = Field(50, ge=1, description="Optimiser steps between checkpoints.")
    teacher: str = Field(
        "heuristic", description="Bootstrap, distill: the player whose moves are imitated, as a player spec "
        "(`heuristic`, bootstrap's batched default; `search:ms=20` imitates the search player, one game at a "
        "time; distill's default `search:ms=10`).")
    teacher_value_weight: float = Field(
        DEFAULT_TEACHER_VALUE_WEIGHT, ge=0, le=1, description="Bootstrap: where the teacher scored a position "
        "(the search, `agents.search.values`; the neural search, its root value), the value target is this share of its value, the rest the game's "
        "outcome (`expert.value_target`); 0: the outcome alone. No effect with a teacher that does not score.")
    positions: BootstrapPositions = Field(
        BootstrapPositions.TEACHER, description="Bootstrap: whose games give the positions the teacher labels: "
        "the teacher's own (10% of its moves random), or the run's initial model inside the neural search "
        "against the teacher, every seat labelled by the teacher (DAgger; needs the run's initial_model). "
        "Distill: always student (the previous phase's network).")
    student_visits: int = Field(
        DEFAULT_STUDENT_VISITS, ge=1, le=4096,
        description="Bootstrap with positions student, distill: the neural search's descents per student move "
        "(no clock).")
    teacher_policy_weight: float = Field(
        1.0, ge=0, le=1, description="Bootstrap, distill: the policy target's share of the teacher's move; the rest is the "
        "starting network's own policy (held near the start by a KL term); 0: only the value learns from the teacher.")
    imitate_phases: tuple[str, ...] = Field(
        (), description="Bootstrap: other replay folders of this run whose games join the imitation "
        "window, e.g. ('imported',) after `ouro data import --run RUN`; with games=0 only they are imitated.")
    expert_iteration: ExpertIterationSpec | None = Field(
        None, description="self_play, continuous: train from search (see `.expert`); None: plain PPO.")
    leaf_games: int = Field(
        0, ge=0, description="Bootstrap: duels of the compiled search against itself whose outcomes train the "
        "search's leaf net (`learning.leaf`), which every later model of the run carries; 0: none.")

    @field_validator("kind")
    @classmethod
    def _trains(cls, kind: PhaseName) -> PhaseName:
        if not kind.trains:
            raise ValueError(f"{kind.value} is not a training phase")
        return kind

    @model_validator(mode="after")
    def _expert_phases(self) -> PhaseSettings:
        if self.expert_iteration is not None and self.kind not in EXPERT_ITERATION_PHASES:
            raise ValueError(f"expert_iteration applies only to the self_play and continuous phases, "
                             f"not {self.kind.value}")
        if self.leaf_games and self.kind is not PhaseName.BOOTSTRAP:
            raise ValueError(f"leaf_games applies only to the bootstrap phase, not {self.kind.value}")
        if self.kind is PhaseName.DISTILL and self.positions is not BootstrapPositions.STUDENT:
            raise ValueError("distill labels the student's own games: positions must be student")
        return self


DEFAULT_TEACHER_MOVE_MS = {PhaseName.BOOTSTRAP: 20, PhaseName.DISTILL: 10}
"""The search teacher's budget per move when a spec leaves ``teacherMoveMs`` unset. Distill's 10 ms is the
measured DAgger round's: its 96 games and their training took 12 minutes on 2 shared cores."""


PHASE_DEFAULTS: dict[PhaseName, dict] = {
    PhaseName.BOOTSTRAP: dict(epochs=2.0, learning_rate=2e-3, batch_size=256),
    PhaseName.HYBRID: dict(epochs=2.0, learning_rate=3e-4, batch_size=256, heuristic_ratio=0.5),
    PhaseName.SELF_PLAY: dict(epochs=2.0, learning_rate=3e-4, batch_size=256, league_ratio=0.3),
    # the settings of the DAgger round measured in the README (*DAgger, the product*; 96 games there): the
    # search at 10 ms labelling, the value taught and the policy held (teacher_policy_weight 0)
    PhaseName.DISTILL: dict(epochs=3.0, learning_rate=5e-4, batch_size=256,
                            teacher=f"search:ms={DEFAULT_TEACHER_MOVE_MS[PhaseName.DISTILL]}", positions=BootstrapPositions.STUDENT, teacher_policy_weight=0.0),
    PhaseName.CONTINUOUS: dict(epochs=2.0, learning_rate=1e-4, batch_size=256, league_ratio=0.3),
}


class RunSettings(BaseModel):
    """What every phase of one run shares."""

    model_config = ConfigDict(frozen=True)

    run: str = Field(description="Run id: prefix of its artifacts (runs/<run>/...).")
    store: str = Field(description="Artifact store URL (registry and replay live there too).")
    game: GameSpec = Field(default_factory=GameSpec, description="The game.")
    network: networks.NetworkConfig = Field(default_factory=networks.NetworkConfig, description="The network.")
    seed: int = Field(0, ge=0, le=2**31 - 1,
                      description="Root seed: games, sampling and minibatches derive from it (what the operator "
                      "derives from a run's uid is 31-bit too).")
    worker: int = Field(0, ge=0, description="This process's index among the self-play workers.")
    workers: int = Field(1, ge=1, description="Self-play workers; only worker 0 trains.")
    initial_model: InitialModelSpec | None = Field(
        None, description="The network the run starts from instead of a fresh one (see `runner.start_network`).")
    threads: int = Field(
        1, ge=0, description="torch intra-op threads (0: torch's default). 1 by default: on a shared "
        "CPU, OpenMP threads that wait for a busy core made a training step 5-50x slower.")
    device: str = Field(
        "auto", pattern=DEVICE_PATTERN, description="Where the networks train and play: auto (CUDA when torch "
        "sees a GPU, else the CPU), cpu, cuda or cuda:N (see `learning.device`; in a learner group cuda means "
        "cuda:LOCAL_RANK).")
    mixed_precision: bool | None = Field(
        None, description="bf16 autocast of the learner's and the rollouts' forward passes. None: on for a GPU "
        "that computes bf16, off on the CPU; True forces it (the CPU's autocast too); False keeps fp32.")


def phase_settings(kind: PhaseName, **given) -> PhaseSettings:
    """Settings of ``kind`` with the phase's defaults under whatever is given (None = unset)."""
    values = {**PHASE_DEFAULTS[kind], **{k: v for k, v in given.items() if v is not None}}
    return PhaseSettings(kind=kind, **values)


def run_id(name: str, namespace: str = "", uid: str = "") -> str:
    """A store-safe run id (its folder ``runs/<id>/``): ``contract.progress.store_run_id``, the
    one spelling the operator also uses to read the run's progress records."""
    return store_run_id(name, namespace, uid)


def run_settings(config: RunConfig) -> RunSettings:
    """What every phase of the run in ``config`` shares (id, store, game, network, seed)."""
    return RunSettings(run=run_id(config.run.name, config.run.namespace, config.run.uid), store=config.storage.url,
                       game=config.game, network=networks.NetworkConfig.from_spec(config.model),
                       seed=_seed(config.run.uid or config.run.name), initial_model=config.initial_model,
                       device=config.device)


def from_run_config(config: RunConfig, kind: PhaseName, worker: int = 0) -> tuple[RunSettings, PhaseSettings]:
    """The settings of training phase ``kind`` of an operator ``RunConfig`` (``run.json``)."""
    spec = config.phase(kind)
    workers = config.self_play_workers if kind is PhaseName.SELF_PLAY else 1
    run = run_settings(config).model_copy(update={"worker": worker, "workers": workers})
    phase = phase_settings(
        kind, games=spec.games, iterations=spec.iterations, epochs=spec.epochs,
        learning_rate=spec.learning_rate, batch_size=spec.batch_size,
        heuristic_ratio=spec.heuristic_ratio, temperature=spec.temperature,
        replay_window=spec.replay_window, parallel_games=min(256, spec.games),
        expert_iteration=spec.expert_iteration, teacher=teacher_spec(spec),
        teacher_value_weight=spec.teacher_value_weight, positions=spec.positions,
        student_visits=spec.student_visits, teacher_policy_weight=spec.teacher_policy_weight,
        leaf_games=spec.leaf_games)
    return run, phase


def teacher_spec(spec: PhaseSpec) -> str | None:
    """The player spec of a bootstrap or distill phase's ``teacher`` (None: the phase's default, the heuristic
    for bootstrap, ``search:ms=10`` for distill)."""
    if spec.teacher is None and spec.teacher_move_ms is None:
        return None
    if spec.teacher is BootstrapTeacher.HEURISTIC:
        return "heuristic"
    return f"search:ms={spec.teacher_move_ms or DEFAULT_TEACHER_MOVE_MS[spec.name]}"


def _seed(text: str) -> int:
    """A stable 31-bit seed from text (Python's hash() is salted per process)."""
    value = 0
    for ch in text.encode():
        value = (value * 131 + ch) % 2_147_483_647
    return value
