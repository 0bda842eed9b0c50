"""The composition root: builds every service once from the settings (used by app.py and the CLI)."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.accounts import Accounts
from zhiku.core.errors import ZhikuError
from zhiku.core.settings import Settings
from zhiku.ingest.generations import Generations, drop_edge_shard
from zhiku.ingest.jobs import JobWorker, WorkerOptions
from zhiku.ingest.originals import Originals
from zhiku.ingest.pipeline import Ingestor
from zhiku.ingest.worker import ParseLimits, WorkerConfig
from zhiku.retrieval.answer import AnswerService
from zhiku.retrieval.edge import EdgeIndex
from zhiku.retrieval.embeddings import E5Embedder, Embedder, OllamaEmbedder
from zhiku.retrieval.index import ActiveIndex, Index, QdrantIndex, Scope
from zhiku.retrieval.llm import OllamaChat
from zhiku.retrieval.rerank import build_reranker
from zhiku.retrieval.search import Searcher
from zhiku.retrieval.translate import Translator
from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.store import Store

log = logging.getLogger(__name__)


@dataclass
class Health:
    """One part of the system and how it is: ok True/False, or None when it is not configured."""

    name: str
    ok: bool | None
    detail: str  # in English, for logs and the CLI
    facts: dict = field(default_factory=dict)  # the figures in detail, for the page to say in its language


@dataclass
class Services:
    """Everything the UI and the CLI call."""

    settings: Settings
    index: Index
    embedder: Embedder
    store: Store
    ingestor: Ingestor
    searcher: Searcher
    answers: AnswerService
    generations: Generations
    worker: JobWorker
    accounts: Accounts
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_worker(self) -> None:
        """Run the job worker in a background thread (the web app does; the CLI works in its own thread)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.worker.serve, args=(self._stop,), daemon=True,
                                            name="zhiku-job-worker")
            self._thread.start()

    @property
    def worker_running(self) -> bool:
        """Whether this process's job worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> list[Health]:
        """Each part zhiku depends on, checked now: the index, Ollama, the reranker, the embedding model, the
        worker, the store."""
        checks: list[Health] = []

        def check(name: str, probe) -> None:
            try:
                checks.append(Health(name, *probe()))
            except Exception as e:  # noqa: BLE001 - a health panel reports every failure, it never raises
                checks.append(Health(name, False, f"{type(e).__name__}: {e}"))

        def index():
            facts = {"backend": self.index.backend, "where": self.settings.qdrant_url or str(self.settings.index_dir),
                     "chunks": self.index.count(Scope.for_user(LOCAL_ADMIN))}
            return True, "{backend} · {where} · {chunks} chunks".format(**facts), facts

        def llm():
            if self.answers.llm is None:
                return None, "not configured: extractive answers (set OLLAMA_HOST for written answers)", {}
            self.answers.refresh_llm()
            if self.answers.llm_problem:
                return False, self.answers.llm_problem, {}
            facts = {"host": self.answers.llm.host, "model": self.answers.llm.model}
            return True, "{host} · model {model} present".format(**facts), facts

        def reranker():
            chosen = self.searcher.reranker
            name = getattr(chosen, "name", "none")
            if name == "none":
                return None, "none: the learned ranker orders the passages (ZHIKU_RERANKER)", {}
            problem = getattr(chosen, "problem", None)
            if problem:
                return False, problem, {}
            return True, name, {"reranker": name}

        def embedder():
            started = time.perf_counter()
            vector = self.embedder.embed_query("health check 健康检查")
            facts = {"model": self.embedder.name, "dim": len(vector), "ms": round(1000 * (time.perf_counter() - started))}
            return True, "{model} · {dim} dimensions · {ms} ms".format(**facts), facts

        def worker():
            facts = {"queued": len(self.store.jobs(states=("queued",), limit=10_000)),
                     "running": len(self.store.jobs(states=("running",), limit=10_000))}
            if self._thread is not None and not self.worker_running:
                return False, "stopped: {queued} queued jobs wait until the app restarts".format(**facts), facts
            return True, "{queued} queued, {running} running".format(**facts), facts

        def store():
            documents, chunks, _ = self.store.stats()
            facts = {"dialect": self.store.dialect, "documents": documents, "chunks": chunks}
            return True, "{dialect} · {documents} documents, {chunks} chunks".format(**facts), facts

        for name, probe in (("index", index), ("ollama", llm), ("reranker", reranker), ("embedder", embedder),
                            ("worker", worker), ("store", store)):
            check(name, probe)
        return checks

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker and release the index and the database."""
        self._stop.set()
        self.worker.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.worker.close()
        self.generations.close()
        self.store.close()


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


