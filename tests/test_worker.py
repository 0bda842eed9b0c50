"""Parsing in bounded worker processes: a hostile file fails with a reason and the next file still parses."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from zhiku.ingest.parsers import parse_bytes
from zhiku.ingest.worker import ParseLimits, ParsePool, WorkerConfig
from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.core.errors import FileRejected

HOSTILE = "test_worker:hostile_parse"  # importable in workers: conftest puts tests/ on sys.path
GOOD = "# Leave\n\nEmployees get 12 days of annual leave. 年假十二天。".encode("utf-8")


def hostile_parse(data: bytes, file_name: str):
    """A parse function for workers: misbehaves as the file name says, otherwise the real parser."""
    if file_name.startswith("sleep"):
        time.sleep(3600)
    if file_name.startswith("oom"):
        hoard = [bytes(64 * 1024 * 1024) for _ in range(1000)]  # 64 GB, far above any limit
        return hoard and []
    if file_name.startswith("exit"):
        os._exit(7)
    if file_name.startswith("segv"):
        ctypes.string_at(0)  # reads address 0: SIGSEGV
    if file_name.startswith("bug"):
        raise KeyError("bug in a parser")
    return parse_bytes(data, file_name)


@pytest.fixture(scope="module")
def pool():
    """One pool for the module, so every test also checks that a worker is replaced after a failure."""
    config = WorkerConfig(ParseLimits(timeout=3, memory_mb=1536), HOSTILE, chunk_tokens=60, chunk_overlap=10)
    with ParsePool(config) as pool:
        yield pool


def test_good_file_is_parsed_and_chunked(pool):
    chunks = pool.parse(GOOD, "leave.md")
    assert chunks and chunks[0].heading == "Leave" and "12 days" in chunks[0].text


def test_parse_that_never_returns_times_out_and_the_next_file_succeeds(pool):
    started = time.monotonic()
    with pytest.raises(FileRejected, match=r"parsing took longer than 3 s; the file may be damaged or hostile"):
        pool.parse(b"x", "sleep.txt")
    assert time.monotonic() - started < 10
    assert pool.parse(GOOD, "leave.md")


def test_parse_that_allocates_too_much_fails_with_a_memory_reason(pool):
    with pytest.raises(FileRejected, match=r"parsing needed more than 1536 MB of memory"):
        pool.parse(b"x", "oom.txt")
    assert pool.parse(GOOD, "leave.md")


@pytest.mark.parametrize("name,reason", [("exit.txt", "exit code 7"), ("segv.txt", "SIGSEGV")])
def test_worker_that_dies_fails_the_file_cleanly(pool, name, reason):
    with pytest.raises(FileRejected, match=reason):
        pool.parse(b"x", name)
    assert pool.parse(GOOD, "leave.md")


def test_parser_bug_fails_only_that_file(pool):
    with pytest.raises(FileRejected, match="could not be parsed.*KeyError"):
        pool.parse(b"x", "bug.txt")
    assert pool.parse(GOOD, "leave.md")


def test_rejection_reason_from_the_parser_is_kept(pool):
    with pytest.raises(FileRejected, match="not a PDF"):
        pool.parse(b"\x89PNG\r\n\x1a\n" + b"0" * 100, "fake.pdf")


def test_worker_is_started_once_per_run(pool):
    """Regression guard: start-up (imports) is paid once, not per file."""
    worker = pool._threads[0]._args[0]
    pool.parse(GOOD, "a.md")
    first = worker._process.pid
    for name in ("b.md", "c.md", "d.md"):
        pool.parse(GOOD, name)
    assert worker._process.pid == first


def test_ingestion_run_reports_hostile_files_and_indexes_the_rest(services, tmp_path):
    from conftest import make_ingestor

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "leave.md").write_bytes(GOOD)
    (folder / "segv.md").write_text("# Crash\n\nnever parsed", encoding="utf-8")
    (folder / "sleep.md").write_text("# Hang\n\nnever parsed", encoding="utf-8")
    (folder / "zz_remote.md").write_text("# Remote\n\nTwo days a week from home.", encoding="utf-8")
    ingestor = make_ingestor(services, parse=HOSTILE, parse_timeout=3)
    stages = []
    results = ingestor.ingest_paths([folder], "default", LOCAL_ADMIN, stages.append)
    by_name = {r.file_name: r for r in results}
    assert [r.file_name for r in results] == ["leave.md", "segv.md", "sleep.md", "zz_remote.md"]
    assert by_name["leave.md"].status == by_name["zz_remote.md"].status == "added"
    assert by_name["segv.md"].status == "failed" and "SIGSEGV" in by_name["segv.md"].error
    assert by_name["sleep.md"].status == "failed" and "longer than 3 s" in by_name["sleep.md"].error
    jobs = {j.path: j for j in services.store.jobs()}
    assert jobs["sleep.md"].state == "failed" and "longer than 3 s" in jobs["sleep.md"].error
    assert jobs["zz_remote.md"].result == "added" and jobs["zz_remote.md"].owner.split(":")[1] == str(os.getpid())
    assert {p.stage for p in stages} >= {"parsing", "embedding", "indexed", "failed"}
    assert services.ingestor.stats(LOCAL_ADMIN).documents == 2
