"""Export a policy-value network to ONNX: the file a game server loads.

Three files come out of one export, each written atomically with a sha256
sidecar through :class:`~ouroboros.trainer.artifacts.store.ArtifactStore`
(the same guarantees as every other artifact):

* ``NAME.onnx``: the graph as the TorchScript exporter writes it (opset 17),
  portable to any ONNX runtime.
* ``NAME.opt.onnx``: the same graph after onnxruntime's offline
  optimisation (constant folding, Conv+BatchNorm+ReLU fusion, LayerNorm and
  GELU fusions ...) at the *extended* level: the fused ops are onnxruntime's
  own but not tied to one CPU, so the file is served as is by the same
  onnxruntime version (recorded in its metadata). Loading it skips the
  optimisation at every server start.
* ``NAME.int8.onnx`` (``int8=True``): static QDQ quantisation of the
  convolutions, int8 weights per channel and uint8 activations calibrated on
  real positions (see :func:`quantise_int8` for each choice and what it was
  measured to cost). Static quantisation is the one that speeds up
  convolutions on this CPU: dynamic quantisation measured 4x *slower* than
  fp32 here (it re-measures activation ranges at every call and has no fast
  integer convolution). The readiness check holds it to >= 99% move
  agreement with the torch model.

**The contract** (also in every file's ``metadata_props``, key ``contract``,
as JSON, and readable from ``session.get_modelmeta().custom_metadata_map``):

* input ``board``: float32 ``[N, C, H, W]``, N dynamic, C =
  ``len(encoding.CHANNELS)``, H x W the game's board; the planes of
  :func:`ouroboros.trainer.observation.encoding.encode` (row 0 is the top row,
  y = H-1), each channel listed with its meaning.
* output ``policy``: float32 ``[N, 4]`` move logits, UP, DOWN, LEFT, RIGHT.
* output ``value``: float32 ``[N, 1]``, the expected outcome for the encoded
  snake in [-1, 1].
* optional metadata ``leaf_net``: the search's leaf net
  (:meth:`ouroboros.trainer.agents.leafnet.LeafNet.to_metadata`), which the
  neural search's hand-off to the alpha-beta adds to its leaf scores
  (:func:`export`'s metadata carries it where a run has one, ``runner.finish``;
  :func:`with_leaf_net` puts one into an exported file).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from ouroboros.trainer.agents import leafnet
from ouroboros.trainer.artifacts.store import ArtifactInfo, ArtifactStore
from ouroboros.trainer.engine.state import Board
from ouroboros.trainer.learning import networks
from ouroboros.trainer.observation import encoding

INPUT_NAME = "board"
OUTPUT_NAMES = ("policy", "value")
OPSET = 17
MOVES = ("up", "down", "left", "right")


def contract(config: networks.NetworkConfig, height: int, width: int, precision: str) -> dict:
    """The interface of an exported model, as stored in its metadata (ValueError for a network
    whose input planes are no encoding version's)."""
    return {
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "shape": ["N", config.in_channels, height, width],
            "layout": "row 0 is the top row (y = height-1), column 0 is x = 0",
            "encoding_version": encoding.version_of(config.in_channels),
            "channels": [
                {"index": i, "name": name, "meaning": meaning}
                for i, (name, meaning) in enumerate(encoding.CHANNELS[: config.in_channels])
            ],
        },
        "outputs": [
            {"name": "policy", "dtype": "float32", "shape": ["N", 4],
             "meaning": "move logits in the order " + ", ".join(MOVES)},
            {"name": "value", "dtype": "float32", "shape": ["N", 1],
             "meaning": "expected outcome for the encoded snake, in [-1, 1] (tanh)"},
        ],
        "board": {"height": height, "width": width},
        "network": config.model_dump(mode="json"),
        "architecture": config.name,
        "precision": precision,
    }


def _with_metadata(model: onnx.ModelProto, meta: dict[str, str], doc: str) -> bytes:
    """Serialise ``model`` with ``meta`` as its metadata_props (replacing same keys)."""
    keep = [p for p in model.metadata_props if p.key not in meta]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = doc
    model.producer_name = "ouroboros"
    return model.SerializeToString()


