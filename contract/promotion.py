"""The gate's policy and what it measured: ``PromotionSpec``, ``SprtSpec``, ``GateStatistics``.

``TrainingRun.spec.promotion``, ``Champion.spec.policy.gate``, the run config's
``promotion`` and ``ouro registry promote --gate`` all carry a ``PromotionSpec``;
the trainer turns it into its gate configuration in one place
(``evaluation.promotion.policy_from_spec``). Sources: Leela Zero's SPRT gate
(elo0 0, elo1 35, alpha = beta = 0.05, 100 to 400 games), fishtest's bounds,
KataGo's fixed-budget gatekeeper (the ``winRate`` method), fishtest's
non-regression tests (the ``baselines``: a change must not lose strength against
fixed opponents, within a tolerance).
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from ouroboros.contract.schema import CEL_KEY, ApiModel, StatusModel, cel, section


class EloModel(StrEnum):
    """Which Elo scale the SPRT hypotheses elo0/elo1 are written in (fishtest's two)."""

    LOGISTIC = "logistic"
    NORMALIZED = "normalized"


class GateMethod(StrEnum):
    """How strength is judged: a sequential test, or a fixed budget with a minimum score."""

    SPRT = "sprt"
    WIN_RATE = "winRate"


class GateSource(StrEnum):
    """Where a run's gate came from (Kubernetes-style CamelCase: it names a resource kind)."""

    TRAINING_RUN = "TrainingRun"
    """The run's own ``spec.promotion``."""
    CHAMPION = "Champion"
    """The run left ``spec.promotion`` unset: its Champion's ``spec.policy.gate`` when the run started."""


class GateVerdict(StrEnum):
    """The gate's answer. Only PROMOTE promotes; an inconclusive gate never does."""

    PROMOTE = "promote"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"


class SprtSpec(ApiModel):
    """Sequential probability ratio test of H0: elo = elo0 against H1: elo = elo1 (fishtest, Leela Zero)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel("self.elo0 < self.elo1", "sprt.elo0 must be less than sprt.elo1", ".elo1"),
                cel("self.alpha + self.beta < 1.0", "sprt.alpha + sprt.beta must be < 1", ".beta"),
            ]
        },
    )

    elo0: float = Field(default=0.0, ge=-1000, le=1000, description="Elo difference under H0 (candidate not better).")
    elo1: float = Field(
        default=35.0, ge=-1000, le=1000, description="Elo difference under H1 (candidate better); Leela Zero uses 35."
    )
    alpha: float = Field(default=0.05, gt=0, lt=1, description="False-promotion rate: P(accept H1 | H0).")
    beta: float = Field(default=0.05, gt=0, lt=1, description="False-rejection rate: P(accept H0 | H1).")
    elo_model: EloModel = Field(
        default=EloModel.LOGISTIC, description="Scale of elo0/elo1: logistic or normalized Elo."
    )

    @model_validator(mode="after")
    def _rules(self) -> SprtSpec:
        """Mirror of the CEL rules."""
        if not self.elo0 < self.elo1:
            raise ValueError(f"sprt.elo0 must be less than sprt.elo1 (elo0 {self.elo0:g}, elo1 {self.elo1:g})")
        if self.alpha + self.beta >= 1.0:
            raise ValueError(f"sprt.alpha + sprt.beta must be < 1, got {self.alpha + self.beta:g}")
        return self

    @property
    def lower_bound(self) -> float:
        """``ln(β/(1-α))``: at or below it, accept H0 (-2.944 for α = β = 0.05)."""
        return math.log(self.beta / (1.0 - self.alpha))

    @property
    def upper_bound(self) -> float:
        """``ln((1-β)/α)``: at or above it, accept H1 (+2.944 for α = β = 0.05)."""
        return math.log((1.0 - self.beta) / self.alpha)


class GatePlayer(StrEnum):
    """How the candidate and the champion choose their moves in the gate's games."""

    POLICY = "policy"
    """The network's best move at once (``onnx:``), as ``ouro serve --player champion`` plays."""
    NSEARCH = "nsearch"
    """The network guiding the neural search (``nsearch:``), as ``ouro serve --player champion+nsearch``
    plays, at ``moveBudgetMs`` per move."""


class BaselinePlayer(StrEnum):
    """Fixed opponents a candidate must not regress against (built-in players of ``agents.registry``)."""

    RANDOM_SAFE = "random-safe"
    GREEDY = "greedy"
    HEURISTIC = "heuristic"
    SEARCH = "search"


BASELINES_MAX = 4
"""Baselines a gate may name (each adds a line to the status, which a termination message bounds)."""


class BaselineSpec(ApiModel):
    """A fixed opponent that the candidate and the champion both play, on the same seeds.

    The candidate is rejected when it scores *significantly* worse against the
    baseline than the champion did on the same seeds: when the one-sided 95%
    upper confidence bound of the paired score difference (candidate minus
    champion, per seat-swapped pair of games) lies below ``-maxRegression``. With
    no champion yet, and in every case when ``minWinRate`` is set, the candidate's
    own score must not be significantly under ``minWinRate`` (its Wilson 95%
    upper bound must reach it).
    """

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [cel("self.games % 2 == 0",
                          "baselines[].games must be even: games are played in seat-swapped pairs", ".games")]
        },
    )

    player: BaselinePlayer = Field(description="The baseline: random-safe, greedy, heuristic or search.")
    games: int = Field(
        default=100, ge=2, le=100000,
        description="Games each of the candidate and the champion plays against it (seat-swapped pairs, so even).",
    )
    max_regression: float = Field(
        default=0.05, ge=0, le=1,
        description="Score per game (wins + draws/2) the candidate may lose against the baseline compared with "
        "the champion on the same seeds before a significant loss rejects it.",
    )
    min_win_rate: float = Field(
        default=0.0, ge=0, le=1,
        description="Score the candidate needs against the baseline, whether or not there is a champion (it is "
        "rejected when the Wilson 95% upper bound of its score is under it); 0 sets no floor.",
    )

    @model_validator(mode="after")
    def _rules(self) -> BaselineSpec:
        """Mirror of the CEL rule."""
        if self.games % 2:
            raise ValueError("baselines[].games must be even: games are played in seat-swapped pairs")
        return self


