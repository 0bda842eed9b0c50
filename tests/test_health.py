"""The health panel's checks: each part zhiku depends on, checked for real, never raising."""

from __future__ import annotations

from zhiku.retrieval.types import LOCAL_ADMIN


def _by_name(services) -> dict:
    return {h.name: h for h in services.health()}


def test_health_on_the_embedded_defaults(make_services, tmp_path):
    services = make_services()
    (tmp_path / "a.md").write_text("# A\n\nThe office opens at 8:30.", encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path / "a.md"], "default", LOCAL_ADMIN)
    checks = _by_name(services)
    assert list(checks) == ["index", "ollama", "reranker", "embedder", "worker", "store"]
    assert checks["reranker"].ok is None and "ZHIKU_RERANKER" in checks["reranker"].detail  # none: the learned order
    assert checks["index"].ok and checks["index"].facts["chunks"] == 1
    assert checks["ollama"].ok is None and "OLLAMA_HOST" in checks["ollama"].detail  # not configured
    assert checks["embedder"].ok and checks["embedder"].facts["dim"] == services.embedder.dim
    assert checks["store"].ok and checks["store"].facts["documents"] == 1
    assert checks["worker"].ok  # the CLI works in its own thread; nothing is stuck

    services.start_worker()
    services._stop.set()  # the web app's worker thread ends: uploads would wait
    services._thread.join(10)
    worker = _by_name(services)["worker"]
    assert worker.ok is False and "restart" in worker.detail


def test_health_says_whether_ollama_has_the_model(make_services, fake_ollama):
    services = make_services(ollama_host=fake_ollama.host, llm_model="qwen2.5:7b-instruct")
    ollama = _by_name(services)["ollama"]
    assert ollama.ok is True and ollama.facts["model"] == "qwen2.5:7b-instruct"
    fake_ollama.models = []  # the model was removed
    ollama = _by_name(services)["ollama"]
    assert ollama.ok is False and "ollama pull qwen2.5:7b-instruct" in ollama.detail


def test_health_says_when_the_ollama_reranker_is_resting(make_services, tmp_path, fake_ollama):
    """A failed ranking request is not silent: until searches try Ollama again, the panel says why."""
    services = make_services(ollama_host=fake_ollama.host, reranker="ollama")
    for name in ("a.md", "b.md"):
        (tmp_path / name).write_text(f"# {name}\n\nThe office opens at 8:30 on floor {name[0]}.", encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path / "a.md", tmp_path / "b.md"], "default", LOCAL_ADMIN)
    reranker = _by_name(services)["reranker"]
    assert reranker.ok is True and reranker.facts["reranker"] == "ollama"
    fake_ollama.fail = "http500"
    services.searcher.search("When does the office open?", LOCAL_ADMIN)
    reranker = _by_name(services)["reranker"]
    assert reranker.ok is False and "learned ranker's order stands" in reranker.detail
    assert fake_ollama.error_message in reranker.detail
    services.searcher.reranker.retry = 0.0  # the rest is over: the next search tries Ollama again
    assert _by_name(services)["reranker"].ok is True
