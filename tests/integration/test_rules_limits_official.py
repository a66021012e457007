"""Every extreme `ouro rules` accepts (engine.limits.RULES) is answered exactly as the
official engine answers it: stacked segments and hazards at the largest stack, integers
at the ends of their ranges, settings far beyond the board, seeds that wrap. An input the
official engine refuses is refused by ours as well."""

from __future__ import annotations

import pytest
from hostile_rules_cases import INIT_EXTREMES, STEP_EXTREMES
from oracle.client import run_oracle

from ouroboros.trainer.commands import rules as rules_cmd
from ouroboros.trainer.engine import jsonio

pytestmark = pytest.mark.integration


def _canonical(answer: dict) -> dict:
    board = answer["board"]
    key = lambda p: (p["x"], p["y"])  # noqa: E731
    return {"turn": answer["turn"], "gameOver": answer["gameOver"],
            "board": {**board, "food": sorted(board["food"], key=key),
                      "hazards": sorted(board["hazards"], key=key)}}


@pytest.mark.parametrize(("action", "cases"), [("step", STEP_EXTREMES), ("init", INIT_EXTREMES)])
def test_extremes_match_the_official_engine(oracle, action, cases):
    handler = rules_cmd.step_line if action == "step" else rules_cmd.init_line
    answers = run_oracle(oracle, action, [request for _, request in cases], strict=False)
    for (name, request), want in zip(cases, answers, strict=True):
        if "error" in want:
            with pytest.raises(jsonio.InputError):
                handler(request)
            continue
        assert _canonical(handler(request)) == _canonical(want), name
