"""Against a real Ollama (OLLAMA_HOST set): skipped otherwise and not counted as coverage."""

from __future__ import annotations

import pytest

from conftest import LIVE_OLLAMA, SAMPLE
from zhiku.retrieval.types import LOCAL_ADMIN

pytestmark = [pytest.mark.live, pytest.mark.skipif(not LIVE_OLLAMA, reason="set OLLAMA_HOST to run live tests")]


@pytest.mark.parametrize("question", ["工作满十二年的员工每年有几天年假？", "How many days a week can I work remotely?"])
def test_real_ollama_answers_with_verified_citations(make_services, question):
    services = make_services(ollama_host=LIVE_OLLAMA)
    assert services.answers.mode == "ollama", services.answers.llm_problem
    services.ingestor.ingest_paths([SAMPLE], "default", LOCAL_ADMIN)
    answer = services.answers.ask(question, LOCAL_ADMIN)
    assert answer.mode == "ollama" and answer.answerable and answer.citations
    assert all(f"[{c.n}]" in answer.text for c in answer.citations)


def test_real_ollama_orders_the_passages(make_services, caplog):
    """ZHIKU_RERANKER=ollama against a real model: its structured reply is read (no fallback) and the
    12-year clause stays among the first passages."""
    services = make_services(ollama_host=LIVE_OLLAMA, reranker="ollama")
    services.ingestor.ingest_paths([SAMPLE], "default", LOCAL_ADMIN)
    hits = services.searcher.search("工作满十二年的员工每年有几天年假？", LOCAL_ADMIN, k=3)
    assert "keep the learned order" not in caplog.text
    assert any("满 10 年不满 20 年" in h.chunk.text for h in hits)
