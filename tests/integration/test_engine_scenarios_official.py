"""The hand-written scenarios (tests/engine_scenarios.py) against the official engine."""

from __future__ import annotations

import pytest
from engine_scenarios import SCENARIOS
from oracle.client import run_oracle

from ouroboros.trainer.commands import rules as rules_cmd

pytestmark = pytest.mark.integration


def _canonical(answer: dict) -> dict:
    board = answer["board"]
    key = lambda p: (p["x"], p["y"])  # noqa: E731
    return {"turn": answer["turn"], "gameOver": answer["gameOver"],
            "board": {**board, "food": sorted(board["food"], key=key), "hazards": sorted(board["hazards"], key=key)}}


def test_scenarios_match_official_engine(oracle):
    answers = run_oracle(oracle, "step", [s.request() for s in SCENARIOS])
    for scenario, want in zip(SCENARIOS, answers, strict=True):
        official = {s["id"]: (s["eliminatedCause"], s["eliminatedBy"]) for s in want["board"]["snakes"]}
        assert official == scenario.expect, f"{scenario.name}: the official engine disagrees with the scenario"
        assert _canonical(rules_cmd.step_line(scenario.request())) == _canonical(want), scenario.name
