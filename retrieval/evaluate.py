"""The retrieval quality harness: hit@1, hit@5, MRR and nDCG@10 per search configuration."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.retrieval.search import Searcher
from zhiku.retrieval.types import Hit, User
from zhiku.core.errors import ZhikuError

_SPACE = re.compile(r"\s+")


@dataclass
class Question:
    """One line of a QA file: a question and the evidence a correct hit contains."""

    question: str
    evidence: str | None  # None: the knowledge base does not answer it; search should say so
    file: str | None = None
    kind: str = "all"


@dataclass
class Scores:
    """Metrics of one configuration, overall and per question kind."""

    name: str
    ranks: dict[str, list[int | None]] = field(default_factory=dict)

    def add(self, kind: str, rank: int | None) -> None:
        """Record the rank of the first correct hit (None when not in the top 10)."""
        self.ranks.setdefault("all", []).append(rank)
        if kind != "all":
            self.ranks.setdefault(kind, []).append(rank)

    def metrics(self, kind: str = "all") -> dict[str, float]:
        """hit@1, hit@5, MRR and nDCG@10 (one relevant passage per question)."""
        ranks = self.ranks.get(kind, [])
        n = len(ranks) or 1
        return {
            "hit@1": sum(r == 1 for r in ranks if r) / n,
            "hit@5": sum(1 for r in ranks if r and r <= 5) / n,
            "mrr": sum(1 / r for r in ranks if r) / n,
            "ndcg@10": sum(1 / math.log2(r + 1) for r in ranks if r and r <= 10) / n,
            "questions": len(ranks),
        }


def load_questions(path: Path) -> list[Question]:
    """Read a QA file (JSON lines with question and evidence, optionally file and kind)."""
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            evidence = data["evidence"]
            kind = data.get("kind", "all") if evidence is not None else "unanswerable"
            questions.append(Question(data["question"], evidence, data.get("file"), kind))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ZhikuError(
                f"{path}:{number}: each line must be a JSON object with \"question\" and \"evidence\" ({e})"
            ) from e
    if not questions:
        raise ZhikuError(f"{path} has no questions")
    return questions


def first_correct(hits: list[Hit], question: Question) -> int | None:
    """Rank of the first hit that contains the evidence (and comes from the expected file, if given)."""
    evidence = _SPACE.sub("", question.evidence)
    for hit in hits:
        if question.file and hit.chunk.file_name != question.file:
            continue
        if evidence in _SPACE.sub("", hit.chunk.text):
            return hit.rank
    return None


CONFIGURATIONS = {
    "dense": {"mode": "dense", "rerank": False},
    "sparse": {"mode": "sparse", "rerank": False},
    "hybrid": {"mode": "hybrid", "rerank": False},
    "hybrid+rerank": {"mode": "hybrid", "rerank": True},
}


def evaluate(searcher: Searcher, questions: list[Question], user: User, names=None) -> list[Scores]:
    """Run every answerable question through every configuration; top 10 per question."""
    results = []
    for name in names or CONFIGURATIONS:
        config = CONFIGURATIONS[name]
        scores = Scores(name)
        for q in questions:
            if q.evidence is None:
                continue
            hits = searcher.search(q.question, user, k=10, mode=config["mode"], rerank=config["rerank"])
            scores.add(q.kind, first_correct(hits, q))
        results.append(scores)
    return results


@dataclass
class Gate:
    """How well the relevance threshold separates answerable from unanswerable questions."""

    answerable_kept: int = 0
    answerable: int = 0
    unanswerable_refused: int = 0
    unanswerable: int = 0


def evaluate_gate(searcher: Searcher, questions: list[Question], user: User, k: int = 5) -> Gate:
    """Count answerable questions the answer stage would answer and unanswerable ones it would refuse."""
    gate = Gate()
    for q in questions:
        relevant = bool(searcher.relevant(searcher.search(q.question, user, k=k)))
        if q.evidence is None:
            gate.unanswerable += 1
            gate.unanswerable_refused += not relevant
        else:
            gate.answerable += 1
            gate.answerable_kept += relevant
    return gate
