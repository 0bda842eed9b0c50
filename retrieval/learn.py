"""Fit the ranker's weights on questions generated from an ingested corpus and on the tuning split.

Each generated question takes a few keywords of one sentence of a passage, in the passage's language
or translated through the bilingual dictionary into the other one; the passages that contain that
sentence are the right answers. The fit maximises the probability the ranker gives them among the
fused candidates (a listwise softmax, L2-regularised on standardised features).

The questions of the "tune" split of a QA file are added with --qa: they are real questions, so they
count fully, the generated ones at --generated-weight. The "heldout" split is never read here:
`zhiku eval --split heldout` judges the result on it.

    ZHIKU_DATA_DIR=/tmp/kb zhiku ingest data/sample
    ZHIKU_DATA_DIR=/tmp/kb python -m zhiku.retrieval.learn --qa data/eval/sample_qa.jsonl > weights.json

Refit in this order, installing each result before the next step: the ranker (ranker.WEIGHTS), then the
thresholds (--gate: Searcher's defaults, they depend on the ranker's scores), then the answer stage's
span weights (--spans: extract.SPAN_WEIGHTS).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
from dataclasses import dataclass

import numpy as np

from zhiku.retrieval.index import Scope
from zhiku.retrieval.keywords import _QUANTITY, sentences
from zhiku.retrieval.ranker import FEATURES, features
from zhiku.retrieval.search import POOL, Searcher
from zhiku.retrieval.text import CJK, keywords, language_of, normalize_numbers
from zhiku.retrieval.types import Chunk

log = logging.getLogger(__name__)

_SPACE = re.compile(r"\s+")
_ZH_ENDINGS = ("是多少？", "有什么规定？", "怎么办？", "吗？", "是什么？", "要怎么做？", "")
_EN_PATTERNS = ("What about {}?", "What is the rule for {}?", "How does {} work?", "{}?", "Tell me about {}.")


@dataclass
class Generated:
    """A question made from one sentence of a passage."""

    question: str
    sentence: str
    point_id: str
    cross_language: bool


def _words(sentence: str) -> list[str]:
    """Content keywords of a sentence, without quantities (a question does not know the answer)."""
    text = _QUANTITY.sub(" ", normalize_numbers(sentence))
    return [w for w in keywords(text) if not w.isdigit() and (len(w) > 1 or not CJK.match(w))]


def generate_questions(chunks: list[Chunk], translator, seed: int = 7, per_chunk: int = 2) -> list[Generated]:
    """Pseudo-questions: 2-4 keywords of a sentence, as they are and translated to the other language."""
    rng = random.Random(seed)
    out: list[Generated] = []
    translator._load()
    for chunk in chunks:
        usable = [s for s in sentences(chunk.text) if len(s) >= 12 and len(_words(s)) >= 3]
        for sentence in rng.sample(usable, min(per_chunk, len(usable))):
            words = _words(sentence)
            picked_idx = sorted(rng.sample(range(len(words)), min(len(words), rng.randint(2, 4))))
            picked = [words[i] for i in picked_idx]
            chinese = language_of(sentence) == "zh"
            if chinese:
                own = "".join(picked) + rng.choice(_ZH_ENDINGS)
                glosses = [translator._zh_to_en.get(w, [None])[0] for w in picked]
                other = rng.choice(_EN_PATTERNS).format(" ".join(g for g in glosses if g)) if sum(map(bool, glosses)) >= 2 else None
            else:
                own = rng.choice(_EN_PATTERNS).format(" ".join(picked))
                found = [translator._en_to_zh.get(w, [None])[0] for w in picked]
                other = "".join(f for f in found if f) + rng.choice(_ZH_ENDINGS) if sum(map(bool, found)) >= 2 else None
            out.append(Generated(own, sentence, chunk.point_id, False))
            if other:
                out.append(Generated(other, sentence, chunk.point_id, True))
    return out


def collect(searcher: Searcher, questions: list[Generated]):
    """(features, labels) of each question's fused candidates; questions whose answer is not among them are left out."""
    data = []
    for g in questions:
        q, hits, bm25 = searcher.candidates(g.question, Scope(), "hybrid", POOL)
        needle = _SPACE.sub("", g.sentence)
        labels = np.array([h.chunk.point_id == g.point_id or needle in _SPACE.sub("", h.chunk.text) for h in hits])
        if labels.any():
            data.append((features(q, hits, bm25), labels.astype(np.float32)))
    return data


def fit(data, l2: float = 0.01, steps: int = 3000, rate: float = 0.03, sample_weights=None,
        names: tuple[str, ...] = FEATURES) -> dict[str, float]:
    """Weights maximising the softmax probability of the right candidates among each question's candidates.

    data: (features, labels) per question; sample_weights: how much each question counts (default 1);
    names: the features' names (the ranker's by default, extract.SPAN_FEATURES for spans).
    """
    # fit on standardised features, so the penalty treats a cosine gap (range 0.05) like a share (range 1)
    scale = np.concatenate([matrix for matrix, _ in data]).std(axis=0) + 1e-6
    counts = np.ones(len(data)) if sample_weights is None else np.asarray(sample_weights, dtype=float)
    counts = counts / counts.sum()
    # all questions' candidates in one matrix: a softmax per question over its own rows
    x = np.concatenate([matrix / scale for matrix, _ in data]).astype(np.float64)
    sizes = np.array([len(labels) for _, labels in data])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    question = np.repeat(np.arange(len(data)), sizes)
    target = np.concatenate([labels / labels.sum() for _, labels in data])
    row_weight = np.repeat(counts, sizes)
    w = np.zeros(len(names))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for step in range(1, steps + 1):
        s = x @ w
        e = np.exp(s - np.maximum.reduceat(s, starts)[question])
        p = e / np.add.reduceat(e, starts)[question]
        grad = l2 * w + x.T @ (row_weight * (p - target))
        # Adam: the features have different scales (cosines near 0.8, shares in 0..1)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= rate * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return {name: round(float(x), 4) for name, x in zip(names, w / scale)}


