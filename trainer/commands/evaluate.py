"""`ouro evaluate`: a tournament between any players, as a table or as JSON.

    ouro evaluate --players heuristic,greedy --games 200 --workers 2 --sprt 0,35
    ouro evaluate --players heuristic,greedy,random-safe --games 100        # league
    ouro evaluate --players heuristic,greedy,random-safe,search --ffa --games 40
    ouro evaluate --players registry:v12,champion --store runs/registry --json out.json

Two players duel on paired seeds (each seed twice, seats swapped); three or
more play a round-robin league rated by Bradley–Terry Elo; ``--ffa`` puts
everyone in every game. ``registry:VERSION`` and ``champion`` are fetched from
the model registry, checked against their sha256, and played as ONNX files
(:func:`resolve`, shared with the promotion gate). Exit codes: 0 done,
1 refused (a missing version, no champion), 2 usage, 3 corrupt artifact.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ouroboros.contract.game import GameKey
from ouroboros.contract.promotion import SprtSpec
from ouroboros.trainer.agents import registry as agent_registry
from ouroboros.trainer.agents import stored
from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.artifacts import store as st
from ouroboros.trainer.commands import _common
from ouroboros.trainer.commands._common import EXIT_CORRUPT, EXIT_REFUSED, EXIT_USAGE
from ouroboros.trainer.engine.types import GameConfig, GameMap, Ruleset
from ouroboros.trainer.evaluation import tournament

REGISTRY_SCHEME, CHAMPION, NSEARCH_SCHEME = "registry", "champion", "nsearch"


def parse_sprt(text: str) -> SprtSpec:
    """``elo0,elo1[,alpha,beta]`` -> SprtSpec (alpha and beta default to 0.05)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--sprt expects numbers elo0,elo1[,alpha,beta], got {text!r}") from None
    if len(values) not in (2, 4):
        raise ValueError(f"--sprt expects elo0,elo1 or elo0,elo1,alpha,beta, got {text!r}")
    keys = ("elo0", "elo1", "alpha", "beta")
    return SprtSpec(**dict(zip(keys, values, strict=False)))


def resolve(specs: Sequence[str], store: str, game: str, folder: str | os.PathLike[str]) -> list[tournament.Entrant]:
    """Entrants for specs: ``registry:VERSION`` and ``champion[:GAME]`` (of ``game`` unless named),
    alone or as an ``nsearch`` player's ``model=``, are fetched from ``store``, verified against their
    sha256 (ChecksumError if corrupt) and written under ``folder`` as ONNX files, since workers build
    players from file specs; other specs pass through to the agents' registry."""
    out = []
    for spec in specs:
        fetched = _fetched(spec, store, game, folder)
        if fetched is not None:
            name, path = fetched
            out.append(tournament.Entrant(f"onnx:{path}", name=name))
        elif spec.partition(":")[0] == NSEARCH_SCHEME:
            out.append(tournament.Entrant(_nsearch_fetched(spec, store, game, folder), name=spec))
        else:
            out.append(tournament.Entrant(spec))
    return out


def _fetched(ref: str, store: str, game: str, folder: str | os.PathLike[str]) -> tuple[str, Path] | None:
    """(name, ONNX file) of ``champion[:GAME]`` or ``registry:VERSION`` fetched from ``store``; None for
    any other reference."""
    scheme, _, rest = ref.strip().partition(":")
    if scheme == CHAMPION:
        return stored.champion_model(store, rest or game, folder)
    if scheme == REGISTRY_SCHEME:
        return stored.version_model(store, rest, folder)
    return None


def _nsearch_fetched(spec: str, store: str, game: str, folder: str | os.PathLike[str]) -> str:
    """``spec`` with its ``model=champion[:GAME]`` or ``model=registry:VERSION`` replaced by the fetched
    file: the champion of this tournament's game, as bare ``champion`` is (the player alone would look for
    standard-11x11-2p's in the default store)."""
    head, _, options = spec.partition(":")
    parts = options.split(",")
    for i, part in enumerate(parts):
        key, _, value = part.partition("=")
        fetched = _fetched(value, store, game, folder) if key.strip() == "model" else None
        if fetched is not None:
            parts[i] = f"model={fetched[1]}"
    return f"{head}:{','.join(parts)}"


