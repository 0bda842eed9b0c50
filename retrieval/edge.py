"""The embedded default backend: Qdrant's engine in-process (qdrant-edge), shared safely between processes."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from zhiku.retrieval.index import (
    DENSE,
    LATENT,
    SENTENCES,
    SPARSE,
    Fusion,
    Scope,
    Sentences,
    Sparse,
    latent_vector,
    sentence_vectors,
)
from zhiku.retrieval.types import Chunk, Hit
from zhiku.core.errors import IndexUnavailable

log = logging.getLogger(__name__)

# a waiting process refreshes its mark every poll; a mark this old was left by a process that died waiting
STALE_MARK_SECONDS = 2.0
# below this many chunks without an HNSW graph, searching them exhaustively costs a few ms (measured
# ~1 ms per 1,000 chunks) and the engine would not index them anyway (its threshold is ~6,500 chunks)
OPTIMIZE_MIN_UNINDEXED = 10_000
# segments the engine keeps before merging them; with the default (one per CPU) every optimize() merged
# the new chunks into the big segment and rebuilt its whole graph: calls every 10k chunks up to 100k
# took 384 s in all, the last ones ~1 min each. With 8, calls every 20k took 48 s in all, ≤ 10 s each.
SEGMENTS = 8


def _engine_error(e: BaseException) -> bool:
    """Whether e was raised by the engine (a plain Exception or a Rust panic) rather than by zhiku's code."""
    return type(e) is Exception or type(e).__name__ == "PanicException"


