"""App state behind one small storage layer (SQLite under the data dir today)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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

JOB_STATES = ("queued", "parsing", "embedding", "indexed", "unchanged", "failed")


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


class AppStore:
    """Job records and other app state; one SQLite file, safe across threads and processes."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def add_job(self, file_name: str, source: str, collection: str, actor: str) -> int:
        """Record a queued file and return its job id."""
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO jobs (file_name, source, collection, actor, status, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (file_name, source, collection, actor, now, now),
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
        sql = "SELECT * FROM jobs" + (" WHERE status = ?" if status else "") + " ORDER BY id DESC LIMIT ?"
        args = (status, limit) if status else (limit,)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [Job(*row) for row in rows]

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
