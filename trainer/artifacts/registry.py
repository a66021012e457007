"""Model registry: versions, and one champion pointer per game configuration.

A *version* is an immutable model artifact with its provenance (architecture,
training run, phase, metrics) and sha256, stored under the artifact store as
``models/<id>/<file>`` with the metadata in the artifact's sidecar. A
*champion pointer* ``champions/<game>.json`` says which version plays a game
configuration (``standard-11x11-2p``) and keeps a bounded audit trail of who
changed it, when, from which run, with which gate statistics and why
(MLflow's aliases have no history; Argo Rollouts and KataGo's gatekeeper keep
one, and so do we).

Safety, which is why this is more than a dict in a JSON file:

* Every change to a pointer (promote, rollback, pin, unpin) is one atomic
  replace of the whole pointer document, history included: a crash before the
  swap leaves the old champion in force, after it the new one; never a mix.
* A version is hashed before it is promoted or rolled back to, and loading a
  champion checks the bytes against the sha256 recorded in the pointer: a
  corrupt artifact raises :class:`ChecksumError`, is logged, and never
  becomes champion.
* ``pinned_version`` (the Champion resource's ``pinnedVersion``) freezes the
  pointer: while pinned, promotions and rollbacks are refused.
* Concurrent writers: on a local store the read-modify-write is under a file
  lock; elsewhere a generation number detects a lost update.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, Field, JsonValue

from ouroboros.contract.game import GameKey
from ouroboros.trainer.artifacts.store import (
    ArtifactError,
    ArtifactInfo,
    ArtifactNotFoundError,
    ArtifactStore,
    ChecksumError,
)

DEFAULT_STORE = "./runs/registry"
"""The model registry every `ouro` verb uses when neither --store nor $OURO_STORE says otherwise."""


def default_store() -> str:
    """$OURO_STORE, else `DEFAULT_STORE`."""
    return os.environ.get("OURO_STORE") or DEFAULT_STORE


log = logging.getLogger(__name__)

__all__ = [
    "ChampionAction",
    "ChampionPinnedError",
    "ChampionRecord",
    "ChampionState",
    "ChecksumError",
    "ConcurrentUpdateError",
    "ModelVersion",
    "Registry",
    "RegistryError",
    "VersionNotFoundError",
]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PREVIOUS = "previous"


class RegistryError(Exception):
    """A registry operation was refused; the message says why."""


class VersionNotFoundError(RegistryError, LookupError):
    """No such model version in the store."""


class ChampionPinnedError(RegistryError):
    """The champion is pinned; unpin before promoting or rolling back."""


class ConcurrentUpdateError(RegistryError):
    """Someone else changed the champion pointer between our read and our write."""


class ChampionAction(StrEnum):
    """What a history record did to the pointer."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    PIN = "pin"
    UNPIN = "unpin"


def _check_game(game: str | GameKey) -> str:
    """The canonical text of a game key (``standard-11x11-2p``); ValueError naming the form otherwise."""
    return str(game if isinstance(game, GameKey) else GameKey.parse(game))


def check_version_id(version: str) -> str:
    """``version`` if it is a valid version id; ValueError naming the allowed form otherwise."""
    if not _ID.match(version) or version == PREVIOUS:
        raise ValueError(
            f"invalid version id {version!r}: 1-128 of letters, digits, '.', '_', '-' "
            f"(not {PREVIOUS!r})"
        )
    return version


class ModelVersion(BaseModel):
    """One registered model: provenance plus what is needed to fetch and verify it."""

    id: str = Field(description="Version id, unique in the store.")
    architecture: str = Field(description="Network architecture name (e.g. cnn_attention_residual-6x32).")
    run: str = Field(description="Training run that produced it.")
    phase: str = Field(description="Training phase that produced it (bootstrap, self_play ...).")
    game: str | None = Field(None, description="Game configuration it was trained for, if any.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Phase metrics.")
    metadata: dict[str, JsonValue] = Field(default_factory=dict, description="Anything else.")
    sha256: str = Field(description="sha256 of the artifact bytes.")
    size: int = Field(description="Artifact size in bytes.")
    created_at: datetime = Field(description="Registration time (UTC).")
    artifact: str = Field(description="Key of the artifact in the store.")
    uri: str = Field(description="Full URL of the artifact.")


