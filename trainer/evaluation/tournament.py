"""Tournaments: duels on paired seeds, leagues and free-for-alls, played by worker processes.

A gate or a league table is only as good as the games behind it, so this
module fixes *which* games are played independently of *how* they are played:

* **Groups of seeds.** Every seed is played once per seat rotation: in a
  duel, the same seed twice with the seats swapped (a *pair*, counted as a
  pentanomial), in an n-player free-for-all n times. Seed k of a tournament
  is ``seed + k``, the same for every pairing of a league (common random
  numbers: all players face the same starts).
* **Chunks.** The groups of a pairing are cut into chunks of
  ``chunk_groups`` seeds; a chunk is the unit a worker plays, all its games in
  one :func:`~ouroboros.trainer.agents.arena.play_match` batch (one batched
  inference per turn for neural players), with a random generator seeded by
  the chunk's identity. Results are merged in chunk order, so the same seeds
  give the same result whatever the number of workers.
* **Workers** build their players from spec strings (ONNX sessions and search
  trees do not pickle, and each process needs its own), once per process.
* **SPRT.** A duel with an SPRT plays its chunks in rounds (one per worker)
  and checks the test at every chunk boundary in order; the first boundary
  where the test has decided (and ``min_games`` are played) ends the
  tournament, and later chunks of that round are dropped, which keeps the
  stopping point independent of the worker count too.

Only strings cross process boundaries; the statistics come from `stats` and
`sprt`, and :meth:`PairStats.gate_result` is what the promotion gate reads.
With ``log_games`` every game is also recorded in the official CLI's JSONL
format (:mod:`ouroboros.trainer.agents.gamelog`), players named as entrants,
game ids derived from the line-up, the seed and the seat rotation.
"""

from __future__ import annotations

import concurrent.futures as futures
import dataclasses
import itertools
import math
import multiprocessing
import time
import uuid
from collections.abc import Callable, Sequence
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ouroboros.contract.promotion import SprtSpec
from ouroboros.trainer.agents import arena, gamelog
from ouroboros.trainer.agents import registry as agents
from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.evaluation import gate, stats
from ouroboros.trainer.evaluation import sprt as sequential

Progress = Callable[[int, sequential.SprtResult | None], None]
"""Called as a tournament goes: (games played so far, the SPRT after them or None without one)."""


class Mode(StrEnum):
    """What kind of tournament was played."""

    DUEL = "duel"
    LEAGUE = "league"
    FFA = "ffa"


@dataclasses.dataclass(frozen=True)
class Entrant:
    """A player of the tournament: the spec workers build it from, the name tables show."""

    spec: str
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.spec)


