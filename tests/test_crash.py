"""Crash safety: after kill -9 mid-ingestion, recovery makes the index and the job records agree."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ZHIKU, run_cli
from zhiku.ingest.pipeline import INTERRUPTED
from zhiku.retrieval.index import Scope
from zhiku.retrieval.text import sparse_document
from zhiku.retrieval.types import LOCAL_ADMIN, Chunk

TOPICS = ["annual leave", "travel expenses", "remote work", "laptops", "security badges", "parking",
          "training budget", "overtime", "parental leave", "office hours"]


def _write_corpus(folder: Path, n: int) -> list[Path]:
    """n distinct Markdown files of about 1 KB, each a few chunks long."""
    folder.mkdir()
    paths = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        lines = [f"# Policy {i}: {topic}", ""]
        lines += [f"Rule {i}.{j}: for {topic}, employees in team {i} follow step {j} and keep receipts for "
                  f"{j + i} days; questions go to desk {i * 10 + j}." for j in range(5)]
        lines += ["", f"第{i}条：关于{topic}的规定每年更新一次，员工应当按时阅读。"]
        path = folder / f"policy_{i:02d}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        paths.append(path)
    return paths


def _dead_owner() -> tuple[str, int]:
    """The owner string of a process that has exited."""
    from zhiku.store import process_owner

    proc = subprocess.Popen(["true"])
    proc.wait()
    return process_owner(proc.pid), proc.pid


def _orphan(store, job_id: int) -> None:
    """Make a job look like it belongs to a process that was killed."""
    owner, pid = _dead_owner()
    store._conn.execute("UPDATE jobs SET owner = ?, pid = ? WHERE id = ?", (owner, pid, job_id))


def _write_partial(services, name: str, collection: str, total: int, written: int) -> str:
    """Index only `written` of a document's `total` chunks, as a killed process would leave it."""
    doc_id = f"partial{name}".ljust(32, "0")[:32]
    chunks = [Chunk(doc_id, name, collection, i, f"passage {i} of {name}", chunk_count=total) for i in range(total)]
    batch = chunks[:written]
    services.index.upsert(batch, services.embedder.embed_passages([c.text for c in batch]),
                          [sparse_document(c.text) for c in batch])
    folder = services.settings.files_dir / collection / doc_id
    folder.mkdir(parents=True)
    (folder / name).write_text("original", encoding="utf-8")
    return doc_id


def _assert_consistent(services, replaced: set[str] = frozenset()) -> set[str]:
    """Every indexed document is complete, has an indexed job and a stored original; nothing else remains."""
    docs = services.ingestor.documents(LOCAL_ADMIN)
    for doc in docs:
        assert services.index.count(Scope([doc.collection], [doc.doc_id])) == doc.chunks, doc
    assert services.index.count(Scope()) == sum(d.chunks for d in docs)  # no chunks without a document
    jobs = services.store.jobs(limit=10_000)
    assert not [j for j in jobs if j.active]
    indexed = {d.doc_id for d in docs}
    assert {j.doc_id for j in jobs if j.status == "indexed"} - replaced == indexed
    files = services.settings.files_dir
    stored = {p.name for p in files.glob("*/*") if p.is_dir()} if files.exists() else set()
    assert stored == indexed
    assert not list(files.rglob(".*.part")) if files.exists() else True
    return indexed


def test_recovery_settles_every_kind_of_interrupted_job(make_services, tmp_path):
    services = make_services()
    folder = tmp_path / "docs"
    paths = _write_corpus(folder, 3)
    store = services.store
    # killed after the last chunk was written, before the job said so, while replacing an older version
    old = services.ingestor.ingest_paths([paths[0]], "hr", LOCAL_ADMIN)[0]
    paths[0].write_text(paths[0].read_text(encoding="utf-8") + "\nRevised.", encoding="utf-8")
    new = services.ingestor.ingest_paths([paths[0]], "hr", LOCAL_ADMIN)[0]
    services.index.upsert(*_old_version_chunks(services, old))  # the old version is still there
    store.update_job(store.jobs(limit=1)[0].id, "embedding")
    _orphan(store, store.jobs(limit=1)[0].id)
    # killed in the middle of writing chunks
    partial_job = store.add_job("half.md", str(folder / "half.md"), "hr", "local")
    partial = _write_partial(services, "half.md", "hr", total=5, written=2)
    store.update_job(partial_job, "embedding", doc_id=partial)
    _orphan(store, partial_job)
    # killed before anything was written
    queued_job = store.add_job("queued.md", str(folder / "queued.md"), "hr", "local")
    _orphan(store, queued_job)
    # a job of this (live) process is not touched
    live_job = store.add_job("live.md", str(folder / "live.md"), "hr", "local")
    services.close()

    services = make_services()  # a restart: the Ingestor recovers on start
    jobs = {j.id: j for j in services.store.jobs()}
    assert jobs[partial_job].status == "failed" and jobs[partial_job].error == INTERRUPTED
    assert jobs[queued_job].status == "failed" and jobs[queued_job].error == INTERRUPTED
    assert jobs[live_job].status == "queued"
    assert services.index.count(Scope(["hr"], [partial])) == 0
    assert not (services.settings.files_dir / "hr" / partial).exists()
    assert services.index.count(Scope(["hr"], [old.doc_id])) == 0  # the interrupted replacement finished
    assert [d.doc_id for d in services.ingestor.documents(LOCAL_ADMIN)] == [new.doc_id]
    services.store.update_job(live_job, "failed", error="test over")
    assert _assert_consistent(services, replaced={old.doc_id}) == {new.doc_id}
    again = services.ingestor.ingest_paths([folder], "hr", LOCAL_ADMIN)
    assert [r.status for r in again] == ["unchanged", "added", "added"]


