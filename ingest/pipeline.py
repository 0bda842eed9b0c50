"""The ingestion service: enqueue files, deletions and re-indexes as jobs; list and count the catalogue."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from zhiku.core.errors import AccessDenied, FileRejected, NotFound, ZhikuError
from zhiku.ingest.files import Source, collect, logical_path, read_regular
from zhiku.ingest.generations import Generations
from zhiku.ingest.jobs import JobWorker
from zhiku.ingest.originals import Originals
from zhiku.ingest.parsers import check_supported
from zhiku.retrieval.index import IndexStats
from zhiku.retrieval.types import User
from zhiku.store import Document, Job, Store, new_id

log = logging.getLogger(__name__)

_COLLECTION = re.compile(r"^[\w\-]{1,64}$")


@dataclass
class FileResult:
    """What happened to one file."""

    path: str
    status: str  # added | updated | unchanged | failed
    chunks: int = 0
    error: str | None = None
    doc_id: str | None = None
    file_name: str = ""

    def to_dict(self) -> dict:
        """The CLI's JSON shape."""
        return {"path": self.path, "status": self.status, "chunks": self.chunks, "error": self.error,
                "doc_id": self.doc_id, "file_name": self.file_name}

    @classmethod
    def from_job(cls, job: Job) -> FileResult:
        """The result a finished ingest job stands for."""
        status = job.result if job.result in ("added", "updated", "unchanged") else "failed"
        name = (job.path or job.source or "").rsplit("/", 1)[-1]
        return cls(job.path or job.source or "", status, job.chunks if status != "failed" else 0,
                   job.error if status == "failed" else None,
                   job.document_id if status != "failed" else None, name)


@dataclass
class Progress:
    """A progress report: which file, which stage, how far."""

    file_name: str
    stage: str  # queued | parsing | embedding | indexed | unchanged | failed
    done: int = 0
    total: int = 0
    file_index: int = 0
    file_count: int = 1


ProgressFn = Callable[[Progress], None]


def check_collection(name: str) -> str:
    """Validate a collection name."""
    if not _COLLECTION.match(name or ""):
        raise ZhikuError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_' or '-' (Chinese is fine)"
        )
    return name


