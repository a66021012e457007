"""Neural players: a network (ONNX file or torch module) choosing moves for a batch.

Both players encode every game of the batch for their seat
(:mod:`ouroboros.trainer.observation.encoding`), run the network once on the
whole batch, and pick among the moves that do not lose at once: the best
logit (``temperature == 0``, what a served champion does) or a sample from
``softmax(logits / temperature)`` (exploration in self-play). When every move
loses, the network's favourite is played anyway.

:class:`OnnxPlayer` is what serves and what tournaments play against; it
needs onnxruntime only. :class:`TorchPlayer` plays the live network during
training. Neither module-level import pulls torch, so a server that plays
ONNX never loads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ouroboros.contract.game import GameKey
from ouroboros.trainer.engine.state import BatchState
from ouroboros.trainer.engine.types import GameConfig
from ouroboros.trainer.observation import encoding, safety

INPUT = "board"
"""The graph input every model takes (docs/onnx-contract.md)."""


def inference_session(model: str | os.PathLike[str] | bytes, threads: int = 1) -> Any:
    """An onnxruntime CPU session set up as a game server runs it: ``threads`` intra-op
    threads (1 by default: on this CPU a second thread lowers p50 but raises p99),
    sequential execution, every graph optimisation. ModelContractError (a ValueError,
    so every command reports it as bad input) when onnxruntime cannot load ``model``:
    not ONNX, empty, truncated, an unsupported operator."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else os.fspath(model)
    try:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (none a ValueError) for every kind of garbage
        raise ModelContractError(f"not a loadable ONNX model: {str(exc).splitlines()[0][:300]}") from None


class ModelContractError(ValueError):
    """A model file that does not load, or loads but breaks the ONNX contract (``ouro export``)."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def contract_input(contract: Any, graph_shape: Sequence[Any] = ()) -> tuple[int, int, int, int]:
    """(input planes C, encoding version, board height H, width W) of a model's ``contract``
    (the parsed JSON of its ``contract`` metadata, docs/onnx-contract.md), checked against
    itself and against ``graph_shape``, the shape of the graph's ``board`` input as
    onnxruntime reports it (ints, or names / None where the graph leaves a dimension open).

    Raises ModelContractError naming the field: ``input.shape[1]`` not an integer, or no
    encoding version's plane count (17 for version 1, 19 for version 2);
    ``input.encoding_version`` present but not that count's version; ``board.height`` or
    ``board.width`` not an integer in [1, 64]; a graph that takes another plane count or
    board than its contract says (it would fail on every move)."""
    try:
        channels = contract["input"]["shape"][1]
        version_field = contract["input"].get("encoding_version")
        height, width = contract["board"]["height"], contract["board"]["width"]
    except (KeyError, TypeError, IndexError, AttributeError):
        raise ModelContractError("not an Ouroboros model: its 'contract' metadata lacks input.shape[1] "
                                 "or board.height/width") from None
    if not _integer(channels):
        raise ModelContractError(f"contract input.shape[1] must be an integer plane count, got {channels!r}")
    try:
        version = encoding.version_of(channels)
    except ValueError as exc:
        raise ModelContractError(f"contract input.shape[1]: {exc}") from None
    if version_field is not None and not _integer(version_field):
        raise ModelContractError(f"contract input.encoding_version must be an integer, got {version_field!r}")
    if version_field is not None and version_field != version:
        raise ModelContractError(f"contract input.encoding_version is {version_field!r}, but its "
                                 f"{channels} input planes (input.shape[1]) are encoding version {version}'s")
    for name, value in (("height", height), ("width", width)):
        if not _integer(value) or not 1 <= value <= 64:
            raise ModelContractError(f"contract board.{name} must be an integer in [1, 64], got {value!r}")
    for axis, (field, want) in enumerate((("input.shape[1]", channels), ("board.height", height),
                                          ("board.width", width)), start=1):
        if axis < len(graph_shape) and _integer(graph_shape[axis]) and graph_shape[axis] != want:
            raise ModelContractError(f"the graph's input {INPUT!r} has {graph_shape[axis]} in dimension {axis} "
                                     f"({'CHW'[axis - 1]}), its contract's {field} says {want}")
    return channels, version, height, width


def model_input(session: Any) -> tuple[dict, int, int, int, int]:
    """(contract, C, encoding version, H, W) of an onnxruntime session's model
    (:func:`contract_input`); ModelContractError when its metadata holds no readable
    contract or its graph has no 4-d input ``board`` [N, C, H, W]."""
    meta = session.get_modelmeta().custom_metadata_map
    if "contract" not in meta:
        raise ModelContractError("not an Ouroboros model: no 'contract' in its ONNX metadata")
    try:
        contract = json.loads(meta["contract"])
    except ValueError:
        raise ModelContractError("not an Ouroboros model: its 'contract' metadata is not JSON") from None
    return (contract, *contract_input(contract, _graph_shape(session)))


def _graph_shape(session: Any) -> list[Any]:
    """The shape of the graph's ``board`` input (ModelContractError when there is no 4-d one)."""
    inputs = {i.name: i for i in session.get_inputs()}
    if INPUT not in inputs or len(inputs[INPUT].shape) != 4:
        found = ", ".join(f"{i.name} {i.shape}" for i in inputs.values()) or "none"
        raise ModelContractError(f"the graph needs an input {INPUT!r} [N, C, H, W]; it has {found}")
    return list(inputs[INPUT].shape)


