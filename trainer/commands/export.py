"""`ouro export`: a network (checkpoint or fresh) to ONNX, optionally int8, optionally checked.

    ouro export --checkpoint runs/r1/checkpoints/bootstrap/step-0000001000.pt --out champion.onnx
    ouro export --arch cnn_attention_residual --random-init --int8 --check --out /tmp/net.onnx
    ouro export --checkpoint ... --leaf-net leaf.npz --out champion.onnx   # the model carries a leaf net

Writes OUT (portable fp32), OUT's ``.opt.onnx`` (onnxruntime-optimised, the one
to serve) and with ``--int8`` its ``.int8.onnx``, each atomically with a
``.meta.json`` sidecar holding its sha256 (see
:mod:`ouroboros.trainer.learning.onnx_export` for the input/output contract).
``--check`` then runs the production-readiness check on the served files and
exits 1 when one is not promotable.

Exit codes: 0 done (and ready), 1 not production-ready, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from ouroboros.trainer.engine.types import GameConfig


def _parser() -> argparse.ArgumentParser:
    from ouroboros.trainer.learning.networks import Architecture, NetworkConfig, Normalisation

    d = NetworkConfig()
    p = argparse.ArgumentParser(prog="ouro export", description="Export a network to ONNX.")
    p.add_argument("--checkpoint", type=Path, help="a checkpoint .pt (its network config is read from it)")
    p.add_argument("--arch", choices=[a.value for a in Architecture],
                   help="a fresh network of this architecture (needs --random-init); with --checkpoint, "
                        "the network a checkpoint that does not record its config holds")
    p.add_argument("--random-init", action="store_true", help="export untrained weights (with --arch)")
    p.add_argument("--blocks", type=int, default=d.blocks, help=f"with --arch (default {d.blocks})")
    p.add_argument("--channels", type=int, default=d.channels, help=f"with --arch (default {d.channels})")
    p.add_argument("--heads", type=int, default=d.heads, help=f"with --arch (default {d.heads})")
    p.add_argument("--attention-layers", type=int, default=d.attention_layers,
                   help=f"with --arch (default {d.attention_layers})")
    p.add_argument("--normalisation", choices=[n.value for n in Normalisation],
                   default=d.normalisation.value, help="with --arch")
    p.add_argument("--seed", type=int, default=0, help="weights seed with --random-init, and positions seed")
    p.add_argument("--width", type=int, default=11, help="board width the model is exported for")
    p.add_argument("--height", type=int, default=11, help="board height the model is exported for")
    p.add_argument("--snakes", type=int, default=4, help="snakes per game of the positions played "
                   "for calibration and checks (default 4: crowded boards cover more situations)")
    p.add_argument("--int8", action="store_true", help="also write a static int8 model")
    p.add_argument("--calibration-positions", type=int, default=2000,
                   help="real positions int8 is calibrated on (default 2000)")
    p.add_argument("--check", action="store_true", help="run the production-readiness check")
    p.add_argument("--positions", type=int, default=10_000, help="parity positions of --check")
    p.add_argument("--max-p99-ms", type=float, default=10.0, help="readiness latency limit")
    p.add_argument("--max-memory-mb", type=float, default=50.0, help="readiness memory limit")
    p.add_argument("--leaf-net", type=Path, default=None, metavar="NPZ",
                   help="a leaf net (python -m benchmarks.leaf_net --out) for the model to carry in its metadata "
                        "(leaf_net), which champion+nsearch:endgame=X plays in the moves it hands to the "
                        "alpha-beta (endgame=0.01: every move)")
    p.add_argument("--out", type=Path, required=True, help="output file, ending in .onnx")
    return p


def main(argv: list[str]) -> int:
    """Run `ouro export`; returns the exit code."""
    args = _parser().parse_args(argv)
    if not args.checkpoint and not args.arch:
        print("ouro export: name the weights: --checkpoint FILE, or --arch ARCH --random-init", file=sys.stderr)
        return 2
    if args.checkpoint and args.random_init:
        print("ouro export: --random-init exports untrained weights; not with --checkpoint", file=sys.stderr)
        return 2
    if args.arch and not args.checkpoint and not args.random_init:
        print("ouro export: --arch exports untrained weights; add --random-init to confirm",
              file=sys.stderr)
        return 2
    if args.out.suffix != ".onnx":
        print(f"ouro export: --out {args.out}: must end in .onnx", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("ouroboros").setLevel(logging.INFO)  # parameter counts; not the quantiser's chatter

    from ouroboros.contract.promotion import ReadinessSpec
    from ouroboros.trainer.evaluation import readiness
    from ouroboros.trainer.learning import networks, onnx_export

    try:
        game = GameConfig(width=args.width, height=args.height, n_snakes=args.snakes)
        given = None if not args.arch else networks.NetworkConfig(
            architecture=args.arch, blocks=args.blocks, channels=args.channels,
            heads=args.heads, attention_layers=min(args.attention_layers, args.blocks),
            normalisation=args.normalisation,
        )
        if args.checkpoint:
            net, config = networks.load_checkpoint(args.checkpoint, given)
        else:
            config = given
            net = networks.build_network(config, seed=args.seed).eval()
        check_config = readiness.ReadinessConfig(
            positions=args.positions, seed=args.seed,
            thresholds=ReadinessSpec(max_p99_latency_ms=args.max_p99_ms,
                                           max_peak_memory_mb=args.max_memory_mb),
        )
        carried = {}
        if args.leaf_net is not None:
            from ouroboros.trainer.agents import leafnet
            from ouroboros.trainer.engine.state import Board

            try:
                leaf = leafnet.LeafNet.load(args.leaf_net)
                leaf.check_board(Board(args.width, args.height).n_cells)
            except (ValueError, OSError) as e:
                raise ValueError(f"--leaf-net {args.leaf_net}: {getattr(e, 'strerror', None) or e}") from None
            carried = {leafnet.METADATA_KEY: leaf.to_metadata()}
    except (ValueError, ValidationError, FileNotFoundError) as e:
        print(f"ouro export: {e}", file=sys.stderr)
        return 2

    calibration = None
    if args.int8:
        calibration = readiness.real_positions(game, args.calibration_positions, seed=args.seed + 1)
    source = str(args.checkpoint) if args.checkpoint else f"random-init seed {args.seed}"
    result = onnx_export.export(
        net, args.out, height=args.height, width=args.width, int8=args.int8,
        calibration=calibration, metadata={"source": source, **carried},
    )
    print(f"{config.name}: {networks.count_parameters(net):,} parameters")
    for info in result.files():
        print(f"  {info.uri}  {info.size / 1e6:.2f} MB  sha256 {info.sha256}")
    if not args.check:
        return 0

    planes = readiness.real_positions(game, args.positions, seed=args.seed + 2)
    served = [result.optimised] + ([result.int8] if result.int8 else [])
    ready = True
    for info in served:
        verdict = readiness.check(Path(args.out).parent / info.key, net, planes, check_config)
        print(verdict.summary())
        ready &= verdict.promotable
    return 0 if ready else 1
