"""The overlapping ingestion run: batches shared by files, writes behind embedding, and every guarantee kept."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from conftest import assert_consistent as _assert_consistent
from conftest import make_ingestor
from zhiku.core.errors import IndexUnavailable, ZhikuError
from zhiku.ingest.jobs import INTERRUPTED
from zhiku.retrieval.index import Scope
from zhiku.retrieval.types import LOCAL_ADMIN

COLLECTION = "hr"


def _write(folder: Path, names: list[str]) -> list[Path]:
    """Small Markdown files of two or three chunks each (at 60 tokens); every sentence names its file."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        marker = Path(name).stem
        lines = [f"# Policy {marker}", ""]
        lines += [f"Rule {j} of {marker}: staff in team {i} keep receipts for {j + 3} days and ask desk {i}{j}."
                  for j in range(6)]
        path = folder / name
        path.write_text("\n".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


class Embedder:
    """The real model, recording each batch; `fail_on` makes batches holding that text fail."""

    def __init__(self, inner, fail_on: str | None = None, interrupt_at: int | None = None):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.batches: list[list[str]] = []
        self.started = [threading.Event() for _ in range(100)]
        self.fail_on = fail_on
        self.interrupt_at = interrupt_at

    def embed_passages(self, texts):
        self.batches.append(list(texts))
        self.started[min(len(self.batches) - 1, 99)].set()
        if self.interrupt_at is not None and len(self.batches) == self.interrupt_at:
            raise KeyboardInterrupt
        if self.fail_on and any(self.fail_on in t for t in texts):
            raise ZhikuError("the embedding model failed on this text")
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)


class Index:
    """The real index, recording which thread upserts; `fail_on` makes upserts of that file's chunks fail."""

    def __init__(self, inner, fail_on: str | None = None, before_first_upsert=None):
        self.inner = inner
        self.threads: list[str] = []
        self.fail_on = fail_on
        self.before_first_upsert = before_first_upsert

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def upsert(self, chunks, dense, sparse, sentences=None, latent=None):
        self.threads.append(threading.current_thread().name)
        if len(self.threads) == 1 and self.before_first_upsert:
            self.before_first_upsert()
        if self.fail_on and any(c.file_name == self.fail_on for c in chunks):
            raise IndexUnavailable("the index refused the write")
        self.inner.upsert(chunks, dense, sparse, sentences, latent)


def _ingestor(services, embedder, wrap_index=None):
    return make_ingestor(services, embedder=embedder, wrap_index=wrap_index, chunk_tokens=60, chunk_overlap=10,
                         batch_size=3)


def test_files_share_batches_and_each_batch_is_written_while_the_next_is_embedded(services, tmp_path):
    paths = _write(tmp_path / "docs", [f"p{i}.md" for i in range(5)])
    embedder = Embedder(services.embedder)
    overlapped = []
    # the first write waits until the second batch is being embedded: a run without overlap would stall here
    ingestor = _ingestor(services, embedder, lambda inner: Index(
        inner, before_first_upsert=lambda: overlapped.append(embedder.started[1].wait(60))))
    reports = []
    results = ingestor.ingest_paths([tmp_path / "docs"], COLLECTION, LOCAL_ADMIN,
                                    lambda p: reports.append((p, threading.current_thread())))

    assert overlapped == [True]
    assert [r.file_name for r in results] == [p.name for p in paths]  # input order
    assert {r.status for r in results} == {"added"}
    for r in results:
        assert r.chunks >= 2 and services.index.count(Scope([COLLECTION], [r.doc_id])) == r.chunks
    # full batches across file boundaries: three passages (several lines each) and their sentences (one line)
    passages = [[t for t in batch if "\n" in t] for batch in embedder.batches]
    assert all(len(batch) == 3 for batch in passages[:-1])
    assert all(len(batch) > 3 for batch in embedder.batches)  # the sentences are embedded with their passages
    assert any(len({m for t in batch for m in re.findall(r"\b(p\d)\b", t)}) > 1 for batch in embedder.batches)
    [index] = ingestor.wrapped.values()
    assert set(index.threads) == {"zhiku-upsert_0"}
    # progress and job records stay on the caller's thread, per file in order of stages
    assert {thread for _, thread in reports} == {threading.main_thread()}
    for r in results:
        mine = [p for p, _ in reports if p.file_name == r.file_name]
        stages = [p.stage for p in mine]
        assert stages[0] == "parsing" and stages[-1] == "indexed" and "embedding" in stages
        done = [p.done for p in mine if p.stage == "embedding"]
        assert done == sorted(done) and all(p.total == r.chunks for p in mine if p.stage == "embedding")
        assert (mine[-1].done, mine[-1].total) == (r.chunks, r.chunks)
    _assert_consistent(services)