def _metadata(net: networks.PolicyValueNet, height: int, width: int, precision: str) -> dict[str, str]:
    spec = contract(net.config, height, width, precision)
    return {
        "contract": json.dumps(spec, sort_keys=True),
        "architecture": net.config.name,
        "precision": precision,
        "encoding_version": str(spec["input"]["encoding_version"]),
        "parameters": str(networks.count_parameters(net)),
        "torch_version": torch.__version__,
        "onnxruntime_version": ort.__version__,
    }


def _doc(net: networks.PolicyValueNet, height: int, width: int, precision: str) -> str:
    return (
        f"Ouroboros Battlesnake policy-value network {net.config.name} ({precision}). "
        f"Input '{INPUT_NAME}' float32 [N, {net.config.in_channels}, {height}, {width}]; "
        f"outputs 'policy' [N, 4] logits ({', '.join(MOVES)}) and 'value' [N, 1] in [-1, 1]. "
        "The metadata key 'contract' describes every channel."
    )


def to_onnx(net: networks.PolicyValueNet, height: int, width: int) -> bytes:
    """The fp32 graph with its contract (batch dimension dynamic). The caller's network
    is left untouched (exported from an eval-mode copy)."""
    model = copy.deepcopy(net).eval()
    dummy = torch.zeros(1, net.config.in_channels, height, width)
    dummy[:, encoding.Channel.BOARD] = 1.0
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo, which needs
        # onnxscript and writes a larger graph; it is still supported and simpler.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (dummy,), buffer,
            input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_axes={INPUT_NAME: {0: "N"}, "policy": {0: "N"}, "value": {0: "N"}},
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto)
    return _with_metadata(proto, _metadata(net, height, width, "fp32"), _doc(net, height, width, "fp32"))