def game_config(args: argparse.Namespace) -> GameConfig:
    return GameConfig(width=args.width, height=args.height, ruleset=args.ruleset, game_map=args.game_map)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ouro evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--players", required=True, help="comma-separated player specs (2+): random-safe, "
                   "greedy, heuristic, search[:ms=N], onnx:PATH, registry:VERSION, champion")
    p.add_argument("--games", type=int, default=100,
                   help="games per pairing, or in all with --ffa (default: %(default)s; the budget with --sprt)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first pair (default: %(default)s)")
    p.add_argument("--ffa", action="store_true", help="every player in every game (free-for-all)")
    p.add_argument("--sprt", metavar="ELO0,ELO1[,ALPHA,BETA]", help="stop the duel once this SPRT decides")
    p.add_argument("--min-games", type=int, default=0, help="no SPRT stop before this many games")
    p.add_argument("--chunk", type=int, default=8, help="seeds per worker batch (default: %(default)s)")
    p.add_argument("--max-turns", type=int, default=0, help="stop games after this many turns (survivors draw)")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON (- for stdout only)")
    p.add_argument("--width", "-W", type=int, default=11)
    p.add_argument("--height", "-H", type=int, default=11)
    p.add_argument("--ruleset", choices=[r.value for r in Ruleset], default="standard")
    p.add_argument("--map", dest="game_map", choices=[m.value for m in GameMap], default="standard")
    _common.add_store_option(p, "model registry of registry:VERSION and champion")
    p.add_argument("--game", help="game key of `champion` (default: RULESET-WxH-2p)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run `ouro evaluate ...`; returns the exit code."""
    args = _common.parse(parser(), argv)
    if isinstance(args, int):
        return args
    specs = agent_registry.split_specs(args.players)
    try:
        try:
            settings = tournament.TournamentConfig(
                games=args.games, seed=args.seed, workers=args.workers, chunk_groups=args.chunk,
                max_turns=args.max_turns, ffa=args.ffa, min_games=args.min_games,
                sprt=parse_sprt(args.sprt) if args.sprt else None)
        except ValidationError as err:
            raise _common.flag_error(err, {"chunk_groups": "--chunk"}) from None
        config = game_config(args)
        if len(specs) < 2:
            raise ValueError("--players needs at least two specs")
    except ValueError as e:
        print(f"ouro evaluate: {e}", file=sys.stderr)
        return EXIT_USAGE
    game = args.game or str(GameKey(args.ruleset, args.width, args.height, 2))
    try:
        with tempfile.TemporaryDirectory(prefix="ouro-evaluate-") as folder:
            entrants = resolve(specs, args.store, game, folder)
            report = tournament.run(entrants, config, settings)
    except st.ChecksumError as e:
        print(f"ouro evaluate: corrupt model refused: {e}", file=sys.stderr)
        return EXIT_CORRUPT
    except (reg.RegistryError, st.ArtifactError, ValueError, OSError) as e:
        print(f"ouro evaluate: {e}", file=sys.stderr)
        return EXIT_REFUSED
    document = report.model_dump_json(indent=2)
    if args.json == "-":
        print(document)
        return 0
    if args.json:
        Path(args.json).write_text(document + "\n")
    show(report)
    return 0


def _elo(value: float | None) -> str:
    return "inf" if value is None else f"{value:+.0f}"


def show(report: tournament.TournamentReport) -> None:
    """Rich tables: pairs (WDL, pentanomial, score with Wilson CI, Elo with CI), SPRT,
    league or free-for-all table, speed."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console = console if console.is_terminal else Console(width=160)
    title = f"{report.mode.value}: {report.games} games on {report.board}, seed {report.seed}"
    table = Table(title=title)
    for col in ("player", "opponent", "games", "W-D-L", "pairs LL..WW", "score [95% Wilson]", "Elo [95%]"):
        table.add_column(col, justify="left" if col in ("player", "opponent") else "right")
    for p in report.pairs:
        table.add_row(p.player, p.opponent, str(p.games), f"{p.wins}-{p.draws}-{p.losses}",
                      " ".join(map(str, p.pentanomial)) if p.pentanomial else "-",
                      f"{p.score:.3f} [{p.wilson_lower:.3f}, {p.wilson_upper:.3f}]",
                      f"{_elo(p.elo)} [{_elo(p.elo_lower)}, {_elo(p.elo_upper)}]")
    console.print(table)
    if report.sprt is not None:
        s = report.sprt
        console.print(f"SPRT [{s.elo0:g}, {s.elo1:g}] α={s.alpha:g} β={s.beta:g}: LLR {s.llr:.2f} "
                      f"in ({s.lower_bound:.2f}, {s.upper_bound:.2f}) -> [bold]{s.decision.value}[/]"
                      + (" (stopped early)" if s.stopped_early else ""))
    if report.ffa:
        ffa = Table(title="free-for-all")
        for col in ("player", "wins", "draws", "losses", "win rate", "mean survival"):
            ffa.add_column(col, justify="left" if col == "player" else "right")
        for r in report.ffa:
            ffa.add_row(r.player, str(r.wins), str(r.draws), str(r.losses), f"{r.win_rate:.1%}",
                        f"{r.mean_survival:.1f}")
        console.print(ffa)
    if report.league:
        league = Table(title="league (Bradley–Terry Elo, mean 0)")
        for col in ("rank", "player", "Elo", "± 95%", "games", "score"):
            league.add_column(col, justify="left" if col == "player" else "right")
        for rank, r in enumerate(report.league, 1):
            league.add_row(str(rank), r.player, f"{r.elo:+.0f}", f"{1.96 * r.stderr:.0f}", str(r.games),
                           f"{r.score:.3f}")
        console.print(league)
    console.print(f"{report.games} games in {report.seconds:.1f} s: {report.games_per_second:.1f} games/s "
                  f"({report.workers} workers, mean {report.mean_turns:.0f} turns)")


if __name__ == "__main__":
    sys.exit(main())
