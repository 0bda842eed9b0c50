"""Ingestion: validate → parse → chunk → embed → upsert, one file fully indexed or refused."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import sys
import threading
import unicodedata
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from zhiku.ingest.chunking import TextChunk
from zhiku.ingest.parsers import check_supported
from zhiku.ingest.worker import DEFAULT_PARSE, ParseLimits, ParsePool, WorkerConfig
from zhiku.retrieval.embeddings import Embedder
from zhiku.retrieval.index import Index, IndexStats, Scope
from zhiku.retrieval.text import sparse_document
from zhiku.retrieval.types import Chunk, User
from zhiku.core.errors import AccessDenied, FileRejected, NotFound, ZhikuError
from zhiku.store import AppStore, Job

log = logging.getLogger(__name__)

_COLLECTION = re.compile(r"^[\w\-]{1,64}$")
INTERRUPTED = "interrupted: zhiku stopped while indexing this file; ingest it again"
REINDEX_INTERRUPTED = "interrupted while re-indexing: run `zhiku reindex` again"

# Files read and queued for parsing ahead of the embedder, so it never waits for a parse; bounded in
# number and bytes because each holds its bytes, and then its chunks, until it is embedded.
AHEAD_FILES = 16
AHEAD_BYTES = 64 * 1024 * 1024


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


@dataclass
class _Attempt:
    """What one ingest_bytes call has done so far, so a failure can undo exactly that."""

    source: str
    name: str
    job: int | None = None
    written: tuple[str, str] | None = None  # (collection, doc_id) once chunks may exist
    new_original: bool = False  # whether this attempt stored the original (a re-index reuses it)


class _Unreadable(Exception):
    """A file whose bytes cannot be read: it fails without a job record, as nothing was attempted."""


@dataclass
class _Item:
    """One file of a run: where it goes, where its bytes come from, its number in progress reports."""

    file_index: int
    file_name: str
    collection: str
    source: str
    read: Callable[[], tuple[bytes | None, int]]  # (bytes, or None when too large to read; size)
    replaces: str | None = None  # re-indexing: this document's chunks are removed before it is checked


def _given(data: bytes | None, size: int | None = None) -> tuple[bytes | None, int]:
    """Bytes the caller already has (None when it knows they are too large), with their size."""
    return data, len(data) if data is not None else size or 0


def _read_file(path: Path, max_bytes: int) -> tuple[bytes | None, int]:
    """A file's bytes (None when it is too large to read) and size."""
    try:
        size = path.stat().st_size
        return (path.read_bytes() if size <= max_bytes else None), size
    except OSError as e:
        raise _Unreadable(f"cannot read file: {e.strerror}") from e


