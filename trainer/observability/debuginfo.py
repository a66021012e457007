"""The support bundle a user attaches to a bug report (`ouro debug-info`).

`bundle(store_url, env)` gathers, as one JSON-able dict: the versions of
Ouroboros and of the libraries it runs on (read from package metadata, so
nothing heavy is imported), the configuration (`OURO_*` and the usual cloud
variables, with secrets left out), the store's statistics (runs, model
versions, champions, size and free disk of a local store), system facts
(psutil), and the last errors: phases whose latest progress record never
reached `done` (interrupted or crashed) and the champions' latest rollbacks
and rollbacks.

Secrets are left out by name and by shape: a variable whose name says it is a
secret (`*SECRET*`, `*TOKEN*`, `*PASSWORD*`, `*KEY*`, `*CREDENTIAL*`) is
reported as present but not shown, and credentials inside a URL
(`s3://user:pass@host/...`) are masked. `redact_*` are pure and tested.
"""

from __future__ import annotations

import importlib.metadata
import re
from datetime import UTC, datetime
from typing import Any

from ouroboros.contract.progress import ProgressRecord, progress_prefix
from ouroboros.trainer.observability import resources

PACKAGES = ("ouroboros", "numpy", "pydantic", "fsspec", "torch", "onnx", "onnxruntime", "tensorboard", "psutil",
            "rich", "kopf", "kubernetes", "prometheus-client", "croniter", "s3fs", "gcsfs")
ENV_PREFIXES = ("OURO_", "AWS_", "GOOGLE_", "AZURE_", "KUBERNETES_", "FSSPEC_")
ENV_NAMES = ("KUBECONFIG", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "JOB_COMPLETION_INDEX")
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH|SESSION", re.IGNORECASE)
URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
REDACTED = "<redacted>"
LAST_ERRORS = 20


def redact_value(value: str) -> str:
    """`value` with the credentials of any URL in it masked (`s3://<redacted>@host/x`)."""
    return URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", value)


def redact_env(env: dict[str, str]) -> dict[str, str]:
    """The configuration variables of `env` worth reporting, secrets replaced by `<redacted>`."""
    out = {}
    for name in sorted(env):
        if not (name.startswith(ENV_PREFIXES) or name in ENV_NAMES):
            continue
        out[name] = REDACTED if SECRET_NAME.search(name) else redact_value(env[name])
    return out


def versions() -> dict[str, str | None]:
    """Installed version of each package of interest (None: not installed)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _progress(store) -> list[ProgressRecord]:
    records = []
    for run in store.fs.ls(f"{store.root}/runs", detail=False) if store.fs.exists(f"{store.root}/runs") else []:
        run_id = run.rstrip("/").rsplit("/", 1)[-1]
        try:
            keys = store.documents(progress_prefix(run_id))
        except (FileNotFoundError, ValueError):
            continue
        for key in keys:
            try:
                records.append(ProgressRecord.model_validate(store.read_json(key)))
            except Exception:  # noqa: BLE001 - a bundle reports what it can read
                continue
    return records


def store_stats(store) -> dict[str, Any]:
    """Runs, model versions, champions (with their latest changes), and size of a store."""
    from ouroboros.trainer.artifacts import registry as model_registry

    reg = model_registry.Registry(store)
    records = _progress(store)
    stats: dict[str, Any] = {"url": redact_value(store.url), "local": store.is_local}
    stats["runs"] = sorted({r.run for r in records})
    all_versions = reg.versions()
    stats["model_versions"] = len(all_versions)
    stats["latest_versions"] = [
        {"id": v.id, "run": v.run, "phase": v.phase, "game": v.game, "created_at": v.created_at.isoformat()}
        for v in sorted(all_versions, key=lambda v: v.created_at)[-5:]]
    stats["champions"] = {}
    for game in reg.games():
        state = reg.champion(game)
        stats["champions"][game] = {
            "version": state.version, "pinned_version": state.pinned_version, "generation": state.generation,
            "updated_at": state.updated_at.isoformat() if state.updated_at else None,
            "history": [{"action": h.action.value, "version": h.version, "at": h.at.isoformat(),
                         "by": h.by, "reason": h.reason[:300]} for h in state.history[:5]]}
    if store.is_local:
        stats["bytes"] = resources.folder_bytes(store.root)
    stats["phases"] = [
        {"run": r.run, "phase": r.phase, "worker": r.worker, "done": r.done, "fraction": r.fraction,
         "updated_at": r.updated_at.isoformat(), "games": r.games, "positions": r.positions,
         "resident_memory_bytes": r.resources.resident_memory_bytes}
        for r in sorted(records, key=lambda r: r.updated_at)[-LAST_ERRORS:]]
    stats["_records"] = records
    return stats


def last_errors(records: list[ProgressRecord], champions: dict[str, Any]) -> list[dict[str, Any]]:
    """Phases that stopped before `done`, and champion rollbacks, newest first."""
    errors = [{"at": r.updated_at.isoformat(), "kind": "phase-interrupted",
               "what": f"run {r.run} phase {r.phase} worker {r.worker} stopped at {100 * r.fraction:.0f}% "
                       f"during '{r.step}'"} for r in records if not r.done]
    for game, champ in champions.items():
        for h in champ["history"]:
            if h["action"] == "rollback":
                errors.append({"at": h["at"], "kind": f"champion-{h['action']}",
                               "what": f"{game}: {h['action']} to {h['version']} by {h['by']}: {h['reason']}"})
    return sorted(errors, key=lambda e: e["at"], reverse=True)[:LAST_ERRORS]


def bundle(store_url: str, env: dict[str, str]) -> dict[str, Any]:
    """The whole support bundle (JSON-able). A store that cannot be read is reported, not raised."""
    from ouroboros.trainer.artifacts.store import ArtifactStore

    out: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(),
        "versions": versions(),
        "configuration": redact_env(env),
    }
    try:
        store = ArtifactStore(store_url)
        stats = store_stats(store)
        records = stats.pop("_records")
        out["store"] = stats
        out["last_errors"] = last_errors(records, stats["champions"])
        disk = store.root if store.is_local else None
    except Exception as exc:  # noqa: BLE001 - the bundle is most needed when something is broken
        out["store"] = {"url": redact_value(store_url), "error": f"{type(exc).__name__}: {exc}"}
        out["last_errors"] = []
        disk = None
    out["system"] = resources.system_facts(disk)
    return out
