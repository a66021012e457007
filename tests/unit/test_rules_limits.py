"""`ouro rules`: hostile input is refused with `line N: field: reason`, never a traceback or
a hang, and work stays bounded by the board (engine.limits). Whether the accepted
extremes agree with the official engine is tests/integration/test_rules_limits_official.py."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from hostile_rules_cases import REFUSED, ROYALE_LAST_TURN, STEP_EXTREMES, snake, step

from ouroboros.trainer.commands import rules as rules_cmd
from ouroboros.trainer.engine import jsonio, limits

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("name", "action", "line", "field"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_with_the_field_named(name, action, line, field):
    handler = rules_cmd.step_line if action == "step" else rules_cmd.init_line
    with pytest.raises(jsonio.InputError) as caught:
        list(rules_cmd.run(["", line], handler))
    path = caught.value.path
    assert path == ("line 2" if field == "line 1" else f"line 2: {field}"), str(caught.value)
    str(caught.value).encode("utf-8")  # printable on stderr, whatever the input held


def test_the_cli_prints_one_line_and_keeps_earlier_answers():
    good = json.dumps(step([snake("a", (2, 2), (2, 1))], {"a": "up"}))
    bad = next(line for name, _, line, _ in REFUSED if name == "royale shrink 0")
    proc = subprocess.run([sys.executable, "-m", "ouroboros.trainer.commands.cli", "rules", "step"],
                          input=f"{good}\n{bad}\n{good}\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stderr == ("ouro rules step: line 2: ruleset.settings.royale.shrinkEveryNTurns: 0: a "
                           "royale game can't shrink more often than every turn (at least 1)\n")


@pytest.mark.parametrize("payload", ["[" * 100_000, '{"turn": ' + "1" * 10_000 + "}", "\"\\udfff\""],
                         ids=["deep", "digits", "surrogate"])
def test_the_cli_never_prints_a_traceback(payload):
    proc = subprocess.run([sys.executable, "-m", "ouroboros.trainer.commands.cli", "rules", "step"],
                          input=payload + "\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ouro rules step: line 1") and "Traceback" not in proc.stderr


def test_a_line_past_the_limit_is_refused_without_reading_it_whole():
    stream = io.BytesIO(b"{}\n" + b" " * 100 + b"\n")
    lines = rules_cmd.read_lines(stream, limit=50)
    assert next(lines) == "{}\n"
    with pytest.raises(jsonio.InputError, match="line 2: longer than 50 bytes"):
        next(lines)
    with pytest.raises(jsonio.InputError, match="line 1: not UTF-8"):
        next(rules_cmd.read_lines(io.BytesIO(b"\xff\n")))


def test_init_and_step_share_one_limit():
    """Every board `init` makes, `step` accepts: the largest board and snake count included."""
    n, side = limits.RULES.max_snakes, limits.RULES.max_side
    start = rules_cmd.init_line({"ruleset": {"name": "standard"}, "seed": 7, "width": side,
                                 "height": side, "snakes": [f"s{i}" for i in range(n)]})
    board = start["board"]
    answer = rules_cmd.step_line({"ruleset": {"name": "standard"}, "seed": 7, "turn": 0,
                                  "board": board, "moves": {}})
    assert answer["turn"] == 1 and len(answer["board"]["snakes"]) == n


def _run(name: str) -> dict:
    request = dict(STEP_EXTREMES)[name]
    return rules_cmd.step_line(request)


def test_stacked_segments_kill_at_the_largest_stack():
    """b moving into a cell holding 1,024 of a's segments dies (no int16 wrap)."""
    snakes = {s["id"]: s for s in _run("b moves into 1,024 stacked segments of a")["board"]["snakes"]}
    assert snakes["b"]["eliminatedCause"] == "snake-collision" and snakes["b"]["eliminatedBy"] == "a"


def test_a_full_hazard_stack_damages_every_entry():
    """16 entries of damage 14 on 100 health: the official engine clamps after each one."""
    a, _ = _run("16 hazards on one cell, damage 14")["board"]["snakes"]
    assert a["eliminatedCause"] == "hazard" and a["health"] == 0


def test_a_huge_minimum_food_fills_the_board_and_stops():
    board = _run("minimumFood 2^31-1 on 25x25")["board"]
    occupied = {(p["x"], p["y"]) for s in board["snakes"] for p in s["body"]}
    assert len(board["food"]) == 25 * 25 - len(occupied) - 6  # all but bodies and the heads' free neighbours


def test_a_long_royale_game_is_all_hazard():
    board = rules_cmd.step_line(ROYALE_LAST_TURN)["board"]
    assert len(board["hazards"]) == 25 * 25
