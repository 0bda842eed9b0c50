"""Hybrid search: dense + BM25 in Qdrant, ordered by the learned ranker, scoped to what the user may read."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from zhiku.retrieval.embeddings import Embedder, latent_of
from zhiku.retrieval.index import Fusion, Index, Scope
from zhiku.retrieval.keywords import Text, question_groups, translated_keywords
from zhiku.retrieval.names import Names, count_pairs
from zhiku.retrieval.ranker import LinearRanker, Query, features
from zhiku.retrieval.text import CJK, language_of, quantities, sparse_query, term_id, terms
from zhiku.retrieval.types import Hit, User

log = logging.getLogger(__name__)

MODES = ("hybrid", "dense", "sparse")
POOL = 30  # candidates the ranker reorders; the evidence of every shipped question is in the fused top 30
# the names the passages give in both languages are read again when the index's chunk count changes, and at
# the latest this often (a document replaced by one of as many chunks); the count is looked at most once a
# NAMES_CHECK seconds (one question reads the dictionary several times)
NAMES_AGE = 600.0
NAMES_CHECK = 2.0
NAMES_SCAN = 200_000  # chunks read for names at most (the first ones of a larger index)


def term_coverage(query_terms: list[str], text: str) -> float:
    """Share of the query's keyword terms (weighted by length) that the text contains."""
    if not query_terms:
        return 0.0
    lowered = text.lower()
    have = set(terms(text))
    unique = set(query_terms)
    total = sum(len(t) for t in unique)
    found = sum(len(t) for t in unique if t in have or (len(t) > 1 and t in lowered))
    return found / total if total else 0.0


@dataclass
class Relevance:
    """Evidence that a hit answers the query, compared with thresholds tuned on held-apart questions.

    lexical: share of the question's keywords (or their dictionary translations) the passage contains;
    semantic: dense cosine of the passage's best sentence (same-language passages only: across languages
    cosines run lower for everything); cross_language: the passage is in the other language; score: the
    learned ranker's score (None when the hit was not ranked); known: share of the question's keywords
    that any readable passage contains (Searcher.known; the same for every hit of a question).
    """

    lexical: float
    semantic: float
    cross_language: bool = False
    score: float | None = None
    known: float = 0.0

    def passes(self, lexical_min: float, semantic_min: float, score_min: float | None = None,
               known_weight: float = 0.0) -> bool:
        """Ranked hits: whether the score plus known_weight × known reaches score_min. Unranked hits (dense,
        sparse or plain fusion): whether the keyword share or the cosine clears its threshold."""
        if self.score is not None and score_min is not None:
            return self.score + known_weight * self.known >= score_min
        return self.lexical >= lexical_min or (not self.cross_language and self.semantic >= semantic_min)


@dataclass
class _HeldNames:
    """The names of the whole index by collection, when they were read and when the index was last counted."""

    chunks: int
    read: float
    checked: float
    by_collection: dict[str, Counter]
    _merged: dict = field(default_factory=dict)

    def names(self, collections: list[str] | None) -> Names:
        """The names of some collections (None: all of them)."""
        key = None if collections is None else tuple(sorted(collections))
        if key not in self._merged:
            chosen = self.by_collection if key is None else {c: self.by_collection[c] for c in key
                                                             if c in self.by_collection}
            self._merged[key] = Names.of(sum(chosen.values(), Counter()))
        return self._merged[key]


