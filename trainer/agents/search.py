"""The search player: paranoid alpha-beta over simultaneous moves, the strong baseline.

Each turn every snake moves at once. The search serialises a turn as a max node
(our move) followed by a min node over the joint moves of the opponents that
matter (the `focus` nearest, within reach of our head over the remaining depth;
all of them in a duel): the opponents are assumed to know our move and to play
against us together ("paranoid"). Other opponents play a fixed safe move. The
turn is then resolved with the engine's rules (compact.py).

Leaves are scored by a Voronoi partition (cells each snake reaches strictly
first), length advantage, food distance when hungry and health. Iterative
deepening runs whole turns (depth = turns looked ahead) until the per-move
budget (default 400 ms) runs out, with the previous iteration's best move
first, a history heuristic for move ordering and an early stop once the result
is proven (a forced win or loss).

Two kernels run this one algorithm node for node (`Kernel`): `python`, the
tree below on Python-integer bitboards (what `search-v1` plays), and `numba`,
the same tree compiled (`search_kernel.py`), the default: about 50x the nodes
per second, so the same budget looks turns deeper. The compiled kernel can add a
learned correction to every leaf's score (`leafnet`: a small net trained on search
games' outcomes, NNUE's shape; :mod:`.leafnet`).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import itertools
import logging
import math
import threading
import time
from collections.abc import Sequence

import numpy as np

from ouroboros.trainer.agents import compact, leafnet, stopping
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig, Ruleset

log = logging.getLogger(__name__)

WIN = 1_000_000.0
DRAW = -50_000.0  # every snake dead in the same turn: better than losing, worse than playing on
PROVEN = WIN / 2
EARLY_STOP = 0.4  # fraction of the budget after which no new iteration starts
CLOCK_EVERY = 1
"""Nodes between two looks at the clock. Every node (about 60 ns against tens of
microseconds of work): on a loaded machine a batch of nodes between two looks could
outlast the game's timeout (`python -m benchmarks.search_deadline` compares with 128)."""


class _Timeout(Exception):
    """The move budget ran out inside an iteration."""


class Kernel(str, enum.Enum):
    """Which implementation runs the tree (the same algorithm, node for node)."""

    PYTHON = "python"
    """Python-integer bitboards in this module (search-v1)."""
    NUMBA = "numba"
    """Compiled by numba (`search_kernel.py`); falls back to python where numba is missing."""


@dataclasses.dataclass(frozen=True)
class SearchWeights:
    """The leaf evaluation, in points (a won game is 1e6).

    The defaults of `length`, `food` and `trapped` were refitted to game outcomes by Texel's
    method (``python -m benchmarks.eval_fit``: a logistic fit of 300 duels' results on the
    evaluation's terms, :func:`evaluation_terms`) and then won a 200-duel match against the
    hand-set weights they replace (:data:`HAND_SET`, which `search-v1` keeps), 58.0% [51.1%,
    64.6%] at 50 ms a move; at 100 ms 54.1% [46.3%, 61.6%] over 160 (README, *Strength*). A
    second round, fitted on these defaults' own games (length 470, food 690, trapped 760),
    scored 48.75% [41.9%, 55.6%] against them over 200 at 50 ms: they stay.
    """

    area: float = 10.0
    """Per cell of Voronoi territory more than the best-placed opponent."""
    length: float = 210.0
    """Per segment longer than the longest opponent (clipped to +-`length_cap`)."""
    length_cap: int = 4
    """Length advantage beyond this earns nothing more."""
    kill: float = 300.0
    """Per opponent eliminated (free-for-all: fewer rivals is better)."""
    food: float = 270.0
    """Times 1 / (1 + distance to food in our territory) when hungry."""
    hungry_health: int = 50
    """Below this health (or when not the longest) the snake is hungry."""
    starve: float = 40.0
    """Per move that the nearest food lies beyond our remaining health."""
    trapped: float = 980.0
    """Times the fraction of our length that does not fit in our territory."""
    tails: bool = False
    """A gate: count territory through bodies as they move off. A body cell is free once its
    body has left it (segment k of a length-n snake after n - k moves; growth from food on the
    way is ignored) and goes to whoever's territory touches it then (two at once: neither).
    False: every body but a moving tail is a wall for the whole count (search-v1's count).
    Off by default: on, at 50 ms a move, it scored 53.25% [46.3%, 60.0%] over 200 duels against
    the same search with it off, inside the noise (README, *Strength*)."""


