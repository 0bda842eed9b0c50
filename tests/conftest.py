"""Shared fixtures: isolated data dirs, the real embedded index and embedding model, the Ollama stand-in."""

from __future__ import annotations

import fcntl
import io
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))

from fake_ollama import FakeOllama  # noqa: E402

# captured before the autouse fixture hides it: `live` tests use a real Ollama when one is configured
LIVE_OLLAMA = os.environ.get("OLLAMA_HOST")
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
ZHIKU = Path(sys.executable).parent / "zhiku"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failed test at teardown."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's services, data dir or .env."""
    for var in ("OLLAMA_HOST", "QDRANT_URL", "QDRANT_API_KEY", "ZHIKU_LLM_MODEL", "ZHIKU_EMBED_MODEL", "ZHIKU_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ZHIKU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Undo Streamlit's AppTest replacing __main__ with its script."""
    # parse workers started later (forkserver or spawn) would run that script first, and fail
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def settings(tmp_path):
    from zhiku.core.settings import load_settings

    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def make_services(tmp_path):
    """Build services on the embedded defaults (optionally with overrides); closed after the test."""
    from zhiku.services import build_services
    from zhiku.core.settings import load_settings

    built = []

    def make(**overrides):
        overrides.setdefault("data_dir", tmp_path / "data")
        services = build_services(load_settings(**overrides))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


@pytest.fixture
def services(make_services):
    return make_services()


def built_once(tmp_path_factory, name: str, build):
    """What `build(directory)` makes, made once for the whole run and shared by the xdist workers (each
    worker would otherwise embed the same sample again): returns a copy of the directory of this caller's
    own, which its tests may change, and build's return value (pickled)."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the workers' common directory
    master, ready = root / f"shared-{name}", root / f"shared-{name}.pickle"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker builds, the others wait for it
        if not ready.exists():
            shutil.rmtree(master, ignore_errors=True)
            master.mkdir()
            value = build(master)
            ready.write_bytes(pickle.dumps(value))
    copy = tmp_path_factory.mktemp(name) / "copy"
    shutil.copytree(master, copy)
    return copy, pickle.loads(ready.read_bytes())


def _sample_settings(data_dir: Path):
    from zhiku.core.settings import load_settings

    # explicit values: a session fixture is built before the per-test environment is isolated
    return load_settings(data_dir=data_dir, ollama_host=None, qdrant_url=None, embed_model="multilingual-e5-small",
                         index_name="zhiku")


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory):
    """Services over the sample handbook, ingested once per run; extractive answers (no Ollama)."""
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    def ingest(directory: Path) -> list[str]:
        services = build_services(_sample_settings(directory / "data"))
        try:
            return [r.status for r in services.ingestor.ingest_paths([SAMPLE], "default", LOCAL_ADMIN)]
        finally:
            services.close()

    copy, statuses = built_once(tmp_path_factory, "sample-kb", ingest)
    assert statuses and all(s == "added" for s in statuses)
    services = build_services(_sample_settings(copy / "data"))
    yield services
    services.close()


@pytest.fixture
def fake_ollama():
    with FakeOllama(models=["qwen2.5:7b-instruct", "bge-m3"]) as fake:
        yield fake


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    """A throwaway PostgreSQL server from Debian's packages (.ci/run installs them), one per test session."""
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL binaries are missing: .ci/run must install Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql); CI runs these tests")
    # outside pytest's root-only temp folder, which the postgres user cannot enter
    base = Path(tempfile.mkdtemp(prefix="zhiku-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "zhiku"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"),
                    "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_postgres, str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "zhiku",
                        "zhiku_test"], check=True, capture_output=True)
        yield f"postgresql+psycopg://zhiku@127.0.0.1:{port}/zhiku_test"
    finally:
        subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


# every table, children first, so a test on the shared PostgreSQL database starts empty
STORE_TABLES = ("feedback", "messages", "conversations", "audit", "login_attempts", "sessions", "grants",
                "memberships", "groups", "users", "jobs", "documents", "generations", "collections")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The app store on SQLite, then on a real PostgreSQL server."""
    from zhiku.store import Store

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'zhiku.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    s = Store.open(url)
    if request.param == "postgresql":  # one database for the session: start every test empty
        with s.engine.begin() as conn:
            for table in STORE_TABLES:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    yield s
    s.close()


def run_cli(*args: str, env: dict | None = None, check_json: bool = True):
    """Run the installed `zhiku` console script as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([str(ZHIKU), *args], capture_output=True, text=True, env=full_env, timeout=600)


