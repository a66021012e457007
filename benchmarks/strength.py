"""The strength ladder: every kind of player against every other, with intervals.

    python -m benchmarks.strength [--games 20] [--budgets 100,400] [--ffa-games 40] [--endgame SHARE]
                                  [--players SPEC,...] [--model PATH] [--workers 1] [--json FILE]

Two tables, both on 11x11 with the standard rules and map:

* **Duels**: a round-robin league (paired seeds, seats swapped, `--games`
  per pairing) between random-safe, greedy, the heuristic teacher, the frozen
  baseline `search-v1`, `search` at each budget, the champion as a policy
  (greedy over its logits) and the champion inside `nsearch` at each budget.
  Prints Bradley-Terry Elo (mean 0) with a 95% interval (1.96 standard
  errors) and every pair's score with its Wilson 95% interval.
* **Free-for-all**: 4-player games (`--ffa-games`, every seat rotation of each
  seed) between the heuristic, search, the champion and champion+nsearch at
  the first budget: win rates, mean survival, and pairwise scores (who
  outlived whom).

The champion with search plays as ``ouro serve --player champion+nsearch`` serves
it: with ``--endgame SHARE`` it hands crowded positions (bodies filling that
share of the board) to the compiled alpha-beta, as the served and gated
champion does with ``endgameShare`` (:mod:`ouroboros.trainer.agents.nsearch`);
0 (the default) searches every position with the tree.

The champion is `--model` (an ONNX file with the contract), else the local
registry's champion of standard-11x11-2p (`$OURO_STORE` or ./runs/registry);
without one, the neural players are left out and the table says so. Each
run records the commit, the machine (CPUs, Python) and its load average
before and after, because a search player's strength depends on how much CPU
its budget buys: compare only runs on similar load.

Budgets are per move and game; a search player plays its games one after
another inside a worker, so a pairing of two 400 ms players costs about
games x 150 turns x 0.8 s. Small runs (a few games, budgets 20/50 ms) are
for checking; the README's table says which run it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

from benchmarks.tournament import champion_model
from ouroboros.trainer.agents import neural
from ouroboros.trainer.agents import registry as agent_registry
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.evaluation import tournament

Z95 = 1.959964


def line_up(budgets: list[int], model: str | None, endgame: float = 0.0) -> list[tuple[str, str]]:
    """(spec, display name) of the duel ladder; `endgame` is champion+nsearch's hand-off share (0: none)."""
    players = [("random-safe", "random-safe"), ("greedy", "greedy"), ("heuristic", "heuristic"),
               (f"search-v1:ms={budgets[0]}", f"search-v1 {budgets[0]}ms")]
    players += [(f"search:ms={ms}", f"search {ms}ms") for ms in budgets]
    if model:
        players.append((f"onnx:{model}", "champion policy"))
        handoff = f",endgame={endgame:g}" if endgame else ""
        players += [(f"nsearch:model={model},ms={ms}{handoff}", f"champion+nsearch {ms}ms") for ms in budgets]
    return players


def entrants(players: str | None, budgets: list[int], model: str | None,
             endgame: float = 0.0) -> list[tuple[str, str]]:
    """(spec, display name) of ``--players`` (split as `ouro evaluate` splits them, so that
    ``nsearch:model=M,ms=100`` stays one spec), else of the ladder."""
    if players:
        return [(s, s) for s in agent_registry.split_specs(players)]
    return line_up(budgets, model, endgame)


def model_problem(model: str) -> str | None:
    """Why ``model`` cannot play the ladder's 11x11 games, or None."""
    try:
        board = neural.check_model(model)["board"]
        width, height = int(board["width"]), int(board["height"])
    except (neural.ModelContractError, OSError) as err:
        return f"--model {model}: {err}"
    if width < 11 or height < 11:
        return f"--model {model}: the model takes boards up to {width}x{height}, the ladder plays 11x11"
    return None


