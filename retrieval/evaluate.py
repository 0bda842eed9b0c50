"""The quality harness: ranking (hit@1, hit@5, MRR, nDCG@10), the relevance gate, answers and conversations.

A QA file holds JSON lines. A question line: {"question", "evidence" (null: the knowledge base does not
answer it), "file", "kind", "split" ("tune" or "heldout"), "tags"}. A conversation line: {"turns": [...],
"relation": "follow-up" | "unrelated", "evidence", "file", "split"}: the last turn is scored, a follow-up
must be answered with the evidence, an unrelated question must not be rewritten with the earlier turns.
Thresholds and the ranker are tuned on the "tune" split only; "heldout" is what the figures report.
An unanswerable question tagged "off-topic" is not about the company at all (the capital of France); the
others ask about the company's topics that its documents do not cover (is there a staff canteen?).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.retrieval.search import Searcher
from zhiku.retrieval.types import Answer, Hit, User
from zhiku.core.errors import ZhikuError

_SPACE = re.compile(r"\s+")
CROSS_LANGUAGE = ("en-about-zh", "zh-about-en")


@dataclass
class Question:
    """One line of a QA file: a question and the evidence a correct hit contains."""

    question: str
    evidence: str | None  # None: the knowledge base does not answer it; search should say so
    file: str | None = None
    kind: str = "all"
    split: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def off_topic(self) -> bool:
        """Unanswerable and not about the company at all."""
        return self.evidence is None and "off-topic" in self.tags


@dataclass
class Conversation:
    """Earlier turns and a last question that either follows them up or changes the subject."""

    turns: list[str]
    relation: str  # "follow-up" | "unrelated"
    evidence: str | None
    file: str | None = None
    split: str | None = None


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


def _lines(path: Path):
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                raise ZhikuError(f"{path}:{number}: not a JSON object ({e})") from e


def load_questions(path: Path, split: str | None = None) -> list[Question]:
    """Read the question lines of a QA file (conversation lines are skipped), optionally one split only."""
    questions = []
    for number, data in _lines(path):
        if isinstance(data, dict) and "turns" in data:
            continue
        try:
            evidence = data["evidence"]
            kind = data.get("kind", "all") if evidence is not None else "unanswerable"
            questions.append(Question(data["question"], evidence, data.get("file"), kind, data.get("split"),
                                      tuple(data.get("tags", ()))))
        except (KeyError, TypeError, AttributeError) as e:
            raise ZhikuError(
                f"{path}:{number}: each line must be a JSON object with \"question\" and \"evidence\" ({e})"
            ) from e
    if split:
        questions = [q for q in questions if q.split == split]
    if not questions:
        raise ZhikuError(f"{path} has no questions" + (f" in the split {split!r}" if split else ""))
    return questions


def load_conversations(path: Path, split: str | None = None) -> list[Conversation]:
    """Read the conversation lines of a file (question lines are skipped)."""
    out = []
    for number, data in _lines(path):
        if not isinstance(data, dict) or "turns" not in data:
            continue
        turns, relation = data.get("turns"), data.get("relation")
        if not isinstance(turns, list) or len(turns) < 2 or relation not in ("follow-up", "unrelated"):
            raise ZhikuError(f"{path}:{number}: a conversation needs \"turns\" (two or more questions) and "
                             "\"relation\": \"follow-up\" or \"unrelated\"")
        out.append(Conversation([str(t) for t in turns], relation, data.get("evidence"), data.get("file"),
                                data.get("split")))
    return [c for c in out if split is None or c.split == split]


def normalize(text: str) -> str:
    """Text compared by content: no whitespace, no table pipes, no citation markers or quote marks."""
    text = re.sub(r"\[\d{1,3}\]|^>\s?", "", text, flags=re.M)
    return re.sub(r"[\s|*]+", "", text)


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
    "dense": {"mode": "dense", "rerank": False, "ranked": False},
    "sparse": {"mode": "sparse", "rerank": False, "ranked": False},
    "rrf": {"mode": "hybrid", "rerank": False, "ranked": False},  # plain reciprocal rank fusion
    "hybrid": {"mode": "hybrid", "rerank": False, "ranked": True},  # the default: fused, then the learned ranker
    "hybrid+rerank": {"mode": "hybrid", "rerank": True, "ranked": True},
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
            hits = searcher.search(q.question, user, k=10, **config)
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
    cross_language_refused: int = 0
    off_topic_refused: int = 0
    off_topic: int = 0


def evaluate_gate(searcher: Searcher, questions: list[Question], user: User, k: int = 5) -> Gate:
    """Count answerable questions the answer stage would answer and unanswerable ones it would refuse."""
    gate = Gate()
    for q in questions:
        relevant = bool(searcher.relevant(searcher.search(q.question, user, k=k)))
        if q.evidence is None:
            gate.unanswerable += 1
            gate.unanswerable_refused += not relevant
            gate.off_topic += q.off_topic
            gate.off_topic_refused += q.off_topic and not relevant
        else:
            gate.answerable += 1
            gate.answerable_kept += relevant
            gate.cross_language_refused += (not relevant) and q.kind in CROSS_LANGUAGE
    return gate


def gate_signals(searcher: Searcher, questions: list[Question], user: User, k: int = 5) -> list:
    """(answerable, off-topic, [(lexical, semantic, cross_language, score, known) of each hit]) per question."""
    out = []
    for q in questions:
        hits = searcher.search(q.question, user, k=k)
        signals = [(h.relevance.lexical, h.relevance.semantic, h.relevance.cross_language, h.relevance.score,
                    h.relevance.known) for h in hits if h.relevance]
        out.append((q.evidence is not None, q.off_topic, signals))
    return out


def tune_gate(signals: list) -> dict[str, float]:
    """Thresholds that refuse every off-topic question, then keep the most answerable ones, then refuse the
    most unanswerable questions about the company's topics (an extractive answer to those quotes the
    nearest passages, labelled as such; refusing an answerable question leaves the user with nothing).

    Ranked hits pass when the best score plus known_weight × known reaches score_min: the ranker's score
    says how well the best passage matches, known how much of the question's vocabulary the knowledge base
    uses at all (the weather, a flat tyre or the capital of France use words no document does). Each
    threshold sits in the middle of the gap between the tuning questions on either side of it, and among
    equally good weights the middle one is taken. Unranked hits (dense, sparse or plain fusion) pass when
    the keyword share or the cosine clears its threshold, tuned the same way. signals: from gate_signals,
    on the tuning split only.
    """
    import numpy as np

    def best(values):
        return max(values, default=-1.0)

    answerable = np.array([a for a, _, _ in signals], dtype=bool)
    off_topic = np.array([o for _, o, _ in signals], dtype=bool)
    company = ~answerable & ~off_topic
    lex = np.array([best(h[0] for h in hits) for _, _, hits in signals])
    sem = np.array([best(h[1] for h in hits if not h[2]) for _, _, hits in signals])
    score = np.array([best(h[3] for h in hits if h[3] is not None) for _, _, hits in signals])
    known = np.array([best(h[4] for h in hits) for _, _, hits in signals])

    def outcome(passed):
        return (int((off_topic & ~passed).sum()), int((answerable & passed).sum()), int((company & ~passed).sum()))

    def middle(values):
        values = sorted(set(values))
        return values[len(values) // 2]

    # ranked: the best threshold for each weight, the threshold halfway between the values around it
    ranked = {}
    for weight in [x / 4 for x in range(0, 121)]:
        value = score + weight * known
        cuts = np.unique(value)
        results = [(outcome(value >= cut), i) for i, cut in enumerate(cuts)]
        top = max(r for r, _ in results)
        first = last = min(i for r, i in results if r == top)
        while last + 1 < len(cuts) and results[last + 1][0] == top:
            last += 1
        # any threshold in (cuts[first - 1], cuts[last]] gives the same outcome
        low = cuts[first - 1] if first > 0 else cuts[first] - 1.0
        ranked[weight] = (top, (low + cuts[last]) / 2)
    top = max(r for r, _ in ranked.values())
    weight = middle(w for w, (r, _) in ranked.items() if r == top)
    score_min = round(float(ranked[weight][1]), 3)

    # unranked: keyword share or cosine
    off = 99.0  # a threshold nothing reaches: the signal plays no part
    plain = {}
    for lx in [x / 20 for x in range(12, 21)] + [off]:
        for sm in [x / 200 for x in range(170, 196)] + [off]:
            plain[(lx, sm)] = outcome((lex >= lx) | (sem >= sm))
    best_plain = max(plain.values())
    winners = [key for key, value in plain.items() if value == best_plain]
    lx = middle(w[0] for w in winners)
    sm = middle(w[1] for w in winners if w[0] == lx)
    return {"lexical_min": lx, "semantic_min": sm, "score_min": score_min, "known_weight": weight,
            "off_topic_refused": top[0], "answerable_kept": top[1], "company_refused": top[2],
            "unranked_off_topic_refused": best_plain[0], "unranked_answerable_kept": best_plain[1]}


# ------------------------------------------------------------------------------------------ answers

@dataclass
class AnswerScores:
    """What the answers said: quoted evidence, citations that contain it, refusals."""

    answerable: int = 0
    quoted: int = 0  # the answer text contains the evidence
    cited: int = 0  # ... and a citation's quote and passage contain it
    refused: int = 0  # answerable questions answered with "nothing relevant"
    cross_language_refused: int = 0
    unanswerable: int = 0
    unanswerable_refused: int = 0
    off_topic: int = 0  # unanswerable and not about the company at all
    off_topic_refused: int = 0
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind → [questions, quoted]
    misses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape in `zhiku eval --json`."""
        n = self.answerable or 1
        return {
            "answerable": self.answerable, "quoted": self.quoted, "cited": self.cited,
            "quoted_rate": self.quoted / n, "cited_rate": self.cited / n,
            "refused_answerable": self.refused, "cross_language_refused": self.cross_language_refused,
            "unanswerable": self.unanswerable, "unanswerable_refused": self.unanswerable_refused,
            "off_topic": self.off_topic, "off_topic_refused": self.off_topic_refused,
            "by_kind": {k: {"questions": v[0], "quoted": v[1]} for k, v in sorted(self.by_kind.items())},
        }


