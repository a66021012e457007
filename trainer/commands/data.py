"""`ouro data stats|import`: what replay data a store holds, and games from outside.

``stats`` is thin wiring over :func:`ouroboros.trainer.learning.shards.summarize`:
it reads shard sidecars only, so it is cheap on a large store; ``--verify``
also hashes every shard and lists the corrupt ones (which training skips).
Humans get rich tables; ``--json`` prints one JSON document for scripts.

``import FILE.jsonl...`` reads official-CLI game logs
(:mod:`ouroboros.trainer.learning.imported`), validates every turn against
our rules, and writes each game as one replay shard of
``runs/<run>/replay/<phase>/`` whose sidecar carries its provenance (file,
sha256, game id, snake names, winner). All files are checked before anything
is written: one bad log refuses the import, naming file, line and turn. A
file already imported into that run and phase (same sha256) is skipped. A
bootstrap phase with ``imitate_phases=("imported",)`` then imitates these games.

Exit codes: 0 ok, 1 refused (bad store, name or log), 2 usage, 3 a corrupt
shard was found by ``--verify``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ouroboros.trainer.artifacts import store as st
from ouroboros.trainer.commands import _common
from ouroboros.trainer.commands._common import EXIT_CORRUPT, EXIT_REFUSED, EXIT_USAGE
from ouroboros.trainer.learning import shards
from ouroboros.trainer.observation import encoding


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="ouro data",
        description="Replay data in an artifact store.",
        epilog="exit codes: 0 ok, 1 refused, 2 usage, 3 corrupt shard found by --verify",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("stats", help="games, positions, quality and age per phase and producer")
    _common.add_store_option(p)
    p.add_argument("--run", help="only this training run (default: every run in the store)")
    p.add_argument("--phase", help="only this phase (with --run)")
    p.add_argument("--verify", action="store_true", help="hash every shard and report corrupt ones")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    i = sub.add_parser("import", help="official-CLI JSONL game logs -> replay shards, validated turn by turn")
    i.add_argument("files", nargs="+", metavar="FILE", help="game logs (battlesnake play -o, ouro play -o)")
    _common.add_store_option(i)
    i.add_argument("--run", required=True, help="training run the games join (runs/<run>/replay/<phase>/)")
    i.add_argument("--phase", default="imported", help="replay folder name (default: %(default)s)")
    i.add_argument("--only", help="comma-separated snake names: import only their moves")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `ouro data ...`; returns the exit code."""
    args = _common.parse(build_parser(), argv)
    if isinstance(args, int):
        return args
    if args.command == "import":
        return _import(args)
    if args.phase and not args.run:
        print("ouro data: error: --phase needs --run", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = st.ArtifactStore(args.store)
        refs = shards.list_shards(store, args.run, args.phase)
        corrupt = _verify(store, refs) if args.verify else []
    except (st.ArtifactError, ValueError, OSError) as e:
        print(f"ouro data: error: {e}", file=sys.stderr)
        return EXIT_REFUSED
    summary = shards.summarize(refs)
    now = time.time()
    if args.json:
        print(json.dumps(_document(store, args, summary, corrupt, now), indent=2, sort_keys=True))
    else:
        _print(store, args, summary, corrupt, now)
    return EXIT_CORRUPT if corrupt else 0


def _import(args: argparse.Namespace) -> int:
    from ouroboros.trainer.learning import imported

    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
    try:
        shards.check_name(args.run, "run")
        shards.check_name(args.phase, "phase")
        games = [imported.read(f) for f in args.files]  # every file checked before anything is written
        store = st.ArtifactStore(args.store)
        done = {str(r.meta.extra.get("sha256")) for r in shards.list_shards(store, args.run, args.phase)}
    except (imported.LogError, st.ArtifactError, ValueError, OSError) as e:
        print(f"ouro data import: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    sizes = {(g.config.width, g.config.height) for g in games}
    if len(sizes) > 1:
        print(f"ouro data import: refused: boards of several sizes {sorted(sizes)}; import each size "
              "into its own run", file=sys.stderr)
        return EXIT_REFUSED
    rows = 0
    for game in games:
        if game.sha256 in done:
            print(f"{game.source}: already imported into {args.run}/{args.phase}, skipped")
            continue
        cols = game.columns(only)
        if not len(cols["move"]):
            print(f"{game.source}: no positions of {sorted(only or [])}, skipped")
            continue
        winner = game.names[game.winner] if game.winner >= 0 else None
        provenance = {"producer": "import", "encoding": encoding.SHARD_LABEL, "source": game.source,
                      "sha256": game.sha256, "game": game.game_id, "snakes": game.names, "winner": winner,
                      "ruleset": game.config.ruleset.value, "board": f"{game.config.width}x{game.config.height}"}
        writer = shards.ReplayWriter(store, args.run, args.phase, shard_rows=1 << 30, extra=provenance)
        writer.add("import", cols, cursor={"sha256": game.sha256})
        writer.flush()
        done.add(game.sha256)
        rows += len(cols["move"])
        print(f"{game.source}: {len(game.states) - 1} turns, {len(cols['move'])} positions, "
              f"winner {winner or '(draw)'} -> {args.run}/{args.phase}")
    print(f"imported {rows} positions into {store.url}/runs/{args.run}/replay/{args.phase}/")
    return 0


def _verify(store: st.ArtifactStore, refs: list[shards.ShardRef]) -> list[dict[str, str]]:
    corrupt = []
    for ref in refs:
        try:
            shards.read_shard(store, ref)
        except st.ArtifactError as e:
            corrupt.append({"key": ref.key, "error": str(e)})
    return corrupt


def _row(s: shards.DataSummary, now: float) -> dict[str, Any]:
    doc = s.model_dump(mode="json")
    for field in ("oldest", "newest"):
        value = doc[field]
        doc[f"{field}_at"] = None if value is None else datetime.fromtimestamp(value, UTC).isoformat()
        doc[f"{field}_age_s"] = None if value is None else round(now - value, 3)
    return doc


def _document(store, args, summary, corrupt, now) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        "store": store.url,
        "run": args.run,
        "phase": args.phase,
        "total": _row(summary["total"][0], now),
        "phases": [_row(s, now) for s in summary["phases"]],
        "producers": [_row(s, now) for s in summary["producers"]],
        **({"corrupt": corrupt} if args.verify else {}),
    }


def _age(value: float | None, now: float) -> str:
    if value is None:
        return "-"
    seconds = max(0.0, now - value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _size(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _print(store, args, summary, corrupt, now) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200, soft_wrap=False)
    scope = f"run {args.run}" + (f", phase {args.phase}" if args.phase else "") if args.run else "all runs"
    if not summary["phases"]:
        console.print(f"no replay shards in {store.url} ({scope})")
        return
    table = Table(title=f"replay data in {store.url} ({scope})")
    for col in ("run", "phase", "producer", "shards", "games", "positions", "quality", "oldest", "newest", "size"):
        table.add_column(col, justify="right" if col in ("shards", "games", "positions", "quality", "size") else "left")
    rows = [*summary["phases"], *summary["producers"]]
    rows.sort(key=lambda s: (s.run or "", s.phase or "", s.producer is not None, s.producer or ""))
    rows.append(summary["total"][0])
    for s in rows:
        is_total = s.run is None
        table.add_row(
            "total" if is_total else s.run,
            "" if is_total else s.phase,
            f"  {s.producer}" if s.producer else ("" if is_total else "(all)"),
            f"{s.shards:,}" if s.producer is None else "",
            f"{s.games:,}",
            f"{s.positions:,}",
            "-" if s.quality_mean is None else f"{s.quality_mean:.3f}",
            _age(s.oldest, now),
            _age(s.newest, now),
            _size(s.bytes) if s.producer is None else "",
            end_section=is_total or False,
            style="bold" if is_total else None,
        )
    console.print(table)
    for c in corrupt:
        console.print(f"[red]corrupt shard[/] {c['key']}: {c['error']}")
