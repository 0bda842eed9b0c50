"""Sentence vectors: stored with each passage, read back by search, used by the ranker and the relevance gate."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_DIM, older_edge_index

from zhiku.retrieval.evaluate import tune_gate
from zhiku.retrieval.index import Scope
from zhiku.retrieval.keywords import MAX_UNITS, sentence_units
from zhiku.retrieval.ranker import FEATURES, Query, features
from zhiku.retrieval.search import Relevance
from zhiku.retrieval.text import sparse_document
from zhiku.retrieval.types import LOCAL_ADMIN, Chunk

POLICY = """# Leave policy

Employees receive 5 days of paid sick leave each year. Maternity leave lasts 158 days.
Annual leave that is not taken may be kept until 31 March of the following year.

## 报销

差旅报销须在出差结束后 30 天内提交。超过期限的报销单不予受理。
"""


def test_sentence_units_split_a_passage_and_keep_fragments_with_their_sentence():
    units = sentence_units("Employees receive 5 days of sick leave. Maternity leave lasts 158 days.\n第 3 页\n差旅报销须在 30 天内提交。")
    assert units == ["Employees receive 5 days of sick leave.", "Maternity leave lasts 158 days. 第 3 页",
                     "差旅报销须在 30 天内提交。"]
    assert sentence_units("A single sentence without anything else.") == []  # the passage vector says it all
    many = sentence_units("。".join(f"第{i}条规定内容较长一些" for i in range(200)))
    assert 0 < len(many) <= MAX_UNITS and "第0条" in many[0] and "第199条" in many[-1]  # all of it, joined


def test_ingested_passages_carry_the_vectors_of_their_sentences(services, tmp_path):
    path = tmp_path / "leave.md"
    path.write_text(POLICY, encoding="utf-8")
    [result] = services.ingestor.ingest_paths([path], "hr", LOCAL_ADMIN)
    assert result.status == "added"
    q = services.embedder.embed_query("How long is maternity leave?")
    hits = services.index.query(q, None, Scope(["hr"]), 10)
    assert hits and all(h.sentences is not None for h in hits if len(sentence_units(h.chunk.text)) > 1)
    hit = next(h for h in hits if "Maternity" in h.chunk.text)
    units = sentence_units(hit.chunk.text)
    assert hit.sentences.shape == (len(units), services.embedder.dim)
    # stored in half precision: the same vectors the model makes for those sentences, to ~3 decimals
    expected = services.embedder.embed_passages(units)
    assert np.allclose(hit.sentences, expected, atol=5e-3)
    # the ranker sees the best sentence, the one that answers
    best = units[int(np.argmax(expected @ q))]
    assert "158" in best
    row = dict(zip(FEATURES, features(Query("How long is maternity leave?", q, [], []), [hit])[0]))
    assert row["sent_cos"] == pytest.approx(float((hit.sentences @ q).max()), abs=1e-5)


def test_both_embedded_backends_store_sentence_vectors(embedded_index):
    index, dim = embedded_index, TINY_DIM
    rng = np.random.default_rng(1)

    def unit(n):  # the model's vectors are unit length; a cosine index stores them normalised
        v = rng.normal(size=(n, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    chunks = [Chunk(f"doc{i}", f"f{i}.md", "default", 0, f"Rule {i}. Another rule {i}.") for i in range(3)]
    dense = unit(3)
    sentences = [unit(2), np.zeros((0, dim), np.float32), unit(1)]
    index.upsert(chunks, dense, [sparse_document(c.text) for c in chunks], sentences)
    hits = {h.chunk.doc_id: h for h in index.query(dense[0], None, Scope(), 3)}
    assert hits["doc0"].sentences.shape == (2, dim) and np.allclose(hits["doc0"].sentences, sentences[0], atol=1e-2)
    assert hits["doc1"].sentences is None  # a passage of one sentence keeps only its own vector
    assert hits["doc2"].sentences.shape == (1, dim)


def test_an_index_built_before_sentence_vectors_still_answers(services, tmp_path):
    """Shards written by an older version have no sentence vectors: search works, the ranker uses the passage."""
    index = older_edge_index(services, tmp_path / "old", missing="sentences")
    try:
        text = "Maternity leave lasts 158 days. Paternity leave lasts 15 days."
        chunk = Chunk("doc", "leave.md", "default", 0, text)
        index.upsert([chunk], services.embedder.embed_passages([text]), [sparse_document(text)],
                     [services.embedder.embed_passages(sentence_units(text))])
        q = services.embedder.embed_query("maternity leave")
        [hit] = index.query(q, None, Scope(), 5)
        assert hit.sentences is None
        row = dict(zip(FEATURES, features(Query("maternity leave", q, [], []), [hit])[0]))
        assert row["sent_cos"] == pytest.approx(row["cos"])
    finally:
        index.close()


def test_the_gate_refuses_every_off_topic_question_before_it_refuses_answerable_ones():
    # (answerable, off-topic, [(lexical, semantic, cross_language, score, known)])
    signals = [
        (True, False, [(0.2, 0.80, True, 25.0, 0.8)]),   # a cross-language question the documents answer
        (True, False, [(1.0, 0.95, False, 29.0, 1.0)]),
        (False, True, [(0.0, 0.85, True, 24.0, 0.0)]),   # the capital of France
        (False, True, [(0.3, 0.90, False, 26.5, 0.3)]),  # tomorrow's weather in Beijing (hits the Beijing hotel row)
        (False, False, [(0.5, 0.88, True, 25.5, 0.9)]),  # a company topic the documents do not cover
    ]
    chosen = tune_gate(signals)
    assert chosen["off_topic_refused"] == 2 and chosen["answerable_kept"] == 2
    # the weather question outscores the cross-language one: only the words the documents use tell them
    # apart, so known counts (a score threshold alone refuses an answerable question or passes an off-topic one)
    assert chosen["known_weight"] > 0
    # keeping the cross-language question costs the uncovered company topic, whose signals are stronger
    assert chosen["company_refused"] == 0

    def passes(hits):
        return any(Relevance(lx, sem, cross, score, known).passes(chosen["lexical_min"], chosen["semantic_min"],
                                                                   chosen["score_min"], chosen["known_weight"])
                   for lx, sem, cross, score, known in hits)

    assert [passes(hits) for _, _, hits in signals] == [True, True, False, False, True]
    # the threshold is not on a tuning question: each passes or fails by a margin
    margins = [hits[0][3] + chosen["known_weight"] * hits[0][4] - chosen["score_min"] for _, _, hits in signals]
    assert min(abs(m) for m in margins) > 0.1


def test_the_answer_stage_reuses_the_stored_sentence_vectors(services, tmp_path):
    """Spans that are sentences the index keeps a vector for are compared by meaning without embedding them."""
    from zhiku.retrieval.extract import SPAN_FEATURES, candidates

    path = tmp_path / "leave.md"
    path.write_text(POLICY, encoding="utf-8")
    services.ingestor.ingest_paths([path], "hr", LOCAL_ADMIN)
    question = "How long is maternity leave?"
    hits = services.searcher.search(question, LOCAL_ADMIN, k=5)
    assert any(h.sentences is not None for h in hits)

    class Counting:
        def __init__(self, inner):
            self.inner, self.name, self.dim, self.embedded = inner, inner.name, inner.dim, []

        def embed_passages(self, texts):
            self.embedded += list(texts)
            return self.inner.embed_passages(texts)

        def embed_query(self, text):
            return self.inner.embed_query(text)

    reusing, fresh = Counting(services.embedder), Counting(services.embedder)
    qv = services.embedder.embed_query(question)
    with_stored = candidates(question, hits, services.searcher.translator, embedder=reusing, query_vector=qv)
    for hit in hits:
        hit.sentences = None  # as from an index without sentence vectors
    without = candidates(question, hits, services.searcher.translator, embedder=fresh, query_vector=qv)
    assert fresh.embedded and len(reusing.embedded) < len(fresh.embedded)
    assert not any("158 days" in t for t in reusing.embedded)  # that sentence's vector came from the index
    column = SPAN_FEATURES.index("meaning")
    assert np.allclose(with_stored.features[:, column], without.features[:, column], atol=5e-3)
