"""The board encoding: each channel on hand-built boards, padding, and the symmetries.

Boards are written as Battlesnake JSON (bodies head first, (0, 0) bottom-left)
and decoded with the engine's own `jsonio`. A plane is indexed [row, column]
with row 0 the top row, so cell (x, y) of an H-high board is plane[H-1-y, x].
"""

from __future__ import annotations

import numpy as np
import pytest

from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig, Move, RulesetSettings
from ouroboros.trainer.learning import positions
from ouroboros.trainer.observation import encoding, safety
from ouroboros.trainer.observation.encoding import Channel, Symmetry

pytestmark = pytest.mark.unit

SETTINGS = RulesetSettings(food_spawn_chance=0, minimum_food=0, hazard_damage_per_turn=14)


def game(snakes, food=(), hazards=(), size=7, health=None, turn=0, dead=()) -> jsonio.Game:
    """A one-game state from bodies [[(x, y), ...], ...]; snakes listed in `dead` are eliminated."""
    health = health or [100] * len(snakes)
    board = {
        "width": size, "height": size,
        "food": [{"x": x, "y": y} for x, y in food],
        "hazards": [{"x": x, "y": y} for x, y in hazards],
        "snakes": [
            {"id": f"s{i}", "health": health[i], "body": [{"x": x, "y": y} for x, y in body],
             **({"eliminatedCause": "wall-collision"} if i in dead else {})}
            for i, body in enumerate(snakes)
        ],
    }
    return jsonio.parse_board(board, {"settings": SETTINGS}, turn, 0)


def at(planes: np.ndarray, channel: Channel, x: int, y: int) -> float:
    """The value of `channel` at board cell (x, y) of a [C, H, W] encoding."""
    return float(planes[channel, planes.shape[1] - 1 - y, x])


def cells_of(planes: np.ndarray, channel: Channel) -> set[tuple[int, int]]:
    """Board cells (x, y) where `channel` is non-zero."""
    rows, cols = np.nonzero(planes[channel])
    return {(int(c), planes.shape[1] - 1 - int(r)) for r, c in zip(rows, cols, strict=True)}


ME = [(3, 3), (3, 2), (3, 1)]
LONGER = [(5, 5), (5, 4), (5, 3), (5, 2)]
SHORTER = [(0, 6), (1, 6)]


@pytest.fixture
def three() -> jsonio.Game:
    return game([ME, LONGER, SHORTER], food=[(0, 0)], hazards=[(6, 0), (6, 0)],
                health=[80, 50, 30], turn=100)


def test_channels_are_documented_once_each():
    names = [name for name, _ in encoding.CHANNELS]
    assert len(set(names)) == len(names) == encoding.N_CHANNELS
    assert [c.name.lower() for c in Channel] == names
    for i, name in enumerate(names):
        assert f"{i:2d}  {name}" in encoding.__doc__, f"channel {name} missing from the docstring"
    assert all(meaning for _, meaning in encoding.CHANNELS)


def test_own_planes(three):
    x = encoding.encode(three.config, three.state, 0)
    assert x.shape == (1, encoding.N_CHANNELS, 7, 7) and x.dtype == np.float32
    p = x[0]
    assert cells_of(p, Channel.OWN_HEAD) == {(3, 3)}
    assert cells_of(p, Channel.OWN_TAIL) == {(3, 1)}
    # turns until each segment leaves its cell: head 3, neck 2, tail 1 (of 32)
    assert [at(p, Channel.OWN_BODY, *c) * 32 for c in ME] == [3, 2, 1]
    assert cells_of(p, Channel.OWN_BODY) == set(ME)
    assert np.allclose(p[Channel.OWN_HEALTH], 0.8)
    assert np.allclose(p[Channel.OWN_LENGTH], 3 / 64)
    assert np.all(p[Channel.BOARD] == 1)


