"""Artifact store: atomic, self-verifying files under any fsspec URL.

Everything Ouroboros keeps (replay shards, checkpoints, ONNX models, champion
pointers) lives under one root URL: a local directory by default, ``memory://``
in tests, ``s3://bucket/prefix`` (with s3fs installed) on a cluster. This
module gives the three guarantees the rest of the project builds on:

* **Atomic writes.** A reader sees either the old content or the whole new
  content, never a half-written file. Locally the data goes to a hidden temp
  file in the same directory, is fsynced, and is swapped in with
  ``os.replace``; on other filesystems it goes to a temp key and is moved into
  place. On object stores (S3, GCS, Azure) the move is a server-side copy, so
  the final key appears whole or not at all; a mutable document such as the
  champion pointer is therefore always replaced by one object write, the
  object-store equivalent of a pointer swap.
* **Checksums.** An artifact's sha256 is computed while it is written and kept
  in a JSON sidecar (``<key>.meta.json``) with its size, creation time and
  caller metadata. Every read recomputes it; a mismatch raises
  :class:`ChecksumError` naming the URI and both digests, and a download never
  leaves a corrupt file at its destination.
* **Self-description.** The sidecar travels with the artifact, so a store
  copied to another URL keeps working (keys are relative to the root).

Documents (``write_json``/``read_json``) are small mutable JSON files written
atomically without a sidecar: the whole-file swap is their integrity.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from ouroboros.contract.run import STORE_FILESYSTEM_OPTIONS

SIDECAR_SUFFIX = ".meta.json"
CHUNK = 1 << 20
_TEMPORARY = re.compile(r"\..+\.tmp-[0-9A-Za-z]+")
"""Name of a write in progress (see ``_write_atomic``)."""
log = logging.getLogger(__name__)


class ArtifactError(Exception):
    """Base class of artifact-store failures."""


class ArtifactNotFoundError(ArtifactError, FileNotFoundError):
    """No artifact (or no sidecar) at that key."""


class ChecksumError(ArtifactError):
    """An artifact's bytes do not hash to the recorded sha256: it is corrupt or was replaced."""

    def __init__(self, uri: str, expected: str, actual: str) -> None:
        self.uri, self.expected, self.actual = uri, expected, actual
        super().__init__(
            f"checksum mismatch for {uri}: expected sha256 {expected}, got {actual}; "
            "the artifact is corrupt or was replaced and will not be used"
        )


class ArtifactInfo(BaseModel):
    """What the sidecar records about one artifact."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="Path of the artifact relative to the store root.")
    uri: str = Field(description="Full URL of the artifact.")
    sha256: str = Field(description="Hex sha256 of the artifact's bytes.")
    size: int = Field(description="Size in bytes.")
    created_at: datetime = Field(description="When the artifact was written (UTC).")
    metadata: dict[str, JsonValue] = Field(
        default_factory=dict, description="Caller metadata kept with the artifact."
    )


def _check_key(key: str) -> str:
    """Refuse keys that could escape the root or collide with temp files and sidecars."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key:
        raise ValueError(f"invalid artifact key {key!r}: must be a relative path with '/'")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ValueError(f"invalid artifact key {key!r}: empty, '.', '..' or hidden segment")
    if key.endswith(SIDECAR_SUFFIX):
        raise ValueError(f"invalid artifact key {key!r}: {SIDECAR_SUFFIX} is reserved")
    return key


def _chunks(source: bytes | str | os.PathLike[str] | BinaryIO) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    with contextlib.ExitStack() as stack:
        f = source if hasattr(source, "read") else stack.enter_context(open(source, "rb"))  # noqa: SIM115
        while chunk := f.read(CHUNK):  # type: ignore[union-attr]
            yield chunk


