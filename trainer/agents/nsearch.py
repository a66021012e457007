"""The neural-guided search player: decoupled PUCT Monte-Carlo tree search over simultaneous moves.

Each decision is searched with the tree of :mod:`.puct` (decoupled UCT with AlphaZero's PUCT
selection over the moves of every living snake, the network's policy as priors and its value head
at the leaves, leaves evaluated in virtual-loss batches, the subtree of the joint move played kept
for the next turn: that module's docstring); this module is the player around it.

**Anytime.** Rounds run until the move budget (`ms`), the caller's deadline
(`agents.stopping`: the snake server's counts from the request's arrival) or
the simulation cap (`visits`) runs out, or the caller hangs up; the answer is the
root move with the most visits (ties: the higher mean value). With a
simulation cap and no time limit the search is deterministic.

**Hand-off to the alpha-beta.** With `endgame` set, a position whose living
bodies fill at least that share of the board is not searched by the tree: the
compiled alpha-beta of :mod:`.search` decides it, at the same budget. A
crowded board is where a move's consequence is a matter of counting cells
many turns ahead (who is cut off, whose space holds its length), which the
alpha-beta's exact, deep tree settles and a few hundred network-guided
descents do not; the open board before it is where the network's judgement
of position pays. The combination is the pattern of engines that switch to
exact solvers late in a game (endgame tablebases and solvers in chess and
Othello engines); the share is a measured option, not a constant (README,
*Strength*). The network speaks there through its leaf net: when the
model's ONNX file carries one (:mod:`.leafnet`, metadata key ``leaf_net``),
the alpha-beta adds it to every leaf's count (`leaf`, on by default), the
network's judgement inside the exact tree, NNUE's shape; with every move
handed off (``endgame=0.01``) the `medium` network with a net from 1,000
search games beat `search` at 50 ms, 58.25% [51.3%, 64.9%] over 200 duels;
the preset's own runs' nets scored 46.75% [40.0%, 53.7%] (seed 11) and
63.75% [56.9%, 70.1%] (seed 12): what a net is worth varies with its games
(README, *Strength*). Moves the alpha-beta scores exactly alike
(3 to 6% of the positions of `search`'s games at depths 2 to 6 with the
hand-set weights, `python -m benchmarks.ties`) it orders as `search` does,
by its previous iteration (`tiebreak=search`, the default); `tiebreak=policy`
hands them to the policy at the root (one call inside the budget), and
`margin` widens that to the moves scored within that many points of the best,
`tiebreak=value` ranking them by the value head one turn on. Neither won: at
50 ms with every move handed off and the policy within 20 points, the
`medium` network played level with `search` over 200 duels (51.5% [44.6%,
58.3%]), and with a leaf net the policy's ties screened 51.25% over 80.

**Garbage collection inside the budget.** A tree is thousands of small
objects, and reuse keeps tens of thousands alive between moves; Python's
cyclic collector walks all of them in a full pass, which took up to 250 ms in
the middle of a 100 ms move (measured: a 100 ms search returned after 352 ms).
The tree holds no reference cycles (children only, no parent links), so
reference counting frees it and the collector finds nothing there. So the
automatic collector is paused while any search runs (:mod:`.collector`,
process-wide, counted across threads), and each search starts by running the
generations that are due by the collector's own thresholds: the pause comes
out of that move's budget, which the clock already counts, instead of landing
after its deadline. When the last search ends the collector is back, and the
collection due by then runs at the next allocation, wherever that is: the snake
server holds the pause until its answer is written (`serving.server`), so that
collection comes after the answer, not before it.

Everything runs from the exported ONNX file alone (the `policy` and
`value` outputs of the contract in `learning/onnx_export.py`), with the
compact rules of :mod:`.compact` as the simulator (no food spawns inside the
tree: they are random).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import threading
import time

import numpy as np

from ouroboros.trainer.agents import compact, leafnet, puct, stopping
from ouroboros.trainer.agents.collector import COLLECTOR
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.observation import encoding


@dataclasses.dataclass
class NeuralSearch:
    """A `Player` that searches each game with a policy-value network (ONNX) as its guide.

    `model` is anything :class:`~ouroboros.trainer.agents.neural.OnnxPlayer`
    takes (a path or the file's bytes), or an evaluator with its interface
    (`evaluate(planes) -> (logits [N, 4], value [N, 1])`, `input_size`).
    """

    model: object
    ms: float = 100.0
    """Time budget per move and game, in milliseconds (0: no time limit; then set `visits`)."""
    visits: int = 0
    """Most descents per move (0: as many as the budget allows)."""
    c_puct: float = 1.5
    """Exploration constant of PUCT (values are in [-1, 1])."""
    batch: int = 16
    """Leaves collected (with virtual loss) per network call (16 measured 2.5x the
    simulations of 1 at 100 ms with a 6x32 network; 32 no more than 16)."""
    prune: float = 0.0
    """Moves whose prior is below this fraction of the best move's are not searched."""
    reuse: bool = True
    """Keep the subtree of the joint move played as the next turn's root (:mod:`.puct`'s docstring)."""
    endgame: float = 0.0
    """Hand-off: once the living snakes' bodies fill at least this share of the board's cells (0 to 1;
    0: never), the compiled alpha-beta (:func:`.search.choose_compiled`) decides the move within the
    same budget instead of the tree (see the module's docstring)."""
    margin: float = 0.0
    """Under `endgame`, with `tiebreak` policy or value: the network picks among the alpha-beta's moves
    scored within this many points of the best (:func:`.search.choose`'s `margin`; 0: exact ties only;
    10 points is one cell of territory at the default weights)."""
    leaf: bool = True
    """Under `endgame`, the alpha-beta adds the model's leaf net (:mod:`.leafnet`; carried in the ONNX
    file's metadata) to its leaf scores, when the model carries one made for the game's board size and
    the compiled kernel runs; off: the hand-made count alone."""
    tiebreak: str = "search"
    """Under `endgame`, what ranks the moves the alpha-beta scores alike (its exact ties, or those
    within `margin`): ``search`` (the default), no network call: the alpha-beta's own order (its
    previous iteration's), as `search` breaks them (`margin` must then be 0); ``policy``, the
    policy's logits at the root (one row); ``value``, each move's worst value head over the rivals'
    safe replies one turn on (paranoid, as the alpha-beta; one call of up to 3 x 3^rivals rows).
    ``search`` is the default because the network's choice never won: with the policy the hand-off
    played level with `search` at 50 ms (exact ties, and within 20 points: 51.5% over 200), and with
    a leaf net it screened 51.25% over 80 duels where the alpha-beta's own order scored 58.25% over
    200 (README, *Strength*)."""
    name: str = "nsearch"
    results: list = dataclasses.field(default_factory=list, repr=False)
    """Recent SearchResults (benchmarks and expert iteration read them; capped at 10,000)."""
    kept: puct.KeptTrees = dataclasses.field(
        default_factory=lambda: puct.KeptTrees(puct.MAX_KEPT_ROOTS, puct.MAX_KEPT_NODES), repr=False)
    """The children of recent searches, by position, for tree reuse."""
    handoffs: int = dataclasses.field(default=0, repr=False)
    """Decisions the alpha-beta made under `endgame` (benchmarks read it)."""

    def __post_init__(self) -> None:
        # Each option's range, checked before the search runs: a NaN budget or c_puct compares
        # false with everything (the search would run unbudgeted or rank children arbitrarily), a
        # negative c_puct turns exploration into avoidance, and prune above 1 leaves no move at all.
        for option, low, high in (("ms", 0.0, math.inf), ("c_puct", 0.0, math.inf), ("prune", 0.0, 1.0),
                                  ("endgame", 0.0, 1.0), ("margin", 0.0, math.inf)):
            value = getattr(self, option)
            if not (low <= value <= high and math.isfinite(value)):
                bound = f"a finite number >= {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
                raise ValueError(f"nsearch: {option} must be {bound}, got {value!r}")
        if self.visits < 0:
            raise ValueError(f"nsearch: visits must be >= 0 (0: no cap), got {self.visits}")
        if self.ms <= 0 and self.visits <= 0:
            raise ValueError("nsearch: set a time budget (ms > 0) or a simulation cap (visits > 0)")
        if self.batch < 1:
            raise ValueError(f"nsearch: batch must be >= 1, got {self.batch}")
        if self.endgame > 0 and self.ms <= 0:
            raise ValueError("nsearch: endgame hands the move to the alpha-beta within the time budget: set ms > 0")
        if self.tiebreak not in TIEBREAKS:
            raise ValueError(f"nsearch: tiebreak must be one of {', '.join(TIEBREAKS)}, got {self.tiebreak!r}")
        if self.margin > 0 and self.endgame <= 0:
            raise ValueError("nsearch: margin widens the hand-off's tie-break: set endgame > 0")
        if self.margin > 0 and self.tiebreak == "search":
            raise ValueError("nsearch: margin hands near-best moves to the network: set tiebreak=policy or "
                             "tiebreak=value with it")
        if not hasattr(self.model, "evaluate"):
            from ouroboros.trainer.agents import neural

            self.model = neural.OnnxPlayer(self.model, name="nsearch-model")
        session = getattr(self.model, "session", None)  # a net is read only where it would play
        used = session is not None and self.leaf and self.endgame > 0
        self._leaf_net = leafnet.carried(session.get_modelmeta().custom_metadata_map) if used else None

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        """Moves for `seat` in every game. Shape [B] int8."""
        return self.act_scored(config, state, seat, rng)[0]

    def act_scored(self, config: GameConfig, state: BatchState, seat: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`act`'s moves [B] int8 and each decision's root value for `seat`, float64 [B] in [-1, 1]
        (:attr:`.puct.SearchResult.value`), NaN where nothing was searched (game over, snake out, one or no
        move to choose from) and where the alpha-beta decided (`endgame`: its score is in points). A bootstrap teacher's protocol (``selfplay``): :meth:`values` turns a
        position's scores into value targets, as AlphaZero-style systems train the value on the
        search's root value (MuZero Reanalyse; Schrittwieser et al. 2021)."""
        moves = np.zeros(state.batch_size, np.int8)
        scores = np.full(state.batch_size, np.nan)
        over = state.game_over(config.ruleset is Ruleset.SOLO)
        crowded = self.crowded(config, state)
        for g in np.flatnonzero(~over & state.alive[:, seat]):
            if crowded[g]:
                moves[g] = self.hand_off(config, state, int(g), seat).move
                continue
            result = self.search(config, state, int(g), seat)
            moves[g] = result.move
            if result.simulations or result.reused:
                scores[g] = result.value
            self.results.append(result)
            if len(self.results) > 10_000:
                del self.results[:5_000]
        return moves, scores

    def crowded(self, config: GameConfig, state: BatchState) -> np.ndarray:
        """Which games the alpha-beta decides under `endgame`: bool [B], True where the living
        snakes' lengths add up to at least ``endgame * width * height`` cells (all False when
        `endgame` is 0)."""
        if self.endgame <= 0:
            return np.zeros(state.batch_size, bool)
        bodies = np.where(state.alive, state.length, 0).sum(axis=1)
        return bodies >= self.endgame * config.width * config.height

    def hand_off(self, config: GameConfig, state: BatchState, game: int, seat: int):
        """The compiled alpha-beta's :class:`.search.Decision` for snake `seat` of game `game`
        within `ms` (or the caller's deadline, `agents.stopping`, if sooner; the network call
        below comes out of the same budget), with the search player's default weights, depth cap
        and focus, and the model's leaf net at its leaves (:meth:`leaf_net`); the python tree, and no
        leaf net, where numba is missing. By `tiebreak`, the network's policy at the root (one call)
        breaks the alpha-beta's exact ties (`search.choose`'s `prior`), and with `margin` chooses
        among all the moves scored within it of the best: where the evaluation cannot tell moves
        apart (or, with a margin, tells them apart by less), the network chooses instead of the
        previous iteration's order (which also decides where the policy is not finite, and with
        ``tiebreak=search``)."""
        from ouroboros.trainer.agents import search

        start = time.perf_counter()
        decide = search.choose_compiled if search.compiled_available() else search.choose
        self.handoffs += 1
        rules_, pos = compact.Rules.of(config, state, game), compact.from_batch(state, game)
        with COLLECTOR.paused():
            prior = self.root_prior(config, state, game, rules_, pos, seat)
        seconds = max(self.ms / 1000.0 - (time.perf_counter() - start), 0.0)
        net = self.leaf_net(rules_.geo.board.n_cells) if decide is search.choose_compiled else None
        extra = {"net": net} if net is not None else {}
        return decide(rules_, pos, seat, seconds, prior=prior, margin=self.margin if prior is not None else 0.0,
                      **extra)

    def leaf_net(self, n_cells: int) -> leafnet.LeafNet | None:
        """The leaf net the hand-off adds to the alpha-beta's leaves on a board of `n_cells` padded
        cells: the model's (:attr:`leaf`), None when off, when the model carries none, or when it was
        made for another board size (a model exported for 11x11 and served on 7x7 hands off on the count
        alone rather than failing the move)."""
        net = self._leaf_net
        return net if self.leaf and net is not None and net.cells == n_cells else None

    def root_prior(self, config: GameConfig, state: BatchState, game: int, rules_: compact.Rules,
                   pos: compact.Position, seat: int, tiebreak: str | None = None) -> list[float] | None:
        """The hand-off's ranking of snake `seat`'s moves in game `game` of `state` (`rules_`, `pos`: the
        same game in the search's form, which the caller has already built), float [4] by Move value, by
        `tiebreak` (default the player's): the policy's logits (ranks only: no softmax), or
        :meth:`value_prior`. None where it is not finite (a broken network), where there is no choice,
        and with ``search`` (the alpha-beta's own order)."""
        if (tiebreak or self.tiebreak) == "search":
            return None
        if (tiebreak or self.tiebreak) == "value":
            prior = self.value_prior(config, rules_, pos, int(state.turn[game]), seat)
        else:
            size = self.model._size(config) if hasattr(self.model, "_size") else None
            logits, _ = self.model.evaluate(encoding.encode(config, state.select(np.array([game])),
                                                            np.array([seat]), size=size))
            prior = logits[0].tolist()
        return prior if prior is not None and all(math.isfinite(p) for p in prior) else None

    def value_prior(self, config: GameConfig, rules_: compact.Rules, pos: compact.Position, turn: int,
                    seat: int) -> list[float] | None:
        """`tiebreak=value`'s ranking of snake `seat`'s moves, float [4] by Move value: for each safe
        move, the lowest value the network gives `seat` over every joint reply of its living rivals'
        safe moves (a rival without one moves up), one turn on: -1 where `seat` dies, +1 where it is
        the last alive, the value head elsewhere (one call for all the positions); -2 for unsafe moves.
        None with one or no safe move (the alpha-beta has no choice to make)."""
        snakes = pos[0]
        obstacles = compact.obstacles(rules_.geo.bit, snakes)
        mine = puct.safe_moves(rules_, snakes[seat], obstacles)
        if len(mine) <= 1:
            return None
        rivals = [i for i, s in enumerate(snakes) if s is not None and i != seat]
        replies = list(itertools.product(*(puct.safe_moves(rules_, snakes[r], obstacles) or [0] for r in rivals)))
        worst = {m: math.inf for m in mine}
        asked: list[tuple[int, compact.Position]] = []
        for m in mine:
            for reply in replies:
                joint = [0] * len(snakes)
                joint[seat] = m
                for r, t in zip(rivals, reply, strict=True):
                    joint[r] = t
                child = rules_.step(pos, joint)
                if child[0][seat] is None:
                    worst[m] = min(worst[m], -1.0)
                elif all(s is None for i, s in enumerate(child[0]) if i != seat):
                    worst[m] = min(worst[m], 1.0)
                else:
                    asked.append((m, child))
        if asked:
            size = self.model._size(config) if hasattr(self.model, "_size") else None
            batch = compact.to_batch(rules_, [child for _, child in asked], [turn + 1] * len(asked))
            _, values = self.model.evaluate(encoding.encode(config, batch, np.full(len(asked), seat), size=size))
            for (m, _), v in zip(asked, values[:, 0].tolist(), strict=True):
                worst[m] = min(worst[m], v)
        return [worst.get(m, -2.0) for m in range(4)]

    @staticmethod
    def values(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each seat's value of a position from :meth:`act_scored`'s scores float [N, S]: the root
        values as they are (each already one seat's own, in [-1, 1]). Returns (values float32 [N, S],
        valid bool [N, S]: where the seat was searched; 0 elsewhere)."""
        scores = np.asarray(scores, np.float64)
        valid = ~np.isnan(scores)
        return np.where(valid, np.clip(scores, -1.0, 1.0), 0.0).astype(np.float32), valid

    def search(self, config: GameConfig, state: BatchState, game: int, seat: int) -> puct.SearchResult:
        """One decision for snake `seat` of game `game` of `state`, by `ms` from now or by the
        caller's deadline if sooner, and before the next round once the caller hangs up
        (`agents.stopping`: the snake server anchors its deadline at the request's arrival)."""
        asked = stopping.current()
        deadline = asked.sooner(time.perf_counter() + self.ms / 1000.0 if self.ms > 0 else math.inf)
        with COLLECTOR.paused():
            return self._search(config, state, game, seat, deadline, asked.hung_up)

    def search_many(self, config: GameConfig, state: BatchState, games, seats) -> list[puct.SearchResult]:
        """One decision for each (``games[k]``, ``seats[k]``) of `state`, the trees searched in lockstep.

        Each round every unfinished tree descends up to `batch` times, and all their new leaves go
        through the network in one call: one forward of up to ``len(games) * batch`` positions instead
        of a small one per tree, as self-play engines batch many games' searches (AlphaZero's
        actors; KataGo's shared neural-net batches). Each tree makes exactly the descents a lone
        :meth:`search` under the same `visits` cap makes, so with the same evaluations it reaches
        the same result. Needs a simulation cap and no clock (``visits > 0``, ``ms == 0``: expert
        iteration's setting); no tree is kept for reuse. ValueError otherwise.
        """
        if self.visits <= 0 or self.ms > 0:
            raise ValueError("nsearch: search_many needs a simulation cap (visits > 0) and no clock (ms = 0)")
        trees = []
        for game, seat in zip(games, seats, strict=True):
            game, seat = int(game), int(seat)
            tree = puct.Tree(self, config, compact.Rules.of(config, state, game), int(state.turn[game]), seat)
            tree.root = puct.Node(compact.from_batch(state, game), 0, None)
            trees.append(tree)
        with COLLECTOR.paused():
            puct.expand_together([(tree, [tree.root]) for tree in trees], self.model)
            sims = [0] * len(trees)
            active = [k for k, tree in enumerate(trees) if tree.has_choice()]
            while active:
                rounds = [(k, *trees[k].collect(trees[k].root, min(self.batch, self.visits - sims[k]))) for k in active]
                puct.expand_together([(trees[k], leaves) for k, _, leaves, _ in rounds if leaves], self.model)
                for k, paths, leaves, done in rounds:
                    sims[k] += done + trees[k].finish(paths, leaves)
                active = [k for k in active if sims[k] < self.visits]
            return [tree.result(n) for tree, n in zip(trees, sims, strict=True)]

    def _search(self, config: GameConfig, state: BatchState, game: int, seat: int, deadline: float,
                hung_up: threading.Event | None) -> puct.SearchResult:
        rules, turn, pos = compact.Rules.of(config, state, game), int(state.turn[game]), compact.from_batch(state, game)
        root = self.kept.take((config, rules, seat, turn, pos)) if self.reuse else None
        origin = turn - root.ply if root is not None else turn
        tree = puct.Tree(self, config, rules, origin, seat)
        result = tree.run(root or puct.Node(pos, 0, None), deadline, self.visits or 1 << 62, hung_up)
        if self.reuse:  # file the children the game may go on from (not finished, already evaluated)
            children = [((config, rules, seat, origin + child.ply, child.pos), child)
                        for child in tree.root.children.values() if child.terminal is None and child.value is not None]
            if children:
                self.kept.put(children)
        return result


TIEBREAKS = ("policy", "value", "search")
"""What ranks the hand-off's near-best moves (:attr:`NeuralSearch.tiebreak`)."""


def _flag(text: str) -> bool:
    """A spec's boolean option: 1/true/yes/on or 0/false/no/off."""
    value = text.strip().lower()
    if value not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(text)
    return value in ("1", "true", "yes", "on")


OPTIONS = {"ms": float, "visits": int, "c_puct": float, "batch": int, "prune": float, "reuse": _flag,
           "endgame": float, "margin": float, "leaf": _flag, "tiebreak": str}
_KINDS = {_flag: "bool (1/0, true/false)"}
"""How an option's kind is named in an error, where its parser's name would not say."""


def from_spec(text: str, model: object | None = None) -> NeuralSearch:
    """The ``nsearch:model=M[,ms=N,visits=N,c_puct=X,batch=N,prune=X,reuse=0|1,endgame=X,margin=X,leaf=0|1,
    tiebreak=policy|value|search]`` player.

    M is an ONNX file, ``champion`` / ``champion:GAME`` (the registry's champion,
    $OURO_STORE or ./runs/registry) or ``registry:VERSION``; a `model` argument
    (an already loaded OnnxPlayer) replaces it. Raises ValueError naming the bad
    option.
    """
    options: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"expected key=value, got {item!r}")
        if key.strip() in options:
            raise ValueError(f"option {key.strip()!r} given twice")
        options[key.strip()] = value.strip()
    named = options.pop("model", "")
    if not named and model is None:
        raise ValueError("name the network: nsearch:model=champion (or an ONNX file, registry:VERSION)")
    kwargs: dict[str, object] = {}
    for key, value in options.items():
        if key not in OPTIONS:
            raise ValueError(f"unknown option {key!r} (options: model, {', '.join(OPTIONS)})")
        try:
            kwargs[key] = OPTIONS[key](value)
        except ValueError:
            kind = _KINDS.get(OPTIONS[key], OPTIONS[key].__name__)
            raise ValueError(f"option {key}={value!r} is not a valid {kind}") from None
    return NeuralSearch(model if model is not None else load_model(named), name=f"nsearch:{text}", **kwargs)


def load_model(model: str):
    """The network a `model=` option names, as an OnnxPlayer (sha256-checked when from the registry)."""
    from ouroboros.trainer.agents import neural, stored

    scheme, _, rest = model.partition(":")
    if scheme == "champion":
        return stored.champion_player(rest)
    if scheme == "registry":
        return stored.version_player(rest)
    if not os.path.isfile(model):
        raise FileNotFoundError(f"no such model file: {model}")
    return neural.OnnxPlayer(model, name=f"onnx:{model}")
