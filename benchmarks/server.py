"""Move latency of `ouro serve`, measured the way a game engine sees it.

The server runs in its own process (`ouro serve --port 0`, as in production);
this process is the HTTP client and times each `/move` round trip, from the
first byte sent to the last byte of the answer, on real positions (11x11, two
and four snakes, from random-safe self-play on our engine). Modes:

- `keep-alive`: one persistent connection, as the official engine does;
- `new-conn`: a fresh TCP connection per move (`Connection: close`);
- `paced`: keep-alive with a pause before each move (`--gap-ms`), as a game
  engine waits for the other snakes between turns: a server that is not kept
  busy back to back is scheduled promptly when a request arrives;
- `keep-alive xK`: K client threads, each with its own connection and game,
  at once (the server's concurrency; the client's own GIL adds to these).

Also `in-process`: `App.dispatch` called directly (parse + player, no HTTP),
to show what the HTTP layer costs, with its CPU time per move (what the code
costs whatever else a shared machine runs; wall-clock tails there are mostly
the run queue). The goal (issue 5): p99 under 5 ms for the
default player. Usage:

    python -m benchmarks.server [--players random-safe,heuristic] [--moves 2000] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

from ouroboros.trainer.agents import simple
from ouroboros.trainer.engine import jsonio, maps, rules
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.serving import app as app_module
from ouroboros.trainer.serving import players

GOAL_P99_MS = 5.0


def positions(n_snakes: int, games: int, seed: int = 1) -> list[dict]:
    """API `/move` bodies for every turn of `games` random-safe games (all snakes alive)."""
    config = GameConfig(width=11, height=11, n_snakes=n_snakes)
    state = maps.new_games(config, np.arange(seed, seed + games))
    rng = np.random.default_rng(seed)
    ids = [f"snake-{i}" for i in range(n_snakes)]
    bodies = []
    for _turn in range(300):
        for g in np.nonzero(state.alive.all(axis=1))[0]:
            game = jsonio.Game(config, state.select([g]), ids)
            board = jsonio.board_json(game, 0, living_only=True)
            for snake in board["snakes"]:
                snake.update(name=snake["id"], latency="1", shout="", customizations={})
            bodies.append({
                "game": {"id": f"bench-{n_snakes}-{g}", "timeout": 500, "map": "standard",
                         "source": "", "ruleset": {"name": "standard", "version": "v1.2.3",
                                                   "settings": {"foodSpawnChance": 15, "minimumFood": 1,
                                                                "hazardDamagePerTurn": 14}}},
                "turn": int(state.turn[g]), "board": board, "you": board["snakes"][0]})
        if not state.alive.all(axis=1).any():
            break
        state = rules.step(config, state, simple.RandomSafe().act_all(config, state, rng))
    return bodies


def _summary(samples_ms: list[float], wall_s: float) -> dict:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {"n": len(samples_ms), "p50_ms": round(statistics.median(samples_ms), 3),
            "p90_ms": round(q[89], 3), "p99_ms": round(q[98], 3), "max_ms": round(max(samples_ms), 3),
            "moves_per_s": round(len(samples_ms) / wall_s, 1)}


def _median_of(summaries) -> dict:
    """Figure by figure, the median over repeated runs' summaries."""
    summaries = list(summaries)
    return {key: round(statistics.median(s[key] for s in summaries), 3) for key in summaries[0]}