def optimise(model_bytes: bytes) -> bytes:
    """onnxruntime's offline graph optimisation (extended level) of a model; metadata kept."""
    with tempfile.TemporaryDirectory() as tmp:
        target = str(Path(tmp) / "model.opt.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = target
        ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        optimised = onnx.load(target)
    source = onnx.load_from_string(model_bytes)
    meta = {p.key: p.value for p in source.metadata_props}
    meta["graph_optimisation"] = "onnxruntime extended"
    return _with_metadata(optimised, meta, source.doc_string)


class _Calibration:
    """The CalibrationDataReader protocol over a block of planes, in small batches."""

    def __init__(self, planes: np.ndarray, batch: int = 64) -> None:
        # Equal batches: the histogram calibrators cannot stack ragged ones.
        batch = min(batch, len(planes))
        self._batches = iter([planes[i : i + batch] for i in range(0, len(planes) - batch + 1, batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, np.float32)}


def quantise_int8(model_bytes: bytes, calibration: np.ndarray) -> bytes:
    """Static QDQ int8 quantisation of an fp32 model's convolutions, calibrated
    (min-max) on ``calibration`` planes [N, C, H, W] (the current encoding's: a model of an
    older encoding version is calibrated on their prefix; ValueError when C is below the
    model's planes); metadata kept, precision int8.

    Choices, each measured on trained 6x32 networks against 10,000 real positions
    (move agreement with torch): int8 weights per channel and uint8 activations
    (the u8s8 kernels are this CPU's fastest; s8s8 QDQ was 1.5x slower); only Conv
    (attention and heads stay fp32: they are a small share of the time, and the
    logits they produce decide the move); the first convolution stays fp32,
    because its input planes mix one-hot cells with small scalars (1/32 steps of
    turns-to-vacate, lengths / 64) that one uint8 scale cannot hold both of:
    quantising it cost 3 points of agreement (96.6% -> 99.5%). Percentile and
    entropy calibration measured no better than min-max.
    """
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx.load_from_string(model_bytes)
    meta = {p.key: p.value for p in source.metadata_props}
    channels = json.loads(meta["contract"])["input"]["shape"][1]
    try:
        calibration = encoding.prefix(calibration, channels)  # a model of an older encoding: the prefix
    except ValueError as exc:
        raise ValueError(f"calibration {exc}") from None
    with tempfile.TemporaryDirectory() as tmp:
        plain, prepared, quantised = (str(Path(tmp) / n) for n in ("a.onnx", "b.onnx", "c.onnx"))
        Path(plain).write_bytes(model_bytes)
        quant_pre_process(plain, prepared, skip_symbolic_shape=True)
        graph = onnx.load(prepared).graph
        first = [n.name for n in graph.node if n.op_type == "Conv" and INPUT_NAME in n.input]
        q.quantize_static(
            prepared, quantised, _Calibration(calibration),
            quant_format=q.QuantFormat.QDQ,
            activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
            per_channel=True, calibrate_method=q.CalibrationMethod.MinMax,
            op_types_to_quantize=["Conv"], nodes_to_exclude=first,
        )
        model = onnx.load(quantised)
    spec = json.loads(meta["contract"])
    spec["precision"] = "int8"
    meta.update(
        contract=json.dumps(spec, sort_keys=True), precision="int8",
        quantisation="static QDQ: Conv only, per-channel int8 weights, uint8 activations "
                     "(min-max calibration); first convolution fp32",
        calibration_positions=str(len(calibration)),
    )
    return _with_metadata(model, meta, source.doc_string.replace("(fp32)", "(int8)"))


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What an export wrote: each file's store record (path, sha256, size, metadata)."""

    fp32: ArtifactInfo
    optimised: ArtifactInfo
    int8: ArtifactInfo | None

    def files(self) -> list[ArtifactInfo]:
        return [a for a in (self.fp32, self.optimised, self.int8) if a is not None]


def sibling(path: str | Path, kind: str) -> Path:
    """``model.onnx`` -> ``model.opt.onnx`` / ``model.int8.onnx`` (kind = opt | int8)."""
    path = Path(path)
    stem = path.name[: -len(".onnx")] if path.name.endswith(".onnx") else path.name
    return path.with_name(f"{stem}.{kind}.onnx")


def export(
    net: networks.PolicyValueNet,
    out: str | Path,
    *,
    height: int = 11,
    width: int = 11,
    int8: bool = False,
    calibration: np.ndarray | None = None,
    metadata: dict[str, str] | None = None,
) -> ExportResult:
    """Export ``net`` to ``out`` (and its ``.opt`` / ``.int8`` siblings), atomically,
    each with a sha256 sidecar. ``int8`` needs ``calibration`` planes [N, C, H, W]
    (a few thousand real positions; see :mod:`ouroboros.trainer.learning.positions`).
    ``metadata`` adds string entries (training run, phase ...) to every file."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"{out}: the output file must end in .onnx")
    if int8 and (calibration is None or len(calibration) == 0):
        raise ValueError("int8 export needs calibration positions")
    store = ArtifactStore(out.parent.resolve())
    extra = dict(metadata or {})

    def put(path: Path, data: bytes) -> ArtifactInfo:
        if extra:
            model = onnx.load_from_string(data)
            data = _with_metadata(model, extra, model.doc_string)
        proto = onnx.load_from_string(data)
        sidecar = {p.key: p.value for p in proto.metadata_props if p.key not in ("contract", leafnet.METADATA_KEY)}
        return store.put_bytes(path.name, data, {"onnx": sidecar})

    plain = to_onnx(net, height, width)
    result_fp32 = put(out, plain)
    result_opt = put(sibling(out, "opt"), optimise(plain))
    result_int8 = None
    if int8:
        assert calibration is not None
        result_int8 = put(sibling(out, "int8"), quantise_int8(plain, calibration))
    return ExportResult(result_fp32, result_opt, result_int8)


def with_leaf_net(model_bytes: bytes, net: leafnet.LeafNet) -> bytes:
    """An exported model's bytes carrying `net` in its metadata (key ``leaf_net``; one it carried
    before is replaced); graph, contract and other metadata unchanged. ValueError for bytes that
    are not an Ouroboros model (no contract) or a net made for another board than the contract's."""
    model = onnx.load_from_string(model_bytes)
    meta = {p.key: p.value for p in model.metadata_props}
    if "contract" not in meta:
        raise ValueError("not an Ouroboros model: no 'contract' in its metadata")
    height, width = json.loads(meta["contract"])["input"]["shape"][2:]
    net.check_board(Board(width, height).n_cells)
    return _with_metadata(model, {leafnet.METADATA_KEY: net.to_metadata()}, model.doc_string)


def read_contract(path_or_bytes: str | Path | bytes) -> dict:
    """The contract stored in an exported model (without running it)."""
    proto = (onnx.load_from_string(path_or_bytes) if isinstance(path_or_bytes, bytes)
             else onnx.load(str(path_or_bytes)))
    meta = {p.key: p.value for p in proto.metadata_props}
    if "contract" not in meta:
        raise ValueError("not an Ouroboros model: no 'contract' in its metadata")
    return json.loads(meta["contract"])
