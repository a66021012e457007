"""Random leaf nets (`agents.leafnet.LeafNet`) for tests: the shapes a fitted net has, values of
the scale fitting gives, reproducible from a seed."""

from __future__ import annotations

import numpy as np

from ouroboros.trainer.agents import leafnet


def random_net(cells: int, hidden: int = 8, seed: int = 0, scale: float = 1.0) -> leafnet.LeafNet:
    """A net for a board of `cells` padded cells (169 for 11x11, 81 for 7x7) with `hidden` units;
    `scale` multiplies its output's points."""
    rng = np.random.default_rng(seed)
    return leafnet.LeafNet(rng.normal(0, 0.3, (7 * cells, hidden)), rng.normal(0, 0.3, hidden),
                           rng.normal(0, 0.5, (hidden, hidden)), rng.normal(0, 0.3, hidden),
                           rng.normal(0, 1.0, hidden), rng.normal(0, 0.5, (5, hidden)),
                           np.array([scale * 100.0, 0.1]))
