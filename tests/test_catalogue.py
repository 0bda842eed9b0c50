"""The catalogue and job queue never lose a document: each loss the first release had is a test here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ZHIKU, assert_consistent, run_cli
import zhiku.ingest.generations as generations_module
from zhiku.retrieval.index import Scope
from zhiku.retrieval.types import LOCAL_ADMIN


def _doc(text: str) -> str:
    return f"# Policy\n\n{text}\n"


def test_same_file_name_in_two_folders_is_two_documents(services, tmp_path):
    """Regression: the second report.txt "updated" the first, which disappeared."""
    (tmp_path / "kb" / "hr").mkdir(parents=True)
    (tmp_path / "kb" / "it").mkdir(parents=True)
    (tmp_path / "kb" / "hr" / "report.txt").write_text("Parental leave lasts 158 days.", encoding="utf-8")
    (tmp_path / "kb" / "it" / "report.txt").write_text("Laptops are replaced every 4 years.", encoding="utf-8")
    results = services.ingestor.ingest_paths([tmp_path / "kb"], "default", LOCAL_ADMIN)
    assert [(r.path, r.status) for r in results] == [("hr/report.txt", "added"), ("it/report.txt", "added")]
    assert services.ingestor.stats(LOCAL_ADMIN).documents == 2
    hits = services.searcher.search("laptops replaced", LOCAL_ADMIN, k=3)
    assert hits[0].chunk.path == "it/report.txt" and hits[0].chunk.file_name == "report.txt"
    assert_consistent(services)


def test_two_uploads_of_the_same_file_at_once_leave_one_complete_document(services):
    """Regression: one run's clean-up deleted the document the other had just written (0 chunks left)."""
    data = _doc("Desks are booked through the facilities portal. " * 20).encode()
    results, errors = [], []

    def upload() -> None:
        try:
            results.append(services.ingestor.ingest_bytes(data, "desks.md", "default", LOCAL_ADMIN))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert sorted(r.status for r in results) == ["added", "unchanged"]
    [doc] = assert_consistent(services)
    assert doc.chunks > 0 and services.index.count(Scope(["default"], [doc.id])) == doc.chunks


def test_delete_by_path_removes_chunks_original_and_row(services, tmp_path):
    (tmp_path / "a.md").write_text(_doc("Parking permits renew in March."), encoding="utf-8")
    (tmp_path / "b.md").write_text(_doc("The gym opens at six."), encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path / "a.md", tmp_path / "b.md"], "default", LOCAL_ADMIN)
    [removed] = services.ingestor.delete("a.md", LOCAL_ADMIN)
    assert removed.path == "a.md"
    [left] = assert_consistent(services)
    assert left.path == "b.md"
    with pytest.raises(Exception, match="no document"):
        services.ingestor.delete("a.md", LOCAL_ADMIN)


def test_reindex_switches_generation_and_never_resurrects_deleted_documents(services, tmp_path, monkeypatch):
    for name, text in {"a.md": "Visitors sign in at reception.", "b.md": "Lockers are free."}.items():
        (tmp_path / name).write_text(_doc(text), encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path], "default", LOCAL_ADMIN)
    before = services.generations.active_generation()
    services.ingestor.delete("a.md", LOCAL_ADMIN)
    job = services.ingestor.reindex(LOCAL_ADMIN)
    assert job.state == "done", job.error
    after = services.generations.active_generation()
    assert after.id != before.id
    [doc] = assert_consistent(services)
    assert doc.path == "b.md"
    assert services.searcher.search("lockers", LOCAL_ADMIN, k=1)[0].chunk.path == "b.md"
    # the old generation is kept for a grace period (other processes move over), then removed
    assert {g.id: g.state for g in services.store.generations()}[before.id] == "retired"
    monkeypatch.setattr(generations_module, "RETIRED_GRACE_SECONDS", 0.0)
    services.worker._last_gc = -1e9
    services.worker.recover()
    assert [g.id for g in services.store.generations()] == [after.id]
    assert not (services.settings.index_dir / before.name).exists()


