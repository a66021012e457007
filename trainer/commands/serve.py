"""`ouro serve`: play real Battlesnake games with any player over the API v1.

    ouro serve --player heuristic --host 0.0.0.0 --port 8000
    ouro serve --player champion --store s3://bucket/ouro --game standard-11x11-2p

Wiring only: flags -> `serving.app.ServerSettings` -> `serving.server`. The
player is built before the port opens, so a bad spec or a missing champion
fails at once with exit status 2 instead of at the first game. SIGTERM (a
Kubernetes pod stopping) and Ctrl-C stop the server cleanly with status 0;
a port that cannot be bound exits with 1.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import re
import signal
import sys

from ouroboros.trainer.artifacts import registry as reg
from ouroboros.trainer.artifacts.store import ArtifactError
from ouroboros.trainer.commands import _common
from ouroboros.trainer.serving import app as app_module
from ouroboros.trainer.serving import players, protocol, server

_FLAGS = {"host": "--host", "port": "--port", "max_body_bytes": "--max-body-bytes", "max_games": "--max-games",
          "latency_margin_ms": "--margin-ms", "max_think_ms": "--max-think-ms", "idle_timeout_s": "--idle-timeout",
          "request_timeout_s": "--request-timeout", "max_connections": "--max-connections"}
"""The flag of each ServerSettings field, so that its refusal names what the user typed."""


def _port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535; argparse refuses anything else with exit 2."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0 to 65535)")
    return port


def _color(text: str) -> str:
    """A Battlesnake colour: ``#rrggbb`` (the API's hex colour; anything else shows the default)."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a #rrggbb colour")
    return text


def _seconds(text: str) -> float:
    """A finite, non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds >= 0")
    return value


BUILTIN_PREFERENCE = ("heuristic", "greedy")
"""Served without --player when the store has no champion for --game: the first that can be built."""


def default_spec(store: str, game: str) -> str:
    """`champion` when the store (the default one included) has a champion for `game`,
    else the strongest built-in player available."""
    try:
        if reg.Registry.open(store).champion(game).version is not None:
            return players.CHAMPION
    except (reg.RegistryError, ArtifactError, ValueError, OSError):
        pass  # an unreadable store: `--player champion` would say why; the default plays on

    for spec in BUILTIN_PREFERENCE:
        try:
            players.make_player(spec)
            return spec
        except players.PlayerUnavailable:
            continue
    return BUILTIN_PREFERENCE[-1]


def _parser() -> argparse.ArgumentParser:
    d = app_module.ServerSettings()
    a = protocol.Appearance()
    parser = argparse.ArgumentParser(
        prog="ouro serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--player", default=None,
                        help="random-safe | greedy | heuristic | search[:ms=N] | search-v1 | onnx:PATH | "
                             "nsearch:model=PATH[,ms=N] | champion | champion+nsearch[:ms=N] "
                             "(default: champion if the store has one for --game, else heuristic)")
    _common.add_store_option(parser, "model registry of --player champion[+nsearch]")
    parser.add_argument("--game", default=players.ChampionSource().game,
                        help="game configuration whose champion is served (default %(default)s)")
    parser.add_argument("--follow-interval", type=_seconds, default=players.ChampionSource().follow_interval_s,
                        help="--player champion: seconds between re-reads of the registry's pointer; a new "
                             "version is played from the next game on (default %(default)s)")
    parser.add_argument("--host", default=d.host, help="interface to listen on (default %(default)s)")
    parser.add_argument("--port", type=_port, default=d.port, help="TCP port (default %(default)s)")
    parser.add_argument("--margin-ms", type=int, default=d.latency_margin_ms,
                        help="part of the game's timeout kept for the network (default %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes,
                        help="largest request body accepted (default %(default)s)")
    parser.add_argument("--max-games", type=int, default=d.max_games,
                        help="game sessions kept at once (default %(default)s)")
    parser.add_argument("--max-connections", type=int, default=d.max_connections,
                        help="connections served at once (default %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s,
                        help="seconds before an idle connection is closed (default %(default)s)")
    parser.add_argument("--request-timeout", type=float, default=d.request_timeout_s,
                        help="seconds a request may take to arrive whole, from its first byte "
                             "(default %(default)s)")
    parser.add_argument("--max-think-ms", type=int, default=d.max_think_ms,
                        help="most a search player thinks per move, whatever game.timeout says "
                             "(default %(default)s)")
    parser.add_argument("--author", default=a.author, help="author shown on the board")
    parser.add_argument("--color", type=_color, default=a.color, help="snake colour, #rrggbb")
    parser.add_argument("--head", default=a.head, help="head customization")
    parser.add_argument("--tail", default=a.tail, help="tail customization")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity")
    return parser


def settings_from(args: argparse.Namespace) -> app_module.ServerSettings:
    """The server settings the flags describe."""
    return app_module.ServerSettings(
        host=args.host, port=args.port, max_body_bytes=args.max_body_bytes,
        max_games=args.max_games, latency_margin_ms=args.margin_ms, max_think_ms=args.max_think_ms,
        idle_timeout_s=args.idle_timeout, request_timeout_s=args.request_timeout,
        max_connections=args.max_connections,
        appearance=protocol.Appearance(author=args.author, color=args.color, head=args.head,
                                       tail=args.tail))


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; 0 on a clean stop, 1 if the port cannot be bound, 2 on bad input."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = args.player or default_spec(args.store, args.game)
    try:
        app = app_module.App(spec, settings_from(args),
                             players.ChampionSource(registry_url=args.store, game=args.game,
                                                    follow_interval_s=args.follow_interval))
    except (players.PlayerUnavailable, ValueError) as err:
        field, colon, rest = str(err).partition(":")
        print(f"ouro serve: {_FLAGS[field]}:{rest}" if colon and field in _FLAGS else f"ouro serve: {err}",
              file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - e.g. a registry that cannot be read
        print(f"ouro serve: cannot load player {spec!r}: {err}", file=sys.stderr)
        return 2
    app.warm_up()  # before the port opens: no game's first move compiles kernels
    try:
        httpd = server.make_server(app)
    except OSError as err:
        print(f"ouro serve: cannot listen on {args.host}:{args.port}: {err.strerror or err}",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _stop)
    # Everything built so far (modules, the player, a model) lives as long as the
    # process: frozen, the collector's full passes no longer walk it mid-move.
    gc.collect()
    gc.freeze()
    print(f"ouro serve: {spec} on {httpd.url}", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    print("ouro serve: stopped", file=sys.stderr)
    return 0