def test_a_file_that_fails_in_a_shared_batch_fails_alone_and_leaves_nothing(services, tmp_path):
    _write(tmp_path / "docs", ["a.md", "b.md", "c.md", "d.md", "e.md"])
    ingestor = _ingestor(services, Embedder(services.embedder, fail_on="Rule 4 of b"),
                         lambda inner: Index(inner, fail_on="d.md"))
    results = {r.file_name: r for r in ingestor.ingest_paths([tmp_path / "docs"], COLLECTION, LOCAL_ADMIN)}

    assert {n: r.status for n, r in results.items()} == {
        "a.md": "added", "b.md": "failed", "c.md": "added", "d.md": "failed", "e.md": "added"}
    assert "embedding model failed" in results["b.md"].error and "refused the write" in results["d.md"].error
    assert services.index.count(Scope([COLLECTION], file_names=["b.md", "d.md"])) == 0
    jobs = {j.path: j for j in services.store.jobs()}
    assert jobs["b.md"].state == jobs["d.md"].state == "failed"
    _assert_consistent(services)


def test_same_path_twice_in_one_run_settles_in_order_and_same_bytes_elsewhere_is_its_own_document(services, tmp_path):
    """Regression guard: two versions of one path in flight must apply in order; a copy elsewhere is kept."""
    for folder in "abc":
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "policy.md").write_text("# Leave\n\nEmployees get 10 days of annual leave.", encoding="utf-8")
    (tmp_path / "b" / "policy.md").write_text("# Leave\n\nEmployees get 12 days of annual leave.", encoding="utf-8")
    (tmp_path / "c" / "same.md").write_bytes((tmp_path / "b" / "policy.md").read_bytes())
    embedder = Embedder(services.embedder)
    ingestor = _ingestor(services, embedder)
    results = ingestor.ingest_paths([tmp_path / "a", tmp_path / "b", tmp_path / "c"], COLLECTION, LOCAL_ADMIN)

    assert [(r.path, r.status) for r in results] == [("policy.md", "added"), ("policy.md", "updated"),
                                                     ("same.md", "added")]
    assert results[0].doc_id == results[1].doc_id != results[2].doc_id
    docs = {d.path: d for d in ingestor.documents(LOCAL_ADMIN)}
    assert sorted(docs) == ["policy.md", "same.md"]
    hits = services.index.chunks(Scope([COLLECTION], [results[1].doc_id]))
    assert [h.text for h in hits] and all("12 days" in h.text for h in hits)
    _assert_consistent(services)


def test_interrupted_run_leaves_nothing_half_written_and_a_rerun_completes(services, tmp_path):
    paths = _write(tmp_path / "docs", [f"p{i}.md" for i in range(5)])
    ingestor = _ingestor(services, Embedder(services.embedder, interrupt_at=3))
    with pytest.raises(KeyboardInterrupt):
        ingestor.ingest_paths([tmp_path / "docs"], COLLECTION, LOCAL_ADMIN)

    indexed = _assert_consistent(services)
    assert 0 < len(indexed) < len(paths)
    failed = [j for j in services.store.jobs() if j.state == "failed"]
    assert failed and all(j.error == f"{INTERRUPTED} (KeyboardInterrupt)" for j in failed)
    again = _ingestor(services, services.embedder).ingest_paths(
        [tmp_path / "docs"], COLLECTION, LOCAL_ADMIN)
    assert sorted(r.status for r in again) == sorted(["unchanged"] * len(indexed) + ["added"] * (5 - len(indexed)))
    assert len(_assert_consistent(services)) == len(paths)


def test_ingest_many_indexes_uploads_in_one_run(services):
    files = [("leave.md", "# Leave\n\n年假十五天。".encode()), ("empty.txt", b""), ("home.md", b"# Home\n\nTwo days.")]
    results = services.ingestor.ingest_many(files, COLLECTION, LOCAL_ADMIN)
    assert [(r.file_name, r.status) for r in results] == [
        ("leave.md", "added"), ("empty.txt", "failed"), ("home.md", "added")]
    _assert_consistent(services)