def test_enemy_planes_relative_to_my_length(three):
    p = encoding.encode(three.config, three.state, 0)[0]
    assert cells_of(p, Channel.ENEMY_HEADS) == {(5, 5), (0, 6)}
    assert cells_of(p, Channel.ENEMY_TAILS) == {(5, 2), (1, 6)}
    assert cells_of(p, Channel.ENEMY_LONGER) == {(5, 5)}
    assert cells_of(p, Channel.ENEMY_SHORTER) == {(0, 6)}
    assert at(p, Channel.ENEMY_HEALTH, 5, 5) == pytest.approx(0.5)
    assert at(p, Channel.ENEMY_HEALTH, 0, 6) == pytest.approx(0.3)
    assert [at(p, Channel.ENEMY_BODY, *c) * 32 for c in LONGER] == pytest.approx([4, 3, 2, 1])
    assert cells_of(p, Channel.OWN_BODY).isdisjoint(cells_of(p, Channel.ENEMY_BODY))
    assert np.allclose(p[Channel.LENGTH_LEAD], (3 - 4) / 8)
    assert np.allclose(p[Channel.ENEMIES_ALIVE], 1.0)


def test_seen_from_another_seat(three):
    p = encoding.encode(three.config, three.state, 1)[0]
    assert cells_of(p, Channel.OWN_HEAD) == {(5, 5)}
    assert cells_of(p, Channel.ENEMY_SHORTER) == {(3, 3), (0, 6)}
    assert cells_of(p, Channel.ENEMY_LONGER) == set()
    assert np.allclose(p[Channel.LENGTH_LEAD], (4 - 3) / 8)


def test_equal_length_enemy_counts_as_longer():
    g = game([[(1, 1), (1, 2)], [(4, 4), (4, 5)]])
    p = encoding.encode(g.config, g.state, 0)[0]
    assert cells_of(p, Channel.ENEMY_LONGER) == {(4, 4)}  # a head-to-head would kill both


def test_board_layers_and_scalars(three):
    p = encoding.encode(three.config, three.state, 0)[0]
    assert cells_of(p, Channel.FOOD) == {(0, 0)}
    assert p[Channel.FOOD, 6, 0] == 1  # bottom-left is the last row
    assert cells_of(p, Channel.HAZARD) == {(6, 0)}
    assert at(p, Channel.HAZARD, 6, 0) == pytest.approx(2 * 14 / 100)  # two stacked hazards
    assert np.allclose(p[Channel.TURN], 100 / 500)


def test_stacked_segments_count_once_with_the_later_time():
    just_ate = [(2, 2), (2, 3), (2, 3)]
    start = [(5, 5), (5, 5), (5, 5)]
    g = game([just_ate, start])
    p = encoding.encode(g.config, g.state, 0)[0]
    assert at(p, Channel.OWN_BODY, 2, 3) * 32 == pytest.approx(2)  # free after 2 moves, not 1
    assert at(p, Channel.ENEMY_BODY, 5, 5) * 32 == pytest.approx(3)
    assert cells_of(p, Channel.ENEMY_HEADS) == cells_of(p, Channel.ENEMY_TAILS) == {(5, 5)}


def test_eliminated_snakes_are_not_drawn():
    g = game([ME, LONGER, SHORTER], dead=(1,))
    p = encoding.encode(g.config, g.state, 0)[0]
    assert cells_of(p, Channel.ENEMY_HEADS) == {(0, 6)}
    assert not (set(LONGER) & cells_of(p, Channel.ENEMY_BODY))
    assert np.allclose(p[Channel.ENEMIES_ALIVE], 0.5)
    assert np.allclose(p[Channel.LENGTH_LEAD], (3 - 2) / 8)
    mine_dead = encoding.encode(g.config, g.state, 1)[0]
    assert not mine_dead[Channel.OWN_HEAD].any() and not mine_dead[Channel.OWN_HEALTH].any()


def test_padding_into_a_larger_input(three):
    small = encoding.encode(three.config, three.state, 0)
    big = encoding.encode(three.config, three.state, 0, size=(11, 13))
    assert big.shape == (1, encoding.N_CHANNELS, 11, 13)
    assert np.array_equal(big[..., :7, :7], small)
    assert not big[..., 7:, :].any() and not big[..., :, 7:].any()
    with pytest.raises(ValueError, match="smaller than"):
        encoding.encode(three.config, three.state, 0, size=(5, 5))


@pytest.fixture(scope="module")
def batch() -> tuple[GameConfig, BatchState]:
    """64 four-snake games 30 turns into random-safe play."""
    config = GameConfig(11, 11, 4)
    state = maps.new_games(config, np.arange(64))
    rng = np.random.default_rng(0)
    for _ in range(30):
        rules.advance(config, state, safety.choose(safety.safe_moves(config, state).astype(float), rng))
    return config, state


