"""One promotion path: judge a candidate against the champion of its game, then put it in force with the evidence.

Every way a model becomes champion goes through this module:

- ``ouro registry promote VERSION --gate`` (and, without ``--gate``, a manual
  promotion that still checks the model loads);
- ``ouro train`` after its phases (a first run becomes champion; a worse second
  run does not replace it, and says why);
- the ``evaluate`` phase of a TrainingRun (``ouro phase evaluate``), with the
  run's ``spec.promotion``.

:func:`policy_from_spec` is the one converter from the contract's
``PromotionSpec`` to the gate's configuration; :func:`judge` plays the gate
(paired, seat-swapped games with an SPRT or a fixed-budget win rate, plus the
candidate's production readiness; the first champion needs readiness only;
then, if it would promote, the non-regression games of candidate and champion
against the spec's fixed baselines on the same seeds), with both sides
playing as ``spec.player`` says (the bare policy, or the neural search at the
served budget), keeps every game as an official-CLI JSONL log when asked, and
returns a :class:`Judgement`; :func:`put_in_force` promotes atomically with the
gate's statistics and reasons in the champion's history, or records a manual
promotion when forced. Sources: Leela Zero's SPRT gate, KataGo's gatekeeper
(fixed-budget win rate), MLflow aliases plus an audit trail.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from pydantic import JsonValue

from ouroboros.contract.game import GameKey, GameSpec
from ouroboros.contract.promotion import (
    BaselineStatistics,
    GateMethod,
    GatePlayer,
    GateStatistics,
    GateVerdict,
    PromotionSpec,
)
from ouroboros.trainer.agents import neural
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.engine.types import GameConfig, game_config
from ouroboros.trainer.evaluation import gate, readiness
from ouroboros.trainer.evaluation import tournament as tm

MANUAL = "manual"
"""``statistics.verdict`` of a promotion forced by hand (no gate passed)."""


class NotPromotedError(reg.RegistryError):
    """The gate did not say PROMOTE; ``judgement`` holds its verdict and reasons."""

    def __init__(self, judgement: Judgement) -> None:
        self.judgement = judgement
        super().__init__(f"{judgement.candidate} not promoted ({judgement.verdict.value}): "
                         + "; ".join(judgement.reasons))


def open_registry(store: str | ArtifactStore) -> reg.Registry:
    """The registry of a store, refusing to put in force any model that does not load and
    honour the ONNX contract (``agents.neural.check_model``), whatever verb asks."""
    store = store if isinstance(store, ArtifactStore) else ArtifactStore(store)
    return reg.Registry(store, validate=neural.check_model)


def policy_from_spec(spec: PromotionSpec) -> gate.GateConfig:
    """The gate configuration of a ``PromotionSpec`` (TrainingRun ``spec.promotion``,
    Champion ``spec.policy.gate``, or the options of ``ouro registry promote --gate``)."""
    if spec.method is GateMethod.WIN_RATE:
        return gate.GateConfig(method=GateMethod.WIN_RATE, max_games=spec.games, min_games=0,
                               win_rate=gate.WinRateConfig(min_win_rate=spec.min_win_rate),
                               readiness=spec.readiness)
    return gate.GateConfig(method=GateMethod.SPRT, sprt=spec.sprt, max_games=spec.games,
                           min_games=min(spec.min_games, spec.games), readiness=spec.readiness)


@dataclasses.dataclass(frozen=True)
class GateRun:
    """How the gate's games and measurements are run (not what they must show)."""

    workers: int = 1
    """Tournament worker processes (results do not depend on it)."""
    latency_calls: int = 1000
    """Timed inference calls per readiness round."""
    readiness_positions: int = 64
    """Real positions the latency probe plays."""
    max_turns: int = 500
    """Turns after which a gate game is a draw."""