HAND_SET = SearchWeights(length=25.0, food=150.0, trapped=400.0, tails=False)
"""The leaf weights set by hand before the refit (to 2026-12-03): what `search-v1` plays."""


@dataclasses.dataclass
class Search:
    """A `Player` that searches each game separately (per-game loop inside `act`)."""

    ms: float = 400.0
    """Time budget per move and game, in milliseconds."""
    max_depth: int = 48
    """Deepest iteration (turns)."""
    focus: int = 2
    """Opponents searched adversarially in free-for-all (the nearest ones)."""
    weights: SearchWeights = dataclasses.field(default_factory=SearchWeights)
    kernel: Kernel = Kernel.NUMBA
    """python | numba: the tree's implementation (same moves at the same depth)."""
    name: str = "search"
    leafnet: str = ""
    """An ``.npz`` leaf net (:mod:`.leafnet`) whose correction is added to the count at every leaf
    (numba kernel only; "": the count alone)."""
    depths: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=100_000))
    """Depth completed for recent searched decisions (benchmarks read it)."""

    def __post_init__(self) -> None:
        self.kernel = Kernel(self.kernel)
        if self.kernel is Kernel.NUMBA and not compiled_available():
            self.kernel = Kernel.PYTHON
        self._net = leafnet.LeafNet.load(self.leafnet) if self.leafnet else None
        if self._net is not None and self.kernel is not Kernel.NUMBA:
            raise ValueError("search: a leaf net runs in the numba kernel only (kernel=numba, numba installed)")

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        """Moves for `seat` in every game. Shape [B] int8."""
        return self.act_scored(config, state, seat, rng)[0]

    def act_scored(self, config: GameConfig, state: BatchState, seat: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`act`'s moves [B] int8 and each decision's score for `seat`, float64 [B] in points
        (:class:`Decision`), NaN where nothing was searched (game over, snake out, one or no
        safe move). :func:`values` turns the scores of a position's seats into values."""
        moves = np.zeros(state.batch_size, np.int8)
        scores = np.full(state.batch_size, np.nan)
        over = state.game_over(config.ruleset is Ruleset.SOLO)
        decide = choose_compiled if self.kernel is Kernel.NUMBA else choose
        extra = {"net": self._net} if self.leafnet else {}
        for g in np.flatnonzero(~over & state.alive[:, seat]):
            rules = compact.Rules.of(config, state, int(g))
            pos = compact.from_batch(state, int(g))
            decision = decide(rules, pos, seat, self.ms / 1000.0, self.max_depth, self.focus, self.weights, **extra)
            if decision.depth > 0:
                self.depths.append(decision.depth)
                scores[g] = decision.score
            moves[g] = decision.move
        return moves, scores

    @staticmethod
    def values(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`act_scored`'s scores of a position's seats [N, S] -> (values [N, S], valid [N, S]):
        the module's :func:`values` (a bootstrap teacher's protocol, ``selfplay``)."""
        return values(scores)


VALUE_SCALE = 600.0
"""Points of lead over the best-placed rival that map to a value of tanh(1) = 0.76 in :func:`values`.
Measured on 36,884 positions of 96 11x11 duels (a `medium` network's policy against `search:ms=5`,
every seat scored by a 15 ms search, about 5 turns deep): the values' Pearson correlation with the
games' outcomes is flat from 200 to 600 (0.648, 0.656, 0.650) and falls beyond (0.633 at 1,000,
0.607 at 1,600); the value distillation the README measures used 600."""
SCORE_CLIP = 20_000.0
"""Scores are clipped to +-this before leads are taken: a proven win (>= PROVEN) and a heavy lead
both saturate, and a rival's proven loss does not swamp the scale."""