def check_model(model: str | os.PathLike[str] | bytes, game: str | GameKey | None = None) -> dict:
    """Load ``model`` as a game server would and check the ONNX contract; return the contract.

    Checks: onnxruntime builds a session; the metadata holds a ``contract``
    whose input has the plane count of an encoding version this trainer makes
    (the current one, or version 1, its prefix), agreeing with itself and with
    the graph's ``board`` input (:func:`contract_input`); one move on an empty board of
    the contract's size returns policy logits [1, 4] and a value [1, 1], all
    finite; and, given a ``game`` (a key such as ``standard-11x11-2p``), that the
    contract's board holds the game's board (a smaller board is played padded,
    as ``OnnxPlayer`` does; a larger one cannot be played at all). Raises
    ModelContractError naming what is wrong (never a protobuf or onnxruntime
    traceback). Used before any version is registered or put in force.
    """
    session = inference_session(model)
    contract, channels, _, height, width = model_input(session)
    try:
        policy, value = session.run(["policy", "value"], {INPUT: np.zeros((1, channels, height, width), np.float32)})
    except Exception as exc:
        raise ModelContractError(f"model does not run on a {height}x{width} board: {str(exc).splitlines()[0][:300]}") from None
    if np.shape(policy) != (1, 4) or np.shape(value) != (1, 1):
        raise ModelContractError(f"outputs must be policy [1, 4] and value [1, 1], got {np.shape(policy)} and {np.shape(value)}")
    if not (np.isfinite(policy).all() and np.isfinite(value).all()):
        raise ModelContractError("model outputs are not finite on an empty board")
    if game is not None:
        key = game if isinstance(game, GameKey) else GameKey.parse(game)
        if key.width > width or key.height > height:
            raise ModelContractError(f"model plays boards up to {width}x{height} (its contract's board), "
                                     f"the game {key} is {key.width}x{key.height}")
    return contract


