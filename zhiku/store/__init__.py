"""The app store: collections, documents, jobs, index generations, accounts and conversations in SQLite or PostgreSQL.

The catalogue is the source of truth for what zhiku holds; the index is derived data rebuilt from the
stored originals. Every method is one transaction.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, fields
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from zhiku.core.errors import NotFound, ZhikuError
from zhiku.store import schema as t
from zhiku.store.accounts import Account, AccountStore, AuditEntry, CollectionAccess
from zhiku.store.conversations import Conversation, ConversationsMixin, Message
from zhiku.store.db import open_engine
from zhiku.store.owners import owner_dead, process_owner

log = logging.getLogger(__name__)

__all__ = ["Store", "Collection", "Document", "Job", "Generation", "Account", "AuditEntry", "CollectionAccess",
           "Conversation", "Message", "process_owner", "new_id"]

ACTIVE_JOB_STATES = ("queued", "running")
# the stages a file passes through, as users see them
FILE_STAGES = ("queued", "parsing", "embedding", "cleanup", "indexed", "unchanged", "failed")


def new_id() -> str:
    """A generated id for documents, stored originals and batches."""
    return uuid.uuid4().hex


def _row(cls, row) -> object:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in row._mapping.items() if k in names})


@dataclass
class Collection:
    """A named set of documents (access is granted per collection)."""

    id: int
    name: str
    created_at: float
    created_by: str


@dataclass
class Document:
    """A catalogue row: one logical path in one collection."""

    id: str
    collection: str
    path: str
    file_name: str
    status: str
    blob: str | None
    content_hash: str | None
    size: int
    pages: int | None
    chunks: int
    file_type: str
    ingested_at: float | None
    ingested_by: str | None
    error: str | None
    created_at: float
    updated_at: float


@dataclass
class Job:
    """A unit of work for the job worker, with its progress and outcome."""

    id: int
    kind: str
    state: str
    stage: str
    batch: str
    collection: str | None
    path: str | None
    document_id: str | None
    blob: str | None
    old_blob: str | None
    content_hash: str | None
    size: int | None
    source: str | None
    actor: str
    result: str | None
    chunks: int
    done: int
    total: int
    error: str | None
    owner: str | None
    lease_until: float | None
    attempts: int
    generation: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    dismissed_at: float | None = None
    force: bool | None = None

    @property
    def finished(self) -> bool:
        """Done or failed."""
        return self.state in ("done", "failed")


@dataclass
class Generation:
    """One build of the index: an embedded shard directory or a Qdrant collection."""

    id: int
    name: str
    embed_model: str
    dim: int
    state: str
    created_at: float
    activated_at: float | None


_DOC_COLUMNS = [c for c in t.documents.c if c.name != "collection_id"] + [t.collections.c.name.label("collection")]
_DOC_FROM = t.documents.join(t.collections, t.documents.c.collection_id == t.collections.c.id)
_JOB_COLUMNS = [c for c in t.jobs.c if c.name != "collection_id"] + [t.collections.c.name.label("collection")]
_JOB_FROM = t.jobs.outerjoin(t.collections, t.jobs.c.collection_id == t.collections.c.id)


class Store(AccountStore, ConversationsMixin):
    """The app's relational state behind small, transactional methods."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to the database at url and bring its schema up to date."""
        return cls(open_engine(url))

    @property
    def dialect(self) -> str:
        """sqlite or postgresql."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    def _read(self):
        return self.engine.connect().execution_options(readonly=True)

    # ----------------------------------------------------------- collections
    def collection(self, name: str) -> Collection | None:
        """The collection with this name, if any."""
        with self._read() as conn, conn.begin():
            row = conn.execute(sa.select(t.collections).where(t.collections.c.name == name)).first()
        return _row(Collection, row) if row else None

    def collections(self) -> list[Collection]:
        """Every collection, by name."""
        with self._read() as conn, conn.begin():
            rows = conn.execute(sa.select(t.collections).order_by(t.collections.c.name)).all()
        return [_row(Collection, r) for r in rows]

    def create_collection(self, name: str, actor: str) -> Collection:
        """Create a collection (or return the existing one of that name)."""
        with self.engine.begin() as conn:
            return self._ensure_collection(conn, name, actor)

    def _ensure_collection(self, conn: Connection, name: str, actor: str) -> Collection:
        row = conn.execute(sa.select(t.collections).where(t.collections.c.name == name)).first()
        if row is None:
            conn.execute(sa.insert(t.collections).values(name=name, created_at=time.time(), created_by=actor))
            row = conn.execute(sa.select(t.collections).where(t.collections.c.name == name)).first()
        return _row(Collection, row)

    # ------------------------------------------------------------- documents
    def document(self, doc_id: str) -> Document | None:
        """A document by id."""
        with self._read() as conn, conn.begin():
            row = conn.execute(sa.select(*_DOC_COLUMNS).select_from(_DOC_FROM).where(t.documents.c.id == doc_id)).first()
        return _row(Document, row) if row else None

    def documents(
        self,
        collections: Iterable[str] | None = None,
        *,
        statuses: Iterable[str] | None = ("indexed",),
        match: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Document]:
        """Documents by collection and path, optionally filtered by status and a path or id match."""
        query = sa.select(*_DOC_COLUMNS).select_from(_DOC_FROM)
        if collections is not None:
            query = query.where(t.collections.c.name.in_(list(collections)))
        if statuses is not None:
            query = query.where(t.documents.c.status.in_(list(statuses)))
        if match is not None:
            query = query.where(sa.or_(t.documents.c.id == match, t.documents.c.path == match,
                                       t.documents.c.file_name == match))
        query = query.order_by(t.collections.c.name, t.documents.c.path).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn, conn.begin():
            return [_row(Document, r) for r in conn.execute(query).all()]

    def stats(self, collections: Iterable[str] | None = None) -> tuple[int, int, dict[str, int]]:
        """(indexed documents, their chunks, documents per collection) counted in the catalogue."""
        query = (
            sa.select(t.collections.c.name, sa.func.count(), sa.func.coalesce(sa.func.sum(t.documents.c.chunks), 0))
            .select_from(_DOC_FROM).where(t.documents.c.status == "indexed").group_by(t.collections.c.name)
        )
        if collections is not None:
            query = query.where(t.collections.c.name.in_(list(collections)))
        with self._read() as conn, conn.begin():
            rows = conn.execute(query).all()
        per = {name: int(n) for name, n, _ in rows}
        return sum(per.values()), int(sum(c for _, _, c in rows)), per

    def blobs_in_use(self) -> set[str]:
        """Stored originals the catalogue or an unfinished job still refers to."""
        with self._read() as conn, conn.begin():
            docs = conn.execute(sa.select(t.documents.c.blob).where(t.documents.c.blob.is_not(None))).scalars().all()
            jobs = conn.execute(
                sa.select(t.jobs.c.blob, t.jobs.c.old_blob).where(t.jobs.c.state.in_(ACTIVE_JOB_STATES))
            ).all()
        return set(docs) | {b for row in jobs for b in row if b}

    # ------------------------------------------------------------ enqueueing
    def enqueue_ingest(
        self, batch: str, collection: str, path: str, *, source: str, actor: str,
        blob: str, content_hash: str, size: int, force: bool = False,
    ) -> Job:
        """Queue a stored original for indexing at (collection, path); creates the document row if new."""
        now = time.time()
        with self.engine.begin() as conn:
            coll = self._ensure_collection(conn, collection, actor)
            doc = conn.execute(sa.select(t.documents.c.id, t.documents.c.status).where(
                t.documents.c.collection_id == coll.id, t.documents.c.path == path)).first()
            if doc is None:
                doc_id = new_id()
                conn.execute(sa.insert(t.documents).values(
                    id=doc_id, collection_id=coll.id, path=path, file_name=path.rsplit("/", 1)[-1],
                    status="queued", size=size, chunks=0, file_type=_suffix(path), created_at=now, updated_at=now))
            else:
                doc_id = doc.id
            job_id = conn.execute(sa.insert(t.jobs).values(
                kind="ingest", state="queued", stage="queued", batch=batch, collection_id=coll.id, path=path,
                document_id=doc_id, blob=blob, content_hash=content_hash, size=size, source=source, actor=actor,
                force=force or None, chunks=0, done=0, total=0, attempts=0, created_at=now, updated_at=now,
            ).returning(t.jobs.c.id)).scalar_one()
        return self.job(job_id)

    def record_refusal(self, batch: str, collection: str, path: str, *, source: str, actor: str, error: str) -> Job:
        """A file refused before anything was stored: a finished, failed job that says why."""
        now = time.time()
        with self.engine.begin() as conn:
            coll = conn.execute(sa.select(t.collections.c.id).where(t.collections.c.name == collection)).scalar()
            job_id = conn.execute(sa.insert(t.jobs).values(
                kind="ingest", state="failed", stage="failed", batch=batch, collection_id=coll, path=path,
                source=source, actor=actor, result="failed", error=error, chunks=0, done=0, total=0, attempts=0,
                created_at=now, finished_at=now, updated_at=now,
            ).returning(t.jobs.c.id)).scalar_one()
        return self.job(job_id)

    def enqueue_delete(self, doc_id: str, actor: str, batch: str) -> Job:
        """Mark a document deleted (it leaves listings at once) and queue the removal of its chunks and original."""
        now = time.time()
        with self.engine.begin() as conn:
            doc = conn.execute(sa.select(t.documents).where(t.documents.c.id == doc_id)).first()
            if doc is None:
                raise NotFound(f"no document {doc_id}: see `zhiku stats` or the Documents page")
            conn.execute(sa.update(t.documents).where(t.documents.c.id == doc_id).values(
                status="deleting", updated_at=now))
            job_id = conn.execute(sa.insert(t.jobs).values(
                kind="delete", state="queued", stage="deleting", batch=batch, collection_id=doc.collection_id,
                path=doc.path, document_id=doc_id, blob=doc.blob, actor=actor, chunks=doc.chunks, done=0, total=0,
                attempts=0, created_at=now, updated_at=now,
            ).returning(t.jobs.c.id)).scalar_one()
        return self.job(job_id)

    def enqueue_reindex(self, actor: str, batch: str) -> Job:
        """Queue a rebuild of the whole index into a new generation (one at a time)."""
        now = time.time()
        with self.engine.begin() as conn:
            pending = conn.execute(sa.select(t.jobs.c.id).where(
                t.jobs.c.kind == "reindex", t.jobs.c.state.in_(ACTIVE_JOB_STATES))).scalar()
            if pending is not None:
                return self._job(conn, pending)
            job_id = conn.execute(sa.insert(t.jobs).values(
                kind="reindex", state="queued", stage="queued", batch=batch, actor=actor, chunks=0, done=0,
                total=0, attempts=0, created_at=now, updated_at=now,
            ).returning(t.jobs.c.id)).scalar_one()
            return self._job(conn, job_id)

    # -------------------------------------------------------------- claiming
    def claim(self, owner: str, lease: float, limit: int = 64) -> list[Job]:
        """Claim queued jobs for this worker: oldest first, one per (collection, path), a re-index alone.

        A job is not claimed while an earlier job for the same document is queued or running, so two
        uploads of one file are processed in order; a re-index runs only when nothing else does, and
        nothing else starts while it runs.
        """
        j = t.jobs
        other = j.alias("other")
        running = sa.select(other.c.id).where(other.c.state == "running")
        same_key_before = sa.select(other.c.id).where(
            other.c.state.in_(ACTIVE_JOB_STATES), other.c.collection_id == j.c.collection_id,
            other.c.path == j.c.path, other.c.id < j.c.id)
        same_key_running = sa.select(other.c.id).where(
            other.c.state == "running", other.c.collection_id == j.c.collection_id, other.c.path == j.c.path)
        reindex_running = sa.select(other.c.id).where(other.c.state == "running", other.c.kind == "reindex")
        # jobs queued after a re-index wait for it, so a stream of uploads cannot starve it
        reindex_before = sa.select(other.c.id).where(other.c.state == "queued", other.c.kind == "reindex",
                                                     other.c.id < j.c.id)
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(reindex_running.limit(1)).first() is not None:
                return []
            first = conn.execute(sa.select(j.c.id, j.c.kind).where(j.c.state == "queued").order_by(j.c.id).limit(1)).first()
            if first is None:
                return []
            if first.kind == "reindex":
                if conn.execute(running.limit(1)).first() is not None:
                    return []
                candidates = sa.select(j.c.id).where(j.c.id == first.id)
            else:
                candidates = (
                    sa.select(j.c.id).where(
                        j.c.state == "queued", j.c.kind != "reindex",
                        ~sa.exists(same_key_before), ~sa.exists(same_key_running), ~sa.exists(reindex_before))
                    .order_by(j.c.id).limit(limit)
                )
            if self.dialect == "postgresql":
                candidates = candidates.with_for_update(skip_locked=True)
            ids = conn.execute(candidates).scalars().all()
            if not ids:
                return []
            conn.execute(sa.update(j).where(j.c.id.in_(ids), j.c.state == "queued").values(
                state="running", owner=owner, lease_until=now + lease, started_at=now, updated_at=now,
                attempts=j.c.attempts + 1))
            return [self._job(conn, i) for i in ids]

    def heartbeat(self, owner: str, lease: float) -> None:
        """Extend the leases of every job this worker holds."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.state == "running", t.jobs.c.owner == owner)
                         .values(lease_until=now + lease))

    def take_over_abandoned(self, owner: str, lease: float) -> list[Job]:
        """Running jobs whose worker is gone (lease expired, or a dead process on this host), now ours."""
        now = time.time()
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(t.jobs.c.id, t.jobs.c.owner, t.jobs.c.lease_until).where(
                t.jobs.c.state == "running", t.jobs.c.owner != owner)).all()
            abandoned = [r.id for r in rows if (r.lease_until or 0) < now or owner_dead(r.owner)]
            taken = []
            for job_id, old in ((r.id, r.owner) for r in rows if r.id in abandoned):
                done = conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id, t.jobs.c.owner == old,
                                                            t.jobs.c.state == "running")
                                    .values(owner=owner, lease_until=now + lease, updated_at=now))
                if done.rowcount:
                    taken.append(self._job(conn, job_id))
        return taken

    # ------------------------------------------------------------- progress
    def update_job(self, job_id: int, **values) -> None:
        """Record a job's progress (stage, done, total, chunks, error, ...)."""
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(**values))

    def finish_job(self, job_id: int, state: str, *, result: str | None = None, error: str | None = None,
                   stage: str | None = None, **values) -> None:
        """Close a job as done or failed."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(
                state=state, stage=stage or ("failed" if state == "failed" else result or "done"), result=result,
                error=error, finished_at=now, updated_at=now, lease_until=None, **values))

    def requeue(self, job_id: int, error: str) -> None:
        """Put an interrupted job back in the queue (its earlier attempt was rolled back)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job_id).values(
                state="queued", stage="queued", owner=None, lease_until=None, done=0, error=error,
                updated_at=time.time()))

    def job(self, job_id: int) -> Job:
        """A job by id."""
        with self._read() as conn, conn.begin():
            return self._job(conn, job_id)

    def _job(self, conn: Connection, job_id: int) -> Job:
        row = conn.execute(sa.select(*_JOB_COLUMNS).select_from(_JOB_FROM).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return _row(Job, row)

    def jobs(self, *, batch: str | None = None, ids: Iterable[int] | None = None, states: Iterable[str] | None = None,
             kinds: Iterable[str] | None = None, actor: str | None = None, limit: int = 200) -> list[Job]:
        """Jobs, newest first, filtered by batch, ids, states, kinds or actor."""
        query = sa.select(*_JOB_COLUMNS).select_from(_JOB_FROM)
        if batch is not None:
            query = query.where(t.jobs.c.batch == batch)
        if ids is not None:
            query = query.where(t.jobs.c.id.in_(list(ids)))
        if states is not None:
            query = query.where(t.jobs.c.state.in_(list(states)))
        if kinds is not None:
            query = query.where(t.jobs.c.kind.in_(list(kinds)))
        if actor is not None:
            query = query.where(t.jobs.c.actor == actor)
        with self._read() as conn, conn.begin():
            return [_row(Job, r) for r in conn.execute(query.order_by(t.jobs.c.id.desc()).limit(limit)).all()]

    # ---------------------------------------------------- document outcomes
    def publish_version(self, job: Job, *, chunks: int, pages: int | None, actor: str) -> None:
        """Make the job's original the document's current version; the job moves to cleanup of the old one."""
        now = time.time()
        with self.engine.begin() as conn:
            old = conn.execute(sa.select(t.documents.c.blob).where(t.documents.c.id == job.document_id)).scalar()
            conn.execute(sa.update(t.documents).where(t.documents.c.id == job.document_id).values(
                status="indexed", blob=job.blob, content_hash=job.content_hash, size=job.size, pages=pages,
                chunks=chunks, file_type=_suffix(job.path or ""), ingested_at=now, ingested_by=actor, error=None,
                updated_at=now))
            conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job.id).values(
                stage="cleanup", old_blob=old, chunks=chunks, done=chunks, total=chunks, updated_at=now))

    def record_document_failure(self, job: Job, error: str) -> None:
        """A new document that could not be indexed stays listed as failed; an indexed one keeps its version."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.documents).where(
                t.documents.c.id == job.document_id, t.documents.c.status.in_(("queued", "failed"))
            ).values(status="failed", error=error, updated_at=now))
            conn.execute(sa.update(t.documents).where(
                t.documents.c.id == job.document_id, t.documents.c.status == "indexed"
            ).values(error=f"the latest upload was refused: {error}", updated_at=now))

    def remove_document(self, doc_id: str) -> None:
        """Drop a deleted document's row (its chunks and original are already gone)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.documents).where(t.documents.c.id == doc_id, t.documents.c.status == "deleting"))

    def forget_failed(self, doc_id: str) -> None:
        """Drop a document row that never held an indexed version (nothing to clean up in the index)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.documents).where(t.documents.c.id == doc_id,
                                                      t.documents.c.status.in_(("failed", "queued"))))

    # ----------------------------------------------------------- generations
    def active_generation(self) -> Generation | None:
        """The generation searches read from."""
        with self._read() as conn, conn.begin():
            row = conn.execute(sa.select(t.generations).where(t.generations.c.state == "active")).first()
        return _row(Generation, row) if row else None

    def generations(self) -> list[Generation]:
        """Every generation, oldest first."""
        with self._read() as conn, conn.begin():
            return [_row(Generation, r) for r in conn.execute(sa.select(t.generations).order_by(t.generations.c.id))]

    def new_generation(self, prefix: str, embed_model: str, dim: int, *, active: bool = False) -> Generation:
        """Register a generation being built (or, for the very first index, an active one)."""
        now = time.time()
        with self.engine.begin() as conn:
            if active and conn.execute(sa.select(t.generations.c.id).where(t.generations.c.state == "active")).first():
                raise ZhikuError("an active index generation already exists")
            gen_id = conn.execute(sa.insert(t.generations).values(
                name=f"{prefix}-{new_id()[:8]}", embed_model=embed_model, dim=dim,
                state="active" if active else "building", created_at=now, activated_at=now if active else None,
            ).returning(t.generations.c.id)).scalar_one()
            row = conn.execute(sa.select(t.generations).where(t.generations.c.id == gen_id)).first()
        return _row(Generation, row)

    def activate_generation(self, gen_id: int, counts: dict[str, tuple[int, int | None]], failed: dict[str, str]) -> None:
        """Switch searches to a finished generation in one transaction, with each document's new counts."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.generations).where(t.generations.c.state == "active").values(state="retired"))
            conn.execute(sa.update(t.generations).where(t.generations.c.id == gen_id).values(
                state="active", activated_at=now))
            for doc_id, (chunks, pages) in counts.items():
                conn.execute(sa.update(t.documents).where(t.documents.c.id == doc_id).values(
                    chunks=chunks, pages=pages, error=None, updated_at=now))
            for doc_id, error in failed.items():
                conn.execute(sa.update(t.documents).where(t.documents.c.id == doc_id).values(
                    status="failed", chunks=0, error=f"re-index failed: {error}", updated_at=now))

    def set_generation_state(self, gen_id: int, state: str) -> None:
        """Mark a generation retired or failed (its storage is then removed)."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(t.generations).where(t.generations.c.id == gen_id, t.generations.c.state != "active")
                         .values(state=state))

    def drop_generation(self, gen_id: int) -> None:
        """Forget a generation whose storage is gone."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.generations).where(t.generations.c.id == gen_id, t.generations.c.state != "active"))


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower()[:16] if "." in name else ""