class TournamentConfig(BaseModel):
    """How many games, how they are cut and played, and when a duel may stop early."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    games: int = Field(100, ge=1, description="Games per pairing (duel, league) or in all (FFA); "
                       "rounded up to whole groups (2 games per seed in a duel, n in an FFA).")
    seed: int = Field(0, description="Seed of the first group; group k plays seed + k.")
    workers: int = Field(1, ge=1, description="Worker processes; 1 plays in this process.")
    chunk_groups: int = Field(8, ge=1, description="Seeds per chunk (one batch in a worker).")
    max_turns: int = Field(0, ge=0, description="Stop games after this many turns (0: never).")
    ffa: bool = Field(False, description="All players in every game instead of pairwise duels.")
    sprt: SprtSpec | None = Field(None, description="Stop a duel once this SPRT decides.")
    min_games: int = Field(0, ge=0, description="No SPRT stop before this many games.")
    log_games: bool = Field(False, description="Record every game as an official-CLI JSONL log "
                            "(TournamentReport.game_logs; costs a JSON line per game and turn).")


class PairStats(BaseModel):
    """``player``'s record against ``opponent``: WDL, pentanomial (duels), score, Wilson, Elo."""

    player: str
    opponent: str
    games: int
    wins: int
    draws: int
    losses: int
    pentanomial: list[int] | None = Field(None, description="LL, LD+DL, LW+DD+WL, DW+WD, WW pairs.")
    pair_points: list[int] | None = Field(
        None, exclude=True, description="Duels: half-points (0 to 4) of each seat-swapped pair, in seed order "
        "(what a paired comparison of two players on the same seeds reads; left out of JSON reports).")
    score: float
    wilson_lower: float
    wilson_upper: float
    elo: float | None = Field(description="Logistic Elo difference (null when unbounded).")
    elo_lower: float | None
    elo_upper: float | None

    @classmethod
    def of(cls, player: str, opponent: str, wdl: stats.WDL,
           penta: stats.Pentanomial | None = None, pair_points: list[int] | None = None) -> PairStats:
        """Statistics of one record (Elo from the pentanomial when there is one)."""
        wilson = stats.wilson_interval(wdl.points, wdl.games)
        elo = stats.elo_estimate(penta if penta is not None and penta.pairs else wdl)
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731 - JSON has no infinity
        return cls(player=player, opponent=opponent, games=wdl.games, wins=wdl.wins,
                   draws=wdl.draws, losses=wdl.losses,
                   pentanomial=list(penta.counts) if penta is not None else None, pair_points=pair_points,
                   score=wdl.score, wilson_lower=wilson.lower, wilson_upper=wilson.upper,
                   elo=finite(elo.elo), elo_lower=finite(elo.lower), elo_upper=finite(elo.upper))

    def gate_result(self) -> gate.TournamentResult:
        """The counts the promotion gate judges (from ``player``'s seat)."""
        penta = stats.Pentanomial(*self.pentanomial) if self.pentanomial else None
        return gate.TournamentResult(stats.WDL(self.wins, self.draws, self.losses), penta)


class SprtStats(BaseModel):
    """Where the SPRT of a duel ended."""

    elo0: float
    elo1: float
    alpha: float
    beta: float
    llr: float
    lower_bound: float
    upper_bound: float
    decision: sequential.SprtDecision
    stopped_early: bool = Field(description="Decided before the game budget ran out.")


class RatingRow(BaseModel):
    """One line of the league table (logistic Elo, mean 0)."""

    player: str
    elo: float
    stderr: float
    games: int
    score: float


class FfaRow(BaseModel):
    """One player's free-for-all record (a win is being the last snake left)."""

    player: str
    games: int
    wins: int
    draws: int
    losses: int
    win_rate: float
    mean_survival: float = Field(description="Mean turns survived.")


class TournamentReport(BaseModel):
    """Everything a results table, a JSON consumer or the gate needs."""

    mode: Mode
    players: list[str]
    board: str = Field(description="WIDTHxHEIGHT ruleset.")
    seed: int
    workers: int
    games: int = Field(description="Games played (and kept) in all.")
    seconds: float
    games_per_second: float
    mean_turns: float
    pairs: list[PairStats] = Field(default_factory=list)
    sprt: SprtStats | None = None
    league: list[RatingRow] = Field(default_factory=list)
    ffa: list[FfaRow] = Field(default_factory=list)
    game_logs: list[list[str]] = Field(
        default_factory=list, exclude=True,
        description="With log_games: each game's JSONL lines (duels and leagues: pairing by pairing, in seed "
        "order; left out of JSON reports).")


# -- one chunk, in a worker -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """What a worker needs to play a chunk: picklable values only."""

    config: GameConfig
    specs: tuple[str, ...]
    seeds: tuple[int, ...]  # one per group; each is played n_snakes times, rotated
    entropy: tuple[int, ...]  # seeds the chunk's generator
    max_turns: int
    names: tuple[str, ...] = ()  # with log_games: the entrants' names (the logs' snake names)


@dataclasses.dataclass(frozen=True)
class _Played:
    """A chunk's games: outcome [G, n] int8 (seat p = specs[p]), survived [G, n], turns [G];
    with log_games, each game's JSONL lines."""

    outcome: np.ndarray
    survived: np.ndarray
    turns: np.ndarray
    logs: tuple[tuple[str, ...], ...] = ()


