"""The composition root: builds every service once from the settings (used by app.py and the CLI)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from zhiku.ingest.pipeline import Ingestor
from zhiku.retrieval.answer import AnswerService
from zhiku.retrieval.edge import EdgeIndex
from zhiku.retrieval.embeddings import E5Embedder, Embedder, OllamaEmbedder
from zhiku.retrieval.index import Index, QdrantIndex
from zhiku.retrieval.llm import OllamaChat
from zhiku.retrieval.rerank import build_reranker
from zhiku.retrieval.search import Searcher
from zhiku.retrieval.translate import Translator
from zhiku.core.errors import ZhikuError
from zhiku.core.settings import Settings
from zhiku.store import AppStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the UI and the CLI call."""

    settings: Settings
    index: Index
    embedder: Embedder
    store: AppStore
    ingestor: Ingestor
    searcher: Searcher
    answers: AnswerService

    def close(self) -> None:
        """Release the index and the database."""
        self.index.close()
        self.store.close()


def build_index(settings: Settings) -> Index:
    """A Qdrant server when QDRANT_URL is set, otherwise the embedded index under the data dir."""
    if settings.qdrant_url:
        return QdrantIndex(settings.index_name, url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    return EdgeIndex(settings.index_dir / settings.index_name)


def build_embedder(settings: Settings, llm: OllamaChat | None) -> Embedder:
    """The configured dense embedding model."""
    name = settings.embed_model
    if name.startswith("ollama:"):
        if llm is None:
            raise ZhikuError(f"ZHIKU_EMBED_MODEL={name} needs OLLAMA_HOST pointing at a running Ollama")
        return OllamaEmbedder(llm.client, name.split(":", 1)[1], settings.embed_batch_size)
    if name in ("multilingual-e5-small", "e5-small", "default"):
        return E5Embedder()
    raise ZhikuError(
        f"unknown embedding model {name!r}: use multilingual-e5-small (offline) or ollama:<model>, e.g. ollama:bge-m3"
    )


def build_services(settings: Settings) -> Services:
    """Wire every service from the settings; the only place clients are constructed."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    llm = None
    if settings.ollama_host:
        llm = OllamaChat(
            settings.ollama_host,
            settings.llm_model,
            timeout=settings.llm_timeout,
            keep_alive=settings.llm_keep_alive,
            context=settings.llm_context,
        )
    embedder = build_embedder(settings, llm)
    index = build_index(settings)
    store = AppStore(settings.db_path)
    try:
        ingestor = Ingestor(
            index,
            embedder,
            store,
            settings.files_dir,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            max_bytes=int(settings.max_file_mb * 1024 * 1024),
            batch_size=settings.embed_batch_size,
            parse_timeout=settings.parse_timeout,
            parse_memory_mb=settings.parse_memory_mb,
        )
    except Exception:
        index.close()
        store.close()
        raise
    searcher = Searcher(index, embedder, reranker=build_reranker(settings.reranker), translator=Translator())
    answers = AnswerService(searcher, llm, top_k=settings.top_k, context_tokens=settings.llm_context)
    return Services(settings, index, embedder, store, ingestor, searcher, answers)
