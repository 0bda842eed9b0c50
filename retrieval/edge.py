"""The embedded default backend: Qdrant's engine in-process (qdrant-edge), shared safely between processes."""

from __future__ import annotations

import fcntl
import json
import logging
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from zhiku.retrieval.index import DENSE, SPARSE, Fusion, Scope, Sparse
from zhiku.retrieval.types import Chunk, Hit
from zhiku.core.errors import IndexUnavailable

log = logging.getLogger(__name__)


class EdgeIndex:
    """An edge shard under the data dir.

    A shard allows one open handle, so every process takes an exclusive file lock, opens the shard for
    a burst of operations and closes it again after `idle_seconds` without use. The web app and the
    CLI (or two CLIs) therefore take turns instead of failing with a lock error; a writer releases
    the shard between batches.
    """

    backend = "qdrant-edge"

    def __init__(self, path: Path, *, idle_seconds: float = 1.0, wait_seconds: float = 120.0):
        import qdrant_edge  # noqa: F401  (fail early with a clear error if the engine is missing)

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._meta_path = self.path.parent / f"{self.path.name}.json"
        self._lock_file = open(self.path.parent / f"{self.path.name}.lock", "a+")
        # a process waiting for the shard leaves this mark, so the holder hands over after its current
        # operation instead of keeping the shard through a stream of its own requests
        self._waiting_mark = self.path.parent / f"{self.path.name}.waiting"
        self._idle = idle_seconds
        self._wait = wait_seconds
        self._mutex = threading.RLock()
        self._shard = None
        self._locked = False
        self._last_use = 0.0
        self._closed = False
        self._reaper = threading.Thread(target=self._release_when_idle, daemon=True, name="zhiku-edge-idle")
        self._reaper.start()

    # ------------------------------------------------------------- lifecycle
    @contextmanager
    def _use(self):
        """The open shard, holding the process lock and the file lock for the duration."""
        with self._mutex:
            if self._closed:
                raise IndexUnavailable("the index is closed")
            if not self._locked:
                self._acquire_file_lock()
                self._locked = True
                try:
                    self._shard = self._open()
                except Exception as e:
                    self._release()
                    raise IndexUnavailable(f"cannot open the index at {self.path}: {e}") from e
            try:
                yield self._shard
            finally:
                self._last_use = time.monotonic()
                if self._waiting_mark.exists():
                    self._release()

    def _acquire_file_lock(self) -> None:
        deadline = time.monotonic() + self._wait
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._waiting_mark.unlink(missing_ok=True)
                return
            except BlockingIOError:
                self._waiting_mark.touch()
                if time.monotonic() > deadline:
                    raise IndexUnavailable(
                        f"the index at {self.path} stayed busy for {self._wait:.0f} s (another zhiku process is "
                        "using it); try again, or use a Qdrant server (QDRANT_URL) for heavy concurrent use"
                    ) from None
                time.sleep(0.02)

    def _open(self):
        from qdrant_edge import EdgeShard

        if (self.path / "edge_config.json").exists():
            return EdgeShard.load(str(self.path))
        return None  # created by ensure() once the vector size is known

    def _release(self) -> None:
        try:
            if self._shard is not None:
                self._shard.flush()
                self._shard.close()
        finally:
            self._shard = None
            if self._locked:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._locked = False

    def _release_when_idle(self) -> None:
        while not self._closed:
            time.sleep(self._idle / 4)
            with self._mutex:
                if self._locked and time.monotonic() - self._last_use >= self._idle:
                    self._release()

    def close(self) -> None:
        """Flush, close the shard and release the lock."""
        with self._mutex:
            self._release()
            self._closed = True
        self._lock_file.close()

    # ---------------------------------------------------------------- schema
    def ensure(self, dim: int, embed_model: str) -> None:
        """Create the shard (named dense + sparse vectors, payload indexes) or check it matches the model."""
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeShard,
            EdgeSparseVectorParams,
            EdgeVectorParams,
            IntegerIndexParams,
            KeywordIndexParams,
            Modifier,
            PayloadSchemaType,
            UpdateOperation,
        )

        with self._mutex, self._use():
            if self._shard is not None:
                meta = json.loads(self._meta_path.read_text()) if self._meta_path.exists() else {}
                if meta.get("dim", dim) != dim:
                    raise IndexUnavailable(
                        f"the index at {self.path} was built with {meta.get('embed_model')} ({meta.get('dim')} "
                        f"dimensions), not {embed_model} ({dim}): run `zhiku reindex` or set ZHIKU_INDEX to a new name"
                    )
            else:
                config = EdgeConfig(
                    vectors={DENSE: EdgeVectorParams(size=dim, distance=Distance.Cosine)},
                    sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
                )
                self._shard = EdgeShard.create(str(self.path), config)
                self._meta_path.write_text(json.dumps({"embed_model": embed_model, "dim": dim}))
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

    def upsert(self, chunks: list[Chunk], dense: np.ndarray, sparse: list[Sparse]) -> None:
        """Write chunks with their vectors; durable once this returns (write-ahead log)."""
        from qdrant_edge import Point, SparseVector, UpdateOperation

        points = [
            Point(
                id=chunk.point_id,
                vector={DENSE: vec.tolist(), SPARSE: SparseVector(indices=sp[0], values=sp[1])},
                payload=chunk.to_payload(),
            )
            for chunk, vec, sp in zip(chunks, dense, sparse, strict=True)
        ]
        if points:
            with self._use() as shard:
                self._shard_or_empty(shard).update(UpdateOperation.upsert_points(points))

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

    def query(
        self, dense, sparse, scope: Scope, limit: int, fusion: Fusion | None = None, language: str | None = None
    ) -> list[Hit]:
        """Dense, sparse or hybrid search; hybrid fuses the prefetches with RRF inside the engine."""
        from qdrant_edge import Fusion as EdgeFusion
        from qdrant_edge import Prefetch, Query, QueryRequest, SparseVector

        fusion = fusion or Fusion()
        flt = self._filter(scope)
        sparse_vec = None if sparse is None or not sparse[0] else SparseVector(indices=sparse[0], values=sparse[1])
        common = dict(limit=limit, with_payload=True, with_vector=[DENSE], filter=flt)
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
                limit=limit, with_payload=True, with_vector=[DENSE],
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
            Hit(Chunk.from_payload(p.payload), float(p.score), rank, dense=(p.vector or {}).get(DENSE))
            for rank, p in enumerate(points, start=1)
        ]