def test_batched_seats_match_one_seat_at_a_time(batch):
    config, state = batch
    seats = np.arange(state.batch_size) % 4
    mixed = encoding.encode(config, state, seats)
    for seat in range(4):
        alone = encoding.encode(config, state, seat)
        assert np.array_equal(mixed[seats == seat], alone[seats == seat])
    planes, games, seat_of = encoding.encode_all(config, state)
    assert len(planes) == state.alive.sum()
    assert np.array_equal(planes[5], encoding.encode(config, state.select([games[5]]), seat_of[5])[0])


def test_reused_buffer_is_cleared(batch):
    config, state = batch
    out = np.full((state.batch_size, encoding.N_CHANNELS, 11, 11), 7.0, np.float32)
    assert encoding.encode(config, state, 2, out=out) is not None
    assert np.array_equal(out, encoding.encode(config, state, 2))
    with pytest.raises(ValueError, match="out must be"):
        encoding.encode(config, state, 2, out=np.zeros((1, 2, 3), np.float32))


# -- territory ------------------------------------------------------------------------------


def test_territory_splits_the_board_between_the_heads():
    """Two snakes facing each other across a 5x5 board: the middle column is contested, each keeps
    its own side (its own body included, free once the search arrives after the segment has left)."""
    g = game([[(0, 2), (0, 1), (0, 0)], [(4, 2), (4, 1), (4, 0)]], size=5)
    p = encoding.encode(g.config, g.state, 0)[0]
    mine = {(x, y) for x in (0, 1) for y in range(5)} - {(0, 2)}
    theirs = {(x, y) for x in (3, 4) for y in range(5)} - {(4, 2)}
    assert cells_of(p, Channel.OWN_TERRITORY) == mine
    assert cells_of(p, Channel.ENEMY_TERRITORY) == theirs
    q = encoding.encode(g.config, g.state, 1)[0]  # the other seat sees the mirror image
    assert cells_of(q, Channel.OWN_TERRITORY) == theirs and cells_of(q, Channel.ENEMY_TERRITORY) == mine


def test_a_walled_in_snake_owns_only_its_pocket():
    """My head in the corner behind an enemy body that will not leave in time: my territory is the
    pocket, whatever the distances beyond the wall. A snake cannot wait, so my own neck, blocked when
    the search first passes it, is entered later from the side."""
    wall = [(3, 6)] + [(2, y) for y in range(6, -1, -1)]  # head (3, 6), a wall down column 2
    g = game([[(0, 6), (0, 5), (0, 4)], wall], size=7)
    p = encoding.encode(g.config, g.state, 0)[0]
    own = cells_of(p, Channel.OWN_TERRITORY)
    assert own == {(x, y) for x in (0, 1) for y in range(7)} - {(0, 6)}
    assert not own & {(x, y) for x in range(3, 7) for y in range(7)}
    assert (3, 3) in cells_of(p, Channel.ENEMY_TERRITORY)


def test_territory_of_a_dead_you_a_lone_snake_and_a_padded_board():
    """What docs/onnx-contract.md says beyond the duel: a dead "you" has no search (every cell an enemy
    reaches is theirs), a snake with no living enemy owns every cell it reaches, and a board padded into
    a larger input keeps its planes in the top-left corner, the search never entering the padding."""
    g = game([ME, LONGER], dead=(0,))
    p = encoding.encode(g.config, g.state, 0)[0]
    assert not p[Channel.OWN_TERRITORY].any()
    assert cells_of(p, Channel.ENEMY_TERRITORY) == {(x, y) for x in range(7) for y in range(7)} - {LONGER[0]}
    alone = game([ME, LONGER], dead=(1,))
    q = encoding.encode(alone.config, alone.state, 0)[0]
    assert cells_of(q, Channel.OWN_TERRITORY) == {(x, y) for x in range(7) for y in range(7)} - {ME[0]}
    assert not q[Channel.ENEMY_TERRITORY].any()
    three = game([ME, LONGER, SHORTER], food=[(0, 0)])
    small = encoding.encode(three.config, three.state, 0)
    big = encoding.encode(three.config, three.state, 0, size=(11, 13))
    assert small[0, Channel.OWN_TERRITORY].any() and small[0, Channel.ENEMY_TERRITORY].any()
    assert np.array_equal(big[:, 17:, :7, :7], small[:, 17:]) and not big[:, 17:, 7:].any() and not big[:, 17:, :, 7:].any()


