"""A learned correction to the alpha-beta's leaf score: a small net at every leaf, NNUE's shape.

Strong chess engines put a small network inside the alpha-beta itself, evaluated at every
leaf, instead of a big one consulted rarely (NNUE: Y. Nasu, "Efficiently Updatable Neural-
Network-based Evaluation Functions for Computer Shogi", 2018; Stockfish since 2020): the search
keeps its depth and the leaves get the network's judgement. This is that shape for
`search`'s compiled tree (:mod:`.search_kernel`, ``_leaf_net``):

    score = count + points * (w3 . crelu(W2 crelu(b1 + sum_{f active} W1[f] + Ws s) + b2) + b3)

where `count` is the hand-made evaluation (Voronoi territory, length, food, health:
:class:`.search.SearchWeights`), crelu is clip(x, 0, 1) as NNUE's, and the inputs are
sparse: for each padded cell c (``rules.geo``'s layout, P cells) and channel k of
:data:`CHANNELS`, feature ``k * P + c`` counts what is there (a stacked body cell counts twice),
so the first layer is a sum of a few hundred rows of W1; `s` holds :data:`SCALARS`. Territory is
the count's own Voronoi partition, recorded as it is counted. The net is trained to predict game
outcomes from the count and these inputs (``python -m benchmarks.leaf_net``); `points` (> 0)
converts its logit to the count's points: the model is P(win) = sigmoid(a x count / 100 + net),
so one unit of net output is worth 100 / a points of count.

Measured (README, *Strength*): trained on 320 search games' outcomes, `search:leafnet=` played
level with `search` at 50 ms over 200 duels (51.0% [44.1%, 57.8%]); trained also on 4-turn
search scores it lost (30.0% over 40); trained on 1,000 games' outcomes it won, 63.25% [56.4%,
69.6%] over 200 (Elo +94). `search` plays none unless given one (`leafnet=PATH`); a model that
carries one plays it wherever the neural search hands a move to the alpha-beta.

File format: an ``.npz`` of float arrays w1 [7P, H], b1 [H], w2 [H, H], b2 [H], w3 [H],
ws [5, H], nn [2] (points, b3), with P the padded cells of the board it was trained on
(169 for 11x11).

**Carried by a model.** A champion's ONNX file may carry its leaf net in its ``metadata_props``
under :data:`METADATA_KEY` (:meth:`LeafNet.to_metadata`: JSON, each array as little-endian
float32, base64), so the net travels wherever the model does (registry, gate, Champion
resource, server) under the model's own sha256; the neural search's hand-off to the alpha-beta
plays it (:mod:`.nsearch`, ``leaf``). Readable in any language from the runtime's model
metadata (onnxruntime: ``session.get_modelmeta().custom_metadata_map``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import typing
from collections.abc import Mapping

import numpy as np

CHANNELS = ("own_head", "own_body", "rival_heads", "rival_bodies", "food", "own_territory",
            "rival_territory")
"""Input channels per padded cell, in order (search_kernel.LEAF_CHANNELS)."""
SCALARS = ("own_health", "own_length", "length_lead", "rival_health", "rivals")
"""Scalar inputs, in order: health / 100, min(length, 64) / 64, clip((length - longest rival's) / 8,
-1, 1), the healthiest rival's health / 100, living rivals / (snakes - 1)."""
KEYS = ("w1", "b1", "w2", "b2", "w3", "ws", "nn")
METADATA_KEY = "leaf_net"
"""The ONNX metadata key under which a model carries its leaf net (:meth:`LeafNet.to_metadata`)."""
METADATA_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class LeafNet:
    """The arrays of a leaf net, float64, in the kernel's order (:data:`KEYS`)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    ws: np.ndarray
    nn: np.ndarray

    def __post_init__(self) -> None:
        if self.b1.ndim != 1:
            raise ValueError(f"leaf net: b1 has shape {self.b1.shape}, expected (H,): one bias per hidden unit")
        hidden = self.b1.shape[0]
        want = {"w1": (None, hidden), "w2": (hidden, hidden), "b2": (hidden,),
                "w3": (hidden,), "ws": (len(SCALARS), hidden), "nn": (2,)}
        for key, shape in want.items():
            got = getattr(self, key).shape
            if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got, strict=True)):
                raise ValueError(f"leaf net: {key} has shape {got}, expected "
                                 f"{tuple('F' if s is None else s for s in shape)} (H = {hidden} from b1)")
        for key in KEYS:
            if not np.all(np.isfinite(getattr(self, key))):
                raise ValueError(f"leaf net: {key} holds values that are not finite")
        if self.w1.shape[0] % len(CHANNELS) or (hidden and not self.w1.shape[0]):
            raise ValueError(f"leaf net: w1 has {self.w1.shape[0]} rows, not {len(CHANNELS)} channels x cells")
        if hidden and self.nn[0] <= 0:
            raise ValueError(f"leaf net: nn[0] (points per unit of output) is {self.nn[0]:g}, must be above 0 "
                             "(a net's correction is added to the count, never flipped)")

    @property
    def cells(self) -> int:
        """Padded cells of the board the net reads (169 for 11x11)."""
        return self.w1.shape[0] // len(CHANNELS)

    def kernel(self) -> tuple:
        """The tuple search_kernel's `net` argument takes."""
        return tuple(getattr(self, key) for key in KEYS)

    def check_board(self, n_cells: int) -> None:
        """ValueError unless the net was made for a board of `n_cells` padded cells."""
        if n_cells != self.cells:
            raise ValueError(f"leaf net: made for a board of {self.cells} padded cells, this one has {n_cells}")

    def save(self, path: str | os.PathLike) -> None:
        """Writes the ``.npz`` (the module's file format)."""
        np.savez(path, **{key: getattr(self, key) for key in KEYS})

    def to_metadata(self) -> str:
        """The net as a model metadata value: JSON ``{"format": 1, "hidden": H, "cells": P, "arrays":
        {KEY: {"shape": [...], "float32": BASE64}}}``, each array's values little-endian float32 in C
        order (about 140 kB for H = 16 on 11x11). Float32 is what the net is trained in; the kernel
        reads them back as float64."""
        arrays = {key: {"shape": list(getattr(self, key).shape),
                        "float32": base64.b64encode(np.ascontiguousarray(getattr(self, key), "<f4").tobytes())
                        .decode("ascii")} for key in KEYS}
        return json.dumps({"format": METADATA_FORMAT, "hidden": int(self.b1.shape[0]), "cells": self.cells,
                           "arrays": arrays}, separators=(",", ":"))

    @classmethod
    def from_metadata(cls, text: str) -> LeafNet:
        """The net :meth:`to_metadata` wrote; ValueError naming what is wrong (not JSON, another
        format, a missing array, a size that does not match its shape, and the checks of the
        constructor: shapes, values not finite)."""
        try:
            doc = json.loads(text)
        except ValueError:
            raise ValueError(f"leaf net metadata ({METADATA_KEY!r}) is not JSON") from None
        if not isinstance(doc, dict) or type(doc.get("format")) is not int or doc["format"] != METADATA_FORMAT:
            found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
            raise ValueError(f"leaf net metadata: format {found!r}, this trainer reads format {METADATA_FORMAT}")
        arrays = doc.get("arrays")
        if not isinstance(arrays, dict):
            raise ValueError("leaf net metadata: no 'arrays' object")
        out = {}
        for key in KEYS:
            entry = arrays.get(key)
            if not isinstance(entry, dict) or not isinstance(entry.get("shape"), list) \
                    or not isinstance(entry.get("float32"), str):
                raise ValueError(f"leaf net metadata: arrays.{key} is missing or lacks shape and float32")
            try:
                raw = base64.b64decode(entry["float32"], validate=True)
                if not all(isinstance(d, int) and not isinstance(d, bool) for d in entry["shape"]):
                    raise TypeError("a shape of integers")
                shape = tuple(entry["shape"])
            except (ValueError, TypeError):
                raise ValueError(f"leaf net metadata: arrays.{key} is not base64 with a shape of integers") from None
            values = np.frombuffer(raw, "<f4")
            if any(d < 0 for d in shape) or values.size != math.prod(shape):
                raise ValueError(f"leaf net metadata: arrays.{key} holds {values.size} values, "
                                 f"its shape {list(shape)} needs {math.prod(shape)}")
            out[key] = values.reshape(shape).astype(np.float64)
        net = cls(**out)
        for field, holds in (("hidden", int(net.b1.shape[0])), ("cells", net.cells)):
            if field in doc and (type(doc[field]) is not int or doc[field] != holds):
                raise ValueError(f"leaf net metadata: {field!r} says {doc[field]!r}, its arrays hold {holds}")
        return net

    @classmethod
    def load(cls, path: str | os.PathLike | typing.BinaryIO, label: str = "") -> LeafNet:
        """Reads an ``.npz`` (a path, or a binary file object); ValueError naming the file (`label`
        when given) and what is wrong (not an ``.npz``, a missing key, a shape, values not finite),
        OSError when it cannot be opened."""
        label = label or str(path)
        try:
            z = np.load(path, allow_pickle=False)
        except OSError:
            raise
        except Exception as err:  # numpy's errors for a file that is not an archive vary (EOFError, ValueError...)
            raise ValueError(f"{label}: not an .npz of a leaf net's arrays ({type(err).__name__})") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError(f"{label}: a single .npy array, not an .npz of a leaf net's arrays ({', '.join(KEYS)})")
        try:
            with z:
                missing = [key for key in KEYS if key not in z.files]
                if missing:
                    raise ValueError(f"leaf net: missing {', '.join(missing)}")
                arrays = {key: np.ascontiguousarray(z[key], np.float64) for key in KEYS}
            return cls(**arrays)
        except ValueError as err:
            raise ValueError(f"{label}: {err}") from None


def carried(metadata: Mapping[str, str]) -> LeafNet | None:
    """The leaf net a model's metadata carries (:data:`METADATA_KEY`), None when it carries none;
    ValueError (:meth:`LeafNet.from_metadata`) when it carries a broken one."""
    text = metadata.get(METADATA_KEY)
    return None if text is None else LeafNet.from_metadata(text)


NONE = LeafNet(np.zeros((0, 0)), np.zeros(0), np.zeros((0, 0)), np.zeros(0), np.zeros(0),
               np.zeros((len(SCALARS), 0)), np.zeros(2))
"""No net (hidden size 0): the leaf score is the count alone."""