def quotes_evidence(answer: Answer, evidence: str) -> tuple[bool, bool]:
    """(the answer's text contains the evidence, a citation's quote and its passage contain it too)."""
    needle = normalize(evidence)
    quoted = needle in normalize(answer.text)
    cited = quoted and any(needle in normalize(c.quote) and needle in normalize(c.text) for c in answer.citations)
    return quoted, cited


def evaluate_answers(answers, questions: list[Question], user: User) -> AnswerScores:
    """Ask every question and score the answer against its evidence (or its refusal)."""
    scores = AnswerScores()
    for q in questions:
        answer = answers.ask(q.question, user)
        if q.evidence is None:
            scores.unanswerable += 1
            scores.unanswerable_refused += not answer.answerable
            scores.off_topic += q.off_topic
            scores.off_topic_refused += q.off_topic and not answer.answerable
            if answer.answerable:
                scores.misses.append(f"answered, though unanswerable: {q.question}")
            continue
        scores.answerable += 1
        kind = scores.by_kind.setdefault(q.kind, [0, 0])
        kind[0] += 1
        if not answer.answerable:
            scores.refused += 1
            scores.cross_language_refused += q.kind in CROSS_LANGUAGE
            scores.misses.append(f"refused: {q.question}")
            continue
        quoted, cited = quotes_evidence(answer, q.evidence)
        scores.quoted += quoted
        scores.cited += cited
        kind[1] += quoted
        if not quoted:
            scores.misses.append(f"not quoted: {q.question}")
    return scores