def mean_reciprocal_rank(data, weights: dict[str, float]) -> float:
    """MRR of the first right passage when candidates are ordered by the weights."""
    w = np.array([weights.get(f, 0.0) for f in FEATURES])
    total = 0.0
    for matrix, labels in data:
        order = np.argsort(-(matrix @ w), kind="stable")
        first = next(i for i, j in enumerate(order) if labels[j])
        total += 1.0 / (first + 1)
    return total / len(data) if data else 0.0


def span_data(answers, questions, user) -> list:
    """(span features, labels) of labelled questions: a span is right when it shows the evidence."""
    from zhiku.retrieval.evaluate import normalize
    from zhiku.retrieval.extract import candidates

    data = []
    searcher = answers.searcher
    for question in questions:
        if question.evidence is None:
            continue
        _, hits, context = answers.resolve(question.question, [], user)
        if not hits:
            continue
        translator = searcher.translator_for(Scope.for_user(user))
        found = candidates(question.question, hits, translator, context, searcher.embedder,
                           searcher.query_vector(question.question), searcher.translated_vector(question.question, translator),
                           searcher.latent_vector(question.question))
        needle = normalize(question.evidence)
        labels = []
        for span in found.spans:
            rows = found.tables.get(id(span))
            shown = " ".join([" ".join(span.header)] + [r.text for r in rows]) if rows else span.text
            labels.append(needle in normalize(shown) or bool(span.paragraph and needle in normalize(span.paragraph[0])))
        if any(labels):
            data.append((found.features, np.asarray(labels, dtype=np.float32)))
    return data


def collect_labelled(searcher: Searcher, questions) -> list:
    """(features, labels) of evaluation questions (evaluate.Question) whose evidence is among the candidates."""
    data = []
    for question in questions:
        if question.evidence is None:
            continue
        q, hits, bm25 = searcher.candidates(question.question, Scope(), "hybrid", POOL)
        needle = _SPACE.sub("", question.evidence)
        labels = np.array([(not question.file or h.chunk.file_name == question.file)
                           and needle in _SPACE.sub("", h.chunk.text) for h in hits])
        if labels.any():
            data.append((features(q, hits, bm25), labels.astype(np.float32)))
    return data


def main(argv: list[str] | None = None) -> int:
    """Generate questions from the index of ZHIKU_DATA_DIR, fit, and write the weights as JSON."""
    from zhiku.core.settings import load_settings
    from zhiku.retrieval.evaluate import load_questions
    from zhiku.services import build_services

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qa", help="a QA file whose tuning questions join the generated ones")
    parser.add_argument("--split", default="tune", help="the split of --qa to train on (never the held-out one)")
    parser.add_argument("--generated-weight", type=float, default=0.25, help="weight of a generated question")
    parser.add_argument("--per-chunk", type=int, default=2, help="sentences made into questions per passage")
    parser.add_argument("--l2", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--spans", action="store_true",
                        help="fit the answer stage's span weights (extract.SPAN_WEIGHTS) on --qa instead")
    parser.add_argument("--gate", action="store_true",
                        help="tune the relevance thresholds (Searcher's lexical_min, semantic_min, score_min, known_weight) on --qa")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    services = build_services(load_settings())
    if args.gate:
        from zhiku.retrieval.evaluate import gate_signals, tune_gate
        from zhiku.retrieval.types import LOCAL_ADMIN

        if not args.qa:
            parser.error("--gate needs --qa")
        try:
            thresholds = tune_gate(gate_signals(services.searcher, load_questions(args.qa, args.split), LOCAL_ADMIN))
        finally:
            services.close()
        json.dump(thresholds, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if args.spans:
        from zhiku.retrieval.extract import SPAN_FEATURES
        from zhiku.retrieval.types import LOCAL_ADMIN

        if not args.qa:
            parser.error("--spans needs --qa")
        try:
            data = span_data(services.answers, load_questions(args.qa, args.split), LOCAL_ADMIN)
            log.info("%d questions of the %s split with a right span among the candidates", len(data), args.split)
            weights = fit(data, 0.03, names=SPAN_FEATURES)
        finally:
            services.close()
        json.dump(weights, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    try:
        chunks = services.index.chunks(Scope())
        questions = generate_questions(chunks, services.searcher.translator, args.seed, args.per_chunk)
        log.info("%d questions from %d passages", len(questions), len(chunks))
        data = collect(services.searcher, questions)
        sample_weights = [args.generated_weight] * len(data)
        if args.qa:
            real = collect_labelled(services.searcher, load_questions(args.qa, args.split))
            log.info("%d questions of the %s split of %s", len(real), args.split, args.qa)
            data += real
            sample_weights += [1.0] * len(real)
        weights = fit(data, args.l2, sample_weights=sample_weights)
        log.info("training MRR %.3f with the fitted weights", mean_reciprocal_rank(data, weights))
    finally:
        services.close()
    json.dump(weights, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