def _territory_reference(planes: np.ndarray) -> tuple[set, set]:
    """The territory rule of the docstring, step by step in plain Python: (mine, theirs) of [C, H, W]."""
    h, w = planes.shape[1:]
    owner = {}
    layer = {}
    for r in range(h):
        for c in range(w):
            if planes[Channel.OWN_HEAD, r, c]:
                owner[r, c], layer[r, c] = 1, 0
            elif planes[Channel.ENEMY_HEADS, r, c]:
                owner[r, c], layer[r, c] = 2, 0
    front, d = dict(owner), 0
    while front:
        d += 1
        reached: dict = {}
        for (r, c), side in front.items():
            for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if not (0 <= rr < h and 0 <= cc < w) or (rr, cc) in owner or not planes[Channel.BOARD, rr, cc]:
                    continue
                if max(planes[Channel.OWN_BODY, rr, cc], planes[Channel.ENEMY_BODY, rr, cc]) * 32 > d:
                    continue
                reached[rr, cc] = side if reached.get((rr, cc), side) == side else 3
        owner.update(reached)
        front = {k: v for k, v in reached.items() if v != 3}
    mine = {k for k, v in owner.items() if v == 1 and k not in layer}
    theirs = {k for k, v in owner.items() if v == 2 and k not in layer}
    return mine, theirs


