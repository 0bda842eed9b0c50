"""The job worker: claims queued jobs from the store and carries them out; resumes or rolls back abandoned ones."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from zhiku.core.errors import IndexUnavailable, ZhikuError
from zhiku.ingest.generations import Generations
from zhiku.ingest.originals import Originals
from zhiku.ingest.run import Callbacks, Item, Outcome, Run, VectorCache
from zhiku.ingest.worker import ParsePool, WorkerConfig
from zhiku.retrieval.embeddings import Embedder
from zhiku.retrieval.index import Scope
from zhiku.store import Job, Store, process_owner

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
GC_INTERVAL = 15.0  # seconds between looks for retired index generations to remove
INTERRUPTED = "interrupted: zhiku stopped while indexing this file; ingest it again"
INTERRUPTED_REINDEX = "interrupted while re-indexing; the previous index kept serving: run `zhiku reindex` again"

StageFn = Callable[[Job, str, int, int], None]


class WorkerStopping(Exception):
    """Raised inside a run when the process is shutting down; claimed jobs are resumed at the next start."""


@dataclass
class WorkerOptions:
    """How the worker runs: claim lease, batch sizes and limits."""

    lease: float = 60.0
    claim_limit: int = 64
    batch_size: int = 32
    max_chunks: int = 5000
    parse_workers: int = 1
    poll: float = 0.25


class _JobCallbacks(Callbacks):
    """Turns a run's events into catalogue and job updates for ingest jobs."""

    def __init__(self, worker: JobWorker, on_stage: StageFn | None):
        self.worker = worker
        self.on_stage = on_stage
        self._last: dict[int, tuple[str, float]] = {}

    def stage(self, item: Item, stage: str, done: int = 0, total: int = 0) -> None:
        job: Job = item.key
        last = self._last.get(job.id)
        now = time.monotonic()
        # progress rows are written at each stage change and at most twice a second within a stage
        if last is None or last[0] != stage or now - last[1] > 0.5:
            self.worker.store.update_job(job.id, stage=stage, done=done, total=total)
            self._last[job.id] = (stage, now)
        if self.on_stage is not None:
            self.on_stage(job, stage, done, total)

    def unchanged(self, item: Item) -> bool:
        job: Job = item.key
        doc = self.worker.store.document(job.document_id)
        if job.force or doc is None or doc.status != "indexed" or doc.content_hash != job.content_hash:
            return False
        if doc.blob != job.blob:
            self.worker.originals.remove(job.blob)
        self.worker.store.finish_job(job.id, "done", result="unchanged", chunks=doc.chunks, done=doc.chunks,
                                     total=doc.chunks)
        if self.on_stage is not None:
            self.on_stage(job, "unchanged", doc.chunks, doc.chunks)
        return True

    def indexed(self, outcome: Outcome) -> None:
        job: Job = outcome.item.key
        self.worker.publish(job, outcome.chunks, outcome.pages)
        if self.on_stage is not None:
            self.on_stage(job, "indexed", outcome.chunks, outcome.chunks)

    def failed(self, outcome: Outcome) -> None:
        job: Job = outcome.item.key
        if self.worker.stopping.is_set():
            return  # shutting down: the job stays claimed and the next start resumes it
        error = outcome.error or "failed"
        if error.startswith("interrupted"):  # Ctrl-C or an unexpected error: rolled back, the user decides
            error = f"{INTERRUPTED} ({error.split('(')[-1].rstrip(')')})"
        self.worker.fail_ingest(job, error)
        if self.on_stage is not None:
            self.on_stage(job, "failed", 0, 0)


