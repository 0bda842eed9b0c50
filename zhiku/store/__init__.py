"""App state behind one small storage layer (SQLite under the data dir today)."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_name TEXT NOT NULL,
    source TEXT NOT NULL,
    collection TEXT NOT NULL,
    actor TEXT NOT NULL,
    status TEXT NOT NULL,
    doc_id TEXT,
    chunks INTEGER DEFAULT 0,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""

# added after the first release: existing databases get them by ALTER TABLE
_ADDED_COLUMNS = {"owner": "TEXT", "pid": "INTEGER"}

JOB_STATES = ("queued", "parsing", "embedding", "indexed", "unchanged", "failed")
ACTIVE_STATES = ("queued", "parsing", "embedding")

# a job owned by another machine counts as abandoned when its heartbeat is this old (seconds)
REMOTE_STALE_AFTER = 3600.0


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # the command name may contain spaces and parentheses: fields start after the last ')'
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def process_owner(pid: int | None = None) -> str:
    """This process's identity in job records: host, pid and start time."""
    pid = os.getpid() if pid is None else pid
    return f"{_host()}:{pid}:{_start_time(pid) or ''}"


def owner_alive(owner: str | None, updated_at: float, now: float | None = None) -> bool:
    """Whether the process that owns a job may still be working on it."""
    if not owner:
        return False  # written before owners were recorded: nobody can still be working on it
    host, pid, started = (owner.rsplit(":", 2) + ["", ""])[:3]
    if host != _host():
        return (now or time.time()) - updated_at < REMOTE_STALE_AFTER
    if not pid.isdigit():
        return False
    if started:
        return _start_time(int(pid)) == started
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Job:
    """One file's way through ingestion."""

    id: int
    file_name: str
    source: str
    collection: str
    actor: str
    status: str
    doc_id: str | None
    chunks: int
    error: str | None
    created_at: float
    updated_at: float
    owner: str | None = None
    pid: int | None = None

    @property
    def active(self) -> bool:
        """Not finished yet: queued, parsing or embedding."""
        return self.status in ACTIVE_STATES


_JOB_COLUMNS = ", ".join(f.name for f in fields(Job))


class AppStore:
    """Job records and other app state; one SQLite file, safe across threads and processes."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._migrate()
        self._lock = threading.Lock()
        self._owner = process_owner()

    def _migrate(self) -> None:
        """Add the columns newer versions need to a database an older version created."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(jobs)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                try:
                    self._conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as e:  # another process added it first
                    if "duplicate column" not in str(e):
                        raise

    def add_job(self, file_name: str, source: str, collection: str, actor: str) -> int:
        """Record a queued file owned by this process and return its job id."""
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO jobs (file_name, source, collection, actor, status, created_at, updated_at, owner, pid)"
                " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (file_name, source, collection, actor, now, now, self._owner, os.getpid()),
            )
            return int(cur.lastrowid)

    def update_job(self, job_id: int, status: str, **fields) -> None:
        """Move a job to a new state, with optional doc_id, chunks or error."""
        if status not in JOB_STATES:
            raise ValueError(f"unknown job state {status}")
        allowed = {k: v for k, v in fields.items() if k in ("doc_id", "chunks", "error")}
        sets = ", ".join(f"{k} = ?" for k in allowed)
        sql = f"UPDATE jobs SET status = ?, updated_at = ?{', ' + sets if sets else ''} WHERE id = ?"
        with self._lock:
            self._conn.execute(sql, (status, time.time(), *allowed.values(), job_id))

    def jobs(self, status: str | None = None, limit: int = 200) -> list[Job]:
        """Most recent jobs first, optionally only one state."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs" + (" WHERE status = ?" if status else "") + " ORDER BY id DESC LIMIT ?"
        args = (status, limit) if status else (limit,)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Job(*row) for row in rows]

    def abandoned_jobs(self) -> list[Job]:
        """Unfinished jobs whose owning process is gone (killed, crashed, machine restarted), oldest first."""
        marks = ", ".join("?" for _ in ACTIVE_STATES)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE status IN ({marks}) ORDER BY id", ACTIVE_STATES
            ).fetchall()
        now = time.time()
        jobs = [Job(*row) for row in rows]
        return [job for job in jobs if not owner_alive(job.owner, job.updated_at, now)]

    def is_being_ingested(self, collection: str, doc_id: str) -> bool:
        """Whether a live process is ingesting this document right now."""
        marks = ", ".join("?" for _ in ACTIVE_STATES)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT owner, updated_at FROM jobs WHERE status IN ({marks}) AND collection = ? AND doc_id = ?",
                (*ACTIVE_STATES, collection, doc_id),
            ).fetchall()
        return any(owner_alive(owner, updated_at) for owner, updated_at in rows)

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
