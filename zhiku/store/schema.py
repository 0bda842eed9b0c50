"""The app store's tables (SQLAlchemy Core); Alembic migrations under migrations/ create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

collections = Table(
    "collections", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", Text, nullable=False),
)

# One row per (collection, logical path): the document's identity. Its current version is the stored
# original `blob`; the index holds that version's chunks, tagged with doc_id and version.
documents = Table(
    "documents", metadata,
    Column("id", String(32), primary_key=True),
    Column("collection_id", Integer, ForeignKey("collections.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    # queued (never indexed yet) | indexed | failed (never indexed; see error) | deleting
    Column("status", String(16), nullable=False),
    Column("blob", String(32)),
    Column("content_hash", String(64)),
    Column("size", BigInteger, nullable=False, default=0),
    Column("pages", Integer),
    Column("chunks", Integer, nullable=False, default=0),
    Column("file_type", String(16), nullable=False, default=""),
    Column("ingested_at", Float),
    Column("ingested_by", Text),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("collection_id", "path"),
    Index("ix_documents_status", "status"),
)

# Work for the job worker. kind: ingest | delete | reindex. state: queued | running | done | failed.
# stage is what users see per file: queued | parsing | embedding | indexed | unchanged | failed,
# plus cleanup (the new version is live, the old one is being removed) and deleting/building.
jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("batch", String(32), nullable=False),
    Column("collection_id", Integer, ForeignKey("collections.id")),
    Column("path", Text),
    Column("document_id", String(32)),
    Column("blob", String(32)),
    Column("old_blob", String(32)),
    Column("content_hash", String(64)),
    Column("size", BigInteger),
    Column("source", Text),
    Column("actor", Text, nullable=False),
    Column("result", String(16)),
    Column("chunks", Integer, nullable=False, default=0),
    Column("done", Integer, nullable=False, default=0),
    Column("total", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("owner", Text),
    Column("lease_until", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("generation", Integer),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("force", Boolean),  # index even if the content is unchanged (a collection's re-index; migration 0003)
    Column("dismissed_at", Float),  # the uploader dismissed this row from their upload list (migration 0003)
    Index("ix_jobs_state", "state", "id"),
    Index("ix_jobs_key", "collection_id", "path"),
    Index("ix_jobs_batch", "batch"),
)

# Index generations: the embedded shard directory or Qdrant collection each re-index builds. Exactly one
# is active; switching is one transaction here (and an alias swap on a Qdrant server).
generations = Table(
    "generations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("embed_model", Text, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # building | active | retired | failed
    Column("created_at", Float, nullable=False),
    Column("activated_at", Float),
)

# ------------------------------------------------------------------ accounts (migration 0002)
# Local accounts. password_hash is argon2 (None: the account signs in only through single sign-on).
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", Text),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("email", String(254), unique=True),  # matched against a single sign-on identity
    Column("created_at", Float, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

groups = Table(
    "groups", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

memberships = Table(
    "memberships", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
)

# What a group may do in a collection: access is read (search, answers, citations, previews, downloads)
# or write (upload, delete); they are granted separately.
grants = Table(
    "grants", metadata,
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("access", String(8), primary_key=True),
)

# Signed-in browsers: the cookie holds a random token, the store only its sha256, so a copy of the
# database lets nobody sign in.
sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("address", Text),
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_expires_at", "expires_at"),
)

# Every sign-in attempt, so failures slow down further attempts per user name and per address across
# processes and restarts.
login_attempts = Table(
    "login_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("address", String(64), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_login_attempts_name_at", "name", "at"),
    Index("ix_login_attempts_address_at", "address", "at"),
)

# Who did what: sign-ins, uploads, deletions, re-indexes, downloads, account and collection changes,
# and refused attempts.
audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", Text),
    Column("detail", Text),
    Column("address", Text),
    Index("ix_audit_at", "at"),
)


# ------------------------------------------------------------- conversations (migration 0003)
# A user's saved chats; collections is a JSON list the questions were limited to (NULL: all readable).
conversations = Table(
    "conversations", metadata,
    Column("id", String(32), primary_key=True),
    Column("user", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("collections", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_conversations_user_updated_at", "user", "updated_at"),
)

# One turn of a conversation. citations is a JSON list of Citation.to_dict(), stored with the answer so a
# reload shows it as it was; access to their collections is checked again whenever they are read.
messages = Table(
    "messages", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(32), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),  # user | assistant
    Column("content", Text, nullable=False),
    Column("citations", Text, nullable=False),
    Column("notice", Text),
    Column("mode", String(16)),  # ollama | extractive | refused | ...
    Column("query", Text),  # the search query the answer used (a rewritten follow-up)
    Column("created_at", Float, nullable=False),
    UniqueConstraint("conversation_id", "seq"),
)

# Thumbs up (+1) or down (-1) on an answer, with an optional comment; a second click replaces the first.
feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", Integer, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("user", Text, nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("message_id", "user"),
    Index("ix_feedback_updated_at", "updated_at"),
)
