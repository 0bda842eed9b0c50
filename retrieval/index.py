"""The index schema and its Qdrant backends: named dense + sparse vectors, chunk payloads, filters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable, Protocol

import numpy as np

from zhiku.retrieval.types import Chunk, Hit, User
from zhiku.core.errors import IndexUnavailable

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "bm25"
# the dense vectors of a chunk's sentences (a multivector, read back, never searched): the ranker compares
# the question with the best sentence, since a passage's single vector blurs the several things it says
SENTENCES = "sentences"
# a chunk's latent-term vector (embeddings.E5Embedder.latent; sparse, read back, never searched)
LATENT = "latent"
Sparse = tuple[list[int], list[float]]
Sentences = list[np.ndarray]  # per chunk, shape (n_sentences, dim)


def sentence_vectors(vectors: dict | None) -> np.ndarray | None:
    """A point's sentence vectors as one array, or None when the index has none for it."""
    found = (vectors or {}).get(SENTENCES)
    return np.asarray(found, dtype=np.float32) if found else None


def latent_vector(vectors: dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A point's latent-term vector as (indices, values) arrays, or None when the index has none for it."""
    found = (vectors or {}).get(LATENT)
    if found is None:
        return None
    indices, values = (found.indices, found.values) if hasattr(found, "indices") else (found["indices"], found["values"])
    return np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float32)


@dataclass
class Scope:
    """Which chunks a query or count may see; becomes one Qdrant filter, never a Python post-filter."""

    collections: list[str] | None = None
    doc_ids: list[str] | None = None
    file_names: list[str] | None = None
    first_chunk_only: bool = False
    versions: list[str] | None = None

    @classmethod
    def for_user(cls, user: User, collections: Iterable[str] | None = None, **kw) -> Scope:
        """The scope a user may read, narrowed to the named collections."""
        wanted = None if collections is None else set(collections)
        if user.readable is not None:
            wanted = set(user.readable) if wanted is None else wanted & set(user.readable)
        return cls(collections=None if wanted is None else sorted(wanted), **kw)


@dataclass(frozen=True)
class Fusion:
    """How hybrid search fuses the dense and sparse candidate lists (reciprocal rank fusion)."""

    k: int = 10
    # weights of the dense, sparse and cross-language dense lists; the third list searches only
    # passages in the other language, where a multilingual model ranks evidence lower than any
    # same-language passage, so English questions still reach Chinese documents (and vice versa)
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    depth: int = 60  # candidates each prefetch contributes
    cross_language: bool = True


@dataclass
class IndexStats:
    """Counts of the whole index or one scope."""

    documents: int
    chunks: int
    collections: dict[str, int] = field(default_factory=dict)


class Index(Protocol):
    """What the rest of zhiku needs from a vector store."""

    backend: str

    def ensure(self, dim: int, embed_model: str) -> None:
        """Create the collection if missing; refuse if it was built with another embedding model."""

    def upsert(self, chunks: list[Chunk], dense: np.ndarray, sparse: list[Sparse],
               sentences: Sentences | None = None, latent: list[Sparse] | None = None) -> None:
        """Write chunks with their vectors (idempotent: same chunk, same point)."""

    def delete(self, scope: Scope) -> None:
        """Remove every chunk in the scope."""

    def count(self, scope: Scope) -> int:
        """Number of chunks in the scope."""

    def chunks(self, scope: Scope, limit: int = 10_000) -> list[Chunk]:
        """Chunks in the scope (payload only)."""

    def query(
        self,
        dense: np.ndarray | None,
        sparse: Sparse | None,
        scope: Scope,
        limit: int,
        fusion: Fusion | None = None,
        language: str | None = None,
        vectors: bool = True,
    ) -> list[Hit]:
        """Dense, sparse or hybrid (fused by RRF) search inside the scope; language enables the cross-language list.
        vectors=False returns the hits without their vectors (only scores are wanted)."""

    def present(self, term_ids: list[int], scope: Scope) -> set[int]:
        """The keyword terms (sparse indices) that some chunk in the scope contains."""

    def optimize(self) -> bool:
        """Build search graphs after a large ingestion; True if any work was done."""

    def close(self) -> None:
        """Release files and connections."""