class ReadinessSpec(ApiModel):
    """Serving limits a candidate must respect to be promoted (the operations guide's <10 ms, <50 MB)."""

    model_config = ConfigDict(frozen=True)

    max_p99_latency_ms: float = Field(
        default=10.0, gt=0, le=10000, description="p99 latency of one move at batch 1 on one thread, in milliseconds."
    )
    max_peak_memory_mb: float = Field(
        default=50.0, gt=0, le=100000, description="Peak memory of one inference session, in megabytes."
    )


ENDGAME_NEEDS = ("promotion.endgameShare needs player nsearch and moveBudgetMs > 0 "
                 "(the alpha-beta decides within the time budget)")
"""The rule on ``endgameShare`` (CEL and the model's own check say the same)."""


class PromotionSpec(ApiModel):
    """How a candidate must beat the champion to replace it (the gate)."""

    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            CEL_KEY: [
                cel("self.minGames <= self.games", "promotion.minGames must not exceed promotion.games", ".minGames"),
                cel("self.games % 2 == 0", "promotion.games must be even: games are played in seat-swapped pairs", ".games"),
                cel("!has(self.baselines) || self.baselines.all(b, self.baselines.exists_one(c, c.player == b.player))",
                    "promotion.baselines: each player may appear only once", ".baselines"),
                cel("self.player != 'nsearch' || self.moveBudgetMs > 0 || self.maxVisits > 0",
                    "promotion.player nsearch needs a budget: moveBudgetMs > 0 or maxVisits > 0", ".moveBudgetMs"),
                cel("!(self.endgameShare > 0) || (self.player == 'nsearch' && self.moveBudgetMs > 0)",
                    ENDGAME_NEEDS, ".endgameShare"),
            ]
        },
    )

    method: GateMethod = Field(
        default=GateMethod.SPRT,
        description="sprt: stop as soon as the SPRT decides (between minGames and games); "
        "winRate: play all games, then require minWinRate and a Wilson 95% lower bound of at least 0.5.",
    )
    games: int = Field(
        default=400, ge=2, le=100000, description="Most gate games (seat-swapped pairs, so even)."
    )
    min_games: int = Field(
        default=100, ge=2, le=100000, description="Games before the SPRT may stop early."
    )
    sprt: SprtSpec = section(SprtSpec, "The sequential test (method sprt).")
    min_win_rate: float = Field(
        default=0.55, ge=0, le=1, description="Score (wins + draws/2 per game) a candidate needs (method winRate)."
    )
    readiness: ReadinessSpec = section(ReadinessSpec, "Serving limits; a candidate over them is rejected.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the first pair of gate games.")
    player: GatePlayer = Field(
        default=GatePlayer.POLICY,
        description="How candidate and champion play every gate game, baselines included: policy (the network's "
        "move at once) or nsearch (the network guiding the neural search, as `ouro serve --player "
        "champion+nsearch` serves it, at moveBudgetMs per move). Gate the champion the way it is served.",
    )
    move_budget_ms: float = Field(
        default=100.0, ge=0, le=60000, allow_inf_nan=False,  # NaN: "a finite number", not "<= 60000"
        description="Time budget per move of the nsearch player, in milliseconds (0: no time limit; then set "
        "maxVisits). Use the budget the servers use.",
    )
    max_visits: int = Field(
        default=0, ge=0, le=1_000_000,
        description="Most search descents per move of the nsearch player (0: as many as moveBudgetMs allows); "
        "with moveBudgetMs 0 the gate's games are reproducible on any machine.",
    )
    endgame_share: float = Field(
        default=0.0, ge=0, le=1, allow_inf_nan=False,
        description="Hand-off of the nsearch player: from this share of the board's cells filled by the living "
        "snakes' bodies on, the compiled alpha-beta decides the move within moveBudgetMs (the `endgame` option of "
        "`ouro serve --player champion+nsearch:endgame=X`); 0: never.",
    )
    keep_games: bool = Field(
        default=True,
        description="Keep every gate game in the artifact store as evidence, in the official CLI's JSONL format "
        "(runs/<run>/evaluate/games/<opponent>/; measured 84 kB a game between fast players and 315 kB between "
        "heuristics on 11x11); false keeps only the statistics and the report.",
    )
    baselines: list[BaselineSpec] = Field(
        default_factory=list, max_length=BASELINES_MAX,
        description="Fixed opponents the candidate must not regress against (played only when the head-to-head "
        "gate would promote; the first champion is judged against them alone).",
    )

    @property
    def served_player(self) -> str:
        """How this gate plays a model, in the words of ``ouro serve --player``: ``policy`` (``champion``)
        or ``nsearch:ms=N`` with ``,visits=N`` when capped and ``,endgame=X`` when handing off
        (``champion+nsearch:ms=N``); what strength records (``strength.json``, a post-promotion check)
        name as their ``player``."""
        if self.player is GatePlayer.POLICY:
            return GatePlayer.POLICY.value
        budget = f"{GatePlayer.NSEARCH.value}:ms={self.move_budget_ms:g}"
        return (budget + (f",visits={self.max_visits}" if self.max_visits else "")
                + (f",endgame={self.endgame_share:g}" if self.endgame_share else ""))

    def with_served_player(self, text: str, name: str = "player") -> PromotionSpec:
        """This spec with ``player``, ``moveBudgetMs``, ``maxVisits`` and ``endgameShare`` set from a served
        player's words.

        ``text`` is what :attr:`served_player` prints or what ``ouro serve --player`` takes for the
        champion: ``policy`` or ``champion``; ``nsearch`` or ``champion+nsearch``, optionally followed by
        ``:ms=N,visits=N,endgame=X`` (an option left out keeps this spec's value). Raises ValueError naming ``name``
        (the flag or field the text came from) and what is wrong with it: an unknown player or option, a
        value that is not a number or out of range, nsearch without any budget.
        """
        head, colon, rest = text.strip().partition(":")
        player = _SERVED_NAMES.get(head.strip())
        if player is None:
            raise ValueError(f"{name}: unknown player {text!r} (expected policy, champion, "
                             "nsearch[:ms=N,visits=N,endgame=X] or champion+nsearch[:ms=N,visits=N,endgame=X])")
        if colon and player is GatePlayer.POLICY:
            raise ValueError(f"{name}: {head} takes no options, got {text!r}")
        update: dict[str, object] = {"player": player}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, value = (part.strip() for part in item.partition("="))
            field = _SERVED_OPTIONS.get(key)
            if not eq or field is None:
                raise ValueError(f"{name}: expected ms=N, visits=N or endgame=X in {text!r}, got {item!r}")
            update[field] = value
        try:
            return type(self).model_validate({**self.model_dump(), **update})
        except ValueError as exc:
            errors = getattr(exc, "errors", lambda: [])()
            detail = "; ".join(f"{_SERVED_WORDS.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" if e["loc"]
                               else str(e["msg"]).removeprefix("Value error, ") for e in errors) or str(exc)
            raise ValueError(f"{name}: {text!r}: {detail}") from None

    @model_validator(mode="after")
    def _rules(self) -> PromotionSpec:
        """Mirror of the CEL rules."""
        if self.min_games > self.games:
            raise ValueError("promotion.minGames must not exceed promotion.games")
        if self.games % 2:
            raise ValueError("promotion.games must be even: games are played in seat-swapped pairs")
        players = [b.player for b in self.baselines]
        if len(set(players)) != len(players):
            raise ValueError("promotion.baselines: each player may appear only once")
        if self.player is GatePlayer.NSEARCH and self.move_budget_ms <= 0 and self.max_visits <= 0:
            raise ValueError("promotion.player nsearch needs a budget: moveBudgetMs > 0 or maxVisits > 0")
        if self.endgame_share > 0 and (self.player is not GatePlayer.NSEARCH or self.move_budget_ms <= 0):
            raise ValueError(ENDGAME_NEEDS)
        return self


