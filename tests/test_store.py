"""The app store on SQLite and on a real PostgreSQL server: migrations, catalogue, job claiming."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from zhiku.store import Store, new_id
from zhiku.store import schema as t

# the `store` fixture (SQLite and a throwaway PostgreSQL server) is in conftest.py


def _ingest(store: Store, path: str, collection: str = "default", batch: str = "b") -> object:
    return store.enqueue_ingest(batch, collection, path, source=path, actor="local", blob=new_id(),
                                content_hash=new_id(), size=10)


def test_migrations_are_applied_once_and_reopening_is_a_no_op(store):
    url = store.engine.url.render_as_string(hide_password=False)
    again = Store.open(url)
    with again.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    assert set(sa.inspect(again.engine).get_table_names()) >= {"collections", "documents", "jobs", "generations", "users",
                                                                 "groups", "memberships", "grants", "sessions",
                                                                 "login_attempts", "audit"}
    again.close()


def test_same_document_is_claimed_in_order_and_other_documents_together(store):
    first = _ingest(store, "a.md")
    second = _ingest(store, "a.md")
    other = _ingest(store, "b.md")
    claimed = store.claim("w1", lease=30)
    assert [j.id for j in claimed] == [first.id, other.id]  # the second a.md waits for the first
    assert store.claim("w2", lease=30) == []
    store.finish_job(first.id, "done", result="added")
    assert [j.id for j in store.claim("w2", lease=30)] == [second.id]
    assert first.document_id == second.document_id != other.document_id


def test_reindex_runs_alone(store):
    ingest = _ingest(store, "a.md")
    reindex = store.enqueue_reindex("local", "r")
    later = _ingest(store, "b.md")
    assert [j.id for j in store.claim("w1", lease=30)] == [ingest.id]
    assert store.claim("w2", lease=30) == []  # the re-index waits for the running ingest
    store.finish_job(ingest.id, "done", result="added")
    assert [j.id for j in store.claim("w2", lease=30)] == [reindex.id]
    assert store.claim("w3", lease=30) == []  # nothing starts while it runs
    assert store.enqueue_reindex("local", "r2").id == reindex.id  # one at a time
    store.finish_job(reindex.id, "done")
    assert [j.id for j in store.claim("w3", lease=30)] == [later.id]


def test_concurrent_workers_never_claim_the_same_job(store):
    jobs = [_ingest(store, f"doc{i}.md") for i in range(120)]
    claimed: dict[str, list[int]] = {}
    errors = []

    def worker(name: str) -> None:
        try:
            mine = claimed.setdefault(name, [])
            while True:
                got = store.claim(name, lease=30, limit=7)
                if not got:
                    return
                mine.extend(j.id for j in got)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    every = [i for ids in claimed.values() for i in ids]
    assert sorted(every) == sorted(j.id for j in jobs)  # each job exactly once


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(store):
    job = _ingest(store, "a.md")
    [claimed] = store.claim("otherhost:123:456", lease=0.2)
    assert store.take_over_abandoned("me:1:2", lease=30) == []  # lease still valid, owner on another host
    time.sleep(0.3)
    [taken] = store.take_over_abandoned("me:1:2", lease=30)
    assert taken.id == job.id and taken.owner == "me:1:2"


def test_delete_marks_the_document_first_and_stats_come_from_the_catalogue(store):
    jobs = [_ingest(store, f"doc{i}.md") for i in range(3)]
    for job in store.claim("w", lease=30):
        store.publish_version(job, chunks=4, pages=2, actor="local")
        store.finish_job(job.id, "done", result="added")
    assert store.stats() == (3, 12, {"default": 3})
    store.enqueue_delete(jobs[0].document_id, "local", "d")
    assert store.stats() == (2, 8, {"default": 2})
    assert [d.path for d in store.documents()] == ["doc1.md", "doc2.md"]


def test_stats_and_listing_have_no_cap(store):
    now = time.time()
    with store.engine.begin() as conn:
        conn.execute(sa.insert(t.collections).values(id=1, name="big", created_at=now, created_by="local"))
        conn.execute(sa.insert(t.documents), [
            dict(id=new_id(), collection_id=1, path=f"n{i}.txt", file_name=f"n{i}.txt", status="indexed", size=1,
                 chunks=1, file_type="txt", created_at=now, updated_at=now) for i in range(10_050)])
    assert store.stats() == (10_050, 10_050, {"big": 10_050})
    assert len(store.documents(["big"])) == 10_050
    assert store.documents(match="n10049.txt")[0].path == "n10049.txt"


def test_generation_switch_is_one_transaction(store):
    first = store.new_generation("zhiku", "e5", 384, active=True)
    building = store.new_generation("zhiku", "bge-m3", 1024)
    assert store.active_generation().id == first.id
    store.activate_generation(building.id, {}, {})
    assert store.active_generation().id == building.id
    assert {g.id: g.state for g in store.generations()} == {first.id: "retired", building.id: "active"}
