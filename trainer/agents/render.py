"""Terminal rendering of a game with rich: one board per turn, or just the last one.

A `Recorder` observes a match (arena.Observer) and keeps one-game snapshots of
the games to render; `frame` turns a snapshot into a rich renderable (board
plus a legend with each snake's length, health and fate). Rendering happens
after the match, so a slow terminal never slows the games down.
"""

from __future__ import annotations

import time

import numpy as np
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from ouroboros.trainer.agents.gamelog import Roster
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import Cause

EMPTY, FOOD, HEAD, BODY, TAIL = "· ", "● ", "◉ ", "■ ", "▪ "


class Recorder:
    """Keeps a one-game copy of the state of game `game` after every turn it plays."""

    def __init__(self, game: int):
        self.game = game
        self.frames: list[BatchState] = []

    def __call__(self, state: BatchState, played: np.ndarray) -> None:
        if self.game in played:
            self.frames.append(state.select([self.game]))


def frame(state: BatchState, roster: Roster, title: str = "") -> Panel:
    """The board of a one-game state, top row first, with a legend. Cells are two characters."""
    board = state.board
    cells: dict[int, tuple[str, str]] = {}
    for i in range(state.n_snakes):
        if not state.alive[0, i]:
            continue
        body = state.snake_cells(0, i)
        for k in range(len(body) - 1, -1, -1):  # head drawn last, on top of a stacked body
            glyph = HEAD if k == 0 else TAIL if k == len(body) - 1 else BODY
            cells[int(body[k])] = (glyph, f"bold {roster.colors[i]}" if k == 0 else roster.colors[i])
    text = Text()
    for y in range(board.height - 1, -1, -1):
        for x in range(board.width):
            c = int(board.cell(x, y))
            hazard = state.hazard[0, c] > 0
            glyph, style = cells.get(c, (FOOD, "bold red") if state.food[0, c] else (EMPTY, "grey50"))
            text.append(glyph, style=f"{style} on grey19" if hazard else style)
        text.append("\n")
    return Panel(Group(text, legend(state, roster)), title=title or f"turn {int(state.turn[0])}",
                 expand=False)


def legend(state: BatchState, roster: Roster) -> Text:
    """One line per snake: name, length, health, or how and when it was eliminated."""
    out = Text()
    for i in range(state.n_snakes):
        out.append(f"{HEAD}{roster.names[i]:<16}", style=f"bold {roster.colors[i]}")
        if state.alive[0, i]:
            out.append(f" length {int(state.length[0, i]):>3}  health {int(state.health[0, i]):>3}")
        else:
            cause = Cause(int(state.cause[0, i])).api_name
            by = int(state.eliminated_by[0, i])
            by_text = f" by {roster.names[by]}" if by >= 0 and by != i else ""
            out.append(f" out on turn {int(state.eliminated_turn[0, i])}: {cause}{by_text}", style="dim")
        if i < state.n_snakes - 1:
            out.append("\n")
    return out


def play_back(console: Console, frames: list[BatchState], roster: Roster, delay: float = 0.0,
              final_only: bool = False, title: str = "") -> None:
    """Shows the frames in order: animated in place on a terminal (`delay` seconds per
    turn), printed one after another without pause elsewhere (CI logs); with
    `final_only`, just the last one."""
    if not frames:
        return
    label = (lambda f: f"{title} · turn {int(f.turn[0])}") if title else (lambda f: f"turn {int(f.turn[0])}")
    if final_only:
        console.print(frame(frames[-1], roster, label(frames[-1])))
        return
    if console.is_terminal:
        from rich.live import Live

        with Live(frame(frames[0], roster, label(frames[0])), console=console, auto_refresh=False) as live:
            for f in frames:
                live.update(frame(f, roster, label(f)), refresh=True)
                if delay > 0:
                    time.sleep(delay)
        return
    for f in frames:
        console.print(frame(f, roster, label(f)))
