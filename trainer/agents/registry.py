"""Players by name: `make_player("search:ms=100")` for the CLI, tournaments and servers.

A spec is `NAME` or `NAME:OPTIONS`:

- built-in players take `key=value` options separated by commas, each naming a
  field of the player or of its weights (`search:ms=100,focus=3`,
  `heuristic:hungry_health=30`); values are converted to the field's type;
- `nsearch:model=M,ms=N,...` (the neural-guided search, `agents/nsearch.py`)
  takes `key=value` options too, `model` naming an ONNX file, `champion[:GAME]`
  or `registry:VERSION`;
- other schemes take the rest of the spec verbatim (`onnx:models/champion.onnx`,
  `registry:v12`). Their factories are imported on first use from
  `LAZY_SCHEMES`, so `ouro play` with built-in players never imports torch or
  onnxruntime. The neural players register themselves there.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable

from ouroboros.trainer.agents.base import Player
from ouroboros.trainer.agents.heuristic import Heuristic
from ouroboros.trainer.agents.search import Search, SearchV1
from ouroboros.trainer.agents.simple import Greedy, RandomSafe

BUILTINS: dict[str, type] = {
    "random-safe": RandomSafe,
    "greedy": Greedy,
    "heuristic": Heuristic,
    "search": Search,
    "search-v1": SearchV1,
}

# scheme -> "package.module:function" taking the text after "scheme:" and returning a Player.
LAZY_SCHEMES: dict[str, str] = {}

# Schemes that are planned but not installed yet, with what they will load (for error messages).
PLANNED_SCHEMES: dict[str, str] = {}


class SpecError(ValueError):
    """A player spec that names no known player or sets an unknown option."""


def register_scheme(scheme: str, factory: str | Callable[[str], Player]) -> None:
    """Adds a scheme: a factory, or "module:function" imported on first use."""
    if scheme in BUILTINS:
        raise ValueError(f"{scheme!r} is a built-in player name")
    _FACTORIES.pop(scheme, None)
    if callable(factory):
        _FACTORIES[scheme] = factory
        LAZY_SCHEMES.pop(scheme, None)
    else:
        LAZY_SCHEMES[scheme] = factory


_FACTORIES: dict[str, Callable[[str], Player]] = {}


def known() -> list[str]:
    """Names and schemes a spec may start with."""
    return [*BUILTINS, *sorted(set(LAZY_SCHEMES) | set(_FACTORIES))]


def make_player(spec: str, **defaults: object) -> Player:
    """The player a spec names, displayed under the spec itself.

    `defaults` are option values used where the spec does not set them, ignored by
    players without that option (e.g. `ms=50` for every search player of a match).
    """
    name, sep, rest = spec.strip().partition(":")
    if name in BUILTINS:
        options = {k: v for k, v in defaults.items() if _has_option(BUILTINS[name], k)}
        options.update(_parse_options(spec, rest) if sep else {})
        return _build(BUILTINS[name], options, spec.strip())
    if name in _FACTORIES or name in LAZY_SCHEMES:
        if name not in _FACTORIES:
            module, _, func = LAZY_SCHEMES[name].partition(":")
            _FACTORIES[name] = getattr(importlib.import_module(module), func)
        try:
            return _FACTORIES[name](rest)
        except (ValueError, FileNotFoundError) as err:  # a bad path, version or model: the spec's fault
            raise SpecError(f"player {spec!r}: {err}") from err
    if name in PLANNED_SCHEMES:
        raise SpecError(f"player {spec!r}: {name}: players ({PLANNED_SCHEMES[name]}) are not installed yet")
    raise SpecError(f"unknown player {spec!r} (known: {', '.join(known())})")


_OPTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def split_specs(text: str) -> list[str]:
    """A comma-separated list of specs, where a spec's own `key=value` options may follow
    it after commas: "nsearch:model=m.onnx,ms=50,champion" -> ["nsearch:model=m.onnx,ms=50",
    "champion"]. A fragment that starts with `key=` belongs to the spec before it."""
    specs: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if specs and ":" in specs[-1] and _OPTION.match(part):
            specs[-1] = f"{specs[-1]},{part}"
        else:
            specs.append(part)
    return specs


def _parse_options(spec: str, text: str) -> dict[str, str]:
    options = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"player {spec!r}: expected key=value, got {item!r}")
        options[key.strip()] = value.strip()
    return options


def _has_option(cls: type, key: str) -> bool:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    weights = fields.get("weights")
    return key in fields or (weights is not None and key in {f.name for f in dataclasses.fields(weights.default_factory())})


def _convert(spec: str, key: str, kind: object, value: object) -> object:
    if not isinstance(value, str):
        return value
    kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, kind) if isinstance(kind, str) else kind
    try:
        if kind is bool:
            if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes")
        return kind(value) if kind in (int, float, str) else value
    except ValueError:
        raise SpecError(f"player {spec!r}: option {key}={value!r} is not a valid {getattr(kind, '__name__', kind)}") from None


def _build(cls: type, options: dict[str, object], spec: str) -> Player:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    direct, weights = {}, {}
    weight_fields = {}
    if "weights" in fields:
        weight_fields = {f.name: f for f in dataclasses.fields(fields["weights"].default_factory())}
    for key, value in options.items():
        if key in ("name", "weights", "depths") or (key not in fields and key not in weight_fields):
            allowed = sorted(k for k in [*fields, *weight_fields] if k not in ("name", "weights", "depths"))
            raise SpecError(f"player {spec!r}: unknown option {key!r} (options: {', '.join(allowed)})")
        if key in fields:
            direct[key] = _convert(spec, key, fields[key].type, value)
        else:
            weights[key] = _convert(spec, key, weight_fields[key].type, value)
    if weights:
        direct["weights"] = dataclasses.replace(fields["weights"].default_factory(), **weights)
    return cls(name=spec, **direct)


def _onnx_player(path: str) -> Player:
    """``onnx:PATH``: a missing file is a refused spec (SpecError), not an onnxruntime error."""
    import os

    if path and not os.path.isfile(path):
        raise SpecError(f"no such model file: {path}")  # make_player names the spec
    from ouroboros.trainer.agents import neural  # imported on first use: onnxruntime is heavy

    return neural.from_spec(path)


register_scheme("onnx", _onnx_player)
register_scheme("champion", "ouroboros.trainer.agents.stored:champion_player")
register_scheme("registry", "ouroboros.trainer.agents.stored:version_player")
register_scheme("nsearch", "ouroboros.trainer.agents.nsearch:from_spec")

KEYED_SCHEMES = frozenset({"nsearch"})
"""Schemes whose options are `key=value` pairs like a built-in's (servers lower their `ms`)."""
