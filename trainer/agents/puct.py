"""The tree :mod:`.nsearch` searches: decoupled PUCT over simultaneous moves, batched, reusable.

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

**Tree reuse.** With reuse on (:attr:`.nsearch.NeuralSearch.reuse`, the
default), the subtree below the joint move that was actually played becomes
the next turn's root, as AlphaZero and KataGo keep it: its visits and values
count from the start, and only new descents are charged to the next move's
budget. Each search files its root's children under their positions (and the
seat, turn, rules); the next search of the same seat looks its position up
there and takes the matching child, dropping its siblings. A position the
tree did not predict (food spawned, hazards moved, another game) finds
nothing and searches afresh, so reuse never changes what is searched, only
how much is already known. At most `MAX_KEPT_ROOTS` searches are kept
(oldest dropped), and at most `MAX_KEPT_NODES` nodes, which bounds the
memory of a server or a batch of games (a batch whose trees do not fit loses
reuse, not correctness).

**Batched evaluation.** Each round descends `batch` times with a virtual
loss on the moves taken (so the descents spread out, as in AlphaGo's
asynchronous search), then encodes all new leaves x living snakes into one
tensor and runs the ONNX model once
(:meth:`.nsearch.NeuralSearch.search_many` runs many games' trees in
lockstep, one call for all their leaves: expert iteration's searches).

A :class:`Tree` reads its guide's settings (:class:`Guide`: the model, `c_puct`, `prune`,
`batch`); the player around it (budget, deadline, hand-off to the alpha-beta) is :mod:`.nsearch`.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import threading
import time
import typing

import numpy as np

from ouroboros.trainer.agents import compact
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


class Guide(typing.Protocol):
    """What a :class:`Tree` reads from the player that runs it (:class:`.nsearch.NeuralSearch`)."""

    model: typing.Any
    """The network: ``evaluate(planes float32 [N, C, H, W]) -> (logits [N, 4], values [N, 1])``, and
    optionally ``_size(config)``, the board size it is encoded at."""
    c_puct: float
    """PUCT's exploration constant (values are in [-1, 1])."""
    prune: float
    """Moves whose prior is below this fraction of the best move's are not searched."""
    batch: int
    """Descents per round, their new leaves evaluated in one network call."""


class Node:
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
        self.children: dict[tuple[int, ...], Node] = {}
        self.value: np.ndarray | None = None  # per snake, set when evaluated
        self.pending = False


class KeptTrees:
    """The children of recent searches, filed by (config, rules, seat, turn, position), for tree reuse.

    Thread-safe: a server's games share one player. Taking a child drops its siblings (the other joint
    moves, which the game did not play); beyond `limit` searches, or `max_nodes` nodes (counted as the
    children's descents plus one, an upper bound), the oldest searches are dropped.
    """

    def __init__(self, limit: int, max_nodes: int) -> None:
        self.limit, self.max_nodes, self.nodes = limit, max_nodes, 0
        self._lock = threading.Lock()
        self._children: dict[tuple, tuple[int, Node]] = {}
        self._roots: collections.OrderedDict[int, list[tuple]] = collections.OrderedDict()
        self._sizes: dict[int, int] = {}
        self._tokens = itertools.count()

    def put(self, children: list[tuple[tuple, Node]]) -> None:
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

    def take(self, key: tuple) -> Node | None:
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


class Tree:
    """One decision's tree: the rules, the network, the root and the statistics."""

    def __init__(self, guide: Guide, config: GameConfig, rules: compact.Rules, turn: int, me: int):
        self.guide, self.config, self.rules, self.turn, self.me = guide, config, rules, turn, me
        self.solo = config.ruleset is Ruleset.SOLO
        self.size = guide.model._size(config) if hasattr(guide.model, "_size") else None
        self.depth = self.evaluations = 0

    def run(self, root: Node, deadline: float, cap: int, hung_up: threading.Event | None = None) -> SearchResult:
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
                sims += self.round(root, min(self.guide.batch, cap - sims))
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

    def round(self, root: Node, width: int) -> int:
        """Up to `width` descents, their new leaves evaluated together. Returns descents done."""
        paths, leaves, done = self.collect(root, width)
        if leaves:
            self.expand(leaves)
            done += self.finish(paths, leaves)
        return done

    def collect(self, root: Node, width: int) -> tuple[list, list[Node], int]:
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

    def finish(self, paths: list, leaves: list[Node]) -> int:
        """Back up the values of `leaves` (evaluated since `collect`) along their paths; returns their number."""
        for path, leaf in zip(paths, leaves, strict=True):
            leaf.pending = False
            self.backup(path, leaf.value)
        return len(leaves)

    def descend(self, node: Node) -> tuple[list, Node]:
        """Select joint moves from `node` down to an unevaluated or finished node,
        adding a virtual loss on every move taken."""
        path = []
        c = self.guide.c_puct
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
                child = Node(child_pos, node.ply + 1, self.outcome(node, child_pos))
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

    def outcome(self, parent: Node, pos: compact.Position) -> np.ndarray | None:
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

    def expand(self, nodes: list[Node]) -> None:
        """Evaluate `nodes` with one network call: candidate moves, priors and values."""
        logits, values = self.guide.model.evaluate(self.planes(nodes))
        self.apply(nodes, logits, values)

    def planes(self, nodes: list[Node]) -> np.ndarray:
        """The network's input for `nodes`: one row per living snake of each node, in node then seat
        order, float32 [sum of living snakes, C, H, W]."""
        rows, seats = [], []
        for r, node in enumerate(nodes):
            node.seats = tuple(i for i, s in enumerate(node.pos[0]) if s is not None)
            rows.extend([r] * len(node.seats))
            seats.extend(node.seats)
        state = compact.to_batch(self.rules, [n.pos for n in nodes], [self.turn + n.ply for n in nodes])
        return encoding.encode(self.config, state.select(np.asarray(rows)), np.asarray(seats), size=self.size)

    def apply(self, nodes: list[Node], logits: np.ndarray, values: np.ndarray) -> None:
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
                moves = safe_moves(self.rules, snakes[s], obstacles) or [0]
                z = [float(logits[at, m]) for m in moves]
                top = max(z)
                p = [math.exp(v - top) for v in z]
                if self.guide.prune > 0 and len(moves) > 1:
                    moves = [m for m, v in zip(moves, p, strict=True) if v >= self.guide.prune]
                    p = [v for v in p if v >= self.guide.prune]
                total = sum(p)
                moves_of.append(tuple(moves))
                prior_of.append(tuple(v / total for v in p))
                node.n.append([0] * len(moves))
                node.w.append([0.0] * len(moves))
                at += 1
            node.moves, node.prior = tuple(moves_of), tuple(prior_of)


def expand_together(groups: list[tuple[Tree, list[Node]]], model) -> None:
    """Expand each tree's nodes, all of them through one network call (their planes concatenated)."""
    if not groups:
        return
    planes = [tree.planes(nodes) for tree, nodes in groups]
    logits, values = model.evaluate(np.concatenate(planes) if len(planes) > 1 else planes[0])
    at = 0
    for (tree, nodes), rows in zip(groups, planes, strict=True):
        tree.apply(nodes, logits[at:at + len(rows)], values[at:at + len(rows)])
        at += len(rows)


def safe_moves(rules: compact.Rules, snake, obstacles: int) -> list[int]:
    """Moves that stay on the board and off bodies (Move values, in order)."""
    bit, inside = rules.geo.bit, rules.geo.inside
    cells = rules.targets(snake)
    return [m for m in range(4) if inside & bit[cells[m]] and not obstacles & bit[cells[m]]]