def values(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each seat's value in [-1, 1] of a position from its seats' search scores.

    scores: float [N, S], the score (points) of each seat's own search of the same position,
    NaN where that seat was not searched (:meth:`Search.act_scored`). Returns (values float32
    [N, S], valid bool [N, S]): ``tanh((score_s - max over rivals r of score_r) / VALUE_SCALE)``,
    valid where seat s and at least one rival were searched (0 elsewhere). Each seat's paranoid
    score is pessimistic for that seat (its rivals answer its move knowing it); the lead over the
    best rival cancels the pessimism they share, so in a duel the two values are exactly opposite,
    as a game's outcome is. The squashing follows AlphaGo's value targets in [-1, 1] (Silver et al.
    2016) and the tanh(points / scale) leaf mixing prototyped in the README's *Where the gap lies*.
    """
    scores = np.clip(np.asarray(scores, np.float64), -SCORE_CLIP, SCORE_CLIP)
    searched = ~np.isnan(scores)
    n, s = scores.shape
    rival = np.full((n, s), -np.inf)
    for seat in range(s):
        others = np.delete(np.where(searched, scores, -np.inf), seat, axis=1)
        rival[:, seat] = others.max(axis=1) if s > 1 else -np.inf
    valid = searched & np.isfinite(rival)
    lead = np.where(valid, scores - np.where(valid, rival, 0.0), 0.0)
    return np.tanh(lead / VALUE_SCALE).astype(np.float32), valid


@dataclasses.dataclass
class SearchV1(Search):
    """The search player as it stood on 2026-11-30, under its own name (`search-v1`).

    Kept playable so that gains on both sides stay visible: a stronger
    `search` or a champion that beats `search` must also be measured against
    this fixed baseline, never only against a weakened one. When `Search`
    gains options or new defaults, this class pins them to the 2026-11-30
    behaviour (the leaf weights: :data:`HAND_SET`).
    """

    weights: SearchWeights = dataclasses.field(default_factory=lambda: HAND_SET)
    kernel: Kernel = Kernel.PYTHON
    name: str = "search-v1"


@dataclasses.dataclass(frozen=True)
class Decision:
    """What one search concluded."""

    move: int
    """The chosen move (Move value)."""
    depth: int
    """Turns searched by the last completed iteration (0: one or no safe move, no search)."""
    score: float
    """Its score (>= PROVEN: a forced win found; <= -PROVEN: every move loses)."""
    nodes: int
    """Positions visited."""


def choose(rules: compact.Rules, pos: compact.Position, me: int, seconds: float,
           max_depth: int = 48, focus: int = 2, weights: SearchWeights | None = None,
           prior: Sequence[float] | None = None, margin: float = 0.0) -> Decision:
    """Best move for snake `me` by iterative deepening within `seconds`, or by the caller's
    deadline or hang-up (`agents.stopping`) if sooner: then the last completed iteration's.

    `prior`: a preference for each move, float [4] indexed by `Move` value (a policy network's
    logits or probabilities: only their order counts), that decides between moves whose scores tie exactly: the root then searches
    each move with a window :data:`TIE_SLACK` points below the best so far, so a tie is two exact
    scores, never a fail-low bound that equals the best. None: a tie goes to the move the
    previous iteration ranked higher, as `search` has always played.

    `margin` (points, >= 0; needs a `prior`): the prior decides among every move scored within
    `margin` of the best (more than ``best - margin``), not only exact ties: the root searches each
    later move with alpha `margin` below the best so far, so those moves' scores are exact and any
    other's is a bound at or below ``best - margin`` (:func:`near_best`). Where the best is a proven
    win or loss, only exact ties. 10 points is one cell of territory at the default weights.
    ValueError if `prior` is not 4 finite numbers or `margin` is negative, not finite or given
    without a prior.
    """
    start = time.perf_counter()
    asked = stopping.current()
    deadline = asked.sooner(start + seconds)
    search = _Search(rules, me, weights or SearchWeights(), deadline, focus)
    search.stop = asked.hung_up
    seconds = deadline - start
    snakes = pos[0]
    rank, slack = _tie_break(prior, margin)
    options = search.safe_moves(snakes, me, search.obstacles(snakes))
    if len(options) <= 1:
        return Decision(options[0] if options else search.default_move(snakes[me]), 0, 0.0, 0)
    options.sort(key=lambda m: -rank[m])
    best, completed, top = options[0], 0, 0.0
    for depth in range(1, max_depth + 1):
        try:
            scores = search.root(pos, depth, options, slack)
        except _Timeout:
            break
        completed = depth
        options.sort(key=lambda m: (-scores[m], -rank[m]))
        best, top = near_best(options, scores, rank, margin)
        if top >= PROVEN or top <= -PROVEN or sum(scores[m] > -PROVEN for m in options) == 1:
            break  # proven: deeper search cannot change the choice
        if time.perf_counter() - start > seconds * EARLY_STOP:
            break  # the next iteration (several times longer) would not finish
    return Decision(best, completed, top, search.nodes)


LINEAR_TERMS = ("area", "length", "kill", "food", "starve", "trapped")
"""The :class:`SearchWeights` fields the leaf evaluation is linear in; `length_cap`,
`hungry_health` and `tails` are gates (they decide which terms apply and how territory is
counted), not weights."""


def evaluation_terms(rules: compact.Rules, pos: compact.Position, me: int,
                     weights: SearchWeights | None = None) -> np.ndarray:
    """The leaf evaluation of snake `me` (alive) split into its terms: float64 [6] in
    :data:`LINEAR_TERMS` order, each the points one unit of that weight gives, signed (the
    kill, starve and trapped terms are 0 or negative), so that for any values of those fields
    the search's leaf score is ``terms @ [weights.area, weights.length, ...]`` (up to
    rounding). The gates are read from `weights` (default :class:`SearchWeights`).
    Fitting the weights to game outcomes from these terms is Texel's tuning method
    (P. Texel, 2014; chessprogramming.org "Texel's Tuning Method"): `benchmarks.eval_fit`.
    Raises ValueError when `me` is not a living snake of `pos`."""
    snakes = pos[0]
    if not 0 <= me < len(snakes) or snakes[me] is None:
        raise ValueError(f"snake {me} is not alive in this position: no leaf evaluation")
    gates = weights or SearchWeights()
    # One evaluation per term with that weight alone at 1: the search's own `evaluate`, untouched, so
    # the terms cannot drift from what the search scores (and search-v1's hot path pays nothing).
    zero = dataclasses.replace(gates, **{name: 0.0 for name in LINEAR_TERMS})
    return np.array([_Search(rules, me, dataclasses.replace(zero, **{name: 1.0}), math.inf, 2).evaluate(pos)
                     for name in LINEAR_TERMS], np.float64)


def leaf_inputs(rules: compact.Rules, pos: compact.Position, me: int,
                weights: SearchWeights | None = None) -> tuple[float, np.ndarray]:
    """(the count in points, the dense leaf net inputs float32 [7P + 5]) of living snake `me` at
    `pos`: what the compiled tree's leaf net reads there (:mod:`.leafnet`; training data for
    ``learning.leaf``). Needs numba (:func:`compiled_available`)."""
    from ouroboros.trainer.agents import search_kernel as k

    delta, wrap, inside, _, params, w, _ = _arrays(rules, 2, weights or SearchWeights())
    return k.leaf_inputs(delta, wrap, inside, params, w, rules.geo.width, rules.geo.height,
                         *_position(rules, pos), me)


_COMPILED: bool | None = None


def compiled_available() -> bool:
    """True when numba imports; the first call also compiles (or loads from numba's
    cache) the kernel and runs it once, so no move pays for compilation."""
    global _COMPILED
    if _COMPILED is None:
        try:
            from ouroboros.trainer.agents import search_kernel  # noqa: F401
        except ImportError as err:
            log.warning("search: numba unavailable (%s); the search runs in Python", err)
            _COMPILED = False
        else:
            _COMPILED = True
            rules = compact.Rules(compact.geometry(7, 7, False), False, (0,) * 81, 0)
            pos = (((16, 16, 16), 1 << 16, 100), ((60, 60, 60), 1 << 60, 100)), 1 << 40
            choose_compiled(rules, pos, 0, 10.0, max_depth=2)
    return _COMPILED


def choose_compiled(rules: compact.Rules, pos: compact.Position, me: int, seconds: float,
                    max_depth: int = 48, focus: int = 2, weights: SearchWeights | None = None,
                    prior: Sequence[float] | None = None, margin: float = 0.0,
                    net: leafnet.LeafNet | None = None) -> Decision:
    """`choose` with the tree compiled (search_kernel.py): the same decisions, more depth per second.
    `net`: a leaf net added to the count at every leaf (:mod:`.leafnet`); ValueError if it was made
    for another board size."""
    from ouroboros.trainer.agents import search_kernel as k

    if net is not None:
        net.check_board(rules.geo.board.n_cells)
    start = time.perf_counter()
    asked = stopping.current()
    deadline = asked.sooner(start + seconds)
    seconds = deadline - start
    helper = _Search(rules, me, weights or SearchWeights(), deadline, focus)
    snakes, food = pos
    rank, slack = _tie_break(prior, margin)
    options = helper.safe_moves(snakes, me, helper.obstacles(snakes))
    if len(options) <= 1:
        return Decision(options[0] if options else helper.default_move(snakes[me]), 0, 0.0, 0)
    options.sort(key=lambda m: -rank[m])
    arrays = _arrays(rules, focus, weights or SearchWeights(), net or leafnet.NONE)
    geo = rules.geo
    hist = np.zeros((len(snakes), 4), np.int64)
    counters = np.zeros(k.N_COUNTERS, np.int64)
    counters[k.LIMIT] = 1 << 62
    if asked.hung_up is not None:  # the kernel runs without the GIL: this stops it at its next node
        _stop_on(asked.hung_up, counters, k.LIMIT, deadline)
    best, completed, top = options[0], 0, 0.0
    for depth in range(1, max_depth + 1):
        if counters[k.LIMIT] == 0 or time.perf_counter() >= deadline:
            break
        counters[k.ABORTED] = 0
        order = np.array(options, np.int64)
        scores = np.zeros(len(options))
        k.root(*arrays, geo.width, geo.height, hist, counters, deadline, *_position(rules, pos), me, depth,
               order, scores, slack)
        if counters[k.ABORTED] or counters[k.LIMIT] == 0 or time.perf_counter() > deadline:
            break
        completed = depth
        by_move = dict(zip(options, scores.tolist(), strict=True))
        options.sort(key=lambda m: (-by_move[m], -rank[m]))
        best, top = near_best(options, by_move, rank, margin)
        if top >= PROVEN or top <= -PROVEN or sum(by_move[m] > -PROVEN for m in options) == 1:
            break
        if time.perf_counter() - start > seconds * EARLY_STOP:
            break
    return Decision(best, completed, top, int(counters[k.NODES]))


TIE_SLACK = 1e-6
"""Points below the best root score at which `choose` searches the other moves when a prior breaks
ties (scores are sums of float weights: exact ties are equal terms, not near misses)."""


def _tie_break(prior: Sequence[float] | None, margin: float = 0.0) -> tuple[tuple[float, ...], float]:
    """(rank by Move value, root slack) for `choose`: all zeros and no slack without a prior;
    with one, the slack is `margin` or :data:`TIE_SLACK`, whichever is larger."""
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"search: margin must be a finite number of points >= 0, got {margin!r}")
    if prior is None:
        if margin > 0:
            raise ValueError("search: a margin needs a prior to decide between the moves within it")
        return (0.0,) * 4, 0.0
    rank = tuple(float(p) for p in prior)
    if len(rank) != 4 or not all(math.isfinite(p) for p in rank):
        raise ValueError(f"search: prior must be 4 finite numbers (one per move), got {prior!r}")
    return rank, max(margin, TIE_SLACK)


def near_best(options: Sequence[int], scores, rank: Sequence[float], margin: float) -> tuple[int, float]:
    """(move, its score) among a root's scored `options` (sorted best score first; `scores` by move):
    the highest `rank` among the moves that tie the best score or come within `margin` points of it
    (more than ``best - margin``; the root searched them with alpha that far below the best so far,
    so their scores are exact).
    Where the best is proven (a forced win or loss), exact ties only: a margin never trades a win
    for a later one or a loss for a sooner one. Ties of rank go to the higher score."""
    top = scores[options[0]]
    window = margin if abs(top) < PROVEN else 0.0
    near = [m for m in options if scores[m] == top or scores[m] > top - window]
    best = max(near, key=lambda m: (rank[m], scores[m]))  # max keeps the first of equals: the sort's order
    return best, scores[best]


def _stop_on(event: threading.Event, counters: np.ndarray, limit: int, deadline: float) -> None:
    """A daemon thread that zeroes the kernel's node limit once ``event`` is set (before ``deadline``)."""
    def watch() -> None:
        if event.wait(max(0.0, deadline - time.perf_counter())):
            counters[limit] = 0

    threading.Thread(target=watch, name="search-hangup", daemon=True).start()