def test_territory_follows_its_definition_on_real_positions(batch):
    config, state = batch
    planes, _, _ = encoding.encode_all(config, state)
    for p in planes[:: max(1, len(planes) // 60)]:
        mine, theirs = _territory_reference(p)
        grid = lambda cells: {(r, c) for r, c in zip(*np.nonzero(cells), strict=True)}  # noqa: E731
        assert grid(p[Channel.OWN_TERRITORY]) == mine and grid(p[Channel.ENEMY_TERRITORY]) == theirs


def test_version_one_planes_are_a_prefix_and_are_completed(batch):
    """An old replay shard's 17 planes (float16, as shards keep them) completed to the current encoding."""
    config, state = batch
    planes, _, _ = encoding.encode_all(config, state)
    old = planes[:, : encoding.VERSION_CHANNELS[1]].astype(np.float16)
    full = encoding.add_territory(old)
    assert full.dtype == np.float32 and np.array_equal(full[:, :17], old.astype(np.float32))
    assert np.array_equal(full[:, 17:], planes[:, 17:])
    assert encoding.add_territory(planes) is planes
    with pytest.raises(ValueError, match="planes must be"):
        encoding.add_territory(planes[:, :5])
    assert encoding.version_of(17) == 1 and encoding.version_of(encoding.N_CHANNELS) == encoding.ENCODING_VERSION
    with pytest.raises(ValueError, match="18 input planes match no encoding version"):
        encoding.version_of(18)


# -- symmetries ----------------------------------------------------------------------------


def test_symmetry_counts():
    assert len(encoding.symmetries(11, 11)) == 8
    assert encoding.symmetries(7, 11) == (Symmetry.IDENTITY, Symmetry.FLIP_ROWS,
                                          Symmetry.FLIP_COLUMNS, Symmetry.ROTATE_180)


@pytest.mark.parametrize(("sym", "expected"), [
    (Symmetry.IDENTITY, [Move.UP, Move.DOWN, Move.LEFT, Move.RIGHT]),
    (Symmetry.FLIP_ROWS, [Move.DOWN, Move.UP, Move.LEFT, Move.RIGHT]),
    (Symmetry.FLIP_COLUMNS, [Move.UP, Move.DOWN, Move.RIGHT, Move.LEFT]),
    (Symmetry.ROTATE_180, [Move.DOWN, Move.UP, Move.RIGHT, Move.LEFT]),
    (Symmetry.TRANSPOSE, [Move.LEFT, Move.RIGHT, Move.UP, Move.DOWN]),
    (Symmetry.ROTATE_90, [Move.LEFT, Move.RIGHT, Move.DOWN, Move.UP]),  # counter-clockwise
    (Symmetry.ROTATE_270, [Move.RIGHT, Move.LEFT, Move.UP, Move.DOWN]),
    (Symmetry.ANTI_TRANSPOSE, [Move.RIGHT, Move.LEFT, Move.DOWN, Move.UP]),
])
def test_move_relabelling(sym, expected):
    """perm[m] is what move m becomes: e.g. a quarter turn to the left sends UP to LEFT."""
    assert list(encoding.move_permutation(sym)) == [int(m) for m in expected]
    moves = np.array([Move.UP, Move.DOWN, Move.LEFT, Move.RIGHT], np.int8)
    assert encoding.transform_moves(moves, sym).tolist() == [int(m) for m in expected]


def neighbour_policy(planes: np.ndarray) -> np.ndarray:
    """A deterministic policy with no symmetry built in: per move, a weighted sum of
    the planes at the cell the move enters. planes [N, C, H, W] -> [N, 4]."""
    n, c, h, w = planes.shape
    weights = np.linspace(-1.0, 1.0, c)[None, :, None, None]
    score = np.pad((planes * weights).sum(axis=1), ((0, 0), (1, 1), (1, 1)), constant_values=-5)
    _, r, col = np.nonzero(planes[:, Channel.OWN_HEAD])
    r, col = r + 1, col + 1
    idx = np.arange(n)
    return np.stack([score[idx, r - 1, col], score[idx, r + 1, col],
                     score[idx, r, col - 1], score[idx, r, col + 1]], axis=1)


@pytest.fixture(scope="module")
def real() -> positions.Positions:
    return positions.play_positions(GameConfig(11, 11, 4), 300, seed=3)


@pytest.mark.parametrize("sym", list(Symmetry))
def test_policy_of_transformed_position_is_transformed_policy(real, sym):
    planes = real.planes
    transformed = encoding.transform_planes(planes, sym)
    assert np.allclose(neighbour_policy(transformed),
                       encoding.transform_policy(neighbour_policy(planes), sym))
    assert not np.array_equal(transformed, planes) or sym is Symmetry.IDENTITY


@pytest.mark.parametrize("sym", [Symmetry.FLIP_ROWS, Symmetry.FLIP_COLUMNS, Symmetry.ROTATE_180])
def test_non_square_boards(sym):
    config = GameConfig(9, 7, 2)
    state = maps.new_games(config, [4, 5])
    planes = encoding.encode(config, state, 0)
    assert encoding.transform_planes(planes, sym).shape == planes.shape
    assert np.allclose(neighbour_policy(encoding.transform_planes(planes, sym)),
                       encoding.transform_policy(neighbour_policy(planes), sym))


def transform_state(state: BatchState, sym: Symmetry) -> BatchState:
    """The same games on the transformed (square) board: every cell moved as the planes move."""
    board = state.board
    h, w = board.height, board.width
    source = encoding.transform_planes(np.arange(h * w).reshape(h, w), sym).ravel()
    dest = np.empty(h * w, np.int64)
    dest[source] = np.arange(h * w)  # pixel p goes to pixel dest[p]
    cells = np.arange(board.n_cells)
    x, y = board.xy(cells)
    inside = board.inside
    pix = np.where(inside, (h - 1 - y) * w + x, 0)
    new_pix = dest[pix]
    cell_map = np.where(inside, board.cell(new_pix % w, h - 1 - new_pix // w), cells)
    new = state.copy()
    new.body = cell_map[state.body]
    for name in ("food", "hazard", "occ"):
        moved = np.zeros_like(getattr(state, name))
        moved[:, cell_map] = getattr(state, name)
        setattr(new, name, moved)
    return new


@pytest.mark.parametrize("sym", list(Symmetry))
def test_encoding_and_rules_commute_with_symmetries(batch, sym):
    """Encoding the transformed game = transforming the encoding, and the moves that
    are safe there are the relabelled safe moves: the relabelling is the engine's."""
    config, state = batch
    moved = transform_state(state, sym)
    assert np.array_equal(encoding.encode(config, moved, 1),
                          encoding.transform_planes(encoding.encode(config, state, 1), sym))
    assert np.array_equal(safety.safe_moves(config, moved),
                          encoding.transform_policy(safety.safe_moves(config, state), sym))


def test_augment_keeps_positions_and_policies_paired(real):
    rng = np.random.default_rng(1)
    policy = neighbour_policy(real.planes)
    planes, labels = encoding.augment(real.planes, policy, rng)
    assert planes.shape == real.planes.shape and labels.shape == policy.shape
    assert np.allclose(neighbour_policy(planes), labels)
    assert not np.array_equal(planes, real.planes)  # some transform other than identity drawn
