"""Players from the model registry: `champion[:GAME]` and `registry:VERSION`.

Every verb that takes a player spec (`ouro play`, `ouro evaluate`, `ouro serve`)
resolves these two the same way: the ONNX bytes are read from the registry
(sha256 checked: a corrupt artifact raises `ChecksumError` and is never played)
and played by `neural.OnnxPlayer`; `champion_model`/`version_model` write them to a
file instead, for worker processes that take `onnx:PATH` specs. The
registry is `$OURO_STORE`, else `./runs/registry`; `champion` alone means the
champion of `standard-11x11-2p`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ouroboros.trainer.artifacts import registry as reg

DEFAULT_GAME = "standard-11x11-2p"


def champion_model(store: str, game: str, folder: str | os.PathLike[str] | None = None) -> tuple[str, Path]:
    """(display name, ONNX path) of the champion of `game`, verified against its sha256."""
    version, data = reg.Registry.open(store).load_champion(game)
    path = _private_path(folder, f"champion-{version.id}.onnx")
    path.write_bytes(data)
    return f"champion ({version.id})", path


def version_model(store: str, version: str, folder: str | os.PathLike[str] | None = None) -> tuple[str, Path]:
    """(display name, ONNX path) of a registered version, verified against its sha256."""
    path = _private_path(folder, f"{version}.onnx")
    reg.Registry.open(store).fetch(version, path)
    return f"registry:{version}", path


def _private_path(folder, name: str) -> Path:
    return Path(folder or tempfile.mkdtemp(prefix="ouro-model-")) / name


def champion_player(game: str = "", store: str | None = None):
    """The champion of `game` as a player (the `champion[:GAME]` scheme of `make_player`)."""
    from ouroboros.trainer.agents import neural

    store, game = store or reg.default_store(), game or DEFAULT_GAME
    try:
        registry = reg.Registry.open(store)
        if registry.champion(game).version is None:  # said once, with what to do (not the registry's words again)
            raise ValueError(f"no champion of {game} in {store}; train one with `ouro train`")
        version, data = registry.load_champion(game)
    except (reg.RegistryError, LookupError) as err:
        raise ValueError(f"no champion of {game} in {store} ({err}); train one with `ouro train`") from err
    return neural.OnnxPlayer(data, name=f"champion ({version.id})")


def version_player(version: str, store: str | None = None):
    """A registered version as a player (the `registry:VERSION` scheme of `make_player`)."""
    from ouroboros.trainer.agents import neural

    if not version:
        raise ValueError("name a version, e.g. registry:v12 (see `ouro registry list`)")
    store = store or reg.default_store()
    try:
        data = reg.Registry.open(store).load(version)
    except (reg.RegistryError, LookupError) as err:
        raise ValueError(f"no version {version!r} in {store} ({err})") from err
    return neural.OnnxPlayer(data, name=f"registry:{version}")
