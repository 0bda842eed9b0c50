"""One ingestion run: stored originals → parse workers → embedding batches → upserts, stages overlapping."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby
from operator import itemgetter
from typing import Callable, Iterator

import numpy as np

from zhiku.core.errors import FileRejected, ZhikuError
from zhiku.ingest.chunking import TextChunk
from zhiku.ingest.parsers import check_supported
from zhiku.ingest.worker import ParsePool
from zhiku.retrieval.embeddings import Embedder, latent_of
from zhiku.retrieval.index import Index, Scope
from zhiku.retrieval.keywords import sentence_units
from zhiku.retrieval.text import sparse_document
from zhiku.retrieval.types import Chunk

log = logging.getLogger(__name__)

# Files read and queued for parsing ahead of the embedder, so it never waits for a parse; bounded in
# number and bytes because each holds its bytes, and then its chunks, until it is embedded.
AHEAD_FILES = 16
AHEAD_BYTES = 64 * 1024 * 1024


class VectorCache:
    """Recently embedded passages by their text, so boilerplate repeated across documents is embedded once."""

    def __init__(self, capacity: int = 8192):
        self.capacity = capacity
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(model: str, text: str) -> bytes:
        return hashlib.blake2b(f"{model}\0{text}".encode("utf-8"), digest_size=16).digest()

    def get(self, model: str, text: str) -> np.ndarray | None:
        """The cached vector of a passage, if any."""
        key = self._key(model, text)
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
            return vector

    def put(self, model: str, text: str, vector: np.ndarray) -> None:
        """Remember a passage's vector, dropping the least recently used beyond capacity."""
        with self._lock:
            self._vectors[self._key(model, text)] = vector
            while len(self._vectors) > self.capacity:
                self._vectors.popitem(last=False)


@dataclass
class Item:
    """One stored original to index as (doc_id, version) in a collection."""

    key: object  # the caller's handle (a job), given back in every callback
    doc_id: str
    version: str
    collection: str
    path: str
    read: Callable[[], bytes]


@dataclass
class Outcome:
    """How an item ended: indexed with its chunk and page counts, or failed with a reason."""

    item: Item
    chunks: int = 0
    pages: int | None = None
    error: str | None = None


class Callbacks:
    """What a run reports to its caller; the defaults do nothing."""

    def stage(self, item: Item, stage: str, done: int = 0, total: int = 0) -> None:
        """The item reached parsing or embedding (done/total chunks)."""

    def unchanged(self, item: Item) -> bool:
        """Whether the item is already indexed as it is (then it is not parsed at all)."""
        return False

    def indexed(self, outcome: Outcome) -> None:
        """Every chunk of the item is written and durable."""

    def failed(self, outcome: Outcome) -> None:
        """The item was refused; whatever it wrote is already removed."""


def make_chunks(pieces: list[TextChunk], item: Item) -> list[Chunk]:
    """Chunks with their payload: each knows its document, version, path and how many chunks it has."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    name = item.path.rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return [
        Chunk(item.doc_id, name, item.collection, i, p.text, p.page, p.heading, (p.start, p.end),
              hashlib.sha256(p.text.encode("utf-8")).hexdigest()[:16], now, suffix, len(pieces),
              version=item.version, path=item.path)
        for i, p in enumerate(pieces)
    ]


@dataclass(eq=False)
class _Task:
    """A file on its way through a run."""

    item: Item
    data: bytes | None = None
    parsed: Future | None = None
    chunks: list[Chunk] = field(default_factory=list)
    pages: int | None = None
    sent: int = 0  # chunks handed to the embedder
    written: int = 0  # chunks upserted
    touched: bool = False  # chunks may exist in the index
    settled: bool = False


def _segments(batch: list[tuple[_Task, Chunk]]) -> list[tuple[_Task, int]]:
    """Each file in a batch with its number of chunks there, in order."""
    return [(task, sum(1 for _ in part)) for task, part in groupby(batch, key=itemgetter(0))]


def background() -> None:
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
    """call(batch); if it fails, call(part) for each file's part alone, so that only the culprit fails."""
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


def _write(index: Index, batch: list[tuple[_Task, Chunk]], dense: np.ndarray, sentences: list[np.ndarray],
           latent: list | None) -> list[tuple[_Task, ZhikuError]]:
    """The writer thread's job for one batch: sparse vectors, then the upsert (durable when it returns)."""
    rows = [(task, chunk, vector, sparse_document(chunk.text), units, terms)
            for (task, chunk), vector, units, terms
            in zip(batch, dense, sentences, latent if latent is not None else [None] * len(batch), strict=True)]

    def upsert(part: list[tuple]) -> None:
        index.upsert([r[1] for r in part], np.asarray([r[2] for r in part]), [r[3] for r in part],
                     [r[4] for r in part], None if latent is None else [r[5] for r in part])

    return _each_file(rows, upsert)[1]


