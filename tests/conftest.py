"""Shared fixtures: isolated data dirs, the real embedded index and embedding model, the Ollama stand-in."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_ollama import FakeOllama  # noqa: E402

# captured before the autouse fixture hides it: `live` tests use a real Ollama when one is configured
LIVE_OLLAMA = os.environ.get("OLLAMA_HOST")
ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
ZHIKU = Path(sys.executable).parent / "zhiku"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's services, data dir or .env."""
    for var in ("OLLAMA_HOST", "QDRANT_URL", "QDRANT_API_KEY", "ZHIKU_LLM_MODEL", "ZHIKU_EMBED_MODEL", "ZHIKU_INDEX"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ZHIKU_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


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


@pytest.fixture(scope="session")
def sample_kb(tmp_path_factory):
    """Services over the sample handbook, ingested once per session; extractive answers (no Ollama)."""
    from zhiku.core.settings import load_settings
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    # explicit values: a session fixture is built before the per-test environment is isolated
    settings = load_settings(data_dir=tmp_path_factory.mktemp("sample-kb") / "data", ollama_host=None,
                             qdrant_url=None, embed_model="multilingual-e5-small", index_name="zhiku")
    services = build_services(settings)
    results = services.ingestor.ingest_paths([SAMPLE], "default", LOCAL_ADMIN)
    assert results and all(r.status == "added" for r in results)
    yield services
    services.close()


@pytest.fixture
def fake_ollama():
    with FakeOllama(models=["qwen2.5:7b-instruct", "bge-m3"]) as fake:
        yield fake


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