_PLAYERS: dict[tuple[str, ...], list] = {}
"""A worker's players by spec tuple: each line-up is built once (the pool ends with the run)."""


def _play(chunk: _Chunk, cache: dict[tuple[str, ...], list] | None = None) -> _Played:
    """Plays one chunk in one batch (runs in a worker, or here with one worker and the run's
    own cache, so a long-lived process never keeps a stale model file's session)."""
    cache = _PLAYERS if cache is None else cache
    players = cache.get(chunk.specs)
    if players is None:
        players = cache[chunk.specs] = [agents.make_player(s) for s in chunk.specs]
    n = chunk.config.n_snakes
    seeds = np.repeat(np.asarray(chunk.seeds, np.int64), n)
    rng = np.random.default_rng(np.random.SeedSequence(list(chunk.entropy)))
    log = None
    if chunk.names:
        ids = [game_id(chunk.names, int(s), g % n) for g, s in enumerate(seeds)]
        log = gamelog.GameLog(chunk.config, gamelog.Roster.of(list(chunk.names)), ids)
    result = arena.play_match(chunk.config, players, seeds, rng, max_turns=chunk.max_turns, observer=log)
    logs = ()
    if log is not None:
        lines = log.finish(result.final, result.final.game_over(chunk.config.ruleset is Ruleset.SOLO))
        logs = tuple(tuple(lines[g]) for g in range(len(seeds)))
    return _Played(result.outcome.copy(), result.survived().astype(np.int32), result.turns.copy(), logs)


def game_id(names: Sequence[str], seed: int, rotation: int) -> str:
    """A stable UUID for the game of ``names`` (in seat order) on ``seed`` with starts rotated by ``rotation``."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"ouroboros:tournament:{'|'.join(names)}:{seed}:{rotation}"))


def _merge(parts: Sequence[_Played]) -> _Played:
    return _Played(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("outcome", "survived", "turns")), tuple(g for p in parts for g in p.logs))


# -- records from outcomes ------------------------------------------------------------------


def duel_records(outcome: np.ndarray) -> tuple[stats.WDL, stats.Pentanomial]:
    """Seat 0's record from duel outcomes [G, 2] whose games 2k and 2k+1 are a pair."""
    wdl = stats.WDL(int((outcome[:, 0] == arena.WIN).sum()), int((outcome[:, 0] == arena.DRAW).sum()),
                    int((outcome[:, 0] == arena.LOSS).sum()))
    return wdl, stats.Pentanomial(*np.bincount(pair_half_points(outcome), minlength=5).tolist())


def pair_half_points(outcome: np.ndarray) -> np.ndarray:
    """Seat 0's half-points (0 to 4) in each seat-swapped pair of duel outcomes [G, 2]. Shape [G // 2]."""
    points = (outcome[:, 0].astype(np.float64) + 1) / 2  # LOSS -1, DRAW 0, WIN 1 -> 0, 1/2, 1
    return np.rint(2 * points.reshape(-1, 2).sum(axis=1)).astype(int)


def ffa_pair_record(outcome: np.ndarray, survived: np.ndarray, a: int, b: int) -> stats.WDL:
    """Seat a against seat b in free-for-all games: the winner beats everyone, otherwise
    the snake that survived longer wins and equal survival is a draw."""
    a_first = (outcome[:, a] == arena.WIN) | ((outcome[:, b] != arena.WIN) & (survived[:, a] > survived[:, b]))
    b_first = (outcome[:, b] == arena.WIN) | ((outcome[:, a] != arena.WIN) & (survived[:, b] > survived[:, a]))
    wins, losses = int(a_first.sum()), int(b_first.sum())
    return stats.WDL(wins, len(outcome) - wins - losses, losses)


# -- running --------------------------------------------------------------------------------


