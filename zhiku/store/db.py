"""Connecting to the app store (SQLite under the data dir, or PostgreSQL by URL) and migrating it."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from zhiku.core.errors import StoreUnavailable

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# serialises concurrent first starts on PostgreSQL (SQLite serialises them with BEGIN IMMEDIATE)
_MIGRATION_LOCK = 0x7A68696B75  # "zhiku"


def describe(url: str) -> str:
    """The database named for a message, without a password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as given
        return url


def create_engine(url: str) -> Engine:
    """An engine for the store; SQLite gets WAL, foreign keys and write transactions that lock at BEGIN."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as e:
        raise StoreUnavailable(
            f"ZHIKU_DATABASE_URL={url!r} is not a database URL: use e.g. "
            "postgresql+psycopg://user:password@host/zhiku, or unset it for SQLite under the data dir"
        ) from e
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # let the begin hook below issue BEGIN itself
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:
            # a writer takes the lock at BEGIN, so read-then-write transactions (job claims) never
            # fail half-way with "database is locked"; read-only work asks for a deferred BEGIN
            mode = "DEFERRED" if conn.get_execution_options().get("readonly") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    raise StoreUnavailable(
        f"unsupported database {parsed.get_backend_name()!r} in ZHIKU_DATABASE_URL: use SQLite or PostgreSQL"
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is current)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_engine(url: str) -> Engine:
    """Connect and migrate, or fail with one message that says how to recover."""
    engine = create_engine(url)
    try:
        migrate(engine)
    except OperationalError as e:
        engine.dispose()
        raise StoreUnavailable(
            f"cannot open the app database {describe(url)} ({_reason(e)}): check that it is reachable and "
            "that zhiku may write it"
        ) from e
    except DBAPIError as e:
        engine.dispose()
        raise StoreUnavailable(
            f"the app database {describe(url)} is damaged ({_reason(e)}): restore it from a backup, or move "
            "it aside and run `zhiku recover` to rebuild the catalogue from the stored originals"
        ) from e
    return engine


def _reason(error: DBAPIError) -> str:
    return str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