def _read_original(path: Path) -> tuple[bytes, int]:
    """A stored original's bytes and size, for re-indexing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise _Unreadable("stored original is missing; upload it again") from e
    except OSError as e:
        raise _Unreadable(f"cannot read the stored original: {e.strerror}") from e
    return data, len(data)


def _reporter(progress: ProgressFn | None, file_index: int, file_count: int) -> Callable:
    """A progress function taking (file_name, stage, done, total) for one file of a run."""
    def report(name: str, stage: str, done: int = 0, total: int = 0) -> None:
        if progress is not None:
            progress(Progress(name, stage, done, total, file_index, file_count))

    return report


def _make_chunks(pieces: list[TextChunk], doc_id: str, name: str, collection: str) -> list[Chunk]:
    """Chunks with their payload: each one knows how many chunks its document has."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    suffix = Path(name).suffix.lower().lstrip(".")
    return [
        Chunk(doc_id, name, collection, i, p.text, p.page, p.heading, (p.start, p.end),
              hashlib.sha256(p.text.encode("utf-8")).hexdigest()[:16], now, suffix, len(pieces))
        for i, p in enumerate(pieces)
    ]


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
        chunk_tokens: int = 220,
        chunk_overlap: int = 40,
        max_bytes: int = 100 * 1024 * 1024,
        batch_size: int = 32,
        parse_timeout: float = 120.0,
        parse_memory_mb: int = 2048,
        parse: str = DEFAULT_PARSE,
        parse_workers: int = 1,
    ):
        self.index = index
        self.embedder = embedder
        self.store = store
        self.files_dir = files_dir
        self.max_bytes = max_bytes
        self.batch_size = batch_size
        self.worker_config = WorkerConfig(ParseLimits(parse_timeout, parse_memory_mb), parse, chunk_tokens, chunk_overlap)
        self.parse_workers = parse_workers
        self._pool: ParsePool | None = None
        self._pool_users = 0
        self._pool_lock = threading.Lock()
        index.ensure(embedder.dim, embedder.name)
        self.recover()

    # ---------------------------------------------------------------- parsing
    @contextmanager
    def parsing(self) -> Iterator[ParsePool]:
        """Parse workers kept running for a batch of files, so their start-up is paid once per run."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ParsePool(self.worker_config, workers=self.parse_workers)
            self._pool_users += 1
            pool = self._pool
        try:
            yield pool
        finally:
            with self._pool_lock:
                self._pool_users -= 1
                if self._pool_users == 0:
                    self._pool = None
                    pool.close()

    # ----------------------------------------------------------------- ingest
    def ingest_paths(
        self, paths: Iterable[str | Path], collection: str, user: User, progress: ProgressFn | None = None
    ) -> list[FileResult]:
        """Ingest files and folders (recursively); every file gets a result, failures do not stop the rest."""
        files = expand_paths(paths)
        items = [_Item(i, path.name, collection, str(path), partial(_read_file, path, self.max_bytes))
                 for i, path in enumerate(files)]
        return self._run(items, user, progress)

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
        item = _Item(file_index, file_name, collection, source or file_name, partial(_given, data, size))
        return self._run([item], user, progress, file_count)[0]

    def ingest_many(self, files: list[tuple[str, bytes]], collection: str, user: User,
                    progress: ProgressFn | None = None) -> list[FileResult]:
        """Index several uploaded files (name, bytes) in one run, so their stages overlap; results in input order."""
        items = [_Item(i, name, collection, name, partial(_given, data)) for i, (name, data) in enumerate(files)]
        return self._run(items, user, progress)

    def _run(self, items: list[_Item], user: User, progress: ProgressFn | None,
             file_count: int | None = None) -> list[FileResult]:
        """Ingest items in order through the overlapping stages; results in input order."""
        with self.parsing() as pool, ThreadPoolExecutor(1, "zhiku-upsert", _background) as writer:
            run = _Run(self, pool, writer, user, progress, file_count or len(items))
            try:
                return run.execute(items)
            except BaseException as e:
                # an unexpected error or Ctrl-C: leave nothing half-written, then let it propagate
                run.interrupt(e)
                raise

    def _admit(self, state: _Attempt, file_name: str, collection: str, user: User) -> str:
        """Check the collection, access and name, and open the file's job record; returns the safe name."""
        check_collection(collection)
        if not user.can_read(collection):
            raise AccessDenied(f"{user.name} may not add documents to {collection!r}")
        state.name = safe_file_name(file_name)
        state.job = self.store.add_job(state.name, state.source, collection, user.name)
        return state.name

    def _check_size(self, data: bytes | None, size: int | None) -> None:
        """Refuse files above the size limit (data is None when the caller did not even read it)."""
        size = len(data) if data is not None else size or 0
        if data is None or size > self.max_bytes:
            raise FileRejected(
                f"file too large ({size / 1e6:.1f} MB > {self.max_bytes / 1e6:.0f} MB): split it, "
                "or raise ZHIKU_MAX_FILE_MB"
            )

    def _abandon(self, state: _Attempt, reason: str) -> None:
        """Remove whatever a failed attempt wrote and record why it failed."""
        try:
            if state.written:
                collection, doc_id = state.written
                self.index.delete(Scope([collection], [doc_id]))
                if state.new_original:
                    shutil.rmtree(self.files_dir / collection / doc_id, ignore_errors=True)
            if state.job is not None:
                self.store.update_job(state.job, "failed", error=reason)
        except Exception:  # the original error matters more; recovery at the next start cleans up
            log.exception("could not clean up after %s", state.source)

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

    def _store_original(self, collection: str, doc_id: str, name: str, data: bytes) -> bool:
        """Keep the original bytes for downloads and re-indexing; False when they were already stored."""
        folder = self.files_dir / collection / doc_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if target.exists() and target.stat().st_size == len(data):
            return False
        tmp = folder / f".{name}.part"
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return True

    def _remove(self, collection: str, doc_ids: list[str]) -> None:
        self.index.delete(Scope([collection], doc_ids))
        for doc_id in doc_ids:
            shutil.rmtree(self.files_dir / collection / doc_id, ignore_errors=True)

    # -------------------------------------------------------------- recovery
    def recover(self) -> list[Job]:
        """Resolve jobs left unfinished by a process that no longer exists, so index and job records agree.

        The index decides: a document whose chunks are all present is kept and its job marked indexed
        (finishing the replacement of older versions); a partly written one is removed with its stored
        original and its job fails as interrupted, so ingesting the file again completes it.
        """
        jobs = self.store.abandoned_jobs()
        for job in jobs:
            self._recover_job(job)
        if jobs:
            log.warning("resolved %d ingestion job(s) interrupted by a stopped process", len(jobs))
        return jobs

    def _recover_job(self, job: Job) -> None:
        """Settle one abandoned job against the index."""
        if job.doc_id and self._is_complete(job.collection, job.doc_id):
            old_ids = [d for d in self._versions(job.collection, job.file_name) if d != job.doc_id]
            if old_ids:
                self._remove(job.collection, old_ids)
            count = self.index.count(Scope([job.collection], [job.doc_id]))
            self.store.update_job(job.id, "indexed", chunks=count, error=None)
            return
        # another live process may be writing the same document: its chunks are not ours to remove
        if job.doc_id and not self.store.is_being_ingested(job.collection, job.doc_id):
            self.index.delete(Scope([job.collection], [job.doc_id]))
            if not self._is_reindex(job):
                shutil.rmtree(self.files_dir / job.collection / job.doc_id, ignore_errors=True)
        reason = INTERRUPTED if not self._is_reindex(job) else REINDEX_INTERRUPTED
        self.store.update_job(job.id, "failed", error=reason)

    def _is_reindex(self, job: Job) -> bool:
        """Whether the job re-read a stored original (which is then the only copy and must stay)."""
        return Path(job.source).resolve().is_relative_to(self.files_dir.resolve())

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
        docs = self.documents(user)
        docs += self._unindexed_originals({(d.collection, d.doc_id) for d in docs})
        items = []
        for i, doc in enumerate(docs):
            path = self.original_path(doc)
            items.append(_Item(i, doc.file_name, doc.collection, str(path), partial(_read_original, path),
                               replaces=doc.doc_id))
        return self._run(items, user, progress)

    def _unindexed_originals(self, indexed: set[tuple[str, str]]) -> list[Document]:
        """Stored originals whose document is not in the index: a re-index was interrupted before it finished."""
        found = []
        for path in sorted(self.files_dir.glob("*/*/*")):
            collection, doc_id = path.parent.parent.name, path.parent.name
            if path.is_file() and not path.name.startswith(".") and (collection, doc_id) not in indexed:
                found.append(Document(doc_id, path.name, collection, 0, "", path.suffix.lower().lstrip(".")))
        return found