def build_generations(settings: Settings, store: Store, embedder: Embedder) -> Generations:
    """Index generations on a Qdrant server (QDRANT_URL; alias ZHIKU_INDEX) or as embedded shards."""
    if settings.qdrant_url:
        def open_index(name: str) -> Index:
            return QdrantIndex(name, url=settings.qdrant_url, api_key=settings.qdrant_api_key)

        def drop(name: str) -> None:
            index = open_index(name)
            try:
                index.drop()
            finally:
                index.close()

        def alias(name: str) -> None:
            index = open_index(name)
            try:
                index.point_alias(settings.index_name)
            finally:
                index.close()

        return Generations(store, open_index, drop, settings.index_name, embedder.name, embedder.dim, alias)
    index_dir = settings.index_dir
    return Generations(store, lambda name: EdgeIndex(index_dir / name), lambda name: drop_edge_shard(index_dir, name),
                       settings.index_name, embedder.name, embedder.dim)


def _pause_hook(data_dir: Path):
    """Test hook: ZHIKU_PAUSE_AT=stage makes the worker wait at that stage while the file paused-<stage> exists
    (kill tests kill it there; the browser test lets a re-index go on by removing the file)."""
    wanted = os.environ.get("ZHIKU_PAUSE_AT")
    if not wanted:
        return None

    def pause(stage: str) -> None:
        if stage == wanted:
            marker = data_dir / f"paused-{stage}"
            marker.write_text(str(os.getpid()))
            while marker.exists():
                time.sleep(0.1)

    return pause


def build_services(settings: Settings) -> Services:
    """Wire every service from the settings; the only place clients are constructed."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    translator = Translator(settings.glossary)  # a malformed company glossary stops here, before anything opens
    llm = None
    if settings.ollama_host:
        llm = OllamaChat(
            settings.ollama_host,
            settings.llm_model,
            timeout=settings.llm_timeout,
            keep_alive=settings.llm_keep_alive,
            context=settings.llm_context,
        )
    reranker = build_reranker(settings.reranker, llm)  # ZHIKU_RERANKER=ollama without OLLAMA_HOST stops here
    embedder = build_embedder(settings, llm)
    store = Store.open(settings.database)
    try:
        generations = build_generations(settings, store, embedder)
        originals = Originals(settings.files_dir, settings.data_dir)
        config = WorkerConfig(ParseLimits(settings.parse_timeout, settings.parse_memory_mb),
                              chunk_tokens=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap)
        worker = JobWorker(store, generations, originals, embedder, config,
                           WorkerOptions(lease=settings.job_lease, batch_size=settings.embed_batch_size,
                                         max_chunks=settings.max_chunks_per_file),
                           pause=_pause_hook(settings.data_dir))
        ingestor = Ingestor(store, generations, originals, worker, max_bytes=int(settings.max_file_mb * 1024 * 1024))
    except Exception:
        store.close()
        raise
    index = ActiveIndex(generations.active)
    searcher = Searcher(index, embedder, reranker=reranker, translator=translator)
    answers = AnswerService(searcher, llm, top_k=settings.top_k, context_tokens=settings.llm_context)
    accounts = Accounts(store, session_hours=settings.session_hours)
    return Services(settings, index, embedder, store, ingestor, searcher, answers, generations, worker, accounts)
