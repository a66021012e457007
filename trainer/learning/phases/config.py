"""Typed settings of a training run and of each phase.

Each phase reads its own :class:`PhaseSettings` section and the run-wide
:class:`RunSettings` (game, network, store, seed); nothing reads a root config.
Two sources build them: the operator's ``RunConfig`` (``ouro phase``, see
:func:`from_run_config`) and the presets of ``ouro train``. Fields the
TrainingRun spec leaves unset take the phase's defaults here
(:data:`PHASE_DEFAULTS`), so a one-line spec still trains sensibly.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ouroboros.trainer.engine.types import GameConfig, GameMap, Ruleset, RulesetSettings
from ouroboros.trainer.learning import networks


class PhaseKind(StrEnum):
    """The training phases (the operator's PhaseName minus ``evaluate``)."""

    BOOTSTRAP = "bootstrap"
    HYBRID = "hybrid"
    SELF_PLAY = "self_play"
    CONTINUOUS = "continuous"


class GameSettings(BaseModel):
    """The game trained on (mirrors the operator's GameSpec)."""

    model_config = ConfigDict(frozen=True)

    ruleset: str = Field("standard", description="Ruleset name.")
    map: str = Field("standard", description="Map name.")
    width: int = Field(11, ge=3, le=25, description="Board width.")
    height: int = Field(11, ge=3, le=25, description="Board height.")
    snakes: int = Field(2, ge=1, le=8, description="Snakes per game.")
    max_turns: int = Field(500, ge=1, description="Turns after which a game is a draw.")

    def engine(self) -> GameConfig:
        """The engine's GameConfig."""
        return GameConfig(width=self.width, height=self.height, n_snakes=self.snakes,
                          ruleset=Ruleset(self.ruleset), game_map=GameMap(self.map),
                          settings=RulesetSettings())

    @property
    def key(self) -> str:
        """The registry's game key, e.g. ``standard-11x11-2p``."""
        return f"{self.ruleset}-{self.width}x{self.height}-{self.snakes}p"


class PhaseSettings(BaseModel):
    """One phase's budget and algorithm knobs."""

    model_config = ConfigDict(frozen=True)

    kind: PhaseKind = Field(description="Which phase.")
    games: int = Field(description="Games generated per iteration (bootstrap: in total).")
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
        "heuristic", description="Bootstrap: the player whose moves are imitated, as a player spec "
        "(`heuristic`, the batched default; `search:ms=20` imitates the search player, one game at a time).")
    imitate_phases: tuple[str, ...] = Field(
        (), description="Bootstrap: other replay folders of this run whose games join the imitation "
        "window, e.g. ('imported',) after `ouro data import --run RUN`; with games=0 only they are imitated.")


PHASE_DEFAULTS: dict[PhaseKind, dict] = {
    PhaseKind.BOOTSTRAP: dict(epochs=2.0, learning_rate=2e-3, batch_size=256),
    PhaseKind.HYBRID: dict(epochs=2.0, learning_rate=3e-4, batch_size=256, heuristic_ratio=0.5),
    PhaseKind.SELF_PLAY: dict(epochs=2.0, learning_rate=3e-4, batch_size=256, league_ratio=0.3),
    PhaseKind.CONTINUOUS: dict(epochs=2.0, learning_rate=1e-4, batch_size=256, league_ratio=0.3),
}


class RunSettings(BaseModel):
    """What every phase of one run shares."""

    model_config = ConfigDict(frozen=True)

    run: str = Field(description="Run id: prefix of its artifacts (runs/<run>/...).")
    store: str = Field(description="Artifact store URL (registry and replay live there too).")
    game: GameSettings = Field(default_factory=GameSettings, description="The game.")
    network: networks.NetworkConfig = Field(default_factory=networks.NetworkConfig, description="The network.")
    seed: int = Field(0, description="Root seed: games, sampling and minibatches derive from it.")
    worker: int = Field(0, ge=0, description="This process's index among the self-play workers.")
    workers: int = Field(1, ge=1, description="Self-play workers; only worker 0 trains.")
    threads: int = Field(
        1, ge=0, description="torch intra-op threads (0: torch's default). 1 by default: on a shared "
        "CPU, OpenMP threads that wait for a busy core made a training step 5-50x slower.")


def phase_settings(kind: PhaseKind, **given) -> PhaseSettings:
    """Settings of ``kind`` with the phase's defaults under whatever is given (None = unset)."""
    values = {**PHASE_DEFAULTS[kind], **{k: v for k, v in given.items() if v is not None}}
    return PhaseSettings(kind=kind, **values)


def run_id(name: str, namespace: str = "") -> str:
    """A store-safe run id from a TrainingRun's namespace and name."""
    text = f"{namespace}.{name}" if namespace and namespace != "default" else name
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")[:63] or "run"


def from_run_config(config, kind: PhaseKind, worker: int = 0) -> tuple[RunSettings, PhaseSettings]:
    """The settings of phase ``kind`` of an operator ``RunConfig`` (``run.json``).

    The spec's ``resnet`` is the attention-residual network and ``mlp`` the
    conv-only ``cnn_simple`` (the trainer has no plain MLP: a board needs convolutions).
    """
    spec = config.phase(kind.value)
    model = config.model
    simple = model.architecture.value == "mlp"
    heads = next(h for h in (4, 2, 1) if model.channels % h == 0)
    network = networks.NetworkConfig(
        architecture="cnn_simple" if simple else "cnn_attention_residual",
        blocks=model.blocks, channels=model.channels, heads=heads,
        attention_layers=0 if simple else 1, value_hidden=model.value_hidden)
    g = config.game
    game = GameSettings(ruleset=g.ruleset.value, map=g.map, width=g.width, height=g.height,
                        snakes=g.snakes, max_turns=g.max_turns or 500)
    run = RunSettings(run=run_id(config.run.name, config.run.namespace), store=config.storage.url,
                      game=game, network=network, seed=_seed(config.run.uid or config.run.name),
                      worker=worker, workers=config.self_play_workers if kind is PhaseKind.SELF_PLAY else 1)
    phase = phase_settings(
        kind, games=spec.games, iterations=spec.iterations, epochs=spec.epochs,
        learning_rate=spec.learning_rate, batch_size=spec.batch_size,
        heuristic_ratio=spec.heuristic_ratio, temperature=spec.temperature,
        replay_window=spec.replay_window, parallel_games=min(256, spec.games))
    return run, phase


def _seed(text: str) -> int:
    """A stable 31-bit seed from text (Python's hash() is salted per process)."""
    value = 0
    for ch in text.encode():
        value = (value * 131 + ch) % 2_147_483_647
    return value
