"""Ingestion: validate → parse → chunk → embed → upsert, one file fully indexed or refused."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

from ingest.chunking import Chunker
from ingest.parsers import check_supported, parse_bytes
from retrieval.embeddings import Embedder
from retrieval.index import Index, IndexStats, Scope
from retrieval.text import sparse_document
from retrieval.types import Chunk, User
from zhiku.errors import AccessDenied, FileRejected, NotFound, ZhikuError
from zhiku.store import AppStore

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


@dataclass
class Document:
    """A document as listed to users and admins."""

    doc_id: str
    file_name: str
    collection: str
    chunks: int
    ingested_at: str
    file_type: str


def safe_file_name(name: str) -> str:
    """A file name that is safe to store and show: no directories, control characters or excess length."""
    name = unicodedata.normalize("NFC", name.replace("\\", "/").split("/")[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name:
        raise FileRejected("invalid file name: give the file a name with letters or digits")
    stem, suffix = os.path.splitext(name)
    if len(name.encode("utf-8")) > 200:
        stem = stem.encode("utf-8")[: 200 - len(suffix.encode("utf-8"))].decode("utf-8", "ignore")
        name = stem + suffix
    return name


def check_collection(name: str) -> str:
    """Validate a collection name."""
    if not _COLLECTION.match(name or ""):
        raise ZhikuError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_' or '-' (Chinese is fine)"
        )
    return name


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files named directly, plus every file below named folders (hidden files skipped)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


class Ingestor:
    """Indexes files for a user; the index is the source of truth for what is indexed."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        store: AppStore,
        files_dir: Path,
        *,
        chunker: Chunker | None = None,
        max_bytes: int = 100 * 1024 * 1024,
        batch_size: int = 32,
    ):
        self.index = index
        self.embedder = embedder
        self.store = store
        self.files_dir = files_dir
        self.chunker = chunker or Chunker()
        self.max_bytes = max_bytes
        self.batch_size = batch_size
        index.ensure(embedder.dim, embedder.name)

    # ----------------------------------------------------------------- ingest
    def ingest_paths(
        self, paths: Iterable[str | Path], collection: str, user: User, progress: ProgressFn | None = None
    ) -> list[FileResult]:
        """Ingest files and folders (recursively); every file gets a result, failures do not stop the rest."""
        files = expand_paths(paths)
        results = []
        for i, path in enumerate(files):
            try:
                data = path.read_bytes() if path.stat().st_size <= self.max_bytes else None
            except OSError as e:
                results.append(FileResult(str(path), "failed", error=f"cannot read file: {e.strerror}"))
                continue
            results.append(
                self.ingest_bytes(data, path.name, collection, user, progress, source=str(path),
                                  file_index=i, file_count=len(files), size=path.stat().st_size)
            )
        return results

    def ingest_bytes(
        self,
        data: bytes | None,
        file_name: str,
        collection: str,
        user: User,
        progress: ProgressFn | None = None,
        *,
        source: str | None = None,
        file_index: int = 0,
        file_count: int = 1,
        size: int | None = None,
    ) -> FileResult:
        """Index one file's bytes, or refuse it with a reason; never leaves part of it behind.

        Args:
            data: the file's bytes (None when the caller already knows it is too large).
            file_name: the name users see and cite.
            collection: the collection it belongs to.
            user: the acting user (must be an admin or able to read the collection).
            progress: called at every stage.
        """
        source = source or file_name
        report = progress or (lambda p: None)
        job = None
        try:
            check_collection(collection)
            if not user.can_read(collection):
                raise AccessDenied(f"{user.name} may not add documents to {collection!r}")
            name = safe_file_name(file_name)
            job = self.store.add_job(name, source, collection, user.name)
            report(Progress(name, "queued", 0, 0, file_index, file_count))
            size = len(data) if data is not None else size or 0
            if data is None or size > self.max_bytes:
                raise FileRejected(
                    f"file too large ({size / 1e6:.1f} MB > {self.max_bytes / 1e6:.0f} MB): split it, "
                    "or raise ZHIKU_MAX_FILE_MB"
                )
            doc_id = hashlib.sha256(data).hexdigest()[:32]
            check_supported(name)
            existing = self._versions(collection, name)
            if self._is_complete(collection, doc_id):
                self.store.update_job(job, "unchanged", doc_id=doc_id)
                report(Progress(name, "unchanged", 1, 1, file_index, file_count))
                count = self.index.count(Scope([collection], [doc_id]))
                return FileResult(source, "unchanged", count, None, doc_id, name)

            self.store.update_job(job, "parsing", doc_id=doc_id)
            report(Progress(name, "parsing", 0, 0, file_index, file_count))
            sections = parse_bytes(data, name)
            pieces = self.chunker.split(sections)
            if not pieces:
                raise FileRejected("no extractable text in this file")

            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            suffix = Path(name).suffix.lower().lstrip(".")
            chunks = [
                Chunk(doc_id, name, collection, i, p.text, p.page, p.heading, (p.start, p.end),
                      hashlib.sha256(p.text.encode("utf-8")).hexdigest()[:16], now, suffix, len(pieces))
                for i, p in enumerate(pieces)
            ]
            self._store_original(collection, doc_id, name, data)
            self.store.update_job(job, "embedding", doc_id=doc_id)
            for start in range(0, len(chunks), self.batch_size):
                batch = chunks[start : start + self.batch_size]
                report(Progress(name, "embedding", start, len(chunks), file_index, file_count))
                dense = self.embedder.embed_passages([c.text for c in batch])
                sparse = [sparse_document(c.text) for c in batch]
                self.index.upsert(batch, dense, sparse)
            # the new version is complete before the old one goes, so search always sees one of them
            old_ids = [d for d in existing if d != doc_id]
            if old_ids:
                self._remove(collection, old_ids)
            self.store.update_job(job, "indexed", doc_id=doc_id, chunks=len(chunks))
            report(Progress(name, "indexed", len(chunks), len(chunks), file_index, file_count))
            return FileResult(source, "updated" if old_ids else "added", len(chunks), None, doc_id, name)
        except ZhikuError as e:
            log.info("refused %s: %s", source, e)
            if job is not None:
                self.store.update_job(job, "failed", error=str(e))
            report(Progress(Path(file_name).name, "failed", 0, 0, file_index, file_count))
            return FileResult(source, "failed", 0, str(e), None, Path(file_name).name)

    def _is_complete(self, collection: str, doc_id: str) -> bool:
        """Whether every chunk of this exact document is already indexed."""
        first = self.index.chunks(Scope([collection], [doc_id], first_chunk_only=True), limit=1)
        if not first:
            return False
        return self.index.count(Scope([collection], [doc_id])) == first[0].chunk_count

    def _versions(self, collection: str, file_name: str) -> list[str]:
        """Doc ids indexed under this file name in this collection."""
        found = self.index.chunks(Scope([collection], file_names=[file_name], first_chunk_only=True))
        return sorted({c.doc_id for c in found})

    def _store_original(self, collection: str, doc_id: str, name: str, data: bytes) -> None:
        folder = self.files_dir / collection / doc_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists() and target.stat().st_size == len(data):
            return
        tmp = folder / f".{name}.part"
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def _remove(self, collection: str, doc_ids: list[str]) -> None:
        self.index.delete(Scope([collection], doc_ids))
        for doc_id in doc_ids:
            shutil.rmtree(self.files_dir / collection / doc_id, ignore_errors=True)

    # ------------------------------------------------------------- documents
    def documents(self, user: User, collections: list[str] | None = None) -> list[Document]:
        """Indexed documents the user may read."""
        firsts = self.index.chunks(Scope.for_user(user, collections, first_chunk_only=True))
        return sorted(
            (Document(c.doc_id, c.file_name, c.collection, c.chunk_count, c.ingested_at, c.file_type) for c in firsts),
            key=lambda d: (d.collection, d.file_name),
        )

    def original_path(self, doc: Document) -> Path:
        """Where the stored original of a document lives."""
        return self.files_dir / doc.collection / doc.doc_id / doc.file_name

    def delete(self, key: str, user: User, collection: str | None = None) -> list[Document]:
        """Delete documents by doc id or file name: every chunk and the stored original."""
        docs = [d for d in self.documents(user, [collection] if collection else None)
                if key in (d.doc_id, d.file_name)]
        if not docs:
            raise NotFound(f"no document with id or file name {key!r}: see `zhiku stats` or the Documents page")
        if not user.is_admin:
            raise AccessDenied(f"{user.name} may not delete documents: ask an admin")
        for doc in docs:
            self._remove(doc.collection, [doc.doc_id])
        return docs

    def stats(self, user: User) -> IndexStats:
        """Documents, chunks and per-collection document counts the user can see."""
        scope = Scope.for_user(user)
        docs = self.documents(user)
        per_collection: dict[str, int] = {}
        for d in docs:
            per_collection[d.collection] = per_collection.get(d.collection, 0) + 1
        return IndexStats(len(docs), self.index.count(scope), per_collection)

    def reindex(self, user: User, progress: ProgressFn | None = None) -> list[FileResult]:
        """Re-parse and re-embed every stored original (after a parser or model upgrade)."""
        if not user.is_admin:
            raise AccessDenied(f"{user.name} may not re-index: ask an admin")
        results = []
        docs = self.documents(user)
        for i, doc in enumerate(docs):
            path = self.original_path(doc)
            if not path.exists():
                results.append(FileResult(str(path), "failed", error="stored original is missing; upload it again"))
                continue
            self.index.delete(Scope([doc.collection], [doc.doc_id]))
            results.append(self.ingest_bytes(path.read_bytes(), doc.file_name, doc.collection, user, progress,
                                             source=str(path), file_index=i, file_count=len(docs)))
        return results