@dataclasses.dataclass(frozen=True)
class Judgement:
    """What the gate decided about one candidate, and everything it measured."""

    game: str
    """The game key (``standard-11x11-2p``)."""
    candidate: str
    """Version id of the candidate."""
    champion: str | None
    """Version id of the champion it played (None: there was none)."""
    decision: gate.GateDecision
    """Verdict, reasons, statistics."""
    seed: int
    """Seed of the first pair of games."""
    player: GatePlayer = GatePlayer.POLICY
    """How both sides played."""
    game_logs: tuple[str, ...] = ()
    """URIs of the folders of game logs, one per opponent (champion first, then each baseline)."""

    @property
    def verdict(self) -> GateVerdict:
        return self.decision.verdict

    @property
    def reasons(self) -> list[str]:
        return self.decision.reasons

    def statistics(self) -> dict[str, JsonValue]:
        """The record kept in the champion's history (every figure the gate measured)."""
        return {**self.decision.statistics, "verdict": self.verdict.value, "champion": self.champion,
                "seed": self.seed, "player": self.player.value, "game_logs": list(self.game_logs),
                "reasons": list(self.reasons)}

    def gate_statistics(self) -> GateStatistics:
        """The contract's compact form (TrainingRun status, phase result, Champion history)."""
        s = self.decision.statistics
        first = bool(s.get("first_champion"))
        return GateStatistics(
            verdict=self.verdict, games=int(s.get("games", 0)), wins=int(s.get("wins", 0)),
            losses=int(s.get("losses", 0)), draws=int(s.get("draws", 0)),
            win_rate=_unit(s.get("score")), win_rate_lower=_unit(s.get("wilson_lower")),
            win_rate_upper=_unit(s.get("wilson_upper")), elo=_number(s.get("elo")),
            elo_lower=_number(s.get("elo_lower")), elo_upper=_number(s.get("elo_upper")),
            llr=_number(s.get("llr")), llr_lower_bound=_number(s.get("llr_lower_bound")),
            llr_upper_bound=_number(s.get("llr_upper_bound")), first_champion=first, reasons=[r[:240] for r in self.reasons[:8]],
            candidate=self.candidate, champion=self.champion, player=self.player,
            baselines=[BaselineStatistics.model_validate(b) for b in s.get("baselines") or []],
            game_logs=list(self.game_logs))


def _number(x: object) -> float | None:
    return float(x) if isinstance(x, int | float) else None


def _unit(x: object) -> float | None:
    value = _number(x)
    return None if value is None else min(1.0, max(0.0, value))


def judge(registry: reg.Registry, game: str | GameKey, candidate: str, spec: PromotionSpec,
          run: GateRun | None = None, game_spec: GameSpec | None = None,
          evidence: str | None = None, progress: tm.Progress | None = None) -> Judgement:
    """Play the gate: ``candidate`` (a version id) against the champion of ``game``.

    Raises ChecksumError for a candidate whose bytes do not match its record and
    ModelContractError for one that does not load or breaks the ONNX contract:
    such a file never reaches a game. ``game_spec`` gives the settings of the gate
    games (food, hazards, turns); by default the key's board with default settings.
    The gate is played in duels: for a game of more than two snakes the
    candidate and the champion meet on a two-snake board of the same size.
    ``evidence``, a store key prefix, keeps every game there as an official-CLI
    JSONL log (:class:`GameLogFolders`), replacing what an earlier attempt left.
    ``progress`` hears the head-to-head's games and SPRT as they are played (``tournament.run``).
    """
    run = run or GateRun()
    key = game if isinstance(game, GameKey) else GameKey.parse(game)
    settings = (game_spec or key.spec()).model_copy(update={"snakes": 2, "ruleset": _duel_ruleset(key)})
    config, policy = game_config(settings), policy_from_spec(spec)
    state = registry.champion(key)
    logs = GameLogFolders(registry.store, evidence)
    with tempfile.TemporaryDirectory(prefix="ouro-gate-") as folder:
        path = Path(folder) / "candidate.onnx"
        registry.fetch(candidate, path)  # ChecksumError: corrupt, never promoted
        neural.check_model(path, key)  # ModelContractError: unloadable or too small, never promoted
        checks = readiness.ReadinessConfig(thresholds=policy.readiness, latency_calls=max(10, run.latency_calls),
                                           latency_rounds=3, warmup_calls=20)
        ready = readiness.check(path, None, readiness.real_positions(config, run.readiness_positions), checks)
        me = tm.Entrant(player_spec(path, spec), candidate)
        champion = None
        if state.version is None:
            decision = gate.decide_first(ready.report, policy)
        else:
            _, data = registry.load_champion(key)
            (Path(folder) / "champion.onnx").write_bytes(data)
            champion = tm.Entrant(player_spec(Path(folder) / "champion.onnx", spec), state.version)
            sprt = policy.sprt if policy.method is GateMethod.SPRT else None
            settings_ = tm.TournamentConfig(games=policy.max_games, min_games=policy.min_games, sprt=sprt,
                                            workers=run.workers, seed=spec.seed, max_turns=settings.max_turns,
                                            log_games=logs.on)
            report = tm.run([me, champion], config, settings_, progress)
            logs.write("champion", "candidate", report)
            decision = gate.decide(report.pairs[0].gate_result(), policy, ready.report)
            decision.statistics["games_per_second"] = report.games_per_second
        if decision.verdict is GateVerdict.PROMOTE and spec.baselines:  # else they cannot change the verdict
            decision = gate.with_baselines(decision, _baselines(me, champion, spec, config, run, settings.max_turns,
                                                                logs))
    return Judgement(str(key), candidate, state.version, decision, spec.seed, spec.player, tuple(logs.folders))