# ------------------------------------------------------------------- a run
_FLUSH = object()  # in the chunk stream: every file before this point must be settled first


@dataclass(eq=False)
class _Task:
    """A file on its way through a run."""

    position: int  # in the run's input, which is the order of its results
    item: _Item
    attempt: _Attempt
    report: Callable
    data: bytes | None = None
    doc_id: str = ""
    existing: list[str] = field(default_factory=list)  # doc ids indexed under its name before it
    blocked: bool = False  # the same document or name as a file still in flight: checked once that one settles
    parsed: Future | None = None
    chunks: list[Chunk] = field(default_factory=list)
    sent: int = 0  # chunks handed to the embedder
    written: int = 0  # chunks upserted
    result: FileResult | None = None


def _segments(batch: list[tuple[_Task, Chunk]]) -> list[tuple[_Task, int]]:
    """Each file in a batch with its number of chunks there, in order."""
    return [(task, sum(1 for _ in part)) for task, part in groupby(batch, key=itemgetter(0))]


def _background() -> None:
    """Lower the calling thread's priority: the embedder keeps every core and the writer uses what it leaves.

    Measured on 2 cores: a process taking 12% of the CPU at normal priority slowed embedding by 10%; at
    a low priority it did not slow it measurably, filling the gaps the embedder leaves instead.
    """
    if sys.platform.startswith("linux"):  # Linux's nice value is per thread; elsewhere it is per process
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError as e:
            log.debug("could not lower the writer thread's priority: %s", e)