def _old_version_chunks(services, old):
    """Chunks and vectors of an old version, written back as if its removal had not happened yet."""
    chunks = [Chunk(old.doc_id, old.file_name, "hr", i, f"old passage {i}", chunk_count=old.chunks)
              for i in range(old.chunks)]
    folder = services.settings.files_dir / "hr" / old.doc_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / old.file_name).write_text("old", encoding="utf-8")
    return chunks, services.embedder.embed_passages([c.text for c in chunks]), [sparse_document(c.text) for c in chunks]


def _indexed_jobs(db: Path) -> int:
    """Jobs the running CLI has finished, read as another process would."""
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'indexed'").fetchone()[0]
        except sqlite3.OperationalError:  # the table is being created
            return 0


def _active_jobs(data_dir: Path) -> list[tuple[int, str | None, int]]:
    """Unfinished jobs as the killed process left them: (id, doc_id, chunks written), before any recovery."""
    from zhiku.services import build_index
    from zhiku.core.settings import load_settings

    with sqlite3.connect(f"file:{data_dir / 'zhiku.db'}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT id, doc_id, collection FROM jobs WHERE status IN ('queued', 'parsing', 'embedding')")
        active = rows.fetchall()
    index = build_index(load_settings(data_dir=data_dir))
    try:
        return [(job_id, doc_id, index.count(Scope([collection], [doc_id])) if doc_id else 0)
                for job_id, doc_id, collection in active]
    finally:
        index.close()


def test_kill_9_during_ingestion_then_rerun_completes(make_services, tmp_path):
    folder = tmp_path / "corpus"
    paths = _write_corpus(folder, 40)
    data_dir = tmp_path / "data"
    # small chunks in small batches: many writes per file, so the kill is likely to land inside a document
    env = {**os.environ, "ZHIKU_DATA_DIR": str(data_dir), "ZHIKU_CHUNK_TOKENS": "60", "ZHIKU_CHUNK_OVERLAP": "10",
           "ZHIKU_EMBED_BATCH": "2"}
    proc = subprocess.Popen([str(ZHIKU), "ingest", str(folder), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while _indexed_jobs(data_dir / "zhiku.db") < 3:
            assert proc.poll() is None, "ingestion finished before it could be killed: make the corpus larger"
            assert time.monotonic() < deadline, "no file was indexed within 300 s"
            time.sleep(0.2)
        time.sleep(0.7)  # into the next file's batches
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    interrupted = _active_jobs(data_dir)
    assert interrupted, "the kill should land while a file is being ingested"
    services = make_services(data_dir=data_dir, chunk_tokens=60, chunk_overlap=10)
    indexed = _assert_consistent(services)
    settled = {j.id: j for j in services.store.jobs(limit=10_000)}
    for job_id, doc_id, chunks_before in interrupted:
        job = settled[job_id]
        assert (job.status, job.error) in {("indexed", None), ("failed", INTERRUPTED)}, job
        print(f"interrupted job {job_id}: {chunks_before} chunks written -> {job.status}")
    assert 3 <= len(indexed) < len(paths)
    services.close()

    result = run_cli("ingest", str(folder), "--json", env=env)
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert len(files) == len(paths) and {f["status"] for f in files} <= {"added", "unchanged"}
    assert sum(f["status"] == "unchanged" for f in files) == len(indexed)
    stats = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert stats["documents"] == len(paths)
    assert stats["chunks"] == sum(f["chunks"] for f in files)  # no duplicate or leftover chunks


@pytest.mark.parametrize("status", ["queued", "parsing", "embedding"])
def test_jobs_of_a_live_process_are_left_alone(services, status):
    job = services.store.add_job("busy.md", "busy.md", "default", "local")
    services.store.update_job(job, status)
    assert services.ingestor.recover() == []
    assert services.store.jobs(limit=1)[0].status == status
