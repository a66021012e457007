"""`evaluation.strength`: the final duels play the network the way its gate plays it, hence as it is served.

The `smoke` preset's network on its 7x7 board; the neural search runs on a simulation cap with no
clock (`ms=0`), so every game is reproducible whatever the machine's load.
"""

from __future__ import annotations

import pytest
import torch

from ouroboros.contract.promotion import PromotionSpec
from ouroboros.trainer.agents import nsearch
from ouroboros.trainer.commands.train import PRESETS
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.evaluation import strength
from ouroboros.trainer.learning import networks, onnx_export

pytestmark = pytest.mark.unit

SMOKE = PRESETS["smoke"]
CAPPED = PromotionSpec(player="nsearch", move_budget_ms=0, max_visits=6)


@pytest.fixture(scope="module")
def smoke_network(tmp_path_factory):
    """The smoke preset's network (untrained, seed 3) and its exported ONNX file."""
    torch.manual_seed(3)
    net = networks.build_network(SMOKE.network, seed=3)
    path = tmp_path_factory.mktemp("strength") / "candidate.onnx"
    onnx_export.export(net, path, height=SMOKE.game.height, width=SMOKE.game.width)
    return net, path


def test_the_default_gate_plays_the_bare_policy(smoke_network, nsearch_decisions, one_torch_thread):
    net, path = smoke_network
    me = strength.served_player(net, path, SMOKE.promotion)
    duel = strength.duel(me, "random-safe", game_config(SMOKE.game), 2, max_turns=SMOKE.game.max_turns)
    assert duel.player == "policy" and duel.games == 2 and duel.describe().startswith("policy vs random-safe")
    assert nsearch_decisions == []  # not one search: the network's move at once
    # a bare network is the same policy player, as before
    again = strength.duel(net, "random-safe", game_config(SMOKE.game), 2, max_turns=SMOKE.game.max_turns)
    assert again == duel


def test_an_nsearch_gate_plays_the_duels_inside_the_search_at_its_budget(smoke_network, nsearch_decisions, one_torch_thread):
    net, path = smoke_network
    me = strength.served_player(net, path, CAPPED)
    assert isinstance(me, nsearch.NeuralSearch) and (me.ms, me.visits) == (0, 6)
    config = game_config(SMOKE.game)
    duel = strength.duel(me, "greedy", config, 2, max_turns=SMOKE.game.max_turns)
    assert duel.player == "nsearch:ms=0,visits=6" and duel.games == duel.wins + duel.draws + duel.losses == 2
    assert nsearch_decisions and {name for name, _ in nsearch_decisions} == {"nsearch:ms=0,visits=6"}
    # capped, never clocked: a decision with a choice runs its 6 descents (one with a single safe move runs 0)
    assert {sims for _, sims in nsearch_decisions} <= {0, 6} and any(sims == 6 for _, sims in nsearch_decisions)
    decisions = len(nsearch_decisions)
    nsearch_decisions.clear()
    again = strength.duel(strength.served_player(net, path, CAPPED), "greedy", config, 2,
                          max_turns=SMOKE.game.max_turns)
    assert again == duel and len(nsearch_decisions) == decisions  # the same games: deterministic on a cap
