"""`ouro play`: local games between built-in players, a results table, rendering, logs.

    ouro play --players heuristic,search,greedy,random-safe --games 4 --render 0

One snake per listed player (two players: duels; four: a free-for-all), all
games of the match in one batch, start positions rotated between games. Prints
a rich results table (wins, draws, losses, mean final length and turns survived
per player), optionally renders one game turn by turn (`--render INDEX`) or just
its last board (`--render-final`), and writes each game as JSON lines in the
official CLI's `--output` format (`-o FILE`).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from ouroboros.contract.game import GameKey
from ouroboros.trainer.agents import arena, gamelog, registry, render
from ouroboros.trainer.engine.types import GameConfig, GameMap, Ruleset, RulesetSettings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouro play", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--players", default="heuristic,search",
                   help="comma-separated player specs, one per snake: " + ", ".join(registry.known())
                   + " (options: search:ms=100; default: %(default)s)")
    p.add_argument("--games", type=int, default=1, help="games to play (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of game 0; game g uses seed + g (default: %(default)s)")
    p.add_argument("--ruleset", choices=[r.value for r in Ruleset], default="standard")
    p.add_argument("--map", dest="game_map", choices=[m.value for m in GameMap], default="standard")
    p.add_argument("--width", "-W", type=int, default=11)
    p.add_argument("--height", "-H", type=int, default=11)
    defaults = RulesetSettings()
    p.add_argument("--food-spawn-chance", type=int, default=defaults.food_spawn_chance)
    p.add_argument("--minimum-food", type=int, default=defaults.minimum_food)
    p.add_argument("--hazard-damage-per-turn", type=int, default=defaults.hazard_damage_per_turn)
    p.add_argument("--shrink-every-n-turns", type=int, default=defaults.shrink_every_n_turns)
    p.add_argument("--search-ms", type=float, default=None,
                   help="move budget of search players that set no ms= themselves (default: 400)")
    p.add_argument("--max-turns", type=int, default=0,
                   help="stop games after this many turns, survivors draw (default: no limit, as the official CLI)")
    p.add_argument("--render", type=int, metavar="INDEX", default=None, help="render game INDEX turn by turn")
    p.add_argument("--render-final", action="store_true", help="render only the final board of the game")
    p.add_argument("--render-delay", type=float, default=0.0, help="seconds between rendered turns (default: 0)")
    p.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write each game as JSON lines (official CLI format); several games: FILE-INDEX.ext, "
                   "or put {game} in FILE")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console()
    specs = registry.split_specs(args.players)
    try:
        config = GameConfig(
            width=args.width, height=args.height, n_snakes=len(specs), ruleset=args.ruleset,
            game_map=args.game_map,
            settings=RulesetSettings(args.food_spawn_chance, args.minimum_food, args.hazard_damage_per_turn,
                                     args.shrink_every_n_turns))
        defaults = {"ms": args.search_ms} if args.search_ms is not None else {}
        game = GameKey(config.ruleset, config.width, config.height, config.n_snakes)
        players = [registry.make_player(champion_of(spec, game), **defaults) for spec in specs]
        if args.games < 1:
            raise ValueError("--games must be at least 1")
        for flag, value in (("--seed", args.seed), ("--max-turns", args.max_turns)):
            if value < 0:  # a negative seed was numpy's "expected non-negative integer"; turns 0 games
                raise ValueError(f"{flag} must not be negative, got {value}")
        if (config.ruleset is Ruleset.SOLO) != (len(specs) == 1):
            raise ValueError("solo takes exactly one player; other rulesets at least two")
        render_index = 0 if args.render is None and args.render_final else args.render
        if render_index is not None and not 0 <= render_index < args.games:
            raise ValueError(f"--render {render_index}: there are {args.games} games (0..{args.games - 1})")
    except ValueError as err:
        print(f"ouro play: {err}", file=sys.stderr)
        return 2

    roster = gamelog.Roster.of([p.name for p in players])
    seeds = args.seed + np.arange(args.games)
    observers = []
    log = recorder = None
    if args.output:
        log = gamelog.GameLog(config, roster, [gamelog.game_id(args.seed, g) for g in range(args.games)])
        observers.append(log)
    if render_index is not None:
        recorder = render.Recorder(render_index)
        observers.append(recorder)

    def observe(state, played):
        for obs in observers:
            obs(state, played)

    started = time.perf_counter()
    try:
        result = arena.play_match(config, players, seeds, np.random.default_rng(args.seed),
                                  max_turns=args.max_turns, observer=observe if observers else None)
    except Exception as err:  # setup errors (board too small for the snakes, ...) are user errors
        if isinstance(err, ValueError):
            print(f"ouro play: {err}", file=sys.stderr)
            return 2
        raise
    elapsed = time.perf_counter() - started

    if recorder is not None:
        render.play_back(console, recorder.frames, roster, args.render_delay, args.render_final,
                         title=f"game {render_index} (seed {int(seeds[render_index])})")
    console.print(results_table(result, roster))
    console.print(games_summary(result, roster, elapsed))
    if log is not None:
        over = ~result.truncated
        paths = gamelog.log_paths(args.output, args.games)
        for g, lines in log.finish(result.final, over).items():
            gamelog.write_lines(paths[g], lines)
        where = paths[0] if len(paths) == 1 else f"{paths[0]} .. {paths[-1]}"
        console.print(f"wrote {len(paths)} game log(s): {where}")
    return 0


def champion_of(spec: str, game: GameKey) -> str:
    """``spec`` with a bare champion naming the game being played: ``champion`` becomes
    ``champion:GAME`` and ``nsearch``'s ``model=champion`` becomes ``model=champion:GAME``, so
    that ``--width 7 --height 7`` plays the 7x7 champion, not the default 11x11 one. A spec that
    names its game (``champion:GAME``) is kept as written."""
    name, colon, rest = spec.strip().partition(":")
    if name == "champion" and not colon:
        return f"champion:{game}"
    if name == "nsearch" and colon:
        options = [f"model=champion:{game}" if item.replace(" ", "") == "model=champion" else item
                   for item in rest.split(",")]
        return f"{name}:{','.join(options)}"
    return spec


def results_table(result: arena.MatchResult, roster: gamelog.Roster) -> Table:
    """Per player: wins, draws, losses, win rate, mean final length and turns survived."""
    games = len(result.seeds)
    table = Table(title=f"{games} game(s) · {result.config.ruleset.value} · {result.config.game_map.value} · "
                  f"{result.config.width}x{result.config.height}")
    solo = result.config.ruleset is Ruleset.SOLO  # nobody wins a solo game: it is about surviving
    scored = () if solo else ("wins", "draws", "losses", "win %")
    for col in ("player", *scored, "mean length", "mean turns survived"):
        table.add_column(col, justify="left" if col == "player" else "right")
    survived = result.survived()
    for p, name in enumerate(roster.names):
        o = result.outcome[:, p]
        wins, draws, losses = (int((o == v).sum()) for v in (arena.WIN, arena.DRAW, arena.LOSS))
        counts = () if solo else (str(wins), str(draws), str(losses), f"{100.0 * wins / games:.0f}")
        table.add_row(f"[{roster.colors[p]}]{name}[/]", *counts, f"{result.final.length[:, p].mean():.1f}",
                      f"{survived[:, p].mean():.1f}")
    return table


def games_summary(result: arena.MatchResult, roster: gamelog.Roster, elapsed: float) -> str:
    """One line: games, mean game length, how many drew or were cut short, wall time."""
    draws = int(((result.winner < 0) & ~result.truncated).sum())
    parts = [f"mean game length {result.turns.mean():.1f} turns"]
    if result.config.n_snakes > 1:
        parts.append(f"{draws} drawn")
    if result.truncated.any():
        parts.append(f"{int(result.truncated.sum())} stopped at --max-turns")
    parts.append(f"{elapsed:.1f} s")
    return " · ".join(parts)