def _each_file(batch: list[tuple], call: Callable[[list[tuple]], object]) -> tuple[list, list]:
    """call(batch); if it fails, call(part) for each file's part alone, so that only the culprit fails.

    Returns ([(part, what call returned)], [(file, error)]); batch entries start with their _Task.
    """
    try:
        return [(batch, call(batch))], []
    except ZhikuError as e:
        if len(_segments(batch)) == 1:
            return [], [(batch[0][0], e)]
    done, failures = [], []
    for task, part in groupby(batch, key=itemgetter(0)):
        part = list(part)
        try:
            done.append((part, call(part)))
        except ZhikuError as e:
            failures.append((task, e))
    return done, failures


def _write(index: Index, batch: list[tuple[_Task, Chunk]], dense: np.ndarray) -> list[tuple[_Task, ZhikuError]]:
    """The writer thread's job for one batch: sparse vectors, then the upsert (durable when it returns).

    Returns the files whose chunks could not be written.
    """
    rows = [(task, chunk, vector, sparse_document(chunk.text)) for (task, chunk), vector in zip(batch, dense)]

    def upsert(part: list[tuple]) -> None:
        index.upsert([r[1] for r in part], np.asarray([r[2] for r in part]), [r[3] for r in part])

    return _each_file(rows, upsert)[1]