class JobWorker:
    """One per process: claims jobs (ingest, delete, reindex) and runs them against the active index."""

    def __init__(self, store: Store, generations: Generations, originals: Originals, embedder: Embedder,
                 config: WorkerConfig, options: WorkerOptions | None = None,
                 pause: Callable[[str], None] | None = None):
        self.store = store
        self.generations = generations
        self.originals = originals
        self.embedder = embedder
        self.config = config
        self.options = options or WorkerOptions()
        self._test_pause = pause or (lambda stage: None)
        self.owner = process_owner()
        self._busy = threading.Lock()
        self._holding = 0
        self._pool: ParsePool | None = None
        self.stopping = threading.Event()
        self.vectors = VectorCache()
        self._last_gc = -GC_INTERVAL
        self._heart: threading.Thread | None = None

    def pause(self, stage: str) -> None:
        """Called between steps: the test hook may stop here, and a shutdown ends the run here."""
        self._test_pause(stage)
        if self.stopping.is_set():
            raise WorkerStopping(stage)

    # ---------------------------------------------------------------- loop
    def run_until(self, finished: Callable[[], bool], on_stage: StageFn | None = None) -> None:
        """Work (or wait for other workers) until finished() holds."""
        try:
            while not finished():
                if not self.run_once(on_stage):
                    time.sleep(self.options.poll)
        finally:
            self._close_pool()

    def serve(self, stop: threading.Event) -> None:
        """Work until stop is set (the web app's background worker)."""
        while not stop.is_set():
            try:
                worked = self.run_once()
            except WorkerStopping:
                break
            except ZhikuError as e:
                log.warning("job worker: %s", e)
                worked = False
            except Exception:  # noqa: BLE001 - the worker thread must survive one bad job
                log.exception("job worker failed; retrying")
                worked = False
            if not worked:
                self._close_pool()  # an idle app keeps no parse worker (and its memory) around
                stop.wait(self.options.poll * 4)
        self._close_pool()

    def run_once(self, on_stage: StageFn | None = None) -> bool:
        """Resolve abandoned jobs, then claim and run one round of queued jobs; False when there was nothing."""
        with self._busy, self._heartbeat():
            recovered = self.recover()
            jobs = self.store.claim(self.owner, self.options.lease, self.options.claim_limit)
            if not jobs:
                return bool(recovered)
            try:
                kind = jobs[0].kind
                if kind == "reindex":
                    self._reindex(jobs[0], on_stage)
                ingest = [j for j in jobs if j.kind == "ingest"]
                for job in (j for j in jobs if j.kind == "delete"):
                    self._delete(job)
                if ingest:
                    self._ingest(ingest, on_stage)
            except IndexUnavailable as e:
                for job in jobs:
                    current = self.store.job(job.id)
                    if current.state == "running" and current.owner == self.owner:
                        self._fail_unavailable(current, str(e))
            return True

    def close(self) -> None:
        """Stop: in-flight jobs stay claimed for the next start to resume; the parse workers exit."""
        self.stopping.set()
        self._close_pool()

    def _close_pool(self) -> None:
        if not self._busy.acquire(blocking=False):
            return  # another thread is running jobs with it; it closes the pool when it goes idle
        try:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
        finally:
            self._busy.release()

    @contextmanager
    def _heartbeat(self) -> Iterator[None]:
        """Keep this worker's leases fresh while it works."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.options.lease / 4):
                try:
                    self.store.heartbeat(self.owner, self.options.lease)
                except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                    log.exception("could not extend job leases")

        thread = threading.Thread(target=beat, daemon=True, name="zhiku-job-heartbeat")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _parse_pool(self) -> ParsePool:
        if self._pool is None:
            self._pool = ParsePool(self.config, workers=self.options.parse_workers)
        return self._pool

    # -------------------------------------------------------------- ingest
    def _ingest(self, jobs: list[Job], on_stage: StageFn | None) -> None:
        index = self.generations.active()
        items = [Item(job, job.document_id, job.blob, job.collection, job.path,
                      (lambda blob=job.blob, digest=job.content_hash: self.originals.read(blob, digest)))
                 for job in jobs]
        run = Run(index, self.embedder, self._parse_pool(), _JobCallbacks(self, on_stage),
                  batch_size=self.options.batch_size, max_chunks=self.options.max_chunks, pause=self.pause,
                  cache=self.vectors)
        run.execute(items)
        self._optimize(index)  # builds the search graph once enough new chunks lack one (EdgeIndex.optimize)

    def _optimize(self, index) -> None:
        optimize = getattr(index, "optimize", None)
        if optimize is not None:
            try:
                optimize()
            except Exception:  # noqa: BLE001 - an unoptimised index still answers, only slower
                log.exception("could not optimise the index")

    def publish(self, job: Job, chunks: int, pages: int | None) -> None:
        """The new version is complete: make it current, then remove the old version's chunks and original."""
        self.store.publish_version(job, chunks=chunks, pages=pages, actor=job.actor)
        self.pause("published")
        self._cleanup(self.store.job(job.id))

    def _cleanup(self, job: Job) -> None:
        if job.old_blob and job.old_blob != job.blob:
            self.generations.active().delete(Scope([job.collection], [job.document_id], versions=[job.old_blob]))
            self.originals.remove(job.old_blob)
        self.store.finish_job(job.id, "done", result="updated" if job.old_blob else "added",
                              stage="indexed", chunks=job.chunks, done=job.chunks, total=job.chunks)

    def fail_ingest(self, job: Job, error: str) -> None:
        """Refuse a file: its staged original goes, an indexed earlier version stays."""
        self.store.record_document_failure(job, error)
        doc = self.store.document(job.document_id)
        if doc is None or doc.blob != job.blob:
            self.originals.remove(job.blob)
        self.store.finish_job(job.id, "failed", result="failed", error=error)

    def _fail_unavailable(self, job: Job, error: str) -> None:
        if job.kind == "ingest":
            self.fail_ingest(job, error)
        elif job.kind == "delete":
            self.store.requeue(job.id, error)
        else:
            self.store.finish_job(job.id, "failed", error=error)

    # -------------------------------------------------------------- delete
    def _delete(self, job: Job) -> None:
        """Remove a deleted document's chunks, then its original, then its row (each step idempotent)."""
        self.generations.active().delete(Scope([job.collection], [job.document_id]))
        self.pause("delete-index")
        doc = self.store.document(job.document_id)
        if doc is not None:
            self.originals.remove(doc.blob)
        self.store.remove_document(job.document_id)
        self.store.finish_job(job.id, "done", result="deleted", stage="deleted")

    # ------------------------------------------------------------- reindex
    def _reindex(self, job: Job, on_stage: StageFn | None) -> None:
        """Build a new generation from the stored originals while the old one serves; switch when complete."""
        gen, index = self.generations.build()
        self.store.update_job(job.id, generation=gen.id, stage="building")
        docs = self.store.documents(statuses=("indexed",))
        counts: dict[str, tuple[int, int | None]] = {}
        failed: dict[str, str] = {}
        store = self.store

        class Rebuild(Callbacks):
            def stage(self, item, stage, done=0, total=0):
                if on_stage is not None:
                    on_stage(job, stage, len(counts) + len(failed), len(docs))

            def indexed(self, outcome):
                counts[outcome.item.doc_id] = (outcome.chunks, outcome.pages)
                store.update_job(job.id, done=len(counts) + len(failed), total=len(docs))

            def failed(self, outcome):
                failed[outcome.item.doc_id] = outcome.error or "failed"
                store.update_job(job.id, done=len(counts) + len(failed), total=len(docs))

        items = [Item(doc, doc.id, doc.blob, doc.collection, doc.path, (lambda b=doc.blob: self.originals.read(b)))
                 for doc in docs]
        self.store.update_job(job.id, total=len(docs))
        try:
            Run(index, self.embedder, self._parse_pool(), Rebuild(), batch_size=self.options.batch_size,
                max_chunks=self.options.max_chunks, pause=self.pause, cache=self.vectors).execute(items)
            old_healthy = self.generations.active_or_none() is not None and _readable(self.generations)
            if failed and old_healthy:
                names = ", ".join(sorted(d.path for d in docs if d.id in failed)[:5])
                raise ZhikuError(f"{len(failed)} document(s) could not be re-indexed ({names}: "
                                 f"{next(iter(failed.values()))}); the previous index keeps serving")
            self._optimize(index)
            self.pause("switch")
            self.generations.switch(gen, index, counts, failed)
        except BaseException as e:
            self.generations.abandon(gen, index)
            if isinstance(e, ZhikuError):
                self.store.finish_job(job.id, "failed", error=str(e))
                return
            raise
        self.pause("switched")
        self.store.finish_job(job.id, "done", result="reindexed", stage="indexed",
                              chunks=sum(c for c, _ in counts.values()), done=len(docs), total=len(docs),
                              error="; ".join(f"{k}: {v}" for k, v in failed.items()) or None)

    # ------------------------------------------------------------ recovery
    def recover(self) -> list[Job]:
        """Finish or roll back jobs whose worker died; returns the jobs taken over."""
        taken = self.store.take_over_abandoned(self.owner, self.options.lease)
        for job in taken:
            log.warning("resuming %s job %d abandoned by %s", job.kind, job.id, job.owner)
            try:
                self._recover(job)
            except IndexUnavailable as e:
                self._fail_unavailable(job, str(e))
        now = time.monotonic()
        if taken or now - self._last_gc > GC_INTERVAL:
            self._last_gc = now
            self.generations.collect_garbage()  # generations retired by a re-index, here or elsewhere
        return taken

    def _recover(self, job: Job) -> None:
        if job.kind == "delete":
            self._delete(job)
        elif job.kind == "reindex":
            gen = next((g for g in self.store.generations() if g.id == job.generation), None)
            if gen is not None and gen.state == "active":
                self.store.finish_job(job.id, "done", result="reindexed", stage="indexed")
                return
            if gen is not None:
                self.generations.abandon(gen, None)
            self.store.finish_job(job.id, "failed", error=INTERRUPTED_REINDEX)
        elif job.stage == "cleanup":
            self._cleanup(job)
        else:
            index = self.generations.active()
            index.delete(Scope([job.collection], [job.document_id], versions=[job.blob]))
            if job.attempts >= MAX_ATTEMPTS:
                self.fail_ingest(job, f"gave up after {job.attempts} interrupted attempts: check the logs and "
                                      "upload the file again")
            else:
                self.store.requeue(job.id, "interrupted: zhiku stopped while indexing this file; resuming")


def _readable(generations: Generations) -> bool:
    """Whether the active index can be read at all (a damaged one is replaced despite failures)."""
    try:
        generations.active().count(Scope())
        return True
    except Exception:  # noqa: BLE001 - any failure means it cannot serve
        return False
