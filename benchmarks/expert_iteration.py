"""Expert iteration against plain PPO at the same CPU time: which self_play makes the stronger network?

    python -m benchmarks.expert_iteration [--budget 240] [--games 32] [--eval-games 100] ...

1. **start**: one bootstrap run (imitation of the heuristic, ``--boot-games``)
   gives the network both arms start from (each arm's run names it as its
   ``initial_model``, the start-from-a-checkpoint path).
2. **arms**: two self_play runs from that network on 11x11 duels, each adding
   iterations of ``--games`` games until its process CPU time reaches
   ``--budget`` seconds (CPU time, not wall time: the machine is shared, and
   wall time would measure the neighbours). ``ppo`` is the plain phase;
   ``expert`` sets ``expert_iteration`` (``--fraction`` of the learner's moves
   searched at ``--visits`` simulations; the rest trains by PPO).
3. **strength**: each final network played greedily (as the policy is served)
   in seat-swapped duels on paired seeds against the heuristic teacher and
   ``search-v1`` at ``--search-ms``, and the two arms against each other;
   scores with Wilson 95% intervals. The start network is measured too, so a
   gain (or a loss) over the start is visible.

Everything runs on one torch thread. The figures are what one run saw; the
intervals say how far they are from a verdict.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

from benchmarks import commit
from ouroboros.contract.game import GameSpec
from ouroboros.contract.run import ExpertIterationSpec, InitialModelSpec
from ouroboros.contract.vocabulary import PhaseName
from ouroboros.trainer.artifacts.store import ArtifactStore
from ouroboros.trainer.engine.types import game_config
from ouroboros.trainer.evaluation import strength
from ouroboros.trainer.learning import networks, onnx_export
from ouroboros.trainer.learning.phases import config as pc
from ouroboros.trainer.learning.phases import execute, runner

NETWORK = networks.NetworkConfig(architecture="cnn_simple", attention_layers=0, blocks=4, channels=16)


def train_arm(store: str, name: str, start_key: str, game: GameSpec, args, expert: ExpertIterationSpec | None):
    """Iterations of self_play until the arm's CPU time reaches the budget; (network, CPU s, wall s,
    iterations, last outcome)."""
    run = pc.RunSettings(run=name, store=store, game=game, network=NETWORK, seed=args.seed,
                         initial_model=InitialModelSpec(checkpoint=start_key))
    cpu0, wall0 = time.process_time(), time.monotonic()
    it = 0
    outcome = None
    while time.process_time() - cpu0 < args.budget:
        it += 1
        phase = pc.phase_settings(PhaseName.SELF_PLAY, games=args.games, parallel_games=args.games,
                                  iterations=it, league_ratio=0.0, expert_iteration=expert)
        outcome = execute.execute(run, phase)
        print(f"  {name}: iteration {it}: cpu {time.process_time() - cpu0:.0f} s; {outcome.message}", flush=True)
    net = runner.load_weights(ArtifactStore(store), outcome.artifacts["weights"].key)
    return net, time.process_time() - cpu0, time.monotonic() - wall0, it, outcome


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=300, help="CPU seconds of self_play per arm")
    p.add_argument("--games", type=int, default=32, help="self-play games per iteration")
    p.add_argument("--boot-games", type=int, default=300, help="heuristic games the start network imitates")
    p.add_argument("--fraction", type=float, default=0.25, help="expert arm: share of moves searched")
    p.add_argument("--visits", type=int, default=32, help="expert arm: simulations per searched move")
    p.add_argument("--eval-games", type=int, default=100, help="duels per pairing (vs the heuristic, head to head)")
    p.add_argument("--search-games", type=int, default=40, help="duels per arm against search-v1")
    p.add_argument("--search-ms", type=int, default=5, help="search-v1's budget per move")
    p.add_argument("--max-turns", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--store", default=None, help="artifact store (default: a temporary folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"commit {commit()}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"load {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"network {NETWORK.name}, 11x11 duels, {args.budget:.0f} CPU s of self_play per arm, "
          f"{args.games} games per iteration; expert: fraction {args.fraction}, {args.visits} visits")
    game = GameSpec(max_turns=args.max_turns)
    config = game_config(game)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or tmp
        t0 = time.process_time()
        boot = execute.execute(pc.RunSettings(run="start", store=store, game=game, network=NETWORK, seed=args.seed),
                               pc.phase_settings(PhaseName.BOOTSTRAP, games=args.boot_games,
                                                 parallel_games=min(args.boot_games, 250)))
        print(f"start: {boot.message} ({time.process_time() - t0:.0f} CPU s)", flush=True)
        start_key = boot.artifacts["weights"].key
        start = runner.load_weights(ArtifactStore(store), start_key)
        arms = {}
        for name, spec in (("ppo", None), ("expert", ExpertIterationSpec(fraction=args.fraction, visits=args.visits))):
            arms[name] = train_arm(store, name, start_key, game, args, spec)
        print()
        print(f"{'arm':<8} {'CPU s':>6} {'wall s':>7} {'iters':>5} {'games':>6}")
        for name, (_, cpu, wall, iters, _) in arms.items():
            print(f"{name:<8} {cpu:6.0f} {wall:7.0f} {iters:5d} {iters * args.games:6d}")
        print()
        nets = {"start": start, "ppo": arms["ppo"][0], "expert": arms["expert"][0]}
        ppo_onnx = f"{tmp}/ppo.onnx"
        with open(ppo_onnx, "wb") as f:
            f.write(onnx_export.to_onnx(nets["ppo"], game.height, game.width))
        pairings = [(name, "heuristic", args.eval_games) for name in nets]
        pairings += [(name, f"search-v1:ms={args.search_ms}", args.search_games) for name in nets]
        pairings.append(("expert", f"onnx:{ppo_onnx}", args.eval_games))
        for name, opponent, games in pairings:
            t = time.monotonic()
            d = strength.duel(nets[name], opponent, config, games, seed=args.seed + 777, max_turns=args.max_turns)
            ci = d.interval()
            label = "ppo" if opponent.startswith("onnx:") else opponent
            print(f"{name:<7} vs {label:<16} {d.wins:>3}-{d.draws}-{d.losses:<3} {d.score:6.1%} "
                  f"[{ci.lower:.1%}, {ci.upper:.1%}]  ({time.monotonic() - t:.0f} s)", flush=True)
    print(f"load after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