def test_reindex_across_an_embedding_model_change(make_services, fake_ollama, tmp_path):
    """Regression: after changing the model, `zhiku reindex` failed with "run `zhiku reindex`"."""
    (tmp_path / "a.md").write_text(_doc("Printers are on every floor."), encoding="utf-8")
    first = make_services()
    first.ingestor.ingest_paths([tmp_path / "a.md"], "default", LOCAL_ADMIN)
    first.close()
    second = make_services(ollama_host=fake_ollama.host, embed_model="ollama:bge-m3")
    with pytest.raises(Exception, match="zhiku reindex"):
        second.searcher.search("printers", LOCAL_ADMIN)
    job = second.ingestor.reindex(LOCAL_ADMIN)
    assert job.state == "done", job.error
    gen = second.generations.active_generation()
    assert (gen.embed_model, gen.dim) == ("ollama:bge-m3", 1024)
    assert second.searcher.search("printers", LOCAL_ADMIN, k=1)[0].chunk.path == "a.md"
    assert_consistent(second)


def test_reindex_rebuilds_from_originals_when_the_index_is_unreadable(services, tmp_path):
    (tmp_path / "a.md").write_text(_doc("Coffee is free on Fridays."), encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path / "a.md"], "default", LOCAL_ADMIN)
    gen = services.generations.active_generation()
    services.generations.close()
    shard = services.settings.index_dir / gen.name
    for path in shard.rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b"\x00garbled" * 64)
    job = services.ingestor.reindex(LOCAL_ADMIN)
    assert job.state == "done", job.error
    assert services.searcher.search("coffee fridays", LOCAL_ADMIN, k=1)[0].chunk.path == "a.md"
    assert_consistent(services)


# ------------------------------------------------------------ bad input
def test_symlink_out_of_the_folder_is_refused(services, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "ok.md").write_text(_doc("Badges are blue."), encoding="utf-8")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "inside.md").symlink_to(folder / "ok.md")
    results = {r.path: r for r in services.ingestor.ingest_paths([folder], "default", LOCAL_ADMIN)}
    assert results["passwd.txt"].status == "failed" and "outside the folder" in results["passwd.txt"].error
    assert results["inside.md"].status == "added" and results["ok.md"].status == "added"
    assert not services.index.chunks(Scope(), limit=1000) or all(
        "root:" not in c.text for c in services.index.chunks(Scope(), limit=1000))
    assert len(assert_consistent(services)) == 2


def test_fifo_and_devices_are_refused_without_reading(services, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    os.mkfifo(folder / "pipe.txt")
    (folder / "ok.md").write_text(_doc("Badges are green."), encoding="utf-8")
    results = {r.path: r for r in services.ingestor.ingest_paths([folder, "/dev/zero"], "default", LOCAL_ADMIN)}
    assert results["pipe.txt"].status == "failed" and "named pipe" in results["pipe.txt"].error
    assert results["zero"].status == "failed" and "device" in results["zero"].error
    assert results["ok.md"].status == "added"
    assert_consistent(services)


def test_file_with_too_many_passages_is_refused_before_embedding(make_services, tmp_path):
    services = make_services(max_chunks_per_file=20, chunk_tokens=60, chunk_overlap=0)
    big = tmp_path / "big.md"
    big.write_text("# Log\n\n" + "\n\n".join(f"Entry {i}: the badge reader at door {i} was checked." for i in range(400)),
                   encoding="utf-8")
    [result] = services.ingestor.ingest_paths([big], "default", LOCAL_ADMIN)
    assert result.status == "failed" and "ZHIKU_MAX_CHUNKS_PER_FILE" in result.error
    assert assert_consistent(services) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_full_disk_gives_a_clear_error_and_leaves_the_data_dir_consistent(tmp_path):
    data = tmp_path / "small"
    data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(data)], check=True)
    try:
        env = {"ZHIKU_DATA_DIR": str(data / "data")}
        doc = tmp_path / "a.md"
        doc.write_text(_doc("Lunch is at noon."), encoding="utf-8")
        result = run_cli("ingest", str(doc), "--json", env=env)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "is full" in result.stderr and str(data / "data") in result.stderr
        stats = run_cli("stats", "--json", env=env)
        assert stats.returncode == 0 and json.loads(stats.stdout)["documents"] == 0
    finally:
        subprocess.run(["umount", str(data)], check=False)


