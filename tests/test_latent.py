"""Latent-term vectors: made by the offline model, stored with each passage, read back by the ranker."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_DIM, older_edge_index

from zhiku.retrieval.embeddings import E5Embedder, latent_of
from zhiku.retrieval.extract import SPAN_FEATURES, candidates
from zhiku.retrieval.index import Scope
from zhiku.retrieval.ranker import FEATURES, LATENT_TYPICAL, Query, features
from zhiku.retrieval.text import sparse_document
from zhiku.retrieval.types import LOCAL_ADMIN, Chunk, Hit


def _cosine(a, b) -> float:
    weight = dict(zip(*a))
    return sum(weight.get(i, 0.0) * v for i, v in zip(*b))


def test_latent_terms_are_unit_length_and_shared_by_the_two_languages():
    embedder = E5Embedder()
    question, answer, other = embedder.latent([
        "公司系统的密码多久得换一次？",
        "Passwords must be changed every 90 days.",
        "Laptops are replaced every 4 years.",
    ])
    for indices, values in (question, answer, other):
        assert 0 < len(indices) <= 256 and len(set(indices)) == len(indices)
        assert np.linalg.norm(values) == pytest.approx(1.0, abs=1e-5)
    # a Chinese question about passwords shares more latent terms with the English password rule than with an
    # English rule of the same shape about laptops (the dense vectors of both are about equally far)
    assert _cosine(question, answer) > _cosine(question, other) + 0.05


def test_both_embedded_backends_store_latent_vectors(embedded_index):
    index, dim = embedded_index, TINY_DIM
    rng = np.random.default_rng(2)
    dense = rng.normal(size=(2, dim)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    chunks = [Chunk(f"doc{i}", f"f{i}.md", "default", 0, f"Rule {i}.") for i in range(2)]
    latent = [([16383, 7, 300], [0.6, 0.48, 0.64]), ([], [])]
    index.upsert(chunks, dense, [sparse_document(c.text) for c in chunks], None, latent)
    hits = {h.chunk.doc_id: h for h in index.query(dense[0], None, Scope(), 2)}
    indices, values = hits["doc0"].latent
    assert dict(zip(indices.tolist(), values.tolist())) == pytest.approx({16383: 0.6, 7: 0.48, 300: 0.64}, abs=1e-3)
    assert hits["doc1"].latent is None  # a passage the model found no terms in keeps none
    assert index.query(dense[0], None, Scope(), 2, vectors=False)[0].latent is None  # scores only


def test_ingested_passages_carry_latent_vectors_and_the_ranker_reads_them(services, tmp_path):
    path = tmp_path / "it.md"
    path.write_text("# Accounts\n\nPasswords must be changed every 90 days.\n\n# Hardware\n\n"
                    + "Laptops are replaced every 4 years. " * 40, encoding="utf-8")
    [result] = services.ingestor.ingest_paths([path], "it", LOCAL_ADMIN)
    assert result.status == "added"
    question = "公司系统的密码多久得换一次？"
    q, hits, bm25 = services.searcher.candidates(question, Scope(["it"]))
    assert len(hits) >= 2 and all(h.latent is not None for h in hits)
    expected = services.embedder.latent([h.chunk.text for h in hits])
    for hit, (indices, values) in zip(hits, expected):
        assert dict(zip(hit.latent[0].tolist(), hit.latent[1].tolist())) == pytest.approx(
            dict(zip(indices, values)), abs=2e-3)
    column = features(q, hits, bm25)[:, FEATURES.index("latent")]
    assert column.tolist() == pytest.approx([_cosine(q.latent, h.latent) for h in hits], abs=1e-5)
    best = hits[int(np.argmax(column))]
    assert "Passwords" in best.chunk.text


def test_an_index_built_before_latent_vectors_still_answers(services, tmp_path):
    """Shards written by an older version have no latent-term vectors: search works, the feature is neutral."""
    index = older_edge_index(services, tmp_path / "old", missing="latent")
    try:
        text = "Maternity leave lasts 158 days. Paternity leave lasts 15 days."
        chunk = Chunk("doc", "leave.md", "default", 0, text)
        index.upsert([chunk], services.embedder.embed_passages([text]), [sparse_document(text)], None,
                     services.embedder.latent([text]))
        q = services.embedder.embed_query("maternity leave")
        [hit] = index.query(q, None, Scope(), 5)
        assert hit.latent is None
        query = Query("maternity leave", q, [], [], latent=latent_of(services.embedder)(["maternity leave"])[0])
        row = dict(zip(FEATURES, features(query, [hit])[0]))
        assert row["latent"] == pytest.approx(LATENT_TYPICAL)
    finally:
        index.close()


def test_the_answer_stage_compares_the_best_spans_by_their_latent_terms():
    embedder = E5Embedder()
    text = ("Laptops are replaced every 4 years. Passwords must be changed every 90 days. "
            "Visitors sign in at the front desk.")
    hit = Hit(Chunk("doc", "it.md", "default", 0, text), 1.0, 1)
    question = "公司系统的密码多久得换一次？"
    found = candidates(question, [hit], None, None, embedder)
    column = found.features[:, SPAN_FEATURES.index("latent")]
    assert "Passwords" in found.spans[int(np.argmax(column))].text
    assert column.max() > np.sort(column)[-2]  # the spans differ: it says which one is about the question
    # a question's latent terms computed by the search are the same the answer stage would compute
    given = candidates(question, [hit], None, None, embedder, query_latent=embedder.latent([question])[0])
    assert given.features[:, SPAN_FEATURES.index("latent")] == pytest.approx(column, abs=1e-6)
    # without the embedder (or for a follow-up, which says too little) every span gets the same value
    assert not candidates(question, [hit], None, None, None).features[:, SPAN_FEATURES.index("latent")].any()


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_engines_waiting_threads_sleep_unless_the_variable_says_otherwise(given, expected):
    """Spinning OpenMP threads took the cores of any other busy process (bench/threads.py); the policy is
    read when the engine's library loads, so it must be set before, and in that process."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | ({"OMP_WAIT_POLICY": given} if given else {})
    probe = ("import os; from zhiku.retrieval.embeddings import E5Embedder; E5Embedder(); "
             "maps = open('/proc/self/maps').read(); print(os.environ['OMP_WAIT_POLICY'], 'libgomp' in maps)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, "True"]  # the engine's OpenMP runtime loaded with the policy set