@dataclass
class ConversationScores:
    """Follow-ups that used the conversation, unrelated questions that did not."""

    follow_ups: int = 0
    followed: int = 0  # answered with the evidence
    unrelated: int = 0
    leaked: int = 0  # rewritten with the earlier turns although unrelated
    unrelated_correct: int = 0  # answered with their own evidence, or refused when there is none
    misses: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape in `zhiku eval --json`."""
        return {"follow_ups": self.follow_ups, "followed": self.followed, "unrelated": self.unrelated,
                "leaked": self.leaked, "unrelated_correct": self.unrelated_correct}


def evaluate_conversations(answers, conversations: list[Conversation], user: User) -> ConversationScores:
    """Play each conversation; score how its last question was read."""
    scores = ConversationScores()
    for conv in conversations:
        history: list[dict] = []
        for turn in conv.turns[:-1]:
            earlier = answers.ask(turn, user, history)
            history += [{"role": "user", "content": turn}, {"role": "assistant", "content": earlier.text}]
        last = conv.turns[-1]
        answer = answers.ask(last, user, history)
        correct = (not answer.answerable) if conv.evidence is None else quotes_evidence(answer, conv.evidence)[0]
        if conv.relation == "follow-up":
            scores.follow_ups += 1
            scores.followed += correct
            if not correct:
                scores.misses.append(f"follow-up not answered: {' → '.join(conv.turns)}")
        else:
            scores.unrelated += 1
            leaked = answer.query.strip() != last.strip()
            scores.leaked += leaked
            scores.unrelated_correct += correct and not leaked
            if leaked or not correct:
                scores.misses.append(f"{'leaked' if leaked else 'wrong'}: {' → '.join(conv.turns)}")
    return scores
