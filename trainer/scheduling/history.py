"""The local schedule runner's tracking database: one SQLite file.

Why SQLite and not a JSON file: the runner, `ouro schedule trigger` and
`ouro schedule history` run as separate processes, possibly at once, and a
kill at any moment must leave a consistent record; SQLite gives atomic
transactions and locking across processes from the standard library.

Tables:

- ``executions``: one row per run the schedule started, named as the cluster
  names TrainingRuns (`scheduling.run_name`), so a restarted runner never
  starts a name twice (the primary key refuses it). Columns: schedule,
  trigger (cron, data, performance, manual), scheduled_time, started_at,
  finished_at, success (NULL while running), exit_code, champion_score (the
  champion's score after the run: `ouro train`'s score against the heuristic
  teacher), pid, out/log paths, message, pruned (past a history limit; the
  row stays, it is history).
- ``schedules``: per schedule, the status `scheduling.decide` keeps (JSON),
  when it was first seen (its "creationTimestamp"), whether the stop
  strategy suspended it, and the document last run (for `ouro schedule status`).
- ``manual_triggers``: `ouro schedule trigger NAME` appends a value; the
  newest acts as the cluster's annotation.

Times are ISO 8601 UTC text.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    name TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_time TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    success INTEGER,
    exit_code INTEGER,
    champion_score REAL,
    pid INTEGER,
    out_path TEXT,
    log_path TEXT,
    message TEXT,
    pruned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS executions_by_schedule ON executions (schedule, started_at);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT '{}',
    stopped INTEGER NOT NULL DEFAULT 0,
    document TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS manual_triggers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule TEXT NOT NULL,
    value TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
"""


def iso(t: datetime | None) -> str | None:
    """`t` as ISO 8601 UTC text (None stays None)."""
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str | None) -> datetime | None:
    """ISO 8601 text back to an aware UTC datetime."""
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclasses.dataclass(frozen=True)
class Execution:
    """One row of ``executions``."""

    name: str
    schedule: str
    trigger: str
    scheduled_time: datetime
    started_at: datetime
    finished_at: datetime | None
    success: bool | None
    exit_code: int | None
    champion_score: float | None
    pid: int | None
    out_path: str | None
    log_path: str | None
    message: str | None
    pruned: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Execution:
        """From a database row."""
        return cls(
            name=row["name"], schedule=row["schedule"], trigger=row["trigger"],
            scheduled_time=parse(row["scheduled_time"]), started_at=parse(row["started_at"]),
            finished_at=parse(row["finished_at"]),
            success=None if row["success"] is None else bool(row["success"]), exit_code=row["exit_code"],
            champion_score=row["champion_score"], pid=row["pid"], out_path=row["out_path"],
            log_path=row["log_path"], message=row["message"], pruned=bool(row["pruned"]),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        out = dataclasses.asdict(self)
        for key in ("scheduled_time", "started_at", "finished_at"):
            out[key] = iso(out[key])
        return out


class History:
    """The database at `path` (created with its tables on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()

    # -- schedules ----------------------------------------------------------

    def schedule_state(self, name: str, now: datetime) -> tuple[datetime, str, bool]:
        """(first seen, status JSON, stopped) of a schedule, registering it at `now` if new."""
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO schedules (name, created) VALUES (?, ?)", (name, iso(now)))
            row = db.execute("SELECT created, status, stopped FROM schedules WHERE name = ?", (name,)).fetchone()
        return parse(row["created"]), row["status"], bool(row["stopped"])

    def save_status(self, name: str, status_json: str, document_json: str, stopped: bool | None = None) -> None:
        """Record the schedule's status and document (and the stop strategy's suspension when given)."""
        with self._connect() as db:
            db.execute("UPDATE schedules SET status = ?, document = ? WHERE name = ?", (status_json, document_json, name))
            if stopped is not None:
                db.execute("UPDATE schedules SET stopped = ? WHERE name = ?", (int(stopped), name))

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule the runner has seen: name, created, status JSON, stopped."""
        with self._connect() as db:
            return [dict(r) for r in db.execute("SELECT * FROM schedules ORDER BY name")]

    # -- manual triggers ----------------------------------------------------

    def request_manual(self, schedule: str, now: datetime) -> str:
        """Record a "run now" for `schedule`; returns the request's value."""
        with self._connect() as db:
            cursor = db.execute("INSERT INTO manual_triggers (schedule, value, requested_at) VALUES (?, '', ?)",
                                (schedule, iso(now)))
            value = f"{iso(now)}#{cursor.lastrowid}"
            db.execute("UPDATE manual_triggers SET value = ? WHERE id = ?", (value, cursor.lastrowid))
        return value

    def latest_manual(self, schedule: str) -> str | None:
        """The newest manual request's value (the local equivalent of the annotation)."""
        with self._connect() as db:
            row = db.execute("SELECT value FROM manual_triggers WHERE schedule = ? ORDER BY id DESC LIMIT 1",
                             (schedule,)).fetchone()
        return row["value"] if row else None

    # -- executions ---------------------------------------------------------

    def start(self, name: str, schedule: str, trigger: str, scheduled_time: datetime, now: datetime,
              out_path: str, log_path: str) -> bool:
        """Insert a new execution; False if that name was started before (never started twice)."""
        with self._connect() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO executions (name, schedule, trigger, scheduled_time, started_at, out_path, "
                "log_path) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, schedule, trigger, iso(scheduled_time), iso(now), out_path, log_path))
            return cursor.rowcount == 1

    def set_pid(self, name: str, pid: int) -> None:
        """The process running the execution now."""
        with self._connect() as db:
            db.execute("UPDATE executions SET pid = ? WHERE name = ?", (pid, name))

    def finish(self, name: str, now: datetime, exit_code: int | None, score: float | None, message: str) -> None:
        """Record the end of an execution (once: a finished row is left alone)."""
        with self._connect() as db:
            db.execute(
                "UPDATE executions SET finished_at = ?, success = ?, exit_code = ?, champion_score = ?, message = ? "
                "WHERE name = ? AND finished_at IS NULL",
                (iso(now), int(exit_code == 0), exit_code, score, message[:1024], name))

    def prune(self, name: str) -> None:
        """Mark an execution as past its history limit (the row stays: it is history)."""
        with self._connect() as db:
            db.execute("UPDATE executions SET pruned = 1 WHERE name = ?", (name,))

    def executions(self, schedule: str | None = None, include_pruned: bool = True) -> list[Execution]:
        """Executions, oldest first, of one schedule or all."""
        query, args = "SELECT * FROM executions", []
        clauses = []
        if schedule is not None:
            clauses.append("schedule = ?")
            args.append(schedule)
        if not include_pruned:
            clauses.append("pruned = 0")
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._connect() as db:
            return [Execution.from_row(r) for r in db.execute(query + " ORDER BY started_at, name", args)]