def _arrays(rules: compact.Rules, focus: int, weights: SearchWeights, net: leafnet.LeafNet = leafnet.NONE) -> tuple:
    """(delta, wrap, inside, hazard, params, weights, net) of search_kernel's layout."""
    geo = rules.geo
    n = geo.board.n_cells
    inside = np.zeros(n, np.uint8)
    inside[geo.board.column_major_cells] = 1
    params = np.array([int(geo.wraps), int(rules.constricts), rules.hazard_damage, focus], np.int64)
    w = np.array([getattr(weights, f.name) for f in dataclasses.fields(weights)], np.float64)
    return (np.array(geo.delta, np.int64), np.array(geo.wrap, np.int64), inside,
            np.array(rules.hazard, np.int16), params, w, net.kernel())


def _position(rules: compact.Rules, pos: compact.Position) -> tuple:
    """(body, length, health, alive, food) arrays of a compact position."""
    snakes, food = pos
    n = rules.geo.board.n_cells
    body = np.zeros((len(snakes), n + 1), np.int16)
    length = np.zeros(len(snakes), np.int32)
    health = np.zeros(len(snakes), np.int32)
    alive = np.zeros(len(snakes), np.uint8)
    for i, s in enumerate(snakes):
        if s is not None:
            body[i, :len(s[0])] = s[0]
            length[i], health[i], alive[i] = len(s[0]), s[2], 1
    cells = np.zeros(n, np.uint8)
    while food:
        low = food & -food
        cells[low.bit_length() - 1] = 1
        food ^= low
    return body, length, health, alive, cells