class Ingestor:
    """Puts work in the job queue and, for the CLI, runs the worker in-process until it is done."""

    def __init__(self, store: Store, generations: Generations, originals: Originals, worker: JobWorker, *,
                 max_bytes: int = 100 * 1024 * 1024):
        self.store = store
        self.generations = generations
        self.originals = originals
        self.worker = worker
        self.max_bytes = max_bytes

    # ---------------------------------------------------------------- enqueue
    def _admit(self, collection: str, user: User) -> None:
        check_collection(collection)
        if not user.is_admin and not user.can_write(collection):
            self.store.audit(user.name, "denied", collection, "upload")
            raise AccessDenied(f"{user.name} may not add documents to {collection!r}: ask an admin for write access")
        if self.store.collection(collection) is None and not user.is_admin:
            raise NotFound(f"there is no collection {collection!r}: ask an admin to create it")

    def _stage(self, batch: str, collection: str, path: str, source: str, user: User,
               read: Callable[[], bytes], force: bool = False) -> Job:
        """Store the original and queue it, or record why it was refused."""
        try:
            check_supported(path.rsplit("/", 1)[-1])
            data = read()
            if not data:
                raise FileRejected("empty file (0 bytes): upload the file again")
            blob = new_id()
            digest = self.originals.put(blob, data, {"collection": collection, "path": path, "actor": user.name})
        except FileRejected as e:
            self.store.audit(user.name, "upload", f"{collection}/{path}", f"refused: {e}")
            return self.store.record_refusal(batch, collection, path, source=source, actor=user.name, error=str(e))
        try:
            job = self.store.enqueue_ingest(batch, collection, path, source=source, actor=user.name, blob=blob,
                                            content_hash=digest, size=len(data), force=force)
        except BaseException:
            self.originals.remove(blob)
            raise
        self.store.audit(user.name, "upload", f"{collection}/{path}", f"{len(data)} bytes, sha256 {digest[:16]}")
        return job

    def enqueue_paths(self, paths: Iterable[str | Path], collection: str, user: User,
                      batch: str | None = None) -> tuple[str, list[Job]]:
        """Queue files and folders (recursively); refused files get a failed job at once."""
        self._admit(collection, user)
        batch = batch or new_id()
        jobs = []
        for source in collect(paths):
            if source.refusal:
                jobs.append(self.store.record_refusal(batch, collection, source.path, source=str(source.location),
                                                      actor=user.name, error=source.refusal))
                continue
            jobs.append(self._stage(batch, collection, source.path, str(source.location), user,
                                    lambda s=source: read_regular(s.location, self.max_bytes)))
        return batch, jobs

    def enqueue_upload(self, file_name: str, data: bytes | None, collection: str, user: User,
                       batch: str | None = None, size: int | None = None) -> Job:
        """Queue one uploaded file (None as data when it is known to be too large)."""
        self._admit(collection, user)
        batch = batch or new_id()
        try:
            path = logical_path(file_name.replace("\\", "/").split("/")[-1])  # a browser sends a name, not a path
        except FileRejected as e:
            return self.store.record_refusal(batch, collection, file_name[:200] or "?", source=file_name,
                                             actor=user.name, error=str(e))

        def read() -> bytes:
            length = len(data) if data is not None else size or 0
            if data is None or length > self.max_bytes:
                raise FileRejected(f"file too large ({length / 1e6:.1f} MB > {self.max_bytes / 1e6:.0f} MB): "
                                   "split it, or raise ZHIKU_MAX_FILE_MB")
            return data

        return self._stage(batch, collection, path, file_name, user, read)

    # ------------------------------------------------------------------- run
    def wait(self, jobs: list[Job], progress: ProgressFn | None = None) -> list[Job]:
        """Run the worker here (or wait for the one that claimed them) until the jobs finish."""
        ids = [j.id for j in jobs]
        position = {job_id: i for i, job_id in enumerate(ids)}
        pending = set(j.id for j in jobs if not j.finished)

        def on_stage(job: Job, stage: str, done: int, total: int) -> None:
            if progress is not None and job.id in position:
                name = (job.path or "").rsplit("/", 1)[-1]
                progress(Progress(name, stage, done, total, position[job.id], len(ids)))

        def finished() -> bool:
            if pending:
                for job in self.store.jobs(ids=list(pending), limit=len(pending)):
                    if job.finished:
                        pending.discard(job.id)
            return not pending

        self.worker.run_until(finished, on_stage)
        found = {j.id: j for j in self.store.jobs(ids=ids, limit=len(ids) or 1)}
        return [found[i] for i in ids]

    def ingest_paths(self, paths: Iterable[str | Path], collection: str, user: User,
                     progress: ProgressFn | None = None) -> list[FileResult]:
        """Ingest files and folders (recursively); every file gets a result, failures do not stop the rest."""
        _, jobs = self.enqueue_paths(paths, collection, user)
        return [FileResult.from_job(j) for j in self.wait(jobs, progress)]

    def ingest_bytes(self, data: bytes | None, file_name: str, collection: str, user: User,
                     progress: ProgressFn | None = None, *, size: int | None = None, **_) -> FileResult:
        """Index one file's bytes, or refuse it with a reason; never leaves part of it behind."""
        job = self.enqueue_upload(file_name, data, collection, user, size=size)
        return FileResult.from_job(self.wait([job], progress)[0])

    def ingest_many(self, files: list[tuple[str, bytes]], collection: str, user: User,
                    progress: ProgressFn | None = None) -> list[FileResult]:
        """Index several uploaded files (name, bytes) in one run; results in input order."""
        batch = new_id()
        jobs = [self.enqueue_upload(name, data, collection, user, batch) for name, data in files]
        return [FileResult.from_job(j) for j in self.wait(jobs, progress)]

    # ------------------------------------------------------------- documents
    def documents(self, user: User, collections: list[str] | None = None, **filters) -> list[Document]:
        """Catalogue rows of the collections the user may read."""
        readable = None if user.readable is None else set(user.readable)
        if collections is not None:
            readable = set(collections) if readable is None else readable & set(collections)
        return self.store.documents(None if readable is None else sorted(readable), **filters)

    def stats(self, user: User) -> IndexStats:
        """Documents, chunks and per-collection document counts the user can see, from the catalogue."""
        readable = None if user.readable is None else sorted(user.readable)
        documents, chunks, per = self.store.stats(readable)
        return IndexStats(documents, chunks, per)

    def original_path(self, doc: Document) -> Path:
        """Where a document's stored original lives (no access check: see open_original)."""
        return self.originals.path(doc.blob)

    def readable_document(self, doc_id: str, user: User) -> Document:
        """A document the user may read, for a citation's page preview or download; otherwise NotFound.

        Args:
            doc_id: the document's id (from a citation or the documents list).
            user: the acting user.

        Returns:
            The catalogue row of its current, indexed version.
        """
        doc = self.store.document(doc_id) if doc_id else None
        # the same answer whether the document is missing or in a collection the user may not read: an
        # employee learns nothing about other collections by guessing ids
        if doc is None or doc.status != "indexed" or not doc.blob or not user.can_read(doc.collection):
            raise NotFound(f"no document {doc_id!r} that {user.name} may read: see the Documents list")
        return doc

    def open_original(self, doc_id: str, user: User) -> tuple[Document, Path]:
        """The stored original of a document the user may read (download, page preview).

        Args:
            doc_id: the document's id.
            user: the acting user.

        Returns:
            The catalogue row and the path of its stored original.
        """
        doc = self.readable_document(doc_id, user)
        path = self.originals.path(doc.blob)
        if not path.is_file():
            raise NotFound(f"the stored original of {doc.file_name!r} is missing: upload the file again")
        return doc, path

    def preview(self, doc_id: str, page: int, user: User, highlight: str | None = None, *,
                width: int = 900) -> bytes | None:
        """A PNG of a page of a PDF the user may read, the cited passage highlighted; None for other formats.

        Args:
            doc_id: the document's id (from a citation).
            page: the 1-based page number.
            user: the acting user (checked as for a download).
            highlight: the passage to mark on the page, if the text layer holds it.
            width: the image width in pixels.

        Returns:
            The PNG's bytes, or None when the document is not a PDF (show the passage's section instead).
        """
        doc, path = self.open_original(doc_id, user)
        if doc.file_type != "pdf":
            return None
        from zhiku.ingest.preview import page_png  # pypdfium2 and Pillow load only when a page is shown

        return page_png(path, page, highlight, width)

    def delete(self, key: str, user: User, collection: str | None = None, *, wait: bool = True) -> list[Document]:
        """Delete documents by id, logical path or file name: marked deleted at once, then cleaned up."""
        docs = self.documents(user, [collection] if collection else None, statuses=("indexed", "failed", "queued"),
                              match=key)
        if not docs:
            raise NotFound(f"no document with id or path {key!r}: see `zhiku stats` or the Documents page")
        if len({(d.collection, d.path) for d in docs}) > 1 and not any(d.id == key for d in docs):
            listed = ", ".join(f"{d.collection}/{d.path}" for d in docs[:5])
            raise ZhikuError(f"{key!r} names {len(docs)} documents ({listed}): give the collection "
                             "(--collection) or the full path")
        for doc in docs:
            if not user.is_admin and not user.can_write(doc.collection):
                self.store.audit(user.name, "denied", f"{doc.collection}/{doc.path}", "delete")
                raise AccessDenied(f"{user.name} may not delete documents in {doc.collection!r}: ask an admin")
        batch = new_id()
        jobs = []
        for doc in docs:
            jobs.append(self.store.enqueue_delete(doc.id, user.name, batch))
            self.store.audit(user.name, "delete", f"{doc.collection}/{doc.path}", f"{doc.chunks} chunks")
        if wait:
            self.wait(jobs)
        return docs

    def reindex_collection(self, collection: str, user: User, progress: ProgressFn | None = None, *,
                           wait: bool = True) -> list[Job]:
        """Re-parse and re-embed every document of one collection from its stored original.

        Each document switches to its new version on its own, as an update does: questions are answered
        from the old version until then, and a document that fails keeps its old version. (A change of
        embedding model needs the whole index rebuilt: reindex.)

        Args:
            collection: the collection's name.
            user: the acting user (admins only).
            progress: called as documents move through the stages.
            wait: run the jobs here until they finish (False: queue them for the app's worker).
        Returns:
            The jobs, one per document.
        """
        if not user.is_admin:
            self.store.audit(user.name, "denied", collection, "reindex")
            raise AccessDenied(f"{user.name} may not re-index: ask an admin")
        if self.store.collection(collection) is None:
            raise NotFound(f"no collection {collection!r}: see `zhiku collection list`")
        batch = new_id()
        jobs = [self._stage(batch, collection, doc.path, f"re-index of {collection}", user,
                            lambda d=doc: self.originals.read(d.blob, d.content_hash), force=True)
                for doc in self.store.documents([collection])]
        self.store.audit(user.name, "reindex", collection, f"{len(jobs)} documents, batch {batch}")
        return self.wait(jobs, progress) if wait else jobs

    def reindex(self, user: User, progress: ProgressFn | None = None, *, wait: bool = True) -> Job:
        """Rebuild the index from the stored originals into a new generation; the old one serves meanwhile."""
        if not user.is_admin:
            self.store.audit(user.name, "denied", None, "reindex")
            raise AccessDenied(f"{user.name} may not re-index: ask an admin")
        job = self.store.enqueue_reindex(user.name, new_id())
        self.store.audit(user.name, "reindex", None, f"job {job.id}")
        if not wait:
            return job

        def report(p: Progress) -> None:
            if progress is not None:
                progress(Progress("re-index", "embedding", p.done, p.total))

        return self.wait([job], report if progress else None)[0]