def _timed_moves(host: str, port: int, bodies: list[bytes], keep_alive: bool,
                 gap_s: float = 0.0) -> list[float]:
    samples = []
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if not keep_alive:
        headers["Connection"] = "close"
    for body in bodies:
        if gap_s:
            time.sleep(gap_s)
        if not keep_alive:
            conn = http.client.HTTPConnection(host, port, timeout=10)
        t0 = time.perf_counter()
        conn.request("POST", "/move", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        samples.append((time.perf_counter() - t0) * 1e3)
        if resp.status != 200 or b'"move"' not in data:
            raise RuntimeError(f"bad answer {resp.status}: {data[:200]!r}")
        if not keep_alive:
            conn.close()
    conn.close()
    return samples


def over_http(spec: str, bodies: list[bytes], concurrency: list[int],
              gap_ms: float) -> dict[str, dict]:
    """Starts `ouro serve` for `spec` and times /move round trips in each mode."""
    proc = subprocess.Popen([sys.executable, "-m", "ouroboros.trainer.commands.cli", "serve",
                             "--player", spec, "--port", "0", "--log-level", "WARNING"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        match = re.search(r"http://([\d.]+):(\d+)", line)
        if not match:
            raise RuntimeError(f"ouro serve {spec} did not start: {line}{proc.stderr.read()}")
        host, port = match[1], int(match[2])
        _timed_moves(host, port, bodies[:200], keep_alive=True)  # warm-up
        results = {}
        modes = [("keep-alive", True, 0.0), ("new-conn", False, 0.0)]
        if gap_ms > 0:
            modes.append(("paced", True, gap_ms / 1e3))
        for mode, keep, gap in modes:
            t0 = time.perf_counter()
            samples = _timed_moves(host, port, bodies, keep, gap)
            results[mode] = _summary(samples, time.perf_counter() - t0)
        for k in concurrency:
            chunks: list[list[float]] = [[] for _ in range(k)]
            share = max(1, len(bodies) // k)

            def client(i: int, chunks=chunks, share=share) -> None:
                chunks[i] = _timed_moves(host, port, bodies[i * share:(i + 1) * share], True)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(k)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            results[f"keep-alive x{k}"] = _summary([s for c in chunks for s in c],
                                                   time.perf_counter() - t0)
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def in_process(spec: str, bodies: list[bytes]) -> dict:
    """`App.dispatch` without sockets: request parsing plus the player."""
    app = app_module.App(spec)
    for body in bodies[:200]:
        app.dispatch("POST", "/move", body)
    samples, cpu = [], []
    t0 = time.perf_counter()
    for body in bodies:
        t, c = time.perf_counter(), time.thread_time()
        status, _, _ = app.dispatch("POST", "/move", body)
        cpu.append((time.thread_time() - c) * 1e3)
        samples.append((time.perf_counter() - t) * 1e3)
        assert status == 200
    summary = _summary(samples, time.perf_counter() - t0)
    cpu_q = statistics.quantiles(cpu, n=100, method="inclusive")
    # CPU time is what the code costs whatever else the machine runs; wall time adds the queue.
    summary.update(cpu_p50_ms=round(statistics.median(cpu), 3), cpu_p99_ms=round(cpu_q[98], 3))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", default="random-safe,heuristic,greedy",
                        help="comma-separated player specs (unavailable ones are skipped)")
    parser.add_argument("--moves", type=int, default=2000, help="timed moves per mode")
    parser.add_argument("--concurrency", default="4", help="comma-separated client thread counts")
    parser.add_argument("--gap-ms", type=float, default=5.0,
                        help="pause between moves in the `paced` mode (0: no paced mode)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per player; each figure is the median over runs (shared machines)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    pool = positions(2, 24) + positions(4, 12, seed=100)
    rng = np.random.default_rng(0)
    chosen = [pool[i] for i in rng.integers(0, len(pool), args.moves)]
    bodies = [json.dumps(b, separators=(",", ":")).encode() for b in chosen]
    sizes = sorted(len(b) for b in bodies)
    concurrency = [int(k) for k in args.concurrency.split(",") if k]
    report: dict = {"positions": len(pool), "median_body_bytes": sizes[len(sizes) // 2],
                    "goal_p99_ms": GOAL_P99_MS, "repeat": args.repeat, "players": {}}
    for spec in filter(None, args.players.split(",")):
        try:
            players.make_player(spec)
        except players.PlayerUnavailable as err:
            print(f"skipping {spec}: {err}", file=sys.stderr)
            continue
        runs = []
        for _ in range(args.repeat):
            results = {"in-process": in_process(spec, bodies)}
            results.update(over_http(spec, bodies, concurrency, args.gap_ms))
            runs.append(results)
        report["players"][spec] = {mode: _median_of(r[mode] for r in runs) for mode in runs[0]}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"/move latency, {args.moves} moves per mode over {report['positions']} positions "
          f"(11x11, 2 and 4 snakes; median body {report['median_body_bytes']} B); client and "
          f"server on this machine; each figure the median of {args.repeat} runs")
    print(f"{'player':<14} {'mode':<15} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'moves/s':>9}")
    for spec, results in report["players"].items():
        for mode, r in results.items():
            print(f"{spec:<14} {mode:<15} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} {r['p99_ms']:>8.3f} "
                  f"{r['max_ms']:>8.2f} {r['moves_per_s']:>9.0f}")
        cpu = results["in-process"]
        print(f"{'':<14} in-process CPU time per move: p50 {cpu['cpu_p50_ms']:.3f} ms, "
              f"p99 {cpu['cpu_p99_ms']:.3f} ms")
        for mode in ("keep-alive", "paced"):
            if mode in results:
                p99 = results[mode]["p99_ms"]
                verdict = "meets" if p99 < GOAL_P99_MS else "MISSES"
                print(f"{'':<14} {mode} p99 {p99:.2f} ms {verdict} the {GOAL_P99_MS:.0f} ms goal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
