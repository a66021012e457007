"""The neural-guided search player: decoupled PUCT Monte-Carlo tree search over simultaneous moves.

A Battlesnake turn is simultaneous, so a tree of alternating moves (what
AlphaZero searches in Go and chess) would let the second mover see the first
one's choice. This search keeps the turn whole, as *decoupled UCT* does
(Lanctot et al., "Monte Carlo Tree Search for Simultaneous Move Games: A Case
Study in the Game of Goofspiel", 2013; Tak, Lanctot and Winands 2014): every
node keeps separate statistics for each living snake's moves, each snake
picks its own move by its own selection rule, and the joint move leads to
the child. The selection rule is AlphaZero's PUCT (Silver et al. 2017/2018):

    a_s = argmax_a  Q_s(a) + c_puct * P_s(a) * sqrt(N) / (1 + N_s(a))

with P the network's policy over the moves that do not lose at once
(softmax of its logits, so it orders and prunes: moves the network gives
less than `prune` of the best move's probability are not searched), Q the
mean value that snake saw after that move, unvisited moves valued at the
node's own evaluation (first-play urgency). Leaves are valued by the
network's value head, one evaluation per living snake (the value is each
snake's own expected outcome, in [-1, 1]); finished games by their result
(winner +1, eliminated -1, all eliminated together 0).

**Tree reuse.** With `reuse` on (the default), the subtree below the
joint move that was actually played becomes the next turn's root, as
AlphaZero and KataGo keep it: its visits and values count from the start,
and only new descents are charged to the next move's budget. Each search
files its root's children under their positions (and the seat, turn,
rules); the next search of the same seat looks its position up there and
takes the matching child, dropping its siblings. A position the tree did not
predict (food spawned, hazards moved, another game) finds nothing and
searches afresh, so reuse never changes what is searched, only how much is
already known. At most `MAX_KEPT_ROOTS` searches are kept (oldest dropped),
and at most `MAX_KEPT_NODES` nodes, which bounds the memory of a server
or a batch of games (a batch whose trees do not fit loses reuse, not
correctness).

**Batched evaluation.** Each round descends `batch` times with a virtual
loss on the moves taken (so the descents spread out, as in AlphaGo's
asynchronous search), then encodes all new leaves x living snakes into one
tensor and runs the ONNX model once (`search_many` runs many games' trees in
lockstep, one call for all their leaves: expert iteration's searches).
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
search games beat `search` at 50 ms, 58.25% [51.3%, 64.9%] over 200 duels,
and with another such net (the preset's own, other seeds) scored 46.75%
[40.0%, 53.7%] (README, *Strength*). Moves the alpha-beta scores exactly alike
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

import collections
import dataclasses
import itertools
import math
import os
import threading
import time

import numpy as np

from ouroboros.trainer.agents import compact, leafnet, stopping
from ouroboros.trainer.agents.collector import COLLECTOR
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig, Ruleset
from ouroboros.trainer.observation import encoding

VIRTUAL_LOSS = 1.0
MAX_KEPT_ROOTS = 64
"""Searches whose children a reusing player keeps for the next turn (a batch of games or a server's
concurrent games each need one; the oldest are dropped first, so a 65th concurrent game searches afresh)."""
MAX_KEPT_NODES = 10_000
"""Nodes (bounded by their descents) a reusing player keeps in all: about 20 MB at the 2 kB a node
measured by ``benchmarks.nsearch_reuse``, and what bounds the collector's full pass (42 ms measured with
10,000 kept in a server-like process, frozen as ``ouro serve`` freezes it; 250 ms at 50,000 unfrozen;
a 6x32 network's 11x11 duel)."""


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What one search concluded, with the root statistics expert iteration reads."""

    move: int
    """The chosen move (Move value)."""
    visits: tuple[int, int, int, int]
    """Root visits of our moves (UP, DOWN, LEFT, RIGHT; 0 for moves not searched)."""
    q: tuple[float, float, float, float]
    """Mean value of each root move for us, in [-1, 1] (0 where unvisited)."""
    value: float
    """The root's value for us: visit-weighted mean of `q` (the search's value target)."""
    simulations: int
    """Descents completed (leaves evaluated plus finished games reached)."""
    depth: int
    """Deepest leaf reached, in turns below the root."""
    evaluations: int
    """Network calls (each a batch of leaves x living snakes)."""
    reused: int = 0
    """Descents inherited from the previous turn's tree (the root's visits before this search)."""


class _Node:
    """One position: per living snake its candidate moves, priors, visits and value sums."""

    __slots__ = ("pos", "ply", "seats", "moves", "prior", "n", "w", "visits", "children",
                 "value", "terminal", "pending")

    def __init__(self, pos: compact.Position, ply: int, terminal: np.ndarray | None) -> None:
        self.pos, self.ply, self.terminal = pos, ply, terminal
        # immutable once expanded: tuples of numbers, which the cyclic collector stops tracking
        self.seats: tuple[int, ...] = ()
        self.moves: tuple[tuple[int, ...], ...] = ()
        self.prior: tuple[tuple[float, ...], ...] = ()
        self.n: list[list[int]] = []
        self.w: list[list[float]] = []
        self.visits = 0
        self.children: dict[tuple[int, ...], _Node] = {}
        self.value: np.ndarray | None = None  # per snake, set when evaluated
        self.pending = False


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
    """Keep the subtree of the joint move played as the next turn's root (see the module's docstring)."""
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
    kept: _KeptTrees = dataclasses.field(default_factory=lambda: _KeptTrees(MAX_KEPT_ROOTS, MAX_KEPT_NODES),
                                         repr=False)
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
        (:attr:`SearchResult.value`), NaN where nothing was searched (game over, snake out, one or no
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
        mine = _safe_moves(rules_, snakes[seat], obstacles)
        if len(mine) <= 1:
            return None
        rivals = [i for i, s in enumerate(snakes) if s is not None and i != seat]
        replies = list(itertools.product(*(_safe_moves(rules_, snakes[r], obstacles) or [0] for r in rivals)))
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

    def search(self, config: GameConfig, state: BatchState, game: int, seat: int) -> SearchResult:
        """One decision for snake `seat` of game `game` of `state`, by `ms` from now or by the
        caller's deadline if sooner, and before the next round once the caller hangs up
        (`agents.stopping`: the snake server anchors its deadline at the request's arrival)."""
        asked = stopping.current()
        deadline = asked.sooner(time.perf_counter() + self.ms / 1000.0 if self.ms > 0 else math.inf)
        with COLLECTOR.paused():
            return self._search(config, state, game, seat, deadline, asked.hung_up)

    def search_many(self, config: GameConfig, state: BatchState, games, seats) -> list[SearchResult]:
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
            tree = _Tree(self, config, compact.Rules.of(config, state, game), int(state.turn[game]), seat)
            tree.root = _Node(compact.from_batch(state, game), 0, None)
            trees.append(tree)
        with COLLECTOR.paused():
            _expand_together([(tree, [tree.root]) for tree in trees], self.model)
            sims = [0] * len(trees)
            active = [k for k, tree in enumerate(trees) if tree.has_choice()]
            while active:
                rounds = [(k, *trees[k].collect(trees[k].root, min(self.batch, self.visits - sims[k]))) for k in active]
                _expand_together([(trees[k], leaves) for k, _, leaves, _ in rounds if leaves], self.model)
                for k, paths, leaves, done in rounds:
                    sims[k] += done + trees[k].finish(paths, leaves)
                active = [k for k in active if sims[k] < self.visits]
            return [tree.result(n) for tree, n in zip(trees, sims, strict=True)]

    def _search(self, config: GameConfig, state: BatchState, game: int, seat: int, deadline: float,
                hung_up: threading.Event | None) -> SearchResult:
        rules, turn, pos = compact.Rules.of(config, state, game), int(state.turn[game]), compact.from_batch(state, game)
        root = self.kept.take((config, rules, seat, turn, pos)) if self.reuse else None
        origin = turn - root.ply if root is not None else turn
        tree = _Tree(self, config, rules, origin, seat)
        result = tree.run(root or _Node(pos, 0, None), deadline, self.visits or 1 << 62, hung_up)
        if self.reuse:  # file the children the game may go on from (not finished, already evaluated)
            children = [((config, rules, seat, origin + child.ply, child.pos), child)
                        for child in tree.root.children.values() if child.terminal is None and child.value is not None]
            if children:
                self.kept.put(children)
        return result


class _KeptTrees:
    """The children of recent searches, filed by (config, rules, seat, turn, position), for tree reuse.

    Thread-safe: a server's games share one player. Taking a child drops its siblings (the other joint
    moves, which the game did not play); beyond `limit` searches, or `max_nodes` nodes (counted as the
    children's descents plus one, an upper bound), the oldest searches are dropped.
    """

    def __init__(self, limit: int, max_nodes: int) -> None:
        self.limit, self.max_nodes, self.nodes = limit, max_nodes, 0
        self._lock = threading.Lock()
        self._children: dict[tuple, tuple[int, _Node]] = {}
        self._roots: collections.OrderedDict[int, list[tuple]] = collections.OrderedDict()
        self._sizes: dict[int, int] = {}
        self._tokens = itertools.count()

    def put(self, children: list[tuple[tuple, _Node]]) -> None:
        """File one search's root `children` under their keys."""
        with self._lock:
            token = next(self._tokens)
            self._roots[token] = [key for key, _ in children]
            self._sizes[token] = sum(child.visits + 1 for _, child in children)
            self.nodes += self._sizes[token]
            for key, child in children:
                old = self._children.get(key)
                if old is not None and old[0] != token:  # the same position from another search: newest wins
                    self._roots.get(old[0], []).remove(key)
                self._children[key] = (token, child)
            while self._roots and (len(self._roots) > self.limit or self.nodes > self.max_nodes):
                self._drop(next(iter(self._roots)))

    def take(self, key: tuple) -> _Node | None:
        """The child filed under `key` (its siblings dropped), or None."""
        with self._lock:
            found = self._children.get(key)
            if found is None:
                return None
            self._drop(found[0])
            return found[1]

    def _drop(self, token: int) -> None:
        for key in self._roots.pop(token, ()):
            self._children.pop(key, None)
        self.nodes -= self._sizes.pop(token, 0)

    def __len__(self) -> int:
        return len(self._roots)


class _Tree:
    """One decision's tree: the rules, the network, the root and the statistics."""

    def __init__(self, owner: NeuralSearch, config: GameConfig, rules: compact.Rules, turn: int, me: int):
        self.p, self.config, self.rules, self.turn, self.me = owner, config, rules, turn, me
        self.solo = config.ruleset is Ruleset.SOLO
        self.size = owner.model._size(config) if hasattr(owner.model, "_size") else None
        self.depth = self.evaluations = 0

    def run(self, root: _Node, deadline: float, cap: int, hung_up: threading.Event | None = None) -> SearchResult:
        """Search from `root` (new, or a reused subtree whose statistics count) until `cap` new descents
        are spent, `hung_up` is set, or the deadline would pass during the next round (a round is not
        begun unless the last one's duration fits before the deadline: on a loaded machine a round
        takes several times its usual time, and the answer must not wait for it)."""
        self.root, reused = root, root.visits
        if root.value is None:
            self.expand([root])
        self.depth = root.ply
        sims, last = 0, 0.0
        if self.has_choice():
            while sims < cap and not (hung_up and hung_up.is_set()):
                began = time.perf_counter()
                if began + last >= deadline:
                    break
                sims += self.round(root, min(self.p.batch, cap - sims))
                last = time.perf_counter() - began
        return self.result(sims, reused)

    def has_choice(self) -> bool:
        """Whether our snake has more than one move at the (expanded) root: else there is nothing to search."""
        return len(self.root.moves[self.root.seats.index(self.me)]) > 1

    def result(self, sims: int, reused: int = 0) -> SearchResult:
        """The decision and root statistics after `sims` new descents."""
        root = self.root
        mine = root.seats.index(self.me)
        n, w, moves = root.n[mine], root.w[mine], root.moves[mine]
        best = max(range(len(moves)), key=lambda i: (n[i], w[i] / n[i] if n[i] else -2.0, -i))
        visits, q = [0] * 4, [0.0] * 4
        for i, m in enumerate(moves):
            visits[m], q[m] = n[i], (w[i] / n[i] if n[i] else 0.0)
        total = sum(n)
        value = sum(w) / total if total else float(root.value[self.me])
        return SearchResult(moves[best], tuple(visits), tuple(q), value, sims, self.depth - root.ply,
                            self.evaluations, reused)

    # -- one round: descents with virtual loss, one network call, backups --------------

    def round(self, root: _Node, width: int) -> int:
        """Up to `width` descents, their new leaves evaluated together. Returns descents done."""
        paths, leaves, done = self.collect(root, width)
        if leaves:
            self.expand(leaves)
            done += self.finish(paths, leaves)
        return done

    def collect(self, root: _Node, width: int) -> tuple[list, list[_Node], int]:
        """Up to `width` descents with virtual loss: (their paths, the new leaves awaiting the network,
        descents already complete because they reached a finished game)."""
        paths, leaves, done = [], [], 0
        for _ in range(width):
            path, leaf = self.descend(root)
            if leaf.terminal is not None:
                self.backup(path, leaf.terminal)
                done += 1
                continue
            if leaf.pending:  # two descents reached the same new leaf: evaluate what we have
                self.backup(path, None)
                break
            leaf.pending = True
            paths.append(path)
            leaves.append(leaf)
        return paths, leaves, done

    def finish(self, paths: list, leaves: list[_Node]) -> int:
        """Back up the values of `leaves` (evaluated since `collect`) along their paths; returns their number."""
        for path, leaf in zip(paths, leaves, strict=True):
            leaf.pending = False
            self.backup(path, leaf.value)
        return len(leaves)

    def descend(self, node: _Node) -> tuple[list, _Node]:
        """Select joint moves from `node` down to an unevaluated or finished node,
        adding a virtual loss on every move taken."""
        path = []
        c = self.p.c_puct
        while node.terminal is None and node.value is not None:
            sq = math.sqrt(node.visits + 1)
            picks = []
            for k, s in enumerate(node.seats):
                n, w, prior = node.n[k], node.w[k], node.prior[k]
                fpu = float(node.value[s])
                best, best_i = -math.inf, 0
                for i in range(len(n)):
                    q = w[i] / n[i] if n[i] else fpu
                    u = q + c * prior[i] * sq / (1 + n[i])
                    if u > best:
                        best, best_i = u, i
                picks.append(best_i)
                n[best_i] += 1
                w[best_i] -= VIRTUAL_LOSS
            node.visits += 1
            path.append((node, picks))
            joint = [0] * len(node.pos[0])
            for k, s in enumerate(node.seats):
                joint[s] = node.moves[k][picks[k]]
            key = tuple(joint)
            child = node.children.get(key)
            if child is None:
                child_pos = self.rules.step(node.pos, joint)
                child = _Node(child_pos, node.ply + 1, self.outcome(node, child_pos))
                node.children[key] = child
            node = child
        self.depth = max(self.depth, node.ply)
        return path, node

    def backup(self, path: list, value: np.ndarray | None) -> None:
        """Replace the virtual losses on `path` by `value` (per snake), or just remove
        them (value None: a descent given up)."""
        for node, picks in path:
            for k, s in enumerate(node.seats):
                i = picks[k]
                if value is None:
                    node.n[k][i] -= 1
                    node.w[k][i] += VIRTUAL_LOSS
                else:
                    node.w[k][i] += VIRTUAL_LOSS + float(value[s])
            if value is None:
                node.visits -= 1

    # -- positions -------------------------------------------------------------------

    def outcome(self, parent: _Node, pos: compact.Position) -> np.ndarray | None:
        """Per-snake result if the game is over for us (we are out, or no rival is left), else None."""
        snakes = pos[0]
        alive = [i for i, s in enumerate(snakes) if s is not None]
        if self.solo:
            return None if alive else np.full(len(snakes), -1.0)
        if len(alive) > 1 and snakes[self.me] is not None:
            return None
        result = np.full(len(snakes), -1.0)
        if len(alive) == 1:
            result[alive[0]] = 1.0
        elif not alive:
            result[list(parent.seats)] = 0.0  # eliminated together: a draw for those alive before
        else:
            result[alive] = 0.0  # we are out and several rivals play on
        return result

    def expand(self, nodes: list[_Node]) -> None:
        """Evaluate `nodes` with one network call: candidate moves, priors and values."""
        logits, values = self.p.model.evaluate(self.planes(nodes))
        self.apply(nodes, logits, values)

    def planes(self, nodes: list[_Node]) -> np.ndarray:
        """The network's input for `nodes`: one row per living snake of each node, in node then seat
        order, float32 [sum of living snakes, C, H, W]."""
        rows, seats = [], []
        for r, node in enumerate(nodes):
            node.seats = tuple(i for i, s in enumerate(node.pos[0]) if s is not None)
            rows.extend([r] * len(node.seats))
            seats.extend(node.seats)
        state = compact.to_batch(self.rules, [n.pos for n in nodes], [self.turn + n.ply for n in nodes])
        return encoding.encode(self.config, state.select(np.asarray(rows)), np.asarray(seats), size=self.size)

    def apply(self, nodes: list[_Node], logits: np.ndarray, values: np.ndarray) -> None:
        """Expand `nodes` from the network's answer to :meth:`planes` (logits [R, 4], values [R, 1]):
        candidate moves, priors and values."""
        self.evaluations += 1
        at = 0
        for node in nodes:
            node.value = np.full(len(node.pos[0]), -1.0)
            snakes = node.pos[0]
            obstacles = compact.obstacles(self.rules.geo.bit, snakes)
            moves_of, prior_of = [], []
            for s in node.seats:
                node.value[s] = float(values[at, 0])
                moves = _safe_moves(self.rules, snakes[s], obstacles) or [0]
                z = [float(logits[at, m]) for m in moves]
                top = max(z)
                p = [math.exp(v - top) for v in z]
                if self.p.prune > 0 and len(moves) > 1:
                    moves = [m for m, v in zip(moves, p, strict=True) if v >= self.p.prune]
                    p = [v for v in p if v >= self.p.prune]
                total = sum(p)
                moves_of.append(tuple(moves))
                prior_of.append(tuple(v / total for v in p))
                node.n.append([0] * len(moves))
                node.w.append([0.0] * len(moves))
                at += 1
            node.moves, node.prior = tuple(moves_of), tuple(prior_of)


def _expand_together(groups: list[tuple[_Tree, list[_Node]]], model) -> None:
    """Expand each tree's nodes, all of them through one network call (their planes concatenated)."""
    if not groups:
        return
    planes = [tree.planes(nodes) for tree, nodes in groups]
    logits, values = model.evaluate(np.concatenate(planes) if len(planes) > 1 else planes[0])
    at = 0
    for (tree, nodes), rows in zip(groups, planes, strict=True):
        tree.apply(nodes, logits[at:at + len(rows)], values[at:at + len(rows)])
        at += len(rows)


def _safe_moves(rules: compact.Rules, snake, obstacles: int) -> list[int]:
    """Moves that stay on the board and off bodies (Move values, in order)."""
    bit, inside = rules.geo.bit, rules.geo.inside
    cells = rules.targets(snake)
    return [m for m in range(4) if inside & bit[cells[m]] and not obstacles & bit[cells[m]]]


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
