"""The registry operations a Champion controller runs as Jobs, and the report they leave.

``ouro champion job OPERATION`` calls :func:`perform`: it changes the champion
pointer of one game through the one promotion path (:mod:`.promotion`; the
registry opened there refuses models that do not load) and returns a
``contract.champion.RegistryReport`` of the pointer afterwards, which the
operator mirrors into ``Champion.status``.

Every operation is idempotent, because a Job may be retried by hand or its
report lost: promoting the version already in force, pinning the version
already pinned, unpinning an unpinned pointer, all change nothing. The
post-promotion check plays ``games`` seat-swapped smoke games of the champion
against the version it replaced, both played the way the Champion's gate
plays them and so the way they are served (``gate.player``: the bare policy,
or the neural search at the gate's ``moveBudgetMs``/``maxVisits``; the
check's result names the player), and, if it scores under ``min_win_rate``,
rolls the pointer back to that version in the same Job (the registry's own
atomic replace), with the score in the rollback's reason. A check of a version
that is no longer in force, or of a pinned pointer, plays nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

from ouroboros.contract.champion import (
    REASON_CHARS,
    REPORT_HISTORY,
    ChampionOperation,
    CheckResult,
    RegistryRecord,
    RegistryReport,
)
from ouroboros.contract.game import GameKey
from ouroboros.contract.promotion import GateStatistics, PromotionSpec
from ouroboros.contract.run import RESULT_MAX_BYTES
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.evaluation import promotion
from ouroboros.trainer.evaluation import tournament as tm

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Request:
    """One registry operation (the Job's command line)."""

    operation: ChampionOperation
    game: str
    """Game key, e.g. standard-7x7-2p."""
    version: str | None = None
    run: str | None = None
    by: str = "ouroboros-operator"
    reason: str = ""
    against: str | None = None
    """check: the version the champion replaced."""
    games: int = 20
    """check: smoke games (rounded up to seat-swapped pairs)."""
    min_win_rate: float = 0.45
    """check: the score under which the pointer rolls back."""
    statistics: GateStatistics | None = None
    """promote: the gate's statistics of the approved candidate."""
    seed: int = 1_000_003
    """check: seed of the first pair of smoke games (not the gate's seeds)."""
    gate: PromotionSpec = dataclasses.field(default_factory=PromotionSpec)
    """check: the Champion's ``policy.gate``; its ``player``, ``moveBudgetMs`` and ``maxVisits`` say how both
    versions play (``--player`` of ``ouro champion job check``; the rest of it is not used)."""


def _require(request: Request, field: str) -> str:
    value = getattr(request, field)
    if not value:
        raise ValueError(f"--{field}: required by operation {request.operation.value}")
    return value


def check(registry: reg.Registry, request: Request) -> tuple[CheckResult, reg.ChampionState]:
    """Smoke games of the champion against ``request.against``; roll back under the threshold."""
    version, against = _require(request, "version"), _require(request, "against")
    state = registry.champion(request.game)
    if state.version != version or state.pinned_version is not None:
        why = "pinned" if state.pinned_version else f"no longer in force ({state.version})"
        return CheckResult(version=version, against=against, passed=True,
                           message=f"not checked: {version} is {why}"), state
    key = GameKey.parse(request.game)
    spec = key.spec().model_copy(update={"snakes": 2})
    with tempfile.TemporaryDirectory(prefix="ouro-check-") as folder:
        paths = []
        for name in (version, against):
            path = Path(folder) / f"{name}.onnx"
            registry.fetch(name, path)
            paths.append(path)
        settings = tm.TournamentConfig(games=max(2, request.games), min_games=0, seed=request.seed,
                                       max_turns=spec.max_turns)
        entrants = [tm.Entrant(promotion.player_spec(path, request.gate), name)
                    for path, name in zip(paths, (version, against), strict=True)]
        report = tm.run(entrants, game_config(spec), settings)
    pair, player = report.pairs[0], request.gate.served_player
    passed = pair.score >= request.min_win_rate
    text = (f"{version} scored {pair.score:.3f} ({pair.wins}-{pair.draws}-{pair.losses}) in {pair.games} "
            f"games against {against}, both playing {player}; threshold {request.min_win_rate:g}")
    result = CheckResult(version=version, against=against, games=pair.games, win_rate=pair.score, passed=passed,
                         player=player, message=f"passed: {text}")
    if passed:
        return result, state
    log.warning("post-promotion check failed: %s; rolling back to %s", text, against)
    state = registry.rollback(request.game, against, by=request.by,
                              reason=f"post-promotion check failed: {text}")
    return result.model_copy(update={"rolled_back": True, "message": f"rolled back to {against}: {text}"}), state


def perform(request: Request, store: str) -> RegistryReport:
    """Carry out ``request`` on the registry of ``store`` and report the pointer afterwards.

    Raises RegistryError (refused: pinned, unknown version, not in the history),
    ChecksumError or ModelContractError (a corrupt or unloadable model is never
    put in force), ValueError for a missing argument.
    """
    registry = promotion.open_registry(store)
    op, game = request.operation, request.game
    result = None
    if op is ChampionOperation.SYNC:
        state = registry.champion(game)
    elif op is ChampionOperation.PROMOTE:
        statistics = request.statistics.to_api() if request.statistics else {}
        statistics = {**statistics, "verdict": statistics.get("verdict") or promotion.MANUAL}
        state = registry.champion(game)
        version = _require(request, "version")
        if state.version != version:
            state = registry.promote(game, version, by=request.by, run=request.run,
                                     reason=request.reason or f"approved by {request.by}", statistics=statistics)
    elif op is ChampionOperation.PIN:
        version = _require(request, "version")
        state = registry.champion(game)
        if state.pinned_version != version:
            if state.pinned_version is not None:
                registry.unpin(game, by=request.by, reason=f"re-pinning to {version}")
            state = registry.pin(game, version, by=request.by, reason=request.reason or "spec.pinnedVersion")
    elif op is ChampionOperation.UNPIN:
        state = registry.unpin(game, by=request.by, reason=request.reason or "spec.pinnedVersion unset")
    else:
        result, state = check(registry, request)
    return report_of(op, state, result)


def _number(stats: dict, *keys: str) -> float | None:
    """The first of ``keys`` present as a number (the gate writes snake_case, GateStatistics camelCase)."""
    value = next((stats[k] for k in keys if k in stats), None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _record(r: reg.ChampionRecord) -> RegistryRecord:
    stats = r.statistics or {}
    return RegistryRecord(action=r.action.value, version=r.version, previous=r.previous, at=r.at, by=r.by[:253],
                          run=r.run, sha256=r.sha256, reason=r.reason[:REASON_CHARS],
                          verdict=str(stats["verdict"]) if stats.get("verdict") else None,
                          win_rate=_number(stats, "score", "winRate"),
                          win_rate_lower=_number(stats, "wilson_lower", "winRateLower"),
                          win_rate_upper=_number(stats, "wilson_upper", "winRateUpper"),
                          elo=_number(stats, "elo"), elo_lower=_number(stats, "elo_lower", "eloLower"),
                          elo_upper=_number(stats, "elo_upper", "eloUpper"))


def report_of(operation: ChampionOperation, state: reg.ChampionState,
              check_result: CheckResult | None = None) -> RegistryReport:
    """The report of a pointer, its history cut so the JSON fits a termination message."""
    history = [_record(r) for r in state.history[:REPORT_HISTORY]]
    message = f"{operation.value}: {state.game} -> {state.version or 'no champion'}"
    if state.pinned_version:
        message += f" (pinned to {state.pinned_version})"
    if check_result is not None:
        message += f"; check {check_result.message}"
    report = RegistryReport(operation=operation, game=state.game, version=state.version, sha256=state.sha256,
                            size=state.size, uri=state.uri, pinned_version=state.pinned_version,
                            generation=state.generation, history=history, check=check_result,
                            message=message[:1000])
    while len(encode(report)) > RESULT_MAX_BYTES and report.history:
        report = report.model_copy(update={"history": report.history[:-1]})
    return report


def encode(report: RegistryReport) -> bytes:
    """The compact JSON a Job writes to its termination log."""
    return json.dumps(report.to_api(), separators=(",", ":"), sort_keys=True).encode()