class QdrantIndex:
    """qdrant-client backend: a Qdrant server (QDRANT_URL) or qdrant-client's embedded storage."""

    def __init__(self, name: str, *, url: str | None = None, api_key: str | None = None, path=None):
        from qdrant_client import QdrantClient

        self.name = name
        self.sentences: bool | None = None  # whether the collection keeps sentence vectors (None: not looked yet)
        self.latent: bool | None = None  # whether it keeps latent-term vectors (None: not looked yet)
        self._local = url is None
        self.backend = "qdrant-local" if self._local else "qdrant-server"
        try:
            if url is None:
                self._client = QdrantClient(path=str(path))
            else:
                self._client = QdrantClient(url=url, api_key=api_key, timeout=30)
        except RuntimeError as e:
            raise IndexUnavailable(
                f"the index at {path} is open in another zhiku process (is the web app running?): "
                "stop it, or run a Qdrant server and set QDRANT_URL so several processes can share it"
            ) from e

    def _filter(self, scope: Scope, exclude_lang: str | None = None):
        from qdrant_client import models as m

        must = []
        if scope.collections is not None:
            must.append(m.FieldCondition(key="collection", match=m.MatchAny(any=list(scope.collections))))
        if scope.doc_ids is not None:
            must.append(m.FieldCondition(key="doc_id", match=m.MatchAny(any=list(scope.doc_ids))))
        if scope.file_names is not None:
            must.append(m.FieldCondition(key="file_name", match=m.MatchAny(any=list(scope.file_names))))
        if scope.versions is not None:
            must.append(m.FieldCondition(key="version", match=m.MatchAny(any=list(scope.versions))))
        if scope.first_chunk_only:
            must.append(m.FieldCondition(key="chunk_index", match=m.MatchValue(value=0)))
        must_not = [m.FieldCondition(key="lang", match=m.MatchValue(value=exclude_lang))] if exclude_lang else []
        return m.Filter(must=must, must_not=must_not) if must or must_not else None

    def ensure(self, dim: int, embed_model: str) -> None:
        """Create the collection (named dense + sparse vectors, payload indexes) if missing."""
        from qdrant_client import models as m

        from qdrant_client.http.exceptions import ResponseHandlingException

        try:
            exists = self._client.collection_exists(self.name)
        except (ResponseHandlingException, ConnectionError, OSError) as e:
            raise IndexUnavailable(f"cannot reach the Qdrant server ({e}); check QDRANT_URL") from e
        if exists:
            info = self._client.get_collection(self.name)
            vectors = info.config.params.vectors
            size = vectors[DENSE].size if isinstance(vectors, dict) else None
            if size != dim:
                raise IndexUnavailable(
                    f"the index {self.name!r} was built with {size}-dimensional vectors, but the embedding "
                    f"model {embed_model!r} makes {dim}: run `zhiku reindex` or set ZHIKU_INDEX to a new name"
                )
            self._look(info)
            if not (self.sentences and self.latent):
                log.warning("the index %r has no %s vectors (built by an older zhiku): ranking is less precise "
                            "until `zhiku reindex`", self.name, "sentence" if not self.sentences else "latent-term")
            return
        self._client.create_collection(
            self.name,
            vectors_config={
                DENSE: m.VectorParams(size=dim, distance=m.Distance.COSINE),
                # read back for ranking, never searched: no graph, half the bytes
                SENTENCES: m.VectorParams(
                    size=dim, distance=m.Distance.COSINE, datatype=m.Datatype.FLOAT16,
                    multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
                    hnsw_config=m.HnswConfigDiff(m=0),
                ),
            },
            sparse_vectors_config={
                SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF),
                # read back for ranking, never searched: kept on disk, no inverted index in memory
                LATENT: m.SparseVectorParams(index=m.SparseIndexParams(on_disk=True)),
            },
        )
        self.sentences = self.latent = True
        if not self._local:
            # every search filters by the user's collections: a tenant index keeps each collection's points
            # together on disk, so a small collection is searched without scanning the others
            self._client.create_payload_index(
                self.name, "collection", m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True))
            for key in ("doc_id", "file_name", "lang", "version"):
                self._client.create_payload_index(self.name, key, m.PayloadSchemaType.KEYWORD)
            self._client.create_payload_index(self.name, "chunk_index", m.PayloadSchemaType.INTEGER)

    def upsert(self, chunks: list[Chunk], dense: np.ndarray, sparse: list[Sparse],
               sentences: Sentences | None = None, latent: list[Sparse] | None = None) -> None:
        """Write chunks with their vectors and wait until they are searchable."""
        from qdrant_client import models as m

        points = []
        read = self._read if chunks else []
        keep = sentences is not None and SENTENCES in read
        keep_latent = latent is not None and LATENT in read
        for i, (chunk, vec, sp) in enumerate(zip(chunks, dense, sparse, strict=True)):
            vector = {DENSE: vec.tolist(), SPARSE: m.SparseVector(indices=sp[0], values=sp[1])}
            if keep and len(sentences[i]):
                vector[SENTENCES] = np.asarray(sentences[i]).tolist()
            if keep_latent and latent[i][0]:
                vector[LATENT] = m.SparseVector(indices=list(latent[i][0]), values=list(latent[i][1]))
            points.append(m.PointStruct(id=chunk.point_id, vector=vector, payload=chunk.to_payload()))
        if points:
            self._client.upsert(self.name, points=points, wait=True)

    def delete(self, scope: Scope) -> None:
        """Remove every chunk in the scope."""
        from qdrant_client import models as m

        flt = self._filter(scope)
        if flt is None:
            raise ValueError("refusing to delete without a scope")
        self._client.delete(self.name, points_selector=m.FilterSelector(filter=flt), wait=True)

    def count(self, scope: Scope) -> int:
        """Number of chunks in the scope."""
        return self._client.count(self.name, count_filter=self._filter(scope), exact=True).count

    def chunks(self, scope: Scope, limit: int = 10_000) -> list[Chunk]:
        """Chunks in the scope, read by scrolling."""
        out: list[Chunk] = []
        offset = None
        while len(out) < limit:
            points, offset = self._client.scroll(
                self.name, scroll_filter=self._filter(scope), limit=min(256, limit - len(out)),
                offset=offset, with_payload=True, with_vectors=False,
            )
            out.extend(Chunk.from_payload(p.payload) for p in points)
            if offset is None:
                break
        return out

    def query(
        self, dense, sparse, scope: Scope, limit: int, fusion: Fusion | None = None, language: str | None = None,
        vectors: bool = True,
    ) -> list[Hit]:
        """Dense, sparse or hybrid search; hybrid fuses the prefetches with RRF inside Qdrant."""
        from qdrant_client import models as m

        read = self._read if vectors else False
        fusion = fusion or Fusion()
        flt = self._filter(scope)
        sparse_vec = None if sparse is None or not sparse[0] else m.SparseVector(indices=sparse[0], values=sparse[1])
        if dense is not None and sparse_vec is not None:
            depth = max(limit, fusion.depth)
            prefetch = [
                m.Prefetch(query=dense.tolist(), using=DENSE, limit=depth, filter=flt),
                m.Prefetch(query=sparse_vec, using=SPARSE, limit=depth, filter=flt),
            ]
            weights = list(fusion.weights[:2])
            if fusion.cross_language and language:
                other = self._filter(scope, exclude_lang=language)
                prefetch.append(m.Prefetch(query=dense.tolist(), using=DENSE, limit=depth, filter=other))
                weights.append(fusion.weights[2])
            result = self._client.query_points(
                self.name,
                prefetch=prefetch,
                query=m.RrfQuery(rrf=m.Rrf(k=fusion.k, weights=weights)),
                limit=limit,
                with_payload=True,
                with_vectors=read,
            )
        elif dense is not None:
            result = self._client.query_points(
                self.name, query=dense.tolist(), using=DENSE, query_filter=flt, limit=limit, with_payload=True,
                with_vectors=read,
            )
        elif sparse_vec is not None:
            result = self._client.query_points(
                self.name, query=sparse_vec, using=SPARSE, query_filter=flt, limit=limit, with_payload=True,
                with_vectors=read,
            )
        else:
            return []
        return [
            Hit(Chunk.from_payload(p.payload), float(p.score), rank, dense=(p.vector or {}).get(DENSE),
                sentences=sentence_vectors(p.vector), latent=latent_vector(p.vector))
            for rank, p in enumerate(result.points, start=1)
        ]

    def present(self, term_ids: list[int], scope: Scope) -> set[int]:
        """The terms some chunk in the scope contains: one batch of single-term keyword searches."""
        from qdrant_client import models as m

        if not term_ids:
            return set()
        flt = self._filter(scope)
        requests = [m.QueryRequest(query=m.SparseVector(indices=[i], values=[1.0]), using=SPARSE, filter=flt, limit=1)
                    for i in term_ids]
        results = self._client.query_batch_points(self.name, requests=requests)
        return {i for i, result in zip(term_ids, results) if result.points}

    @property
    def _read(self) -> list[str]:
        """The vectors a search returns with each hit."""
        if self.sentences is None or self.latent is None:
            self._look(self._client.get_collection(self.name))
        return [DENSE] + [SENTENCES] * bool(self.sentences) + [LATENT] * bool(self.latent)

    def _look(self, info) -> None:
        """Which vectors beyond the searched ones the collection keeps (older versions kept fewer)."""
        vectors = info.config.params.vectors
        self.sentences = isinstance(vectors, dict) and SENTENCES in vectors
        self.latent = LATENT in (info.config.params.sparse_vectors or {})

    def drop(self) -> None:
        """Delete this collection (a retired or failed generation)."""
        if self._client.collection_exists(self.name):
            self._client.delete_collection(self.name)

    def point_alias(self, alias: str) -> None:
        """Point the alias at this collection in one atomic operation (a generation switch)."""
        from qdrant_client import models as m

        ops = []
        if any(a.alias_name == alias for a in self._client.get_aliases().aliases):
            ops.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=alias)))
        ops.append(m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=self.name, alias_name=alias)))
        self._client.update_collection_aliases(change_aliases_operations=ops)

    def optimize(self) -> bool:
        """Nothing to do: a server builds its HNSW graphs in the background, and the embedded mode has none."""
        return False

    def close(self) -> None:
        """Release the storage lock or connection."""
        self._client.close()