class ChampionRecord(BaseModel):
    """One change of a champion pointer (newest first in the history)."""

    action: ChampionAction
    version: str | None = Field(description="Version in force after the change.")
    previous: str | None = Field(description="Version in force before the change.")
    at: datetime
    by: str = Field(description="Who made the change (user, operator, CI).")
    run: str | None = Field(None, description="Training run the promoted version came from.")
    sha256: str | None = Field(
        None, description="sha256 of the version in force after the change, as checked then: a rollback "
        "to it requires the same bytes.")
    reason: str = ""
    statistics: dict[str, JsonValue] = Field(
        default_factory=dict, description="The gate's statistics (SPRT, Elo, latency ...)."
    )


class ChampionState(BaseModel):
    """The champion pointer document of one game configuration."""

    game: str
    version: str | None = None
    sha256: str | None = None
    size: int | None = None
    uri: str | None = None
    pinned_version: str | None = Field(
        None, description="While set, the pointer is frozen at this version."
    )
    generation: int = Field(0, description="Incremented on every change.")
    updated_at: datetime | None = None
    history: list[ChampionRecord] = Field(default_factory=list, description="Newest first.")


class Registry:
    """Model versions and champion pointers in an :class:`ArtifactStore`."""

    def __init__(
        self,
        store: ArtifactStore,
        history_limit: int = 20,
        clock: Callable[[], datetime] | None = None,
        validate: Callable[[bytes, str], object] | None = None,
    ) -> None:
        """``validate(model bytes, game key)`` runs before any version is put in force
        (promote, rollback, pin) as the champion of that game, and raises to refuse
        it; the registry knows nothing of model formats, so callers pass one
        (``agents.neural.check_model`` for ONNX models)."""
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        self.store = store
        self.history_limit = history_limit
        self._now = clock or (lambda: datetime.now(UTC))
        self._validate = validate

    @classmethod
    def open(cls, url: str | os.PathLike[str], **kwargs: object) -> Registry:
        """A registry over ``ArtifactStore(url)``."""
        return cls(ArtifactStore(url), **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ versions

    def register(
        self,
        source: bytes | str | os.PathLike[str] | BinaryIO,
        *,
        architecture: str,
        run: str,
        phase: str,
        game: str | None = None,
        metrics: dict[str, float] | None = None,
        metadata: dict[str, JsonValue] | None = None,
        version_id: str | None = None,
        filename: str = "model.onnx",
    ) -> ModelVersion:
        """Store a model artifact (bytes or a local file) as a new version.

        The default id is ``<UTC time>-<run>`` made unique with a counter; the
        artifact is written atomically and hashed on the way. Idempotent per run
        and content: the same bytes registered again for the same run and game
        return the existing version (a re-run or resumed run adds nothing).
        """
        for name, value in (("architecture", architecture), ("run", run), ("phase", phase)):
            if not value:
                raise ValueError(f"{name} must not be empty")
        if game is not None:
            game = _check_game(game)
        self.store.sweep_temporaries("models")  # left by killed registrations (artifact or sidecar)
        if not isinstance(source, bytes | str | os.PathLike):
            source = source.read()
        digest = hashlib.sha256(source if isinstance(source, bytes) else Path(source).read_bytes()).hexdigest()
        same = [v for v in self.versions() if v.run == run and v.sha256 == digest and v.game == game]
        if same and version_id in (None, same[0].id):
            log.info("version %s of run %s already holds these bytes: not registered again", same[0].id, run)
            return same[0]
        created = self._now()
        if version_id is None:
            stem = re.sub(r"[^A-Za-z0-9._-]+", "-", run).strip("-.")[:60] or "model"
            base = f"{created:%Y%m%d-%H%M%S}-{stem}"
            version_id, n = base, 1
            while self._find_key(version_id) is not None:
                n += 1
                version_id = f"{base}-{n}"
        elif self._find_key(check_version_id(version_id)) is not None:
            raise RegistryError(f"version {version_id!r} already exists")
        check_version_id(version_id)
        record = {
            "id": version_id,
            "architecture": architecture,
            "run": run,
            "phase": phase,
            "game": game,
            "metrics": {k: float(v) for k, v in (metrics or {}).items()},
            "metadata": metadata or {},
            "registered_at": created.isoformat(),
        }
        key = f"models/{version_id}/{filename}"
        if isinstance(source, bytes):
            self.store.put_bytes(key, source, {"version": record})
        else:
            self.store.put_file(key, source, {"version": record})
        return self.get(version_id)

    def _find_key(self, version_id: str) -> str | None:
        keys = self.store.list(f"models/{version_id}")
        return keys[0] if keys else None

    def get(self, version_id: str) -> ModelVersion:
        """A version's record (from its sidecar; does not hash the artifact)."""
        key = self._find_key(check_version_id(version_id))
        if key is None:
            raise VersionNotFoundError(f"no model version {version_id!r} in {self.store.url}")
        return _version_from(self.store.info(key))

    def versions(self, game: str | None = None) -> list[ModelVersion]:
        """All versions, oldest first; with ``game``, those for it or for no game."""
        found = []
        for key in self.store.list("models"):
            try:
                found.append(_version_from(self.store.info(key)))
            except ArtifactNotFoundError:
                continue  # an artifact that is not a registered version
        if game is not None:
            found = [v for v in found if v.game in (game, None)]
        return sorted(found, key=lambda v: (v.created_at, v.id))

    def verify(self, version_id: str) -> ModelVersion:
        """Hash the artifact; ChecksumError (logged) if it is corrupt."""
        version = self.get(version_id)
        try:
            self.store.verify(version.artifact, expected_sha256=version.sha256)
        except ChecksumError as e:
            log.error("model version %s is corrupt: %s", version_id, e)
            raise
        return version

    def load(self, version_id: str) -> bytes:
        """A version's bytes, verified."""
        version = self.get(version_id)
        return self.store.get_bytes(version.artifact, expected_sha256=version.sha256)

    def fetch(self, version_id: str, dest: str | os.PathLike[str]) -> ModelVersion:
        """Download a version to a local file, verified."""
        version = self.get(version_id)
        self.store.get_file(version.artifact, dest, expected_sha256=version.sha256)
        return version

    # ------------------------------------------------------------------ champions

    def games(self) -> list[str]:
        """Game configurations that have a champion pointer."""
        return [k[len("champions/") : -len(".json")] for k in self.store.documents("champions")]

    def champion(self, game: str | GameKey) -> ChampionState:
        """The pointer of ``game`` (an empty state when there has never been a champion).

        A pointer document that exists but is not a pointer (``null``, truncated,
        hand-edited) raises ArtifactError: the history is an audit trail, so a
        damaged pointer is reported, never read as a fresh start.
        """
        game = _check_game(game)
        key = f"champions/{game}.json"
        if not self.store.has_document(key):
            return ChampionState(game=game)
        raw = self.store.read_json(key)
        try:
            return ChampionState.model_validate(raw)
        except ValueError as e:
            raise ArtifactError(f"champion pointer {self.store.uri(key)} is damaged ({str(e).splitlines()[0]}); "
                                "restore it from a backup or its history before changing the champion") from None

    def load_champion(self, game: str) -> tuple[ModelVersion, bytes]:
        """The champion's record and bytes, checked against the pointer's sha256."""
        state = self.champion(game)
        if state.version is None:
            raise RegistryError(f"no champion for {game!r} in {self.store.url}")
        version = self.get(state.version)
        try:
            data = self.store.get_bytes(version.artifact, expected_sha256=state.sha256)
        except ChecksumError as e:
            log.error("champion %s of %s is corrupt: %s", state.version, game, e)
            raise
        return version, data

    def promote(
        self,
        game: str,
        version_id: str,
        *,
        by: str = "unknown",
        run: str | None = None,
        reason: str = "",
        statistics: dict[str, JsonValue] | None = None,
    ) -> ChampionState:
        """Make ``version_id`` the champion of ``game`` (no-op if it already is)."""
        return self._change(
            game, ChampionAction.PROMOTE, version_id, by, reason, run=run, statistics=statistics
        )

    def rollback(
        self, game: str, to: str = PREVIOUS, *, by: str = "unknown", reason: str = ""
    ) -> ChampionState:
        """Point ``game`` back at an earlier champion: ``previous`` or a version id.

        ``previous`` is the version in force before the current one, so two
        rollbacks in a row swap back (as ``cd -``). A version id must appear in
        the pointer's history; a never-promoted version needs ``promote``.
        """
        return self._change(game, ChampionAction.ROLLBACK, to, by, reason)

    def pin(
        self, game: str, version_id: str, *, by: str = "unknown", reason: str = ""
    ) -> ChampionState:
        """Install ``version_id`` and freeze the pointer there (manual override)."""
        return self._change(game, ChampionAction.PIN, version_id, by, reason)

    def unpin(self, game: str, *, by: str = "unknown", reason: str = "") -> ChampionState:
        """Lift a pin; the pinned version stays champion until the next promotion."""
        return self._change(game, ChampionAction.UNPIN, None, by, reason)

    def _change(
        self,
        game: str,
        action: ChampionAction,
        target: str | None,
        by: str,
        reason: str,
        run: str | None = None,
        statistics: dict[str, JsonValue] | None = None,
    ) -> ChampionState:
        key = f"champions/{_check_game(game)}.json"
        with self.store.lock(key):
            self.store.sweep_temporaries("champions")
            state = self.champion(game)
            if action is ChampionAction.UNPIN:
                if state.pinned_version is None:
                    return state
                version = self.get(state.version) if state.version else None
            else:
                if state.pinned_version is not None:
                    raise ChampionPinnedError(
                        f"champion of {game!r} is pinned to {state.pinned_version!r}; "
                        f"unpin it before a {action.value}"
                    )
                assert target is not None
                if action is ChampionAction.ROLLBACK:
                    target = self._rollback_target(state, target)
                if target == state.version and action is not ChampionAction.PIN:
                    return state
                version = self.verify(target)
                if version.game not in (None, game):
                    raise RegistryError(
                        f"version {target!r} was trained for {version.game!r}, not {game!r}"
                    )
                recorded = next((r.sha256 for r in state.history if r.version == target and r.sha256), None)
                if recorded is not None and recorded != version.sha256:
                    # bytes and sidecar rewritten together: only the history still knows the truth
                    raise ChecksumError(version.uri, recorded, version.sha256)
                if self._validate is not None:
                    self._validate(self.store.get_bytes(version.artifact, expected_sha256=version.sha256), game)
            now = self._now()
            record = ChampionRecord(
                action=action,
                version=version.id if version else None,
                previous=state.version,
                at=now,
                by=by,
                run=run if run is not None else (version.run if version else None),
                sha256=version.sha256 if version else None,
                reason=reason,
                statistics=statistics or {},
            )
            new = state.model_copy(
                update={
                    "version": version.id if version else None,
                    "sha256": version.sha256 if version else None,
                    "size": version.size if version else None,
                    "uri": version.uri if version else None,
                    "pinned_version": version.id if action is ChampionAction.PIN else None,
                    "generation": state.generation + 1,
                    "updated_at": now,
                    "history": [record, *state.history][: self.history_limit],
                }
            )
            if self.champion(game).generation != state.generation:
                raise ConcurrentUpdateError(f"champion of {game!r} changed meanwhile; retry")
            self.store.write_json(key, new.model_dump(mode="json"))
            log.info("%s %s: %s -> %s by %s", action.value, game, state.version, new.version, by)
            return new

    def _rollback_target(self, state: ChampionState, to: str) -> str:
        if state.version is None:
            raise RegistryError(f"no champion for {state.game!r}: nothing to roll back")
        if to == PREVIOUS:
            # the latest record that changed the version (pin/unpin may not have)
            latest = next((r for r in state.history if r.version != r.previous), None)
            if latest is None or latest.previous is None:
                raise RegistryError(f"champion of {state.game!r} has no previous version")
            return latest.previous
        earlier = {r.previous for r in state.history} | {r.version for r in state.history}
        if check_version_id(to) not in earlier:
            raise RegistryError(
                f"version {to!r} was never champion of {state.game!r} (in the last "
                f"{len(state.history)} changes); use promote to install a new version"
            )
        return to


def _version_from(info: ArtifactInfo) -> ModelVersion:
    """Rebuild a version record from its artifact's sidecar."""
    raw = info.metadata.get("version")
    if not isinstance(raw, dict):
        raise ArtifactNotFoundError(f"{info.uri} is not a registered model version")
    fields = {k: v for k, v in raw.items() if k != "registered_at"}
    return ModelVersion(
        **fields,
        sha256=info.sha256,
        size=info.size,
        created_at=raw.get("registered_at") or info.created_at,
        artifact=info.key,
        uri=info.uri,
    )