class _Runner:
    """Plays lists of chunks in this process or in a pool, results in the order given."""

    def __init__(self, workers: int) -> None:
        self.pool = None
        self.players: dict[tuple[str, ...], list] = {}
        if workers > 1:
            self.pool = futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))

    def map(self, chunks: Sequence[_Chunk]) -> list[_Played]:
        if self.pool is None:
            return [_play(c, self.players) for c in chunks]
        return list(self.pool.map(_play, chunks))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def _chunks(config: GameConfig, line_up: Sequence[Entrant], settings: TournamentConfig, groups: int,
            tag: int) -> list[_Chunk]:
    """The chunks of one pairing: groups 0..groups-1 cut every ``chunk_groups`` seeds."""
    specs = tuple(e.spec for e in line_up)
    names = tuple(e.name for e in line_up) if settings.log_games else ()
    out = []
    for first in range(0, groups, settings.chunk_groups):
        last = min(groups, first + settings.chunk_groups)
        seeds = tuple(settings.seed + k for k in range(first, last))
        out.append(_Chunk(config, specs, seeds, (settings.seed & 0xFFFFFFFF, tag, first), settings.max_turns,
                          names))
    return out


def run(entrants: Sequence[str | Entrant], game: GameConfig, settings: TournamentConfig,
        progress: Progress | None = None) -> TournamentReport:
    """Plays a duel (2 entrants), a round-robin league (3+) or a free-for-all (``settings.ffa``:
    every entrant in every game) on ``game``'s board and rules; ``game.n_snakes`` is ignored.

    ``progress`` (optional) hears the games played and, for a duel with an SPRT, the test's state
    after every chunk (the live gate a TrainingRun's evaluate phase publishes); without an SPRT it
    hears once, at the end. It must not raise."""
    line_up = [e if isinstance(e, Entrant) else Entrant(e) for e in entrants]
    if len(line_up) < 2:
        raise ValueError("a tournament needs at least two players")
    seen: dict[str, int] = {}
    for i, e in enumerate(line_up):  # the same spec twice (a mirror match): name the copies apart
        seen[e.name] = seen.get(e.name, 0) + 1
        if seen[e.name] > 1:
            line_up[i] = Entrant(e.spec, f"{e.name}#{seen[e.name]}")
    names = [e.name for e in line_up]
    if settings.sprt is not None and (settings.ffa or len(line_up) != 2):
        raise ValueError("SPRT early stopping applies to a duel between two players")
    runner = _Runner(settings.workers)
    start = time.perf_counter()
    try:
        if settings.ffa:
            report = _ffa(line_up, game, settings, runner)
        else:
            report = _pairings(line_up, game, settings, runner, progress)
    finally:
        runner.close()
    seconds = time.perf_counter() - start
    report.update(seconds=seconds, games_per_second=report["games"] / max(seconds, 1e-9),
                  players=names, board=f"{game.width}x{game.height} {game.ruleset.value}",
                  seed=settings.seed, workers=settings.workers)
    return TournamentReport.model_validate(report)