_SERVED_NAMES = {"policy": GatePlayer.POLICY, "champion": GatePlayer.POLICY,
                 "nsearch": GatePlayer.NSEARCH, "champion+nsearch": GatePlayer.NSEARCH}
"""The words a served player is written in (``ouro serve --player`` and ``GatePlayer``'s values)."""
_SERVED_OPTIONS = {"ms": "move_budget_ms", "visits": "max_visits", "endgame": "endgame_share"}
"""The nsearch options a served player sets, as ``ouro serve --player champion+nsearch`` spells them."""
_SERVED_WORDS = {field: option for option, field in _SERVED_OPTIONS.items()}


class BaselineStatistics(StatusModel):
    """What the candidate (and the champion, on the same seeds) scored against one baseline."""

    player: str = Field(max_length=32, description="The baseline.")
    games: int = Field(default=0, ge=0, description="Games the candidate played against it.")
    win_rate: float | None = Field(default=None, ge=0, le=1, description="Candidate's score per game.")
    win_rate_upper: float | None = Field(default=None, ge=0, le=1,
                                         description="Wilson 95% upper bound of the candidate's score.")
    champion_win_rate: float | None = Field(default=None, ge=0, le=1,
                                            description="Champion's score on the same seeds (unset: no champion).")
    difference: float | None = Field(default=None, ge=-1, le=1,
                                     description="Candidate minus champion score, mean over seat-swapped pairs.")
    difference_upper: float | None = Field(
        default=None, description="One-sided 95% upper confidence bound of that difference.")
    passed: bool = Field(description="False: the candidate regressed against this baseline and was rejected.")


