"""Start a run from an existing model: a registry version, an ONNX file with the contract, or a checkpoint.

A team rarely starts from nothing: it has last season's champion, a network
trained elsewhere, or a run that stopped. A run's ``initialModel``
(``contract.run.InitialModelSpec``) names one, and :func:`load` turns it
into a trainable :class:`~.networks.PolicyValueNet` of the run's own
architecture, or refuses with an :class:`InitialModelError` that names what
differs (architecture, size, board, game) before any game is played.

**ONNX to torch** (:func:`network_from_onnx`). An exported file holds the
weights as graph initialisers, but not under the module's names: the
TorchScript exporter fuses each BatchNorm into the convolution before it
(``onnx::Conv_*``), turns a bias-free ``Linear`` into a ``MatMul`` with the
weight transposed, reshapes normalisation weights and merges identical
tensors. Rather than reverse each rewrite by name (which would break with the
next exporter), we export a *probe*: a network of the same architecture whose
every parameter holds distinct random values and whose BatchNorms are the
identity (scale 1, mean 0, variance 1 - eps, so the fused convolution keeps
the probe's weight and the BatchNorm's shift becomes its bias). Each probe
initialiser then equals exactly one parameter (as is, reshaped or
transposed), and since the same exporter writes the same graph for the same
architecture, the file's initialiser at the same node input is that
parameter's value. The graphs must agree node for node (an optimised or
quantised file, or another architecture, is refused), constants that are not
parameters must be equal, and at the end the loaded network and the file,
run by onnxruntime, must give the same policy and value on real positions
(:data:`PARITY_ATOL`). Loading a fused file leaves each BatchNorm as the
identity plus the fused shift, which computes the same function and trains
on from there (its statistics are re-estimated by the first training steps).

Why our own code and not ``onnx2torch``: that library rebuilds a generic
``torch.fx`` graph of ONNX operators, not our ``PolicyValueNet``, so its
result could neither be checkpointed by the phases nor exported again under
the contract.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging

import fsspec
import numpy as np
import onnx
import torch
from onnx import numpy_helper

from ouroboros.contract.game import GameKey, GameSpec
from ouroboros.contract.run import InitialModelSpec
from ouroboros.trainer.agents import leafnet
from ouroboros.trainer.artifacts import registry as model_registry
from ouroboros.trainer.artifacts.store import ArtifactError, ArtifactStore
from ouroboros.trainer.engine.state import Board
from ouroboros.trainer.learning import networks, onnx_export
from ouroboros.trainer.observation import encoding

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-4
"""Largest difference allowed between the file's outputs and the loaded network's (logits and value)."""
PARITY_POSITIONS = 64
"""Real positions (played by random-safe snakes) the parity check runs on."""


class InitialModelError(ValueError):
    """The initial model cannot start this run (missing, corrupt, or another architecture or board)."""


def load(store: ArtifactStore, spec: InitialModelSpec, network: networks.NetworkConfig,
         game: GameSpec) -> networks.PolicyValueNet:
    """The run's starting network from ``spec``, of architecture ``network`` for ``game``'s board.

    Raises InitialModelError naming the field (``initialModel.onnx`` ...) and what is wrong."""
    if spec.registry_version is not None:
        return _from_registry(store, spec.registry_version, network, game)
    field, where = ("onnx", spec.onnx) if spec.onnx is not None else ("checkpoint", spec.checkpoint)
    data = read(store, where, spec.sha256, f"initialModel.{field}")
    if field == "onnx":
        return network_from_onnx(data, network, game, f"initialModel.onnx ({where})")
    return network_from_checkpoint(data, network, f"initialModel.checkpoint ({where})")


def leaf_net(store: ArtifactStore, spec: InitialModelSpec, game: GameSpec) -> leafnet.LeafNet | None:
    """The search's leaf net the initial model carries in its ONNX metadata (``agents.leafnet``), None
    for a checkpoint or a model that carries none: a run that trains no net of its own hands it on
    to every model it exports, so a champion trained on keeps the net it was served with.

    Raises InitialModelError naming the field when the net does not load or was made for another
    board than ``game``'s."""
    if spec.checkpoint is not None:
        return None
    if spec.registry_version is not None:
        field = f"initialModel.registryVersion ({spec.registry_version})"
        reg = model_registry.Registry(store)
        data = reg.load(_version(reg, spec.registry_version, field).id)
    else:
        field = f"initialModel.onnx ({spec.onnx})"
        data = read(store, spec.onnx, spec.sha256, "initialModel.onnx")
    try:
        meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InitialModelError(f"{field}: not an ONNX file ({exc})") from None
    try:
        net = leafnet.carried(meta)
        if net is not None:
            net.check_board(Board(game.width, game.height).n_cells)
    except ValueError as exc:
        raise InitialModelError(f"{field}: the leaf net in its metadata does not load: {exc}") from None
    return net