def choose(
    logits: np.ndarray, allowed: np.ndarray, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Moves from logits [B, 4] among ``allowed`` [B, 4] bool (all moves where none is).

    temperature 0: argmax; > 0: a sample of softmax(logits / temperature), drawn with
    the Gumbel-max trick (one vectorised argmax). Returns [B] int8.
    """
    allowed = allowed | ~allowed.any(axis=1, keepdims=True)
    scores = logits.astype(np.float64)
    if temperature > 0:
        scores = scores / temperature + rng.gumbel(size=scores.shape)
    return np.argmax(np.where(allowed, scores, -np.inf), axis=1).astype(np.int8)


class _NeuralPlayer:
    """Encoding, move choice and the batched ``act``/``act_all`` shared by both players."""

    name: str
    temperature: float
    input_size: tuple[int, int] | None = None

    def evaluate(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """planes float32 [N, C, H, W] -> (policy logits [N, 4], value [N, 1])."""
        raise NotImplementedError

    def _size(self, config: GameConfig) -> tuple[int, int] | None:
        if self.input_size is None or self.input_size == (config.height, config.width):
            return None
        h, w = self.input_size
        if config.height > h or config.width > w:
            raise ValueError(
                f"{self.name}: the model takes boards up to {h}x{w}, "
                f"this game is {config.height}x{config.width}"
            )
        return self.input_size

    def act(self, config: GameConfig, state: BatchState, seat: int, rng: np.random.Generator) -> np.ndarray:
        """Moves for ``seat`` in every game. Shape [B] int8."""
        planes = encoding.encode(config, state, seat, size=self._size(config))
        logits, _ = self.evaluate(planes)
        safe = safety.safe_moves(config, state)[:, seat]
        return choose(logits, safe, self.temperature, rng)

    def act_all(self, config: GameConfig, state: BatchState, rng: np.random.Generator) -> np.ndarray:
        """Moves for every seat of every game, one inference for all living snakes.
        Shape [B, S] int8 (UP for eliminated snakes, which do not move)."""
        moves = np.zeros((state.batch_size, state.n_snakes), np.int8)
        games, seats = np.nonzero(state.alive)
        if games.size:
            planes = encoding.encode(config, state.select(games), seats, size=self._size(config))
            logits, _ = self.evaluate(planes)
            safe = safety.safe_moves(config, state)[games, seats]
            moves[games, seats] = choose(logits, safe, self.temperature, rng)
        return moves


class OnnxPlayer(_NeuralPlayer):
    """Plays an exported model (``ouro export``) with onnxruntime.

    The model's contract (its metadata) gives the board size it was exported
    for; a smaller game is padded into it (see the encoding's board mask), and
    the plane count: a model of an older encoding version is fed the prefix of
    the current planes. ModelContractError (a ValueError) for a contract that
    breaks :func:`contract_input`, so a server never starts on a model that
    would fail every move.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | bytes,
        *,
        temperature: float = 0.0,
        threads: int = 1,
        name: str | None = None,
    ) -> None:
        self.session = inference_session(model, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.contract = None
        if "contract" in meta:  # ModelContractError for a contract no server could play by
            self.contract, self.channels, _, height, width = model_input(self.session)
            self.input_size = (height, width)
        else:  # a bare graph (tests, tools): the plane count its input declares, else the current encoding's
            graph = _graph_shape(self.session)[1]
            self.channels = graph if _integer(graph) else encoding.N_CHANNELS
        self.temperature = temperature
        label = "bytes" if isinstance(model, bytes) else os.fspath(model)
        self.name = name or f"onnx:{label}"

    def evaluate(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """planes float32 [N, C, H, W] -> (policy logits [N, 4], value [N, 1]). A model of an
        older encoding version gets the prefix of the planes it was trained on."""
        policy, value = self.session.run(["policy", "value"], {INPUT: encoding.prefix(planes, self.channels)})
        return policy, value


@dataclasses.dataclass
class TorchPlayer(_NeuralPlayer):
    """Plays a live torch network (``PolicyValueNet``) in eval mode, without gradients."""

    module: Any
    temperature: float = 0.0
    name: str = "torch"
    device: str = "cpu"

    def evaluate(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """planes float32 [N, C, H, W] -> (policy logits [N, 4], value [N, 1])."""
        import torch

        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode():
                policy, value = self.module(torch.from_numpy(planes).to(self.device))
        finally:
            self.module.train(was_training)
        return policy.float().cpu().numpy(), value.float().cpu().numpy()


def from_spec(text: str) -> OnnxPlayer:
    """The factory of the ``onnx:PATH`` player spec (agents.registry)."""
    if not text:
        raise ValueError("onnx player: give a model file, e.g. onnx:models/champion.onnx")
    return OnnxPlayer(text, name=f"onnx:{text}")