class _Search:
    """State of one decision: rules, our seat, deadline, node count and move history."""

    def __init__(self, rules: compact.Rules, me: int, weights: SearchWeights, deadline: float, focus: int):
        self.rules, self.me, self.w, self.deadline, self.focus = rules, me, weights, deadline, focus
        self.geo = rules.geo
        self.nodes = 0
        self.clock_every = CLOCK_EVERY
        self.stop: threading.Event | None = None
        """Set by the caller when nobody waits for the answer any more."""
        self.history: dict[tuple[int, int], int] = {}

    # -- move generation -----------------------------------------------------------

    def obstacles(self, snakes) -> int:
        """Cells that stay occupied after the coming move (bodies minus moving tails)."""
        return compact.obstacles(self.geo.bit, snakes)

    def freeing(self, snakes, obstacles: int) -> dict[int, int]:
        """Cells of `obstacles` that bodies leave within the count, by the move they leave on:
        segment k of a length-n body after n - k moves (the one nearest the head, of a
        stacked tail), heads excluded. {moves: cell bits}; `SearchWeights.tails`."""
        bit = self.geo.bit
        out: dict[int, int] = {}
        seen = 0
        for s in snakes:
            if s is not None:
                body = s[0]
                n = len(body)
                for k in range(1, n):
                    b = bit[body[k]]
                    if obstacles & b and not seen & b:
                        seen |= b
                        out[n - k] = out.get(n - k, 0) | b
        return out

    def safe_moves(self, snakes, i: int, obstacles: int) -> list[int]:
        """Moves of snake i that stay on the board and off bodies, best history first."""
        bit, inside = self.geo.bit, self.geo.inside
        cells = self.rules.targets(snakes[i])
        moves = [m for m in range(4) if inside & bit[cells[m]] and not obstacles & bit[cells[m]]]
        if len(moves) > 1:
            moves.sort(key=lambda m: -self.history.get((i, m), 0))
        return moves

    def default_move(self, snake) -> int:
        """Any move for a snake that dies whatever it does."""
        return 0

    def opponents(self, snakes, depth: int) -> tuple[list[int], list[int]]:
        """(searched, scripted) living opponents: the `focus` nearest within reach of our
        head in `depth` turns are searched; every opponent is searched in a duel."""
        others = [j for j, s in enumerate(snakes) if s is not None and j != self.me]
        if len(snakes) <= 2 or len(others) <= 1:
            return others, []
        stride = self.geo.stride
        hy, hx = divmod(snakes[self.me][0][0], stride)
        dist = []
        for j in others:
            y, x = divmod(snakes[j][0][0], stride)
            dist.append((abs(x - hx) + abs(y - hy), j))
        dist.sort()
        searched = [j for d, j in dist[:self.focus] if d <= 2 * depth + 2]
        return searched, [j for j in others if j not in searched]

    # -- tree --------------------------------------------------------------------------

    def root(self, pos, depth: int, options: list[int], slack: float = 0.0) -> dict[int, float]:
        """Score of each of our moves searched `depth` turns deep (fail-low scores are bounds;
        with `slack` > 0 each later move is searched with alpha that many points below the best
        so far, so a move that ties the best gets its exact score: search_kernel.root)."""
        alpha = -np.inf
        scores = {}
        for m in options:
            scores[m] = self.reply(pos, m, depth, alpha, np.inf, 0)
            alpha = max(alpha, scores[m] - slack)
        return scores

    def node(self, pos, depth: int, alpha: float, beta: float, ply: int) -> float:
        """Max node: our choice at the start of a turn."""
        self.nodes += 1
        if not self.nodes % self.clock_every and (
                time.perf_counter() > self.deadline or (self.stop is not None and self.stop.is_set())):
            raise _Timeout
        snakes = pos[0]
        terminal = self.terminal(snakes, ply)
        if terminal is not None:
            return terminal
        if depth == 0:
            return self.evaluate(pos)
        moves = self.safe_moves(snakes, self.me, self.obstacles(snakes)) or [self.default_move(snakes[self.me])]
        best = -np.inf
        for m in moves:
            v = self.reply(pos, m, depth, alpha, beta, ply)
            if v > best:
                best = v
                if v > alpha:
                    alpha = v
                    if alpha >= beta:
                        key = (self.me, m)
                        self.history[key] = self.history.get(key, 0) + depth * depth
                        break
        return best

    def reply(self, pos, mine: int, depth: int, alpha: float, beta: float, ply: int) -> float:
        """Min node: the searched opponents' joint reply to our move `mine`, then the turn."""
        snakes = pos[0]
        obst = self.obstacles(snakes)
        searched, scripted = self.opponents(snakes, depth)
        moves = [0] * len(snakes)
        moves[self.me] = mine
        for j in scripted:
            safe = self.safe_moves(snakes, j, obst)
            moves[j] = safe[0] if safe else 0
        choices = [self.safe_moves(snakes, j, obst) or [0] for j in searched]
        worst = np.inf
        for joint in itertools.product(*choices):
            for j, m in zip(searched, joint, strict=True):
                moves[j] = m
            child = self.rules.step(pos, moves)
            v = self.node(child, depth - 1, alpha, min(beta, worst), ply + 1)
            if v < worst:
                worst = v
                if worst <= alpha:
                    for j, m in zip(searched, joint, strict=True):
                        self.history[(j, m)] = self.history.get((j, m), 0) + depth * depth
                    break
        return worst

    # -- leaves ------------------------------------------------------------------------

    def terminal(self, snakes, ply: int) -> float | None:
        """Score of a finished game (earlier wins and later losses are better), else None."""
        alive_others = sum(1 for j, s in enumerate(snakes) if s is not None and j != self.me)
        if snakes[self.me] is None:
            return DRAW if alive_others == 0 and len(snakes) > 1 else -WIN + ply
        if alive_others == 0 and len(snakes) > 1:
            return WIN - ply
        return None

    def evaluate(self, pos) -> float:
        """Voronoi territory, length, food and health from our point of view."""
        snakes, food = pos
        geo, w, me = self.geo, self.w, self.me
        bit, stride, wraps = geo.bit, geo.stride, geo.wraps
        alive = [j for j, s in enumerate(snakes) if s is not None]
        fronts = [bit[snakes[j][0][0]] for j in alive]
        claimed = self.obstacles(snakes)
        freeing = self.freeing(snakes, claimed) if w.tails else {}
        heads = 0
        for f in fronts:
            heads |= f
        claimed |= heads
        free = geo.inside & ~claimed
        owned = list(fronts)
        last_free = max(freeing, default=0)
        area = [0] * len(alive)
        mine = alive.index(me)
        food_dist = steps = 0
        while True:
            steps += 1
            freed = freeing.get(steps, 0) & ~heads if freeing else 0
            free |= freed
            seen = multi = 0
            grown = []
            for k, f in enumerate(fronts):
                if f or freed:
                    f = geo.dilate(f) if wraps else f | f << 1 | f >> 1 | f << stride | f >> stride
                    f &= free
                    if freed:  # freed now: any of its territory beside it reaches it at this step
                        o = owned[k]
                        f |= (geo.dilate(o) if wraps else o | o << 1 | o >> 1 | o << stride | o >> stride) & freed
                    multi |= seen & f
                    seen |= f
                grown.append(f)
            if not seen:
                if steps >= last_free:
                    break
                fronts = [0] * len(fronts)
                continue
            free &= ~seen
            fronts = [f & ~multi for f in grown]
            for k, f in enumerate(fronts):
                if f:
                    area[k] += f.bit_count()
                    if freeing:
                        owned[k] |= f
            if not food_dist and fronts[mine] & food:
                food_dist = steps
        body, _, health = snakes[me]
        length = len(body)
        rivals = [k for k, j in enumerate(alive) if j != me]
        rival_area = max((area[k] for k in rivals), default=0)
        rival_len = max((len(snakes[alive[k]][0]) for k in rivals), default=0)
        lead = max(-w.length_cap, min(w.length_cap, length - rival_len))
        score = w.area * (area[mine] - rival_area) + w.length * lead
        score -= w.kill * len(rivals)
        if health < w.hungry_health or lead <= 0:
            score += w.food / (1 + food_dist) if food_dist else 0.0
        reach = food_dist or 2 * (geo.width + geo.height)
        score -= w.starve * max(0, reach - health)
        if area[mine] < length:
            score -= w.trapped * (length - area[mine]) / length
        return score