def read(store: ArtifactStore, where: str, sha256: str | None, field: str) -> bytes:
    """The bytes of a store key (verified against its sidecar when it has one) or of a URL,
    checked against ``sha256`` when given."""
    try:
        if "://" in where:
            with fsspec.open(where, "rb") as f:
                data = f.read()
        elif store.exists(where):
            data = store.get_bytes(where)
        else:
            data = store.fs.cat_file(store.path(where))
    except FileNotFoundError:
        raise InitialModelError(f"{field}: no file at {where!r} (a key in {store.url} or a URL)") from None
    except (ArtifactError, OSError, ValueError) as exc:
        raise InitialModelError(f"{field}: cannot read {where!r}: {exc}") from None
    if sha256 is not None and (actual := hashlib.sha256(data).hexdigest()) != sha256:
        raise InitialModelError(f"{field}: {where!r} has sha256 {actual}, not the expected {sha256}")
    return data


def _from_registry(store: ArtifactStore, version: str, network: networks.NetworkConfig,
                   game: GameSpec) -> networks.PolicyValueNet:
    field = f"initialModel.registryVersion ({version})"
    reg = model_registry.Registry(store)
    found = _version(reg, version, field)
    if found.game and GameKey.parse(found.game) != game.key:
        raise InitialModelError(f"{field}: the version was trained for {found.game}, the run plays {game.key}")
    weights = found.metadata.get("weights")
    if isinstance(weights, str) and store.exists(weights):
        data = store.get_bytes(weights, expected_sha256=found.metadata.get("weights_sha256") or None)
        return network_from_checkpoint(data, network, field)
    return network_from_onnx(reg.load(version), network, game, field)


def _version(reg: model_registry.Registry, version: str, field: str) -> model_registry.ModelVersion:
    """`version` of `reg`; InitialModelError naming `field` when the registry has no such version."""
    try:
        return reg.get(version)
    except model_registry.VersionNotFoundError:
        raise InitialModelError(f"{field}: no such version in the registry at {reg.store.url}") from None


def network_from_checkpoint(data: bytes, network: networks.NetworkConfig, field: str) -> networks.PolicyValueNet:
    """A network of architecture ``network`` from checkpoint bytes: a weights file
    (``networks.checkpoint``) or a training checkpoint (``checkpoint.Checkpointer``).
    A file that names another architecture, or whose tensors do not fit, is refused."""
    try:
        raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several kinds for a file that is not a checkpoint
        raise InitialModelError(f"{field}: not a torch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise InitialModelError(f"{field}: not a network checkpoint (no 'model' state dict)")
    section = networks.network_section(raw)
    target = network
    if section is not None:
        try:
            stored = networks.NetworkConfig.model_validate(section)
        except ValueError as exc:
            raise InitialModelError(f"{field}: unreadable network config: {exc}") from None
        network = _older_encoding(stored, network)
        _same_architecture(stored, network, field)
    net = networks.PolicyValueNet(network)
    missing, unexpected, wrong = _fit(net.state_dict(), raw["model"])
    if missing or unexpected or wrong:
        raise InitialModelError(
            f"{field}: its tensors do not fit the run's model {network.name}: "
            + "; ".join(part for part in (
                f"missing {', '.join(missing[:5])}" if missing else "",
                f"unexpected {', '.join(unexpected[:5])}" if unexpected else "",
                f"shape of {', '.join(wrong[:5])}" if wrong else "") if part))
    net.load_state_dict(raw["model"])
    return _widened(net, target, field)


def _widened(net: networks.PolicyValueNet, network: networks.NetworkConfig, field: str) -> networks.PolicyValueNet:
    if net.config.in_channels == network.in_channels:
        return net
    log.info("%s: a model of encoding version %d", field, encoding.version_of(net.config.in_channels))
    return networks.widened(net, network.in_channels)


def _fit(mine: dict, theirs: dict) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, wrongly shaped) keys of state dict ``theirs`` against ``mine``."""
    missing = [k for k in mine if k not in theirs]
    unexpected = [k for k in theirs if k not in mine]
    wrong = [f"{k} {tuple(theirs[k].shape)} (expected {tuple(v.shape)})" for k, v in mine.items()
             if k in theirs and tuple(theirs[k].shape) != tuple(v.shape)]
    return missing, unexpected, wrong


def _older_encoding(found: networks.NetworkConfig, network: networks.NetworkConfig) -> networks.NetworkConfig:
    """The run's ``network`` with the input planes of ``found`` when those are an older encoding
    version's (loaded as they are, then :func:`networks.widened`); ``network`` otherwise."""
    if found.in_channels < network.in_channels:
        try:
            encoding.version_of(found.in_channels)
        except ValueError:
            return network
        return network.model_copy(update={"in_channels": found.in_channels})
    return network