def _baselines(me: tm.Entrant, champion: tm.Entrant | None, spec: PromotionSpec, config: GameConfig, run: GateRun,
               max_turns: int, logs: GameLogFolders) -> list[gate.BaselineResult]:
    """The candidate's and the champion's (if any) duels against each baseline, on the same seeds."""
    results = []
    for baseline in spec.baselines:
        other = tm.Entrant(baseline.player.value)
        games = tm.TournamentConfig(games=baseline.games, workers=run.workers, seed=spec.seed,
                                    max_turns=max_turns, log_games=logs.on)
        mine = tm.run([me, other], config, games)
        logs.write(baseline.player.value, "candidate", mine)
        theirs = None
        if champion is not None:
            theirs = tm.run([champion, other], config, games)
            logs.write(baseline.player.value, "champion", theirs)
        results.append(gate.BaselineResult(baseline, mine.pairs[0].pair_points or [],
                                           None if theirs is None else theirs.pairs[0].pair_points))
    return results


def player_spec(model: Path, spec: PromotionSpec) -> str:
    """The tournament player of a model file as ``spec.player`` says: ``onnx:PATH`` or
    ``nsearch:model=PATH,ms=...,visits=...[,endgame=X]`` (the served search at the spec's budget)."""
    if spec.player is GatePlayer.NSEARCH:
        handoff = f",endgame={spec.endgame_share:g}" if spec.endgame_share else ""
        return f"nsearch:model={model},ms={spec.move_budget_ms:g},visits={spec.max_visits}{handoff}"
    return f"onnx:{model}"


class GameLogFolders:
    """A gate's games under a store prefix: one folder per opponent, one official-CLI JSONL file per game.

    ``PREFIX/OPPONENT/WHO-PAIR-SEAT.jsonl`` (``champion/candidate-0003-1.jsonl``,
    ``heuristic/champion-0000-0.jsonl``), each with the store's sha256 sidecar.
    Whatever the prefix held before (an earlier attempt of the same gate) is
    removed first, so it holds exactly this gate's games. With no prefix
    nothing is written and ``on`` is False.
    """

    def __init__(self, store: ArtifactStore, prefix: str | None) -> None:
        self.store, self.prefix = store, prefix.strip("/") if prefix else None
        self.folders: list[str] = []
        """URIs of the folders written, in order (trailing slash)."""
        if self.prefix is not None:
            for old in self.store.list(self.prefix + "/"):
                self.store.delete(old)

    @property
    def on(self) -> bool:
        """Whether games are kept."""
        return self.prefix is not None

    def write(self, opponent: str, who: str, report: tm.TournamentReport) -> None:
        """The games of ``report`` (played with ``log_games``) as ``PREFIX/OPPONENT/WHO-PAIR-SEAT.jsonl``."""
        if self.prefix is None:
            return
        folder = f"{self.prefix}/{opponent}"
        uri = self.store.uri(folder) + "/"
        if uri not in self.folders:
            self.folders.append(uri)
        for g, lines in enumerate(report.game_logs):
            self.store.put_bytes(f"{folder}/{who}-{g // 2:04d}-{g % 2}.jsonl",
                                 "".join(line + "\n" for line in lines).encode(), {"format": "battlesnake-cli-jsonl"})


def _duel_ruleset(key: GameKey):
    """Solo games cannot hold a duel: the gate of a solo champion plays standard duels on its board."""
    return "standard" if key.ruleset.value == "solo" else key.ruleset


def put_in_force(registry: reg.Registry, judgement: Judgement, *, by: str, run: str | None = None,
                 reason: str = "", force: bool = False) -> reg.ChampionState:
    """Promote the judged candidate with the gate's evidence in the history.

    Only a PROMOTE verdict promotes; anything else raises NotPromotedError,
    unless ``force`` (a manual promotion, recorded as such with the gate's
    figures beside it). Idempotent: a candidate that is already champion
    leaves the pointer as it is.
    """
    if judgement.verdict is not GateVerdict.PROMOTE and not force:
        raise NotPromotedError(judgement)
    statistics = judgement.statistics()
    if judgement.verdict is not GateVerdict.PROMOTE:
        statistics = {**statistics, "verdict": MANUAL, "gate_verdict": judgement.verdict.value}
        reason = reason or f"forced by {by} against the gate's {judgement.verdict.value}"
    return registry.promote(judgement.game, judgement.candidate, by=by, run=run,
                            reason=reason or "; ".join(judgement.reasons), statistics=statistics)


def promote_manually(registry: reg.Registry, game: str | GameKey, version: str, *, by: str,
                     run: str | None = None, reason: str = "",
                     statistics: dict[str, JsonValue] | None = None) -> reg.ChampionState:
    """Put ``version`` in force without a gate (``ouro registry promote`` without ``--gate``):
    the registry still checks its bytes and that it loads; the history says it was manual."""
    return registry.promote(str(game), version, by=by, run=run, reason=reason or f"manual promotion by {by}",
                            statistics={"verdict": MANUAL, **(statistics or {})})