class Run:
    """Indexes items into one index, arranged so that the embedder, the bottleneck, never waits.

    Files are read and queued in the parse workers ahead of the embedder (AHEAD_FILES); chunks of
    consecutive files fill the same embedding batches; while one batch is embedded (the C engine releases
    the GIL), the previous one gets its sparse vectors and is upserted by a writer thread. At most one
    batch is being written at a time, so a failure can still undo exactly what a file wrote, and a file
    is reported indexed only once its last batch is written. Callbacks run on the caller's thread.
    """

    def __init__(self, index: Index, embedder: Embedder, pool: ParsePool, callbacks: Callbacks, *,
                 batch_size: int = 32, max_chunks: int = 5000, pause: Callable[[str], None] | None = None,
                 cache: VectorCache | None = None):
        self.index = index
        self.embedder = embedder
        self.pool = pool
        self.callbacks = callbacks
        self.batch_size = batch_size
        self.max_chunks = max_chunks
        self.pause = pause or (lambda stage: None)
        self.cache = cache
        self.ahead: deque[_Task] = deque()
        self.open: list[_Task] = []
        self.pending: tuple[Future, list[tuple[_Task, Chunk]]] | None = None

    def execute(self, items: list[Item]) -> None:
        """Index every item, reporting each one's outcome through the callbacks."""
        with ThreadPoolExecutor(1, "zhiku-upsert", background) as writer:
            self.writer = writer
            try:
                batch: list[tuple[_Task, Chunk]] = []
                for entry in self._stream(items):
                    batch.append(entry)
                    if len(batch) >= self.batch_size:
                        self._send(batch)
                        batch = []
                self._send(batch)
                self._settle()
            except BaseException as e:
                self._interrupt(e)
                raise

    def _interrupt(self, error: BaseException) -> None:
        """Undo every unfinished file after an unexpected error or Ctrl-C, then let it propagate."""
        if self.pending is not None:
            wait([self.pending[0]])  # nothing may be written after the cleanup
        for task in list(self.open):
            if task.parsed is not None:
                task.parsed.cancel()
            self._fail(task, ZhikuError(f"interrupted ({type(error).__name__})"), report=False)

    # ------------------------------------------------------------ stages
    def _stream(self, items: list[Item]) -> Iterator[tuple[_Task, Chunk]]:
        upcoming = iter(items)
        while True:
            self._start_ahead(upcoming)
            if not self.ahead:
                return
            task = self.ahead.popleft()
            for chunk in self._parsed(task):
                if task.settled:
                    break
                yield task, chunk

    def _start_ahead(self, upcoming: Iterator[Item]) -> None:
        while len(self.ahead) < AHEAD_FILES:
            if sum(len(t.data or b"") for t in self.ahead) >= AHEAD_BYTES:
                return
            item = next(upcoming, None)
            if item is None:
                return
            task = self._start(item)
            if task is not None:
                self.ahead.append(task)

    def _start(self, item: Item) -> _Task | None:
        """Read and check a file, then queue it for parsing; None when that already settled it."""
        task = _Task(item)
        self.open.append(task)
        with self._refusing(task):
            if self.callbacks.unchanged(item):
                task.settled = True
                self.open.remove(task)
                return None
            check_supported(item.path.rsplit("/", 1)[-1])
            task.data = item.read()
            self.callbacks.stage(item, "parsing")
            self.pause("parsing")
            task.parsed = self.pool.submit(task.data, item.path.rsplit("/", 1)[-1])
        return None if task.settled else task

    def _parsed(self, task: _Task) -> list[Chunk]:
        if task.settled:
            return []
        with self._refusing(task):
            pieces = task.parsed.result()
            task.data = None
            if not pieces:
                raise FileRejected("no extractable text in this file")
            if len(pieces) > self.max_chunks:
                raise FileRejected(
                    f"this file makes {len(pieces):,} passages, more than the limit of {self.max_chunks:,} per "
                    "file (ZHIKU_MAX_CHUNKS_PER_FILE): split it into smaller documents, or raise the limit")
            task.chunks = make_chunks(pieces, task.item)
            pages = [p.page for p in pieces if p.page is not None]
            task.pages = max(pages) if pages else None
            self.callbacks.stage(task.item, "embedding", 0, len(task.chunks))
        return task.chunks if not task.settled else []

    def _send(self, batch: list[tuple[_Task, Chunk]]) -> None:
        """Embed a batch, then hand it to the writer once the previous batch is written."""
        batch = [(task, chunk) for task, chunk in batch if not task.settled]
        if not batch:
            return
        for task, count in _segments(batch):
            task.sent += count
        batch, dense, sentences, latent, failures = self._embed(batch)
        self._settle()
        for task, error in failures:
            self._fail(task, error)
        keep = [i for i, (task, _) in enumerate(batch) if not task.settled]
        if not keep:
            return
        batch, dense, sentences = [batch[i] for i in keep], dense[keep], [sentences[i] for i in keep]
        latent = None if latent is None else [latent[i] for i in keep]
        for task, _ in _segments(batch):
            task.touched = True
        self.pending = (self.writer.submit(_write, self.index, batch, dense, sentences, latent), batch)
        self.pause("embedding")

    def _embed(self, batch: list[tuple[_Task, Chunk]]) -> tuple[list, np.ndarray, list[np.ndarray], list | None, list]:
        """Vectors of a batch's passages and of their sentences (identical texts embedded once), without
        files whose embedding failed: (kept entries, passage vectors, sentence vectors per passage,
        latent-term vectors per passage or None when the embedder makes none, failures)."""
        embedder = self.embedder
        latent_encoder = latent_of(embedder)
        cache = self.cache

        def encode_latent(texts: list[str]) -> list:
            model = f"{embedder.name}:latent"
            known = {t: v for t in dict.fromkeys(texts) if cache is not None and (v := cache.get(model, t)) is not None}
            missing = [t for t in dict.fromkeys(texts) if t not in known]
            for text, vector in zip(missing, latent_encoder(missing) if missing else []):
                known[text] = vector
                if cache is not None:
                    cache.put(model, text, vector)
            return [known[t] for t in texts]

        def embed(part: list[tuple[_Task, Chunk]]) -> tuple[np.ndarray, list[np.ndarray], list | None]:
            texts = [chunk.text for _, chunk in part]
            units = [sentence_units(text) for text in texts]
            wanted = dict.fromkeys(texts + [u for each in units for u in each])
            known = {t: v for t in wanted if cache is not None and (v := cache.get(embedder.name, t)) is not None}
            missing = [t for t in wanted if t not in known]
            if missing:
                for text, vector in zip(missing, np.asarray(embedder.embed_passages(missing))):
                    known[text] = vector
                    if cache is not None:
                        cache.put(embedder.name, text, vector)
            sentences = [np.asarray([known[u] for u in each], dtype=np.float32).reshape(len(each), embedder.dim)
                         for each in units]
            latent = encode_latent(texts) if latent_encoder is not None else None
            return np.asarray([known[text] for text in texts], dtype=np.float32), sentences, latent

        done, failures = _each_file(batch, embed)
        kept = [entry for part, _ in done for entry in part]
        dense = np.vstack([vectors for _, (vectors, _, _) in done]) if done else np.zeros((0, embedder.dim), np.float32)
        sentences = [units for _, (_, each, _) in done for units in each]
        latent = None if latent_encoder is None else [v for _, (_, _, each) in done for v in each]
        return kept, dense, sentences, latent, failures

    def _settle(self) -> None:
        """Wait for the batch being written; files whose last chunk it held are finished."""
        if self.pending is None:
            return
        future, batch = self.pending
        failures = future.result()
        self.pending = None
        for task, error in failures:
            self._fail(task, error)
        for task, count in _segments(batch):
            task.written += count
            if not task.settled:
                self.callbacks.stage(task.item, "embedding", task.written, len(task.chunks))
            if task.written == len(task.chunks) and not task.settled:
                self._finish(task)

    def _finish(self, task: _Task) -> None:
        task.settled = True
        self.open.remove(task)
        with self._refusing(task, settled=True):
            self.callbacks.indexed(Outcome(task.item, len(task.chunks), task.pages))

    # ----------------------------------------------------------- outcomes
    @contextmanager
    def _refusing(self, task: _Task, settled: bool = False) -> Iterator[None]:
        """A ZhikuError inside refuses this file alone: what it wrote is removed and the reason recorded."""
        try:
            yield
        except ZhikuError as e:
            if settled:
                task.settled = False
                self.open.append(task)
            self._fail(task, e)

    def _fail(self, task: _Task, error: ZhikuError, report: bool = True) -> None:
        if task.settled:
            return
        task.settled = True
        task.data = None
        if task in self.open:
            self.open.remove(task)
        log.info("refused %s: %s", task.item.path, error)
        if task.touched:
            try:
                self.index.delete(Scope([task.item.collection], [task.item.doc_id], versions=[task.item.version]))
            except Exception:  # noqa: BLE001 - the job stays claimed and its recovery removes the chunks
                log.exception("could not remove the chunks of refused %s", task.item.path)
                raise
        if report:
            self.callbacks.failed(Outcome(task.item, error=str(error)))
        else:
            self.callbacks.failed(Outcome(task.item, error=f"interrupted: {error}"))