class _Run:
    """One ingestion run, arranged so that the embedder, the bottleneck, never waits for the other stages.

    Files are read, checked and queued in the parse workers ahead of the embedder (AHEAD_FILES); chunks of
    consecutive files fill the same embedding batches; while one batch is embedded (the C engine releases
    the GIL), the previous one gets its sparse vectors and is upserted by a writer thread. At most one
    batch is being written at a time, so a failure can still undo exactly what a file wrote, and a file
    is finished (older versions removed, job indexed) only once its last batch is written. Job records
    and progress reports are written from the caller's thread only.
    """

    def __init__(self, ingestor: Ingestor, pool: ParsePool, writer: ThreadPoolExecutor, user: User,
                 progress: ProgressFn | None, file_count: int):
        self.ingestor = ingestor
        self.pool = pool
        self.writer = writer
        self.user = user
        self.progress = progress
        self.file_count = file_count
        self.results: dict[int, FileResult] = {}
        self.ahead: deque[_Task] = deque()  # started, waiting for the embedder
        self.open: list[_Task] = []  # started and not settled yet
        self.pending: tuple[Future, list[tuple[_Task, Chunk]]] | None = None  # the batch being written

    def execute(self, items: list[_Item]) -> list[FileResult]:
        """Ingest every item; results in input order."""
        batch: list[tuple[_Task, Chunk]] = []
        for entry in self._stream(items):
            if entry is _FLUSH:
                self._send(batch)
                batch = []
                self._settle()
                continue
            batch.append(entry)
            if len(batch) >= self.ingestor.batch_size:
                self._send(batch)
                batch = []
        self._send(batch)
        self._settle()
        return [self.results[i] for i in range(len(items))]

    def interrupt(self, error: BaseException) -> None:
        """Undo every unfinished file after an unexpected error or Ctrl-C."""
        if self.pending is not None:
            wait([self.pending[0]])  # nothing may be written after the cleanup
        reason = f"{INTERRUPTED} ({type(error).__name__})"
        for task in list(self.open):
            if task.parsed is not None:
                task.parsed.cancel()
            self.ingestor._abandon(task.attempt, reason)

    # ------------------------------------------------------------ stages
    def _stream(self, items: list[_Item]) -> Iterator[tuple[_Task, Chunk] | object]:
        """(file, chunk) pairs in input order, with files started ahead; _FLUSH before a file that must wait."""
        upcoming = iter(enumerate(items))
        while True:
            self._start_ahead(upcoming)
            if not self.ahead:
                return
            task = self.ahead.popleft()
            if task.blocked:
                yield _FLUSH
                task.blocked = False
                self._prepare(task)
            for chunk in self._parsed(task):
                if task.result is not None:  # failed while its earlier chunks were embedded or written
                    break
                yield task, chunk

    def _start_ahead(self, upcoming: Iterator[tuple[int, _Item]]) -> None:
        """Start files until enough are ahead of the embedder (never past one that must wait)."""
        while len(self.ahead) < AHEAD_FILES and not (self.ahead and self.ahead[-1].blocked):
            if sum(len(t.data or b"") for t in self.ahead) >= AHEAD_BYTES:
                return
            nxt = next(upcoming, None)
            if nxt is None:
                return
            task = self._start(*nxt)
            if task is not None:
                self.ahead.append(task)

    def _start(self, position: int, item: _Item) -> _Task | None:
        """Read, admit and check a file, then queue it for parsing; None when that already settled it."""
        ingestor = self.ingestor
        task = _Task(position, item, _Attempt(item.source, Path(item.file_name).name),
                     _reporter(self.progress, item.file_index, self.file_count))
        try:
            task.data, size = item.read()
        except _Unreadable as e:
            self.results[position] = FileResult(item.source, "failed", error=str(e), file_name=task.attempt.name)
            return None
        self.open.append(task)
        with self._refusing(task):
            name = ingestor._admit(task.attempt, item.file_name, item.collection, self.user)
            task.report(name, "queued")
            ingestor._check_size(task.data, size)
            task.doc_id = hashlib.sha256(task.data).hexdigest()[:32]
            check_supported(name)
            # the same bytes or the same name twice in flight would be embedded twice or replace each other
            # out of order: such a file is checked only after the files before it are settled
            task.blocked = any(
                other is not task and other.item.collection == item.collection
                and (other.doc_id == task.doc_id or other.attempt.name == name)
                for other in self.open
            )
            if not task.blocked:
                self._prepare(task)
        return task if task.result is None else None

    def _prepare(self, task: _Task) -> None:
        """Settle an already indexed file as unchanged, or queue it for parsing."""
        ingestor, item, state = self.ingestor, task.item, task.attempt
        with self._refusing(task):
            if item.replaces:
                ingestor.index.delete(Scope([item.collection], [item.replaces]))
            task.existing = ingestor._versions(item.collection, state.name)
            if ingestor._is_complete(item.collection, task.doc_id):
                ingestor.store.update_job(state.job, "unchanged", doc_id=task.doc_id)
                task.report(state.name, "unchanged", 1, 1)
                count = ingestor.index.count(Scope([item.collection], [task.doc_id]))
                self._done(task, FileResult(item.source, "unchanged", count, None, task.doc_id, state.name))
                return
            ingestor.store.update_job(state.job, "parsing", doc_id=task.doc_id)
            task.report(state.name, "parsing")
            task.parsed = self.pool.submit(task.data, state.name)

    def _parsed(self, task: _Task) -> list[Chunk]:
        """A file's chunks once its parse is done; its original is stored before any chunk is written."""
        ingestor, item, state = self.ingestor, task.item, task.attempt
        if task.result is not None:
            return []
        with self._refusing(task):
            pieces = task.parsed.result()
            if not pieces:
                raise FileRejected("no extractable text in this file")
            task.chunks = _make_chunks(pieces, task.doc_id, state.name, item.collection)
            state.written = (item.collection, task.doc_id)
            state.new_original = ingestor._store_original(item.collection, task.doc_id, state.name, task.data)
            task.data = None
            ingestor.store.update_job(state.job, "embedding")
        return task.chunks if task.result is None else []

    def _send(self, batch: list[tuple[_Task, Chunk]]) -> None:
        """Embed a batch, then hand it to the writer once the previous batch is written."""
        batch = [(task, chunk) for task, chunk in batch if task.result is None]
        if not batch:
            return
        for task, count in _segments(batch):
            task.report(task.attempt.name, "embedding", task.sent, len(task.chunks))
            task.sent += count
        batch, dense, failures = self._embed(batch)
        self._settle()
        for task, error in failures:
            self._fail(task, error)
        keep = [i for i, (task, _) in enumerate(batch) if task.result is None]  # some may have failed meanwhile
        if not keep:
            return
        batch, dense = [batch[i] for i in keep], dense[keep]
        for task, _ in _segments(batch):
            self.ingestor.store.update_job(task.attempt.job, "embedding")  # the job's heartbeat
        self.pending = (self.writer.submit(_write, self.ingestor.index, batch, dense), batch)

    def _embed(self, batch: list[tuple[_Task, Chunk]]) -> tuple[list, np.ndarray, list[tuple[_Task, ZhikuError]]]:
        """Vectors of a batch, without the chunks of files whose embedding failed."""
        embedder = self.ingestor.embedder
        done, failures = _each_file(batch, lambda part: embedder.embed_passages([chunk.text for _, chunk in part]))
        kept = [entry for part, _ in done for entry in part]
        dense = np.vstack([vectors for _, vectors in done]) if done else np.zeros((0, embedder.dim), np.float32)
        return kept, dense, failures

    def _settle(self) -> None:
        """Wait for the batch being written; files whose last chunk it held are finished."""
        if self.pending is None:
            return
        future, batch = self.pending
        failures = future.result()
        self.pending = None  # only now: if this wait is interrupted, interrupt() must still wait for the write
        for task, error in failures:
            self._fail(task, error)
        for task, count in _segments(batch):
            task.written += count
            if task.written == len(task.chunks) and task.result is None:
                self._finish(task)

    def _finish(self, task: _Task) -> None:
        """Every chunk is written: remove older versions of the file and close its job."""
        ingestor, item, state = self.ingestor, task.item, task.attempt
        state.written = None  # complete: from here on a failure must not take the new version away
        count = len(task.chunks)
        with self._refusing(task):
            # the new version is complete before the old one goes, so search always sees one of them
            old_ids = [d for d in task.existing if d != task.doc_id]
            if old_ids:
                ingestor._remove(item.collection, old_ids)
            ingestor.store.update_job(state.job, "indexed", doc_id=task.doc_id, chunks=count)
            task.report(state.name, "indexed", count, count)
            status = "updated" if old_ids else "added"
            self._done(task, FileResult(item.source, status, count, None, task.doc_id, state.name))

    # ----------------------------------------------------------- outcomes
    @contextmanager
    def _refusing(self, task: _Task) -> Iterator[None]:
        """A ZhikuError inside refuses this file alone: what it wrote is removed and the reason recorded."""
        try:
            yield
        except ZhikuError as e:
            self._fail(task, e)

    def _fail(self, task: _Task, error: ZhikuError) -> None:
        if task.result is not None:
            return
        log.info("refused %s: %s", task.item.source, error)
        self.ingestor._abandon(task.attempt, str(error))
        task.report(task.attempt.name, "failed")
        self._done(task, FileResult(task.item.source, "failed", 0, str(error), None, task.attempt.name))

    def _done(self, task: _Task, result: FileResult) -> None:
        task.result = result
        self.results[task.position] = result
        self.open.remove(task)
        task.data = None