def _ffa(line_up: list[Entrant], game: GameConfig, settings: TournamentConfig, runner: _Runner) -> dict:
    n = len(line_up)
    config = dataclasses.replace(game, n_snakes=n)
    groups = -(-settings.games // n)
    played = _merge(runner.map(_chunks(config, line_up, settings, groups, 0)))
    rows, pairs = [], []
    for p, entrant in enumerate(line_up):
        out = played.outcome[:, p]
        wins, draws = int((out == arena.WIN).sum()), int((out == arena.DRAW).sum())
        rows.append(FfaRow(player=entrant.name, games=len(out), wins=wins, draws=draws,
                           losses=len(out) - wins - draws, win_rate=wins / len(out),
                           mean_survival=float(played.survived[:, p].mean())))
    for a, b in itertools.combinations(range(n), 2):
        record = ffa_pair_record(played.outcome, played.survived, a, b)
        pairs.append(PairStats.of(line_up[a].name, line_up[b].name, record))
    return {"mode": Mode.FFA, "games": len(played.turns), "mean_turns": float(played.turns.mean()),
            "pairs": pairs, "ffa": rows, "league": _league(pairs), "game_logs": [list(g) for g in played.logs]}


def _pairings(line_up: list[Entrant], game: GameConfig, settings: TournamentConfig,
              runner: _Runner, progress: Progress | None = None) -> dict:
    config = dataclasses.replace(game, n_snakes=2)
    groups = -(-settings.games // 2)
    matchups = list(itertools.combinations(range(len(line_up)), 2))
    sprt_stats = None
    if settings.sprt is not None:
        chunks = _chunks(config, line_up[:2], settings, groups, 0)
        kept, sprt_stats = _sequential(chunks, settings, runner, progress)
        results = {(0, 1): _merge(kept)}
    else:
        plan = [(m, c) for tag, m in enumerate(matchups)
                for c in _chunks(config, (line_up[m[0]], line_up[m[1]]), settings, groups, tag)]
        played = runner.map([c for _, c in plan])
        results = {m: _merge([p for (mm, _), p in zip(plan, played, strict=True) if mm == m]) for m in matchups}
        if progress is not None:
            progress(sum(len(p.turns) for p in results.values()), None)
    pairs = []
    for (a, b), p in results.items():
        wdl, penta = duel_records(p.outcome)
        pairs.append(PairStats.of(line_up[a].name, line_up[b].name, wdl, penta,
                                  pair_half_points(p.outcome).tolist()))
    turns = np.concatenate([p.turns for p in results.values()])
    return {"mode": Mode.DUEL if len(line_up) == 2 else Mode.LEAGUE, "games": len(turns),
            "mean_turns": float(turns.mean()), "pairs": pairs, "sprt": sprt_stats,
            "league": _league(pairs) if len(line_up) > 2 else [],
            "game_logs": [list(g) for p in results.values() for g in p.logs]}


def _sequential(chunks: list[_Chunk], settings: TournamentConfig, runner: _Runner,
                progress: Progress | None = None) -> tuple[list[_Played], SprtStats]:
    """Rounds of one chunk per worker; the SPRT is checked (and ``progress`` told) at each chunk
    boundary, in order."""
    assert settings.sprt is not None
    kept: list[_Played] = []
    penta = stats.Pentanomial()
    outcome = None
    for start in range(0, len(chunks), settings.workers):
        for part in runner.map(chunks[start:start + settings.workers]):
            kept.append(part)
            penta = penta + duel_records(part.outcome)[1]
            outcome = sequential.sprt(penta, settings.sprt)
            if progress is not None:
                progress(penta.games, outcome)
            if outcome.decision is not sequential.SprtDecision.CONTINUE and penta.games >= settings.min_games:
                return kept, _sprt_stats(settings.sprt, outcome, stopped=len(kept) < len(chunks))
    assert outcome is not None
    return kept, _sprt_stats(settings.sprt, outcome, stopped=False)


def _sprt_stats(config: SprtSpec, outcome: sequential.SprtResult, stopped: bool) -> SprtStats:
    return SprtStats(elo0=config.elo0, elo1=config.elo1, alpha=config.alpha, beta=config.beta,
                     llr=outcome.llr, lower_bound=outcome.lower_bound, upper_bound=outcome.upper_bound,
                     decision=outcome.decision, stopped_early=stopped)


def _league(pairs: list[PairStats]) -> list[RatingRow]:
    """Bradley–Terry ratings of every player from the pairwise records (mean 0)."""
    records = [stats.PairResult(p.player, p.opponent, stats.WDL(p.wins, p.draws, p.losses)) for p in pairs]
    return [RatingRow(player=r.player, elo=r.elo, stderr=r.stderr, games=r.games, score=r.score)
            for r in stats.league_ratings(records)]