def test_garbled_database_gives_one_message_and_zhiku_recover_rebuilds_it(tmp_path):
    data = tmp_path / "data"
    env = {"ZHIKU_DATA_DIR": str(data)}
    folder = tmp_path / "kb" / "hr"
    folder.mkdir(parents=True)
    (folder / "leave.md").write_text(_doc("Parental leave lasts 158 days."), encoding="utf-8")
    assert run_cli("ingest", str(tmp_path / "kb"), env=env).returncode == 0
    (data / "zhiku.db").write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (data / f"zhiku.db{suffix}").unlink(missing_ok=True)
    result = run_cli("stats", env=env)
    assert result.returncode == 2
    assert "damaged" in result.stderr and "zhiku recover" in result.stderr and "Traceback" not in result.stderr
    recovered = run_cli("recover", "--json", env=env)
    assert recovered.returncode == 0, recovered.stderr
    assert [f["path"] for f in json.loads(recovered.stdout)["files"]] == ["hr/leave.md"]
    hits = json.loads(run_cli("search", "parental leave days", "--json", env=env).stdout)["hits"]
    assert hits and hits[0]["file_name"] == "leave.md"


# ------------------------------------------------------------ kill -9
def _start(args: list[str], data: Path, stage: str) -> subprocess.Popen:
    env = {**os.environ, "ZHIKU_DATA_DIR": str(data), "ZHIKU_PAUSE_AT": stage, "ZHIKU_JOB_LEASE": "5"}
    return subprocess.Popen([str(ZHIKU), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_at(proc: subprocess.Popen, data: Path, stage: str, timeout: float = 300) -> None:
    marker = data / f"paused-{stage}"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"never reached {stage}"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    marker.unlink()


def _docs(tmp_path: Path, n: int = 3) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"doc{i}.md").write_text(
            _doc(" ".join(f"Rule {j} of document {i}: keep receipt {i}{j} for audits." for j in range(30))),
            encoding="utf-8")
    return folder


@pytest.mark.parametrize("stage", ["parsing", "embedding", "published"])
def test_kill_during_ingest_then_the_next_run_completes(make_services, tmp_path, stage):
    data = tmp_path / "data"
    folder = _docs(tmp_path)
    _kill_at(_start(["ingest", str(folder), "--json"], data, stage), data, stage)
    result = run_cli("ingest", str(folder), "--json", env={"ZHIKU_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    services = make_services()
    docs = assert_consistent(services)
    assert sorted(d.path for d in docs) == ["doc0.md", "doc1.md", "doc2.md"]


def test_kill_during_delete_finishes_the_delete_and_reindex_does_not_bring_it_back(make_services, tmp_path):
    """Regression: kill -9 after the index delete but before the original went; reindex resurrected it."""
    data = tmp_path / "data"
    folder = _docs(tmp_path, 2)
    env = {"ZHIKU_DATA_DIR": str(data)}
    assert run_cli("ingest", str(folder), env=env).returncode == 0
    _kill_at(_start(["delete", "doc0.md"], data, "delete-index"), data, "delete-index")
    stats = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert stats["documents"] == 1  # marked deleted before anything was removed
    assert run_cli("reindex", env=env).returncode == 0
    services = make_services()
    [doc] = assert_consistent(services)
    assert doc.path == "doc1.md"


@pytest.mark.parametrize("stage", ["embedding", "switch", "switched"])
def test_kill_during_reindex_leaves_an_index_serving(make_services, tmp_path, stage):
    """Regression: kill -9 during reindex left the knowledge base answering from 0 documents."""
    data = tmp_path / "data"
    folder = _docs(tmp_path, 2)
    env = {"ZHIKU_DATA_DIR": str(data)}
    assert run_cli("ingest", str(folder), env=env).returncode == 0
    _kill_at(_start(["reindex"], data, stage), data, stage)
    hits = json.loads(run_cli("search", "receipt 12 audits", "--json", env=env).stdout)["hits"]
    assert hits and hits[0]["file_name"] == "doc1.md"
    again = run_cli("reindex", "--json", env=env)
    assert again.returncode == 0, again.stderr
    services = make_services()
    assert len(assert_consistent(services)) == 2
    assert [g.state for g in services.store.generations()].count("active") == 1
