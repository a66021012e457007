"""Reading a running phase's progress records from the run's artifact store.

The trainer writes `resources.progress.ProgressRecord` documents into the
store (see that module for why the store is the channel); this module is the
operator's thin I/O shell around them: list the run's records of one phase
through fsspec, parse them, and leave the deciding to the pure
`resources.progress.summarise`. The operator reads with the same storage URL
the trainer writes to: an object store (with the credentials the operator's
own environment provides) or, for a persistentVolumeClaim store, a file://
path that is only readable where the claim is mounted at the same path.
Records it cannot read are skipped and counted, never fatal to a reconcile.
"""

from __future__ import annotations

import json
import logging
import posixpath
from datetime import datetime

import fsspec

from ouroboros.contract.progress import (
    ProgressRecord,
    RunProgress,
    progress_prefix,
    store_run_id,
    summarise,
)
from ouroboros.contract.run import STORE_FILESYSTEM_OPTIONS

log = logging.getLogger(__name__)


class ProgressUnavailable(Exception):
    """The store could not be listed (unreachable, no credentials, not mounted here)."""


def read_records(storage_url: str, run: str, phase: str) -> list[ProgressRecord]:
    """Every worker's record of `phase` of store run id `run`; bad records are skipped (logged).

    Raises ProgressUnavailable if the store's progress folder cannot be listed
    for another reason than not existing yet, whatever the filesystem raises (an
    operator without credentials for an s3:// store gets botocore's
    NoCredentialsError, which is no OSError: it must not fail the reconcile).
    """
    try:
        fs, root = fsspec.core.url_to_fs(storage_url, **STORE_FILESYSTEM_OPTIONS)
    except (ValueError, ImportError) as exc:
        raise ProgressUnavailable(f"storage URL {storage_url!r}: {exc}") from exc
    folder = posixpath.join(root.rstrip("/"), progress_prefix(run))
    try:
        paths = [p for p in fs.ls(folder, detail=False) if posixpath.basename(p).startswith(f"{phase}-w")]
    except FileNotFoundError:
        return []
    except Exception as exc:  # noqa: BLE001 - any backend's failure: OSError, botocore's NoCredentialsError, ...
        raise ProgressUnavailable(f"cannot list {folder}: {exc}") from exc
    records = []
    for path in sorted(paths):
        if not path.endswith(".json"):
            continue  # a temp file mid-swap
        try:
            with fs.open(path, "rb") as f:
                records.append(ProgressRecord.model_validate(json.loads(f.read())))
        except Exception as exc:  # noqa: BLE001 - OSError, ValueError, ValidationError, a backend's own
            log.warning("skipping unreadable progress record %s: %s", path, exc)
    return records


CLOCK_SKEW_SECONDS = 60.0
"""Records may start this much before the phase's recorded start (node clocks differ)."""


def run_progress(storage_url: str, namespace: str, name: str, uid: str, phase: str, now: datetime,
                 since: datetime | None = None) -> RunProgress | None:
    """The `status.progress` of a run whose phase `phase` is running (None before any record).

    Records of an attempt that started before `since` (the phase's start, less
    `CLOCK_SKEW_SECONDS`) are left out: they belong to an earlier run of the
    same name whose files are still in the store.
    """
    records = read_records(storage_url, store_run_id(name, namespace, uid), phase)
    if since is not None:
        records = [r for r in records if (r.started_at - since).total_seconds() >= -CLOCK_SKEW_SECONDS]
    return summarise(records, now)
