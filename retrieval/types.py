"""The small types services exchange: chunks in, hits and answers out."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field

_POINT_NS = uuid.UUID("6f0c1c1e-4d6b-4a8e-9b1e-7a6b9a3f2c10")


@dataclass(frozen=True)
class User:
    """The acting user; readable=None means every collection."""

    name: str
    readable: frozenset[str] | None = None
    is_admin: bool = False
    writable: frozenset[str] | None = None  # None: every collection the user may read

    def can_read(self, collection: str) -> bool:
        """Whether this user may read the collection."""
        return self.readable is None or collection in self.readable

    def can_write(self, collection: str) -> bool:
        """Whether this user may add or delete documents in the collection."""
        if self.writable is None:
            return self.can_read(collection)
        return collection in self.writable


LOCAL_ADMIN = User("local", None, True)


@dataclass
class Chunk:
    """One indexed passage with everything a citation needs."""

    doc_id: str
    file_name: str
    collection: str
    chunk_index: int
    text: str
    page: int | None = None
    heading: str | None = None
    span: tuple[int, int] = (0, 0)
    content_hash: str = ""
    ingested_at: str = ""
    file_type: str = ""
    chunk_count: int = 0
    version: str = ""  # the stored original these chunks were made from; an update writes a new version
    path: str = ""  # the logical path within the collection (the file name for single uploads)

    @property
    def point_id(self) -> str:
        """Stable Qdrant point id: the same chunk of the same version of a document always maps to one point."""
        return str(uuid.uuid5(_POINT_NS, f"{self.collection}/{self.doc_id}/{self.version}/{self.chunk_index}"))

    def to_payload(self) -> dict:
        """The Qdrant payload of this chunk."""
        from zhiku.retrieval.text import language_of

        payload = asdict(self)
        payload["span"] = list(self.span)
        # lets hybrid search look for evidence in the other language separately (see Fusion)
        payload["lang"] = language_of(self.text)
        return payload

    @classmethod
    def from_payload(cls, payload: dict) -> Chunk:
        """Rebuild a chunk from its Qdrant payload."""
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in payload.items() if k in known}
        data["span"] = tuple(data.get("span") or (0, 0))
        return cls(**data)


@dataclass
class Hit:
    """A chunk returned by search, with its rank and score."""

    chunk: Chunk
    score: float
    rank: int = 0
    dense: list[float] | None = field(default=None, repr=False)
    relevance: object | None = None
    fused_score: float | None = None  # the hybrid (RRF) score, kept when a reranker replaces score
    features: dict | None = field(default=None, repr=False)  # the ranker's signals, for judging relevance
    sentences: object | None = field(default=None, repr=False)  # its sentences' vectors (n × dim), if indexed
    latent: tuple | None = field(default=None, repr=False)  # its latent-term vector (indices, values), if indexed

    def to_dict(self) -> dict:
        """The CLI's JSON shape of a hit."""
        return {
            "rank": self.rank,
            "doc_id": self.chunk.doc_id,
            "file_name": self.chunk.file_name,
            "page": self.chunk.page,
            "text": self.chunk.text,
            "score": round(float(self.score), 6),
            "collection": self.chunk.collection,
            "heading": self.chunk.heading,
        }


@dataclass
class Citation:
    """A numbered source an answer refers to as [n]."""

    n: int
    doc_id: str
    file_name: str
    page: int | None
    text: str
    quote: str = ""
    heading: str | None = None
    collection: str = ""

    def to_dict(self) -> dict:
        """The CLI's JSON shape of a citation."""
        return {
            "n": self.n,
            "doc_id": self.doc_id,
            "file_name": self.file_name,
            "page": self.page,
            "text": self.text,
            "quote": self.quote,
            "heading": self.heading,
            "collection": self.collection,
        }


@dataclass
class Answer:
    """A finished answer with the citations it uses."""

    text: str
    mode: str  # "ollama" | "extractive"
    answerable: bool
    citations: list[Citation] = field(default_factory=list)
    language: str = "en"
    notice: str | None = None
    query: str = ""

    def to_dict(self) -> dict:
        """The CLI's JSON shape of an answer."""
        return {
            "answer": self.text,
            "mode": self.mode,
            "answerable": self.answerable,
            "citations": [c.to_dict() for c in self.citations],
            "language": self.language,
            "notice": self.notice,
            "query": self.query,
        }