class EdgeIndex:
    """An edge shard under the data dir, held open between questions and handed over on demand.

    A shard allows one open handle, so every process takes an exclusive file lock before opening it.
    The holder keeps the shard open while nobody else asks for it, because reopening costs 0.3-1 s at
    20k-100k chunks and the first question after a pause would pay it. A process that wants the shard
    leaves a `.waiting` mark; the holder hands over within ~0.1 s, after its current operation or at
    once when idle, so the web app and the CLI (or two CLIs) take turns instead of failing.
    """

    backend = "qdrant-edge"

    def __init__(
        self, path: Path, *, wait_seconds: float = 120.0, idle_seconds: float | None = None, poll_seconds: float = 0.025
    ):
        import qdrant_edge  # noqa: F401  (fail early with a clear error if the engine is missing)

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._meta_path = self.path.parent / f"{self.path.name}.json"
        self._lock_file = open(self.path.parent / f"{self.path.name}.lock", "a+")
        self._waiting_mark = self.path.parent / f"{self.path.name}.waiting"
        self._written_path = self.path.parent / f"{self.path.name}.written"
        self._wait = wait_seconds
        self._idle = idle_seconds  # None: hold the shard until another process asks for it
        self._poll = poll_seconds
        self._mutex = threading.RLock()
        self._shard = None
        self._kept: dict[str, bool] | None = None  # which vectors beyond the searched ones the shard keeps
        self._locked = False
        self._last_use = 0.0
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True, name="zhiku-edge-handover")
        self._watcher.start()

    # ------------------------------------------------------------- lifecycle
    @contextmanager
    def _use(self):
        """The open shard, holding the process lock and the file lock for the duration."""
        with self._mutex:
            if self._closed.is_set():
                raise IndexUnavailable("the index is closed")
            if not self._locked:
                self._acquire_file_lock()
                self._locked = True
                try:
                    self._shard = self._open()
                except BaseException as e:
                    self._release()
                    if _engine_error(e):
                        raise self._unreadable(e) from e
                    raise
            try:
                yield self._shard
            except BaseException as e:
                if not _engine_error(e):
                    raise
                # a panic may leave the engine's state inconsistent: drop the handle, the next call reopens
                self._release()
                raise self._unreadable(e) from e
            finally:
                self._last_use = time.monotonic()
                if self._locked and self._someone_waits():
                    self._release()

    def _unreadable(self, e: BaseException) -> IndexUnavailable:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "WouldBlock" in detail:
            return IndexUnavailable(
                f"the index at {self.path} is open in a process that does not take turns (an older zhiku?): stop it"
            )
        return IndexUnavailable(
            f"the index at {self.path} cannot be read ({detail[:300]}): run `zhiku reindex` to rebuild it "
            "from the stored originals"
        )

    def _acquire_file_lock(self) -> None:
        deadline = time.monotonic() + self._wait
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._waiting_mark.unlink(missing_ok=True)
                return
            except BlockingIOError:
                # refreshed on every try, so the holder can tell a live waiter from a mark left by a dead one
                self._waiting_mark.touch()
                if time.monotonic() > deadline:
                    raise IndexUnavailable(
                        f"the index at {self.path} stayed busy for {self._wait:.0f} s (another zhiku process is "
                        "using it); try again, or use a Qdrant server (QDRANT_URL) for heavy concurrent use"
                    ) from None
                time.sleep(0.02)

    def _someone_waits(self) -> bool:
        try:
            age = time.time() - self._waiting_mark.stat().st_mtime
        except FileNotFoundError:
            return False
        if age > STALE_MARK_SECONDS:
            self._waiting_mark.unlink(missing_ok=True)
            return False
        return True

    def _open(self):
        from qdrant_edge import EdgeShard

        if (self.path / "edge_config.json").exists():
            return EdgeShard.load(str(self.path))
        return None  # created by ensure() once the vector size is known

    def _release(self) -> None:
        try:
            if self._shard is not None:
                # close() flushes; the write-ahead log already made every update durable
                self._shard.close()
        except BaseException as e:
            if not _engine_error(e):
                raise
            log.warning("closing the index at %s failed: %s", self.path, e)
        finally:
            self._shard = None
            if self._locked:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._locked = False

    def _watch(self) -> None:
        """Hand the shard over when another process waits (or after idle_seconds, if set)."""
        while not self._closed.wait(self._poll):
            if not self._locked:
                continue
            idle = self._idle is not None and time.monotonic() - self._last_use >= self._idle
            if idle or self._someone_waits():
                with self._mutex:
                    if self._locked:
                        self._release()

    def close(self) -> None:
        """Close the shard and release the lock at once; later calls raise IndexUnavailable."""
        with self._mutex:
            if self._closed.is_set():
                return
            self._closed.set()
            self._release()
            self._lock_file.close()

    def optimize(self, min_unindexed: int = OPTIMIZE_MIN_UNINDEXED) -> bool:
        """Build the HNSW graphs of the chunks written since the last optimization, in a child process.

        Args:
            min_unindexed: do nothing while fewer chunks than this lack a graph.

        Returns:
            True if a graph was built.
        """
        # the engine holds the GIL for the whole build (~7 s per 20k new chunks here): in the caller's
        # process it would freeze every thread of the web app. Other callers wait for the shard meanwhile,
        # which is why ingestion calls this after each run (or every ~20k chunks), not once after 100k.
        if self.unindexed() < max(min_unindexed, 1):
            return False
        with self._mutex:
            if self._closed.is_set():
                raise IndexUnavailable("the index is closed")
            self._release()
            started = time.monotonic()
            child = subprocess.run(
                [sys.executable, "-m", "zhiku.retrieval.edge", "optimize", str(self.path), str(self._wait)],
                capture_output=True, text=True,
            )
        if child.returncode != 0:
            lines = child.stderr.strip().splitlines() or [f"exit code {child.returncode}"]
            raise IndexUnavailable(f"optimizing the index at {self.path} failed: {lines[-1]}")
        log.info("optimized the index at %s in %.1f s", self.path, time.monotonic() - started)
        return child.stdout.strip() == "optimized"

    def unindexed(self) -> int:
        """Chunks written since the last optimization or lacking an HNSW graph (searched exhaustively)."""
        with self._use() as shard:
            if shard is None:
                return 0
            info = shard.info()
            written = self._written_since_optimize()
        # every point has a dense and a sparse vector, and the sparse ones always count as indexed; deleted
        # points stay counted as indexed until a rebuild, so an update in place only shows in `written`
        return max(written, 2 * info.points_count - info.indexed_vectors_count)

    def _written_since_optimize(self, add: int = 0, reset: bool = False) -> int:
        """The shard's count of chunks written since the last optimization (kept beside it, under the lock)."""
        try:
            written = int(self._written_path.read_text())
        except (OSError, ValueError):
            written = 0
        if add or reset:
            written = 0 if reset else written + add
            self._written_path.write_text(str(written))
        return written

    # ---------------------------------------------------------------- schema
    def ensure(self, dim: int, embed_model: str) -> None:
        """Create the shard (named dense + sparse vectors, payload indexes) or check it matches the model."""
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeOptimizersConfig,
            EdgeShard,
            EdgeSparseVectorParams,
            EdgeVectorParams,
            HnswIndexConfig,
            IntegerIndexParams,
            KeywordIndexParams,
            Memory,
            Modifier,
            MultiVectorComparator,
            MultiVectorConfig,
            PayloadSchemaType,
            UpdateOperation,
            VectorStorageDatatype,
        )

        with self._mutex, self._use():
            if self._shard is not None:
                try:
                    meta = json.loads(self._meta_path.read_text()) if self._meta_path.exists() else {}
                except (ValueError, OSError) as e:
                    raise IndexUnavailable(
                        f"{self._meta_path} cannot be read ({e}): run `zhiku reindex` to rebuild the index"
                    ) from e
                if meta.get("dim", dim) != dim:
                    raise IndexUnavailable(
                        f"the index at {self.path} was built with {meta.get('embed_model')} ({meta.get('dim')} "
                        f"dimensions), not {embed_model} ({dim}): run `zhiku reindex` or set ZHIKU_INDEX to a new name"
                    )
                if not (meta.get(SENTENCES) and meta.get(LATENT)):
                    log.warning("the index at %s has no %s vectors (built by an older zhiku): ranking is less "
                                "precise until `zhiku reindex`", self.path,
                                "sentence" if not meta.get(SENTENCES) else "latent-term")
            else:
                config = EdgeConfig(
                    vectors={
                        DENSE: EdgeVectorParams(size=dim, distance=Distance.Cosine),
                        # read back for ranking, never searched: no graph, half the bytes
                        SENTENCES: EdgeVectorParams(
                            size=dim, distance=Distance.Cosine,
                            multivector_config=MultiVectorConfig(MultiVectorComparator.MaxSim),
                            datatype=VectorStorageDatatype.Float16,
                            hnsw_config=HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=10_000),
                        ),
                    },
                    sparse_vectors={
                        SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf),
                        # read back for ranking, never searched: its inverted index stays on disk
                        LATENT: EdgeSparseVectorParams(memory=Memory.Cached),
                    },
                    optimizers=EdgeOptimizersConfig(default_segment_number=SEGMENTS),
                )
                self._shard = EdgeShard.create(str(self.path), config)
                self._meta_path.write_text(json.dumps(
                    {"embed_model": embed_model, "dim": dim, SENTENCES: True, LATENT: True}))
                self._kept = {SENTENCES: True, LATENT: True}
            # every field a filter uses needs an index, or each candidate's payload is read from disk
            indexes = {
                "collection": KeywordIndexParams(is_tenant=True),
                "doc_id": PayloadSchemaType.Keyword,
                "file_name": PayloadSchemaType.Keyword,
                "lang": PayloadSchemaType.Keyword,
                "version": PayloadSchemaType.Keyword,
                "chunk_index": IntegerIndexParams(lookup=True),
            }
            existing = set(self._shard.info().payload_schema)
            for key, params in indexes.items():
                if key not in existing:
                    self._shard.update(UpdateOperation.create_field_index(key, params))

    def _keeps(self, name: str) -> bool:
        """Whether the shard keeps these vectors (shards built by older versions keep fewer)."""
        if self._kept is None:
            try:
                meta = json.loads(self._meta_path.read_text())
            except (OSError, ValueError):
                return False
            self._kept = {SENTENCES: bool(meta.get(SENTENCES)), LATENT: bool(meta.get(LATENT))}
        return self._kept[name]

    @property
    def sentences(self) -> bool:
        """Whether the shard keeps sentence vectors."""
        return self._keeps(SENTENCES)

    @property
    def latent(self) -> bool:
        """Whether the shard keeps latent-term vectors."""
        return self._keeps(LATENT)

    @property
    def _read(self) -> list[str]:
        """The vectors a search returns with each hit."""
        return [DENSE] + [SENTENCES] * self.sentences + [LATENT] * self.latent

    # ----------------------------------------------------------------- data
    def _filter(self, scope: Scope, exclude_lang: str | None = None):
        from qdrant_edge import FieldCondition, Filter, MatchAny, MatchValue

        must = []
        if scope.collections is not None:
            must.append(FieldCondition(key="collection", match=MatchAny(list(scope.collections))))
        if scope.doc_ids is not None:
            must.append(FieldCondition(key="doc_id", match=MatchAny(list(scope.doc_ids))))
        if scope.file_names is not None:
            must.append(FieldCondition(key="file_name", match=MatchAny(list(scope.file_names))))
        if scope.versions is not None:
            must.append(FieldCondition(key="version", match=MatchAny(list(scope.versions))))
        if scope.first_chunk_only:
            must.append(FieldCondition(key="chunk_index", match=MatchValue(0)))
        must_not = [FieldCondition(key="lang", match=MatchValue(exclude_lang))] if exclude_lang else []
        return Filter(must=must, must_not=must_not) if must or must_not else None

    def _shard_or_empty(self, shard):
        if shard is None:
            raise IndexUnavailable("the index has not been created yet: ingest a document first")
        return shard

    def upsert(self, chunks: list[Chunk], dense: np.ndarray, sparse: list[Sparse],
               sentences: Sentences | None = None, latent: list[Sparse] | None = None) -> None:
        """Write chunks with their vectors; durable once this returns (write-ahead log)."""
        from qdrant_edge import Point, SparseVector, UpdateOperation

        keep = sentences is not None and self.sentences
        keep_latent = latent is not None and self.latent
        points = []
        for i, (chunk, vec, sp) in enumerate(zip(chunks, dense, sparse, strict=True)):
            vector = {DENSE: vec.tolist(), SPARSE: SparseVector(indices=sp[0], values=sp[1])}
            if keep and len(sentences[i]):
                vector[SENTENCES] = np.asarray(sentences[i]).tolist()
            if keep_latent and latent[i][0]:
                vector[LATENT] = SparseVector(indices=list(latent[i][0]), values=list(latent[i][1]))
            points.append(Point(id=chunk.point_id, vector=vector, payload=chunk.to_payload()))
        if points:
            with self._use() as shard:
                self._shard_or_empty(shard).update(UpdateOperation.upsert_points(points))
                self._written_since_optimize(add=len(points))

    def delete(self, scope: Scope) -> None:
        """Remove every chunk in the scope."""
        from qdrant_edge import UpdateOperation

        flt = self._filter(scope)
        if flt is None:
            raise ValueError("refusing to delete without a scope")
        with self._use() as shard:
            if shard is not None:
                shard.update(UpdateOperation.delete_points_by_filter(flt))

    def count(self, scope: Scope) -> int:
        """Number of chunks in the scope."""
        from qdrant_edge import CountRequest

        with self._use() as shard:
            return 0 if shard is None else int(shard.count(CountRequest(exact=True, filter=self._filter(scope))))

    def chunks(self, scope: Scope, limit: int = 10_000) -> list[Chunk]:
        """Chunks in the scope (payload only)."""
        from qdrant_edge import ScrollRequest

        out: list[Chunk] = []
        offset = None
        with self._use() as shard:
            if shard is None:
                return out
            while len(out) < limit:
                records, offset = shard.scroll(ScrollRequest(
                    limit=min(256, limit - len(out)), offset=offset, filter=self._filter(scope),
                    with_payload=True, with_vector=False,
                ))
                out.extend(Chunk.from_payload(r.payload) for r in records)
                if offset is None or not records:
                    break
        return out

    def present(self, term_ids: list[int], scope: Scope) -> set[int]:
        """The terms some chunk in the scope contains (a single-term keyword search each; in-process, ~0.1 ms)."""
        return {i for i in term_ids if self.query(None, ([i], [1.0]), scope, 1, vectors=False)}

    def query(
        self, dense, sparse, scope: Scope, limit: int, fusion: Fusion | None = None, language: str | None = None,
        vectors: bool = True,
    ) -> list[Hit]:
        """Dense, sparse or hybrid search; hybrid fuses the prefetches with RRF inside the engine."""
        from qdrant_edge import Fusion as EdgeFusion
        from qdrant_edge import Prefetch, Query, QueryRequest, SparseVector

        fusion = fusion or Fusion()
        flt = self._filter(scope)
        sparse_vec = None if sparse is None or not sparse[0] else SparseVector(indices=sparse[0], values=sparse[1])
        read = self._read if vectors else False
        common = dict(limit=limit, with_payload=True, with_vector=read, filter=flt)
        if dense is not None and sparse_vec is not None:
            depth = max(limit, fusion.depth)
            prefetches = [
                Prefetch(query=Query.Nearest(dense.tolist(), using=DENSE), limit=depth, filter=flt),
                Prefetch(query=Query.Nearest(sparse_vec, using=SPARSE), limit=depth, filter=flt),
            ]
            weights = list(fusion.weights[:2])
            if fusion.cross_language and language:
                other = self._filter(scope, exclude_lang=language)
                prefetches.append(Prefetch(query=Query.Nearest(dense.tolist(), using=DENSE), limit=depth, filter=other))
                weights.append(fusion.weights[2])
            # the scope is applied inside each prefetch; a top-level filter would be pushed down again
            request = QueryRequest(
                prefetches=prefetches, query=EdgeFusion.Rrf(fusion.k, weights=weights),
                limit=limit, with_payload=True, with_vector=read,
            )
        elif dense is not None:
            request = QueryRequest(query=Query.Nearest(dense.tolist(), using=DENSE), **common)
        elif sparse_vec is not None:
            request = QueryRequest(query=Query.Nearest(sparse_vec, using=SPARSE), **common)
        else:
            return []
        with self._use() as shard:
            if shard is None:
                return []
            points = shard.query(request)
        return [
            Hit(Chunk.from_payload(p.payload), float(p.score), rank, dense=(p.vector or {}).get(DENSE),
                sentences=sentence_vectors(p.vector), latent=latent_vector(p.vector))
            for rank, p in enumerate(points, start=1)
        ]


def _optimize_main(path: str, wait_seconds: str) -> int:
    """Entry point of the child process that optimize() starts."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        # die with the parent (the build holds the GIL, so no Python thread could notice); killing
        # the engine mid-build is safe: the shard reloads unoptimized with every point
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:
            return 1
    index = EdgeIndex(Path(path), wait_seconds=float(wait_seconds))
    try:
        with index._use() as shard:
            optimized = shard is not None and bool(shard.optimize())
            index._written_since_optimize(reset=True)
    finally:
        index.close()
    print("optimized" if optimized else "unchanged")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "optimize":
        sys.exit("usage: python -m zhiku.retrieval.edge optimize SHARD_DIR WAIT_SECONDS")
    try:
        sys.exit(_optimize_main(sys.argv[2], sys.argv[3]))
    except IndexUnavailable as e:
        sys.exit(f"zhiku: {e}")