def machine() -> dict:
    """Where and on what the ladder ran."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {"commit": commit + ("+dirty" if dirty else ""), "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
            "load_before": round(os.getloadavg()[0], 2), "time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def table(report: tournament.TournamentReport) -> list[str]:
    """Text lines: ratings, then pairs."""
    lines = [f"{'player':<26} {'Elo':>6}  {'95% interval':<16} {'games':>5} {'score':>6}"]
    for r in sorted(report.league, key=lambda r: -r.elo):
        lines.append(f"{r.player:<26} {r.elo:+6.0f}  [{r.elo - Z95 * r.stderr:+5.0f}, {r.elo + Z95 * r.stderr:+5.0f}]"
                     f" {r.games:>5} {r.score:6.1%}")
    lines.append("")
    lines.append(f"{'pair':<54} {'W-D-L':>9} {'score':>6}  Wilson 95%")
    for p in report.pairs:
        lines.append(f"{p.player + ' vs ' + p.opponent:<54} {p.wins:>3}-{p.draws}-{p.losses:<3} {p.score:6.1%}"
                     f"  [{p.wilson_lower:.1%}, {p.wilson_upper:.1%}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--games", type=int, default=20, help="duels per pairing, seats swapped (default: %(default)s)")
    p.add_argument("--budgets", default="100,400", help="search budgets in ms per move (default: %(default)s)")
    p.add_argument("--ffa-games", type=int, default=40, help="4-player games (0: none; default: %(default)s)")
    p.add_argument("--endgame", type=float, default=0.0, metavar="SHARE",
                   help="champion+nsearch hands positions whose bodies fill SHARE of the board to the alpha-beta, "
                        "as served with endgameShare (0: never; default: %(default)s)")
    p.add_argument("--players", help="comma-separated specs instead of the ladder (duels only)")
    p.add_argument("--model", help="the champion as an ONNX file (default: the local registry's)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default: %(default)s)")
    p.add_argument("--max-turns", type=int, default=0,
                   help="end games after this many turns as draws (0: never; default: %(default)s)")
    p.add_argument("--json", help="also write everything as JSON")
    args = p.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]
    if not 0 <= args.endgame <= 1:
        p.error(f"--endgame: a share of the board between 0 and 1, got {args.endgame:g}")
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or champion_model(folder)
        problem = model and model_problem(model)
        if problem:  # found before the first game, not as a traceback in the middle of the league
            print(f"strength: error: {problem}", file=sys.stderr)
            return 2
        where = machine()
        print(f"commit {where['commit']}, {where['cpus']} CPUs ({where['cpu']}), Python {where['python']}, "
              f"load {where['load_before']}, {where['time']}")
        if model and args.endgame:
            print(f"champion+nsearch hands positions whose bodies fill {args.endgame:.0%} of the board to the alpha-beta")
        if not model:
            print("champion: none (no --model and no champion in the local registry): neural players left out")
        line = [tournament.Entrant(spec, name) for spec, name in entrants(args.players, budgets, model, args.endgame)]
        settings = tournament.TournamentConfig(games=args.games, workers=args.workers, seed=args.seed,
                                               chunk_groups=1, max_turns=args.max_turns)
        duels = tournament.run(line, GameConfig(), settings)
        cap = f", games stopped at turn {args.max_turns} count as draws" if args.max_turns else ""
        print(f"\nduels, 11x11 standard: {args.games} games per pair ({duels.games} in all, "
              f"{duels.seconds:.0f} s, mean {duels.mean_turns:.0f} turns{cap})")
        print("\n".join(table(duels)))
        ffa = None
        if args.ffa_games and not args.players:
            wanted = (["heuristic", f"search {budgets[0]}ms", "champion policy", f"champion+nsearch {budgets[0]}ms"]
                      if model else ["greedy", "heuristic", f"search-v1 {budgets[0]}ms", f"search {budgets[0]}ms"])
            four = [e for e in line if e.name in wanted]
            ffa_settings = tournament.TournamentConfig(games=args.ffa_games, workers=args.workers,
                                                       seed=args.seed + 10_000, chunk_groups=1, ffa=True,
                                                       max_turns=args.max_turns)
            ffa = tournament.run(four, GameConfig(n_snakes=len(four)), ffa_settings)
            print(f"\nfree-for-all, 11x11 standard, {len(four)} snakes: {ffa.games} games ({ffa.seconds:.0f} s, "
                  f"mean {ffa.mean_turns:.0f} turns)")
            print(f"{'player':<26} {'wins':>5} {'rate':>6} {'survival':>9}")
            for r in ffa.ffa:
                print(f"{r.player:<26} {r.wins:>5} {r.win_rate:6.1%} {r.mean_survival:9.1f}")
            print("\n".join(table(ffa)))
        where["load_after"] = round(os.getloadavg()[0], 2)
        print(f"\nload after: {where['load_after']}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": where, "budgets_ms": budgets, "endgame": args.endgame, "max_turns": args.max_turns, "duels": duels.model_dump(mode="json"),
                       "ffa": ffa.model_dump(mode="json") if ffa else None}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