class ActiveIndex:
    """The index that serves right now: each call goes to whatever `resolve` returns (it follows re-indexes)."""

    def __init__(self, resolve):
        self._resolve = resolve

    @property
    def backend(self) -> str:
        """Which Qdrant backend serves."""
        return self._resolve().backend

    def ensure(self, dim: int, embed_model: str) -> None:
        """Create or check the serving index."""
        self._resolve().ensure(dim, embed_model)

    def upsert(self, chunks: list[Chunk], dense: np.ndarray, sparse: list[Sparse],
               sentences: Sentences | None = None, latent: list[Sparse] | None = None) -> None:
        """Write chunks into the serving index."""
        self._resolve().upsert(chunks, dense, sparse, sentences, latent)

    def delete(self, scope: Scope) -> None:
        """Remove chunks from the serving index."""
        self._resolve().delete(scope)

    def count(self, scope: Scope) -> int:
        """Count chunks in the serving index."""
        return self._resolve().count(scope)

    def chunks(self, scope: Scope, limit: int = 10_000) -> list[Chunk]:
        """Read chunks from the serving index."""
        return self._resolve().chunks(scope, limit)

    def query(self, dense, sparse, scope: Scope, limit: int, fusion: Fusion | None = None,
              language: str | None = None, vectors: bool = True) -> list[Hit]:
        """Search the serving index."""
        return self._resolve().query(dense, sparse, scope, limit, fusion, language, vectors)

    def present(self, term_ids: list[int], scope: Scope) -> set[int]:
        """Keyword terms the serving index holds."""
        return self._resolve().present(term_ids, scope)

    def close(self) -> None:
        """Nothing to release: the generations own the open indexes."""