def make_pdf(pages: list[str]) -> bytes:
    """A PDF with one page per string, in reportlab's built-in CID font so Chinese round-trips."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for text in pages:
        c.setFont("STSong-Light", 12)
        for i, line in enumerate(text.split("\n")):
            c.drawString(50, 800 - 18 * i, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def make_ingestor(services, *, embedder=None, wrap_index=None, parse=None, parse_timeout=120.0,
                  chunk_tokens=220, chunk_overlap=40, batch_size=32, max_chunks=5000):
    """An Ingestor on the services' store and index, with a stand-in embedder, index wrapper or parser."""
    from zhiku.ingest.generations import Generations
    from zhiku.ingest.jobs import JobWorker, WorkerOptions
    from zhiku.ingest.pipeline import Ingestor
    from zhiku.ingest.worker import DEFAULT_PARSE, ParseLimits, WorkerConfig

    base = services.generations
    wrapped = {}

    class Wrapping(Generations):
        def active(self):
            inner = super().active()
            if wrap_index is None:
                return inner
            if id(inner) not in wrapped:
                wrapped[id(inner)] = wrap_index(inner)
            return wrapped[id(inner)]

    gens = Wrapping(services.store, base._open_index, base._drop_index, base.prefix, base.embed_model, base.dim)
    config = WorkerConfig(ParseLimits(parse_timeout, 2048), parse or DEFAULT_PARSE, chunk_tokens, chunk_overlap)
    worker = JobWorker(services.store, gens, services.ingestor.originals, embedder or services.embedder, config,
                       WorkerOptions(lease=30, batch_size=batch_size, max_chunks=max_chunks))
    ingestor = Ingestor(services.store, gens, services.ingestor.originals, worker,
                        max_bytes=services.ingestor.max_bytes)
    ingestor.wrapped = wrapped
    return ingestor


def assert_consistent(services) -> list:
    """The catalogue, the index and the stored originals agree: no orphans, no duplicates, nothing half-written.

    Returns the indexed documents.
    """
    from zhiku.retrieval.index import Scope

    store = services.store
    assert not store.jobs(states=["running"]), "a job is still claimed"
    docs = store.documents(statuses=None)
    indexed = [d for d in docs if d.status == "indexed"]
    assert not [d for d in docs if d.status == "deleting"], "a deletion was left unfinished"
    index = services.generations.active()
    for doc in indexed:
        assert index.count(Scope([doc.collection], [doc.id])) == doc.chunks, doc.path
        assert index.count(Scope([doc.collection], [doc.id], versions=[doc.blob])) == doc.chunks, doc.path
    assert index.count(Scope()) == sum(d.chunks for d in indexed), "the index holds chunks of no document"
    queued = {j.blob for j in store.jobs(states=["queued"], limit=100_000) if j.blob}
    assert services.ingestor.originals.blobs() == {d.blob for d in indexed} | queued, "stored originals disagree"
    assert not list(services.ingestor.originals.root.glob("??/.*.part")), "a partial original was left"
    return indexed


def older_edge_index(services, path, missing: str):
    """An embedded shard as an older version wrote it: its metadata does not list the `missing` vectors."""
    import json

    from zhiku.retrieval.edge import EdgeIndex

    index = EdgeIndex(path)
    index.ensure(services.embedder.dim, services.embedder.name)
    meta_path = path.parent / f"{path.name}.json"
    meta = json.loads(meta_path.read_text())
    del meta[missing]
    meta_path.write_text(json.dumps(meta))
    index._kept = None  # as a process opening the old shard would read it
    return index


TINY_DIM = 8  # the vector size of embedded_index: tests that write vectors by hand keep them small


@pytest.fixture(params=["edge", "qdrant-local"])
def embedded_index(request, tmp_path):
    """An empty index of TINY_DIM-dimensional vectors on each embedded backend, closed after the test."""
    from zhiku.retrieval.edge import EdgeIndex
    from zhiku.retrieval.index import QdrantIndex

    index = EdgeIndex(tmp_path / "edge") if request.param == "edge" else QdrantIndex("zhiku", path=tmp_path / "q")
    try:
        index.ensure(TINY_DIM, "test-model")
        yield index
    finally:
        index.close()