def restore_catalogue(ingestor: Ingestor, user: User) -> list[FileResult]:
    """Rebuild a lost catalogue from the stored originals' manifests and index them again.

    The newest stored version of each (collection, path) becomes the document; older versions are removed.
    """
    if ingestor.store.documents(statuses=None, limit=1):
        raise ZhikuError("the catalogue is not empty: `zhiku recover` only rebuilds a lost or damaged one")
    newest: dict[tuple[str, str], tuple[float, str, dict]] = {}
    for blob, manifest in ingestor.originals.manifests():
        key = (manifest.get("collection") or "default", manifest.get("path") or blob)
        stamp = ingestor.originals.path(blob).stat().st_mtime
        if key not in newest or stamp > newest[key][0]:
            if key in newest:
                ingestor.originals.remove(newest[key][1])
            newest[key] = (stamp, blob, manifest)
        else:
            ingestor.originals.remove(blob)
    batch = new_id()
    jobs = [
        ingestor.store.enqueue_ingest(batch, collection, path, source=f"recovered:{blob}",
                                      actor=manifest.get("actor") or user.name, blob=blob,
                                      content_hash=manifest.get("content_hash") or "", size=manifest.get("size") or 0)
        for (collection, path), (_, blob, manifest) in sorted(newest.items())
    ]
    return [FileResult.from_job(j) for j in ingestor.wait(jobs)]