class Searcher:
    """Runs scoped searches and judges whether the best hits are relevant at all."""

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        *,
        # tuned on the "tune" split of data/eval/sample_qa.jsonl (`python -m zhiku.retrieval.learn --gate`):
        # every off-topic question refused, then the most answerable ones kept, then the most unanswerable
        # questions on the company's topics refused; the held-out split is reported apart
        lexical_min: float = 0.6,
        semantic_min: float = 0.895,
        score_min: float | None = 26.008,
        known_weight: float = 3.75,
        fusion: Fusion | None = None,
        reranker=None,
        translator=None,
        translation_weight: float = 0.3,
        ranker: LinearRanker | None = None,
        learned: bool = True,
    ):
        self.index = index
        self.embedder = embedder
        self.fusion = fusion or Fusion()
        self.reranker = reranker
        self.translator = translator
        self.translation_weight = translation_weight
        self.ranker = ranker if ranker is not None else (LinearRanker() if learned else None)
        self.lexical_min = lexical_min
        self.semantic_min = semantic_min
        self.score_min = score_min
        self.known_weight = known_weight
        # the answer stage compares the question with quoted spans: it reuses the search's embedding
        self._vectors: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._vectors_lock = threading.Lock()
        self._names_held: _HeldNames | None = None  # the names of the whole index, by collection
        self._names_lock = threading.Lock()
        self._names_reading = False  # a background thread is reading them again

    def search(
        self,
        query: str,
        user: User,
        k: int = 5,
        collections: list[str] | None = None,
        mode: str = "hybrid",
        rerank: bool = True,
        ranked: bool = True,
        remember: bool = False,
    ) -> list[Hit]:
        """Top-k hits for the query inside the user's readable collections.

        Args:
            query: the question or keywords, Chinese or English.
            user: the acting user; their readable collections become part of the Qdrant filter.
            k: how many hits to return.
            collections: narrow to these collections.
            mode: hybrid (default), dense or sparse.
            rerank: reorder a deeper candidate list with the configured reranker, if any.
            ranked: order hybrid candidates with the learned ranker (False: plain reciprocal rank fusion).
            remember: keep the query's embeddings for query_vector (the answer stage embeds its question once).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        scope = Scope.for_user(user, collections)
        if scope.collections == []:
            return []
        q, hits, bm25 = self.candidates(query, scope, mode, max(k, POOL), remember=remember)
        # the filter inside the index is the rule; this second look costs nothing and would catch a scope bug
        # before a passage of a collection the user may not read reaches an answer or a citation
        allowed = [h for h in hits if user.can_read(h.chunk.collection)]
        if len(allowed) != len(hits):
            log.error("the index returned %d passages outside %s's collections; they were dropped",
                      len(hits) - len(allowed), user.name)
            hits = allowed
        learned = mode == "hybrid" and ranked and self.ranker is not None
        if learned:
            hits = self.ranker.rank(q, hits, bm25)
        else:
            self._attach(q, hits)
        self._judge(q, hits, learned, self.known(q.groups, scope) if learned else 0.0)
        if rerank and self.reranker is not None and self.reranker.name != "none":
            hits = self.reranker.rerank(query, hits[: max(3 * k, 20)], query_vector=q.vector)
        return hits[:k]

    def _translated_vector(self, query: str, groups, cached: np.ndarray | None, embed=None) -> np.ndarray | None:
        """Embedding of the question's keywords in the other language (None when none translate)."""
        text = translated_keywords(groups)
        if not text:
            return None
        return cached if cached is not None else (embed or self.query_vector)(text)

    def candidates(
        self,
        query: str,
        scope: Scope,
        mode: str = "hybrid",
        depth: int = POOL,
        vector: np.ndarray | None = None,
        translated: np.ndarray | None = None,
        remember: bool = True,
    ) -> tuple[Query, list[Hit], dict[str, float]]:
        """The question as the ranker sees it, the fused candidates, and BM25 scores by point id.

        Args:
            query: the question.
            scope: what the Qdrant filter lets through.
            mode: hybrid, dense or sparse.
            depth: how many candidates.
            vector: the question's embedding, if already computed.
            translated: the embedding of its translated keywords, if already computed.
            remember: keep the embeddings for query_vector.
        Returns:
            (query, hits in fused order, BM25 score of each point in the BM25 top list; hybrid only).
        """
        embed = self.query_vector if remember else self.embedder.embed_query
        dense = embed(query) if vector is None else vector
        translator = self.translator_for(scope)
        groups = question_groups(query, translator)
        expansion = translator.expand(query) if translator is not None else []
        sparse = sparse_query(query, expansion, self.translation_weight) if mode in ("hybrid", "sparse") else None
        gloss = translator.gloss if translator is not None else None
        q = Query(query, dense, groups, quantities(query), gloss)
        if mode == "hybrid" and self.ranker is not None:
            q.translated = self._translated_vector(query, groups, translated, embed)
            q.latent = self.latent_vector(query)
        hits = self.index.query(dense if mode != "sparse" else None, sparse, scope, depth, self.fusion, q.language)
        bm25: dict[str, float] = {}
        if mode == "hybrid" and sparse is not None and self.ranker is not None:
            bm25 = {h.chunk.point_id: h.score for h in self.index.query(None, sparse, scope, depth, vectors=False)}
        return q, hits, bm25

    def known(self, groups, scope: Scope) -> float:
        """Share of the question's keywords that some readable passage contains, as written or through one
        of their dictionary translations. A question about the weather or a flat tyre has words the
        knowledge base never uses; a question about its topics rarely does, however it ranks."""
        if not groups:
            return 0.0
        translator = self.translator_for(scope)

        def forms(group) -> tuple[str, ...]:
            # a Chinese word the dictionary knows only by its parts (今年春节, through 春节) is not known through them:
            # the parts of a word no passage uses are often common words that passages do use
            whole = translator is None or not CJK.match(group.text) or translator.knows(group.text)
            return (group.text, *group.surface) if whole else (group.text,)

        found = self._present({w for g in groups for w in forms(g)}, scope)
        return sum(any(w in found for w in forms(g)) for g in groups) / len(groups)

    def translator_for(self, scope: Scope):
        """The bilingual dictionary read against the passages of the scope (None without a dictionary): among
        a keyword's counterparts in the other language, the words those passages use come first."""
        if self.translator is None:
            return None
        return self.translator.within(lambda words: self._present(words, scope), self.names(scope))

    def names(self, scope: Scope) -> Names:
        """The names the passages of the scope's collections give in both languages (兰亭通（LantingOne）).

        The whole index is read once (the first question, or warm_up), its names kept by collection. After a
        change of its chunk count, questions keep the names read before while a background thread reads
        them again: reading takes seconds at 100,000 chunks."""
        now = time.monotonic()
        with self._names_lock:
            held = self._names_held
            if held is not None and (now - held.checked < NAMES_CHECK or self._names_reading):
                return held.names(scope.collections)
        if held is None:
            return self._read_names().names(scope.collections)
        count = self.index.count(Scope())
        with self._names_lock:
            if held.chunks == count and now - held.read < NAMES_AGE:
                held.checked = now
            elif not self._names_reading:
                self._names_reading = True
                threading.Thread(target=self._refresh_names, daemon=True, name="zhiku-names").start()
        return held.names(scope.collections)

    def _read_names(self) -> "_HeldNames":
        started = time.perf_counter()
        count = self.index.count(Scope())
        by_collection: dict[str, Counter] = {}
        for chunk in self.index.chunks(Scope(), limit=NAMES_SCAN):
            found = count_pairs([chunk.text])
            if found:
                by_collection.setdefault(chunk.collection, Counter()).update(found)
        held = _HeldNames(count, time.monotonic(), time.monotonic(), by_collection)
        with self._names_lock:
            self._names_held = held
        log.info("names in both languages: %d pairs read from %d passages in %.2f s",
                 sum(len(c) for c in by_collection.values()), count, time.perf_counter() - started)
        return held

    def _refresh_names(self) -> None:
        """Read the names again in the background; until then (or if it fails) the earlier ones serve."""
        try:
            self._read_names()
        except Exception as e:  # noqa: BLE001 - a background thread has no caller to raise to
            log.warning("could not read the names the passages give in both languages again: %s", e)
        finally:
            with self._names_lock:
                self._names_reading = False

    def _present(self, words, scope: Scope) -> set[str]:
        """The words (all their terms) some passage of the scope contains: one batch of index lookups."""
        ids = {w: [term_id(t) for t in terms(w)] for w in words}
        found = self.index.present(sorted({i for group in ids.values() for i in group}), scope)
        return {w for w, group in ids.items() if group and all(i in found for i in group)}

    def query_vector(self, text: str) -> np.ndarray:
        """The embedding of a question (the last few are kept: one answer embeds its question once)."""
        return self._remembered(("dense", text), lambda: self.embedder.embed_query(text))

    def latent_vector(self, text: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The latent-term vector of a question as (indices, values), None when the embedder makes none."""
        encode = latent_of(self.embedder)
        if encode is None:
            return None

        def make():
            indices, values = encode([text])[0]
            return np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float32)

        return self._remembered(("latent", text), make)

    def _remembered(self, key: tuple[str, str], make):
        with self._vectors_lock:
            if key in self._vectors:
                self._vectors.move_to_end(key)
                return self._vectors[key]
        value = make()
        with self._vectors_lock:
            self._vectors[key] = value
            if len(self._vectors) > 128:
                self._vectors.popitem(last=False)
        return value

    def translated_vector(self, question: str, translator=None) -> np.ndarray | None:
        """The embedding of the question's keywords in the other language (None when none translate).

        translator: the dictionary as the search read it (translator_for); the plain one by default.
        """
        return self._translated_vector(question, question_groups(question, translator or self.translator), None)

    def warm_up(self) -> None:
        """Load the word segmenter and the bilingual dictionary before the first question needs them."""
        terms("预热 warm up")
        if self.translator is not None:
            self.translator.expand("warm up")
            self.names(Scope())

    @staticmethod
    def _attach(query: Query, hits: list[Hit]) -> None:
        """The ranker's signals on hits that keep another order (dense, sparse, plain fusion)."""
        from zhiku.retrieval.ranker import FEATURES

        for hit, row in zip(hits, features(query, hits)):
            hit.features = dict(zip(FEATURES, (float(v) for v in row)))

    @staticmethod
    def _judge(query: Query, hits: list[Hit], learned: bool, known: float) -> None:
        """Attach the relevance signals to each hit (known: Searcher.known of the question)."""
        for hit in hits:
            f = hit.features or {}
            cross = language_of(hit.chunk.text) != query.language
            gloss = query.gloss(hit.chunk.text) if query.gloss is not None and cross and query.language == "en" else None
            text = Text(hit.chunk.text, gloss)
            share = sum(text.matches(g) for g in query.groups) / len(query.groups) if query.groups else 0.0
            hit.relevance = Relevance(share, f.get("sent_cos", f.get("cos", 0.0)), cross,
                                      hit.score if learned else None, known)

    def relevant(self, hits: list[Hit]) -> list[Hit]:
        """The hits, when one of them clears the relevance threshold; none otherwise.

        The threshold decides whether the knowledge base answers the question at all; which passage
        answers it is the ranker's and the answer stage's job (the passage that holds the answer is
        often not the one with the most keywords).
        """
        passing = [h.relevance is not None
                   and h.relevance.passes(self.lexical_min, self.semantic_min, self.score_min, self.known_weight)
                   for h in hits]
        return list(hits) if any(passing) else []