class GateStatistics(StatusModel):
    """What a gate (candidate vs champion) measured, as recorded in statuses and histories."""

    verdict: GateVerdict | None = Field(default=None, description="promote, reject or inconclusive.")
    games: int = Field(default=0, ge=0, description="Games played.")
    wins: int = Field(default=0, ge=0, description="Candidate wins.")
    losses: int = Field(default=0, ge=0, description="Candidate losses.")
    draws: int = Field(default=0, ge=0, description="Draws.")
    win_rate: float | None = Field(default=None, ge=0, le=1, description="Score per game (wins + draws/2).")
    win_rate_lower: float | None = Field(default=None, ge=0, le=1, description="Wilson 95% lower bound of the score.")
    win_rate_upper: float | None = Field(default=None, ge=0, le=1, description="Wilson 95% upper bound of the score.")
    elo: float | None = Field(default=None, description="Elo difference estimate (candidate minus champion).")
    elo_lower: float | None = Field(default=None, description="Lower end of the Elo 95% interval.")
    elo_upper: float | None = Field(default=None, description="Upper end of the Elo 95% interval.")
    llr: float | None = Field(default=None, description="SPRT log-likelihood ratio when the gate stopped.")
    llr_lower_bound: float | None = Field(
        default=None, description="The SPRT's reject bound ln(beta / (1 - alpha)) of the gate that was applied.")
    llr_upper_bound: float | None = Field(
        default=None, description="The SPRT's promote bound ln((1 - beta) / alpha) of the gate that was applied.")
    first_champion: bool = Field(default=False, description="No champion existed: readiness alone decided.")
    candidate: str | None = Field(
        default=None, max_length=128, description="Registry version id of the candidate that was judged."
    )
    champion: str | None = Field(
        default=None, max_length=128, description="Registry version id of the champion it played (unset: none)."
    )
    awaiting_approval: bool = Field(
        default=False,
        description="The verdict was promote but the Champion's policy asks for manual approval: "
        "the candidate is not champion until someone approves it.",
    )
    reasons: list[str] = Field(
        default_factory=list, max_length=8, description="Why the gate decided as it did, one line each."
    )
    report: str | None = Field(
        default=None, max_length=2048,
        description="URI of the gate's full report (every statistic, readiness figures, game logs) in the store.",
    )
    player: GatePlayer | None = Field(default=None, description="How both sides played: policy or nsearch.")
    gate_source: GateSource | None = Field(
        default=None, description="Whose gate was applied: the run's spec.promotion (TrainingRun) or its "
        "Champion's spec.policy.gate (Champion); the report holds the whole spec.")
    baselines: list[BaselineStatistics] = Field(
        default_factory=list, max_length=BASELINES_MAX, description="The non-regression checks, one per baseline.")
    game_logs: list[str] = Field(
        default_factory=list, max_length=BASELINES_MAX + 1,
        description="URIs of the folders holding the gate's games, one per opponent (the champion, then each "
        "baseline), one file per game in the official CLI's JSONL format (`battlesnake play -o`).",
    )