def _same_architecture(found: networks.NetworkConfig, network: networks.NetworkConfig, field: str) -> None:
    """InitialModelError listing the fields where ``found`` differs from the run's ``network``."""
    a, b = found.model_dump(mode="json"), network.model_dump(mode="json")
    if found.architecture.value == "cnn_simple" == network.architecture.value:
        for ignored in ("heads", "attention_layers"):  # not part of a simple tower
            a.pop(ignored), b.pop(ignored)
    diff = [f"{k} {a[k]} (the run's model: {b[k]})" for k in b if a.get(k) != b[k]]
    if diff:
        raise InitialModelError(f"{field}: the model is {found.name}, the run's is {network.name}: "
                                + ", ".join(diff))


# ---------------------------------------------------------------------------- ONNX -> torch


def network_from_onnx(data: bytes, network: networks.NetworkConfig, game: GameSpec,
                      field: str = "onnx") -> networks.PolicyValueNet:
    """A trainable network of architecture ``network`` holding the weights of the exported
    ONNX file ``data`` (module docstring), checked to give the file's outputs on real
    positions of ``game``. InitialModelError if the file is not a plain fp32 export of
    that architecture for that board."""
    try:
        source = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise InitialModelError(f"{field}: not an ONNX file ({exc})") from None
    meta = {p.key: p.value for p in source.metadata_props}
    if "contract" not in meta:
        raise InitialModelError(f"{field}: not an Ouroboros model (no 'contract' in its metadata)")
    contract = json.loads(meta["contract"])
    board = contract.get("board", {})
    if (board.get("height"), board.get("width")) != (game.height, game.width):
        raise InitialModelError(f"{field}: the model is for a {board.get('width')}x{board.get('height')} "
                                f"board, the run plays {game.width}x{game.height}")
    if contract.get("precision", "fp32") != "fp32":
        raise InitialModelError(f"{field}: a {contract['precision']} model; give the fp32 export (model.onnx)")
    try:
        stored = networks.NetworkConfig.model_validate(contract["network"])
    except (KeyError, ValueError) as exc:
        raise InitialModelError(f"{field}: the contract does not describe its network: {exc}") from None
    target, network = network, _older_encoding(stored, network)
    _same_architecture(stored, network, field)
    net = networks.PolicyValueNet(network)
    probe = _probe(network)
    reference = onnx.load_from_string(onnx_export.to_onnx(probe, game.height, game.width))
    state = _map_weights(reference, source, probe, field)
    net.load_state_dict(state)
    _check_parity(net, data, game, field)
    return _widened(net, target, field)


def _probe(config: networks.NetworkConfig) -> networks.PolicyValueNet:
    """A network of ``config`` with distinct random values in every parameter and identity
    BatchNorms (module docstring)."""
    net = networks.PolicyValueNet(config)
    gen = torch.Generator().manual_seed(12345)
    with torch.no_grad():
        for module in net.modules():
            for name, p in module.named_parameters(recurse=False):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + (1.0 if name == "weight" and p.ndim == 1 else 0.0))
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
                module.running_mean.zero_()
                module.running_var.fill_(1.0 - module.eps)
    return net.eval()