class ArtifactStore:
    """An artifact store rooted at ``url`` (a path or any fsspec URL).

    ``storage_options`` go to fsspec (e.g. ``anon=True`` or ``endpoint_url`` for S3), after
    the project's ``STORE_FILESYSTEM_OPTIONS`` (no listings cache: other processes write
    the same store). An S3 store takes its endpoint and credentials from the environment
    as boto does (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``).
    """

    def __init__(self, url: str | os.PathLike[str], **storage_options: Any) -> None:
        self.url = str(url)
        self.fs, root = fsspec.core.url_to_fs(self.url, **{**STORE_FILESYSTEM_OPTIONS, **storage_options})
        self.root = root.rstrip("/")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    @property
    def is_local(self) -> bool:
        """True for a local directory: writes are fsynced and locks are real."""
        return isinstance(self.fs, LocalFileSystem)

    def path(self, key: str) -> str:
        """The filesystem path of ``key`` (validated)."""
        return f"{self.root}/{_check_key(key)}"

    def uri(self, key: str) -> str:
        """The full URL of ``key``, e.g. ``file:///.../models/v1/model.onnx``."""
        return self.fs.unstrip_protocol(self.path(key))

    # ------------------------------------------------------------------ writes

    def put_bytes(
        self, key: str, data: bytes, metadata: dict[str, JsonValue] | None = None
    ) -> ArtifactInfo:
        """Write an artifact and its sidecar atomically; returns what the sidecar records."""
        return self._put(key, _chunks(data), metadata)

    def put_file(
        self,
        key: str,
        source: str | os.PathLike[str] | BinaryIO,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ArtifactInfo:
        """Like :meth:`put_bytes`, streaming from a local path or a binary file object."""
        return self._put(key, _chunks(source), metadata)

    def _put(
        self, key: str, chunks: Iterable[bytes], metadata: dict[str, JsonValue] | None
    ) -> ArtifactInfo:
        path = self.path(key)
        digest, size = self._write_atomic(path, chunks)
        info = ArtifactInfo(
            key=key,
            uri=self.uri(key),
            sha256=digest,
            size=size,
            created_at=datetime.now(UTC),
            metadata=metadata or {},
        )
        sidecar = info.model_dump(mode="json", exclude={"key", "uri"})
        # The sidecar goes last: an artifact without one is invisible to `list`/`info`,
        # so a crash between the two writes leaves nothing half-registered.
        self._write_atomic(path + SIDECAR_SUFFIX, _chunks(_dump(sidecar)))
        return info

    def write_json(self, key: str, document: Any) -> None:
        """Replace a small JSON document atomically (no sidecar)."""
        self._write_atomic(self.path(key), _chunks(_dump(document)))

    def delete(self, key: str) -> None:
        """Remove an artifact; the sidecar first, so it leaves listings at once."""
        for path in (self.path(key) + SIDECAR_SUFFIX, self.path(key)):
            if self.fs.exists(path):
                self.fs.rm(path)

    def _write_atomic(self, path: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Write to a temp name beside ``path``, then swap it in; returns (sha256, size)."""
        parent, name = path.rsplit("/", 1)
        tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex}"
        h, size = hashlib.sha256(), 0
        try:
            if self.is_local:
                os.makedirs(parent, exist_ok=True)
                with open(tmp, "wb") as f:
                    for chunk in chunks:
                        h.update(chunk)
                        size += len(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                self.fs.makedirs(parent, exist_ok=True)
                with self.fs.open(tmp, "wb") as f:
                    for chunk in chunks:
                        h.update(chunk)
                        size += len(chunk)
                        f.write(chunk)
            self._replace(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            raise
        if self.is_local:
            _fsync_dir(parent)
        return h.hexdigest(), size

    def _replace(self, tmp: str, path: str) -> None:
        """The commit point of every write: before it the old content is in force."""
        if self.is_local:
            os.replace(tmp, path)
        else:
            self.fs.mv(tmp, path)

    def remove_temp_files(self, folder: str, name_prefix: str = "") -> int:
        """Delete the temp files that writes killed mid-way left in ``folder`` (not below
        it), for artifacts whose names start with ``name_prefix``; returns how many.

        A temp file of a write still in progress looks the same, so call this only
        for names no other live process writes (e.g. a worker's own shards, at start);
        elsewhere :meth:`sweep_temporaries` removes only temp files older than a write takes."""
        path = f"{self.root}/{_check_key(folder.strip('/'))}"
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return 0
        removed = 0
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(f".{name_prefix}") and _TEMPORARY.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(entry)
                    removed += 1
        return removed

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Serialise read-modify-write of ``key`` between processes on a local store.

        Object stores have no portable lock; callers there rely on the
        generation check they do themselves (optimistic concurrency).
        """
        if not self.is_local:
            yield
            return
        import fcntl

        parent, name = self.path(key).rsplit("/", 1)
        os.makedirs(parent, exist_ok=True)
        with open(f"{parent}/.{name}.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ reads

    def exists(self, key: str) -> bool:
        """Whether a complete artifact (one with a sidecar) is at ``key``."""
        return bool(self.fs.exists(self.path(key) + SIDECAR_SUFFIX))

    def info(self, key: str) -> ArtifactInfo:
        """The sidecar of ``key`` (no hashing); ArtifactNotFoundError if absent."""
        raw = self._read_json_path(self.path(key) + SIDECAR_SUFFIX)
        if raw is None:
            raise ArtifactNotFoundError(f"no artifact at {self.uri(key)}")
        try:
            return ArtifactInfo(key=key, uri=self.uri(key), **raw)
        except (TypeError, ValueError) as e:
            raise ArtifactError(f"unreadable metadata sidecar for {self.uri(key)}: {e}") from e

    def get_bytes(self, key: str, expected_sha256: str | None = None) -> bytes:
        """Read an artifact and check it against its sidecar (and ``expected_sha256``)."""
        info = self.info(key)
        try:
            data = self.fs.cat_file(self.path(key))
        except FileNotFoundError as e:
            raise ArtifactNotFoundError(f"artifact missing at {info.uri}") from e
        self._check(info, hashlib.sha256(data).hexdigest(), expected_sha256)
        return data

    def get_file(
        self, key: str, dest: str | os.PathLike[str], expected_sha256: str | None = None
    ) -> ArtifactInfo:
        """Download to a local path, verified; a corrupt artifact never reaches ``dest``."""
        info = self.info(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        h = hashlib.sha256()
        try:
            with self.fs.open(self.path(key), "rb") as src, open(tmp, "wb") as out:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
            self._check(info, h.hexdigest(), expected_sha256)
            os.replace(tmp, dest)
        except FileNotFoundError as e:
            raise ArtifactNotFoundError(f"artifact missing at {info.uri}") from e
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def verify(self, key: str, expected_sha256: str | None = None) -> ArtifactInfo:
        """Hash the stored bytes without keeping them; ChecksumError if they do not match."""
        info = self.info(key)
        h = hashlib.sha256()
        try:
            with self.fs.open(self.path(key), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except FileNotFoundError as e:
            raise ArtifactNotFoundError(f"artifact missing at {info.uri}") from e
        self._check(info, h.hexdigest(), expected_sha256)
        return info

    @staticmethod
    def _check(info: ArtifactInfo, actual: str, expected: str | None) -> None:
        if actual != info.sha256:
            raise ChecksumError(info.uri, info.sha256, actual)
        if expected is not None and expected != actual:
            raise ChecksumError(info.uri, expected, actual)

    def list(self, prefix: str = "") -> list[str]:
        """Keys of complete artifacts under ``prefix`` (a folder such as ``models/``), sorted."""
        base = self.root if not prefix else f"{self.root}/{prefix.strip('/')}"
        if prefix:
            _check_key(prefix.strip("/"))
        keys = []
        for path in self.fs.find(base):
            name = path.rsplit("/", 1)[-1]
            if path.endswith(SIDECAR_SUFFIX) and not name.startswith("."):
                keys.append(path[len(self.root) :].lstrip("/")[: -len(SIDECAR_SUFFIX)])
        return sorted(keys)

    def sweep_temporaries(self, prefix: str = "", older_than_s: float = 3600.0) -> list[str]:
        """Delete the temp files of writes that were killed before their rename (``.NAME.tmp-HEX``)
        under ``prefix`` and last modified over ``older_than_s`` seconds ago (a younger one may be
        a write in progress). Returns the paths removed; files of unknown age are kept."""
        base = self.root if not prefix else f"{self.root}/{_check_key(prefix.strip('/'))}"
        if not self.fs.exists(base):
            return []
        removed, now = [], time.time()
        for path, info in self.fs.find(base, detail=True).items():
            if not _TEMPORARY.fullmatch(path.rsplit("/", 1)[-1]):
                continue
            modified = _mtime(info)
            if modified is not None and now - modified > older_than_s:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(path)
                    removed.append(path)
        if removed:
            log.info("swept %d temporary file(s) of killed writes under %s", len(removed), self.uri(prefix or ""))
        return removed

    def documents(self, prefix: str) -> list[str]:
        """Keys of the JSON documents written by :meth:`write_json` under ``prefix``."""
        base = f"{self.root}/{_check_key(prefix.strip('/'))}"
        found = []
        for path in self.fs.find(base):
            name = path.rsplit("/", 1)[-1]
            if name.endswith(".json") and not name.endswith(SIDECAR_SUFFIX) and name[0] != ".":
                found.append(path[len(self.root) :].lstrip("/"))
        return sorted(found)

    def has_document(self, key: str) -> bool:
        """Whether a JSON document (see :meth:`write_json`) exists at ``key``, whatever it holds."""
        return bool(self.fs.exists(self.path(key)))

    def read_json(self, key: str) -> Any:
        """A document written by :meth:`write_json`, or None if there is none."""
        return self._read_json_path(self.path(key))

    def _read_json_path(self, path: str) -> Any:
        try:
            raw = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            uri = self.fs.unstrip_protocol(path)
            raise ArtifactError(f"corrupt JSON document at {uri}: {e}") from e


def _dump(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def _mtime(info: dict[str, Any]) -> float | None:
    """Modification time (epoch seconds) from an fsspec ``info`` dict, whatever the backend calls it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def _fsync_dir(path: str) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