def _initialisers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _resolved(model: onnx.ModelProto, init: dict[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """The graph's nodes as (op type, input names), without the Identity nodes the exporter
    adds when it merges equal initialisers (their outputs read as the merged initialiser),
    so two exports of one architecture compare node for node whatever their values."""
    alias: dict[str, str] = {}
    nodes = []
    for node in model.graph.node:
        inputs = [alias.get(name, name) for name in node.input]
        if node.op_type == "Identity" and len(inputs) == 1 and inputs[0] in init:
            alias[node.output[0]] = inputs[0]
            continue
        nodes.append((node.op_type, inputs))
    return nodes


def _map_weights(reference: onnx.ModelProto, source: onnx.ModelProto, probe: networks.PolicyValueNet,
                 field: str) -> dict[str, torch.Tensor]:
    """The probe's state dict with every parameter found in ``reference`` replaced by the
    value at the same place in ``source``."""
    ref_init, src_init = _initialisers(reference), _initialisers(source)
    ref_nodes, src_nodes = _resolved(reference, ref_init), _resolved(source, src_init)
    if len(ref_nodes) != len(src_nodes):
        raise InitialModelError(
            f"{field}: the graph has {len(src_nodes)} nodes where the exporter writes {len(ref_nodes)} for "
            f"this architecture (an optimised or quantised file? give the plain export, model.onnx)")
    params = {k: v.detach().numpy() for k, v in probe.state_dict().items() if v.is_floating_point()}
    norms = {name for name, m in probe.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    neutral = {f"{n}.{k}" for n in norms for k in ("weight", "running_mean", "running_var")}
    candidates = {k: v for k, v in params.items() if k not in neutral}  # distinct random values
    found: dict[str, tuple[str, bool]] = {}  # reference initialiser -> (parameter, transposed)
    for name, value in ref_init.items():
        for pname, p in candidates.items():
            if p.size != value.size or p.size == 0:
                continue
            if np.allclose(p.reshape(-1), value.reshape(-1), rtol=1e-5, atol=0):
                found[name] = (pname, False)
                break
            if p.ndim == 2 and np.allclose(p.T.reshape(-1), value.reshape(-1), rtol=1e-5, atol=0):
                found[name] = (pname, True)
                break
    state = {k: v.clone() for k, v in probe.state_dict().items()}
    loaded: dict[str, np.ndarray] = {}
    for i, ((r_op, r_inputs), (s_op, s_inputs)) in enumerate(zip(ref_nodes, src_nodes, strict=True)):
        if r_op != s_op or len(r_inputs) != len(s_inputs):
            raise InitialModelError(
                f"{field}: node {i} is {s_op} where the exporter writes {r_op} for this "
                f"architecture (another architecture, or an optimised file? give the plain export)")
        for r_in, s_in in zip(r_inputs, s_inputs, strict=True):
            if r_in not in ref_init:
                continue
            if s_in not in src_init:
                raise InitialModelError(f"{field}: node {i} ({s_op}) takes {s_in!r}, not a stored weight")
            value = src_init[s_in]
            if value.shape != ref_init[r_in].shape:
                raise InitialModelError(f"{field}: weight {s_in!r} has shape {value.shape} where this "
                                        f"architecture has {ref_init[r_in].shape}")
            if r_in not in found:  # a constant of the graph, not a parameter: must be the same
                if not np.allclose(value, ref_init[r_in], rtol=1e-6, atol=1e-7):
                    raise InitialModelError(f"{field}: constant {s_in!r} of node {i} differs from this "
                                            f"architecture's")
                continue
            pname, transposed = found[r_in]
            shaped = (value.T if transposed else value).reshape(params[pname].shape)
            if pname in loaded and not np.array_equal(loaded[pname], shaped):
                raise InitialModelError(f"{field}: two different values for {pname}")
            loaded[pname] = shaped
    for name, module in probe.named_modules():  # what the export folds away: identity BatchNorms
        if isinstance(module, torch.nn.BatchNorm2d) and f"{name}.weight" not in loaded:
            loaded.setdefault(f"{name}.bias", np.zeros(module.num_features, np.float32))
            loaded[f"{name}.weight"] = np.ones(module.num_features, np.float32)
    missing = [k for k in candidates if k not in loaded]
    if missing:
        raise InitialModelError(f"{field}: no weight in the file for {', '.join(missing[:5])}")
    for k, v in loaded.items():
        state[k] = torch.from_numpy(np.array(v, np.float32))
    return state


def _check_parity(net: networks.PolicyValueNet, data: bytes, game: GameSpec, field: str) -> None:
    """InitialModelError unless ``net`` and the ONNX file agree on real positions of ``game``."""
    import onnxruntime as ort

    from ouroboros.trainer.engine.types import game_config
    from ouroboros.trainer.learning import positions

    planes = positions.play_positions(game_config(game), PARITY_POSITIONS, seed=7, games=8).planes
    planes = encoding.prefix(planes, net.config.in_channels)  # an older encoding's model: its prefix
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    logits, value = session.run(None, {session.get_inputs()[0].name: planes.astype(np.float32)})
    net.eval()
    with torch.no_grad():
        t_logits, t_value = (x.numpy() for x in net(torch.from_numpy(planes.astype(np.float32))))
    worst = max(float(np.abs(logits - t_logits).max()), float(np.abs(value - t_value).max()))
    if not worst <= PARITY_ATOL:
        raise InitialModelError(f"{field}: the loaded network differs from the file on real positions "
                                f"(largest difference {worst:.2e} > {PARITY_ATOL:g})")
    log.info("%s: loaded into %s; outputs equal the file's within %.1e", field, net.config.name, worst)
