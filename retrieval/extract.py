"""Extractive answers: the spans of the retrieved passages that answer the question, quoted verbatim.

A passage is read as sentences, clauses of a clause list (累计工作满 1 年不满 10 年的，年假为 10 天；满 10 年…),
lists with their lead-in, and tables (Markdown or DOCX rows with pipes, or PDF tables extracted one cell
per line) with their header. Each span is scored by the share of the question's keywords it holds (its
heading and lead-in count half), whether it meets the question's numeric condition (工作满十二年 meets
满 10 年不满 20 年, not 满 1 年不满 10 年), whether it holds a number when one is asked for, and whether
that number is of the kind asked for (how long: a duration, not the amounts listed beside it), and, when
the question asks whether something is allowed (可以…吗, Can I …?), whether the span allows, forbids or
limits something (不得, 只能, is not allowed). The best span leads; others follow only when their score
comes close, and nothing is quoted twice.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from zhiku.retrieval.embeddings import latent_cosine, latent_of
from zhiku.retrieval.keywords import Group, Text, question_groups, weights
from zhiku.retrieval.text import (
    CJK,
    Quantity,
    asked_types,
    asks_permission,
    conditions,
    language_of,
    quantities,
    states_rule,
    states_type,
)
from zhiku.retrieval.types import Citation, Hit

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=\.)\s+(?=[A-Z0-9\"“(])")
_CLAUSE = re.compile(r"(?<=[；;])")
_HEADING = re.compile(r"^(#{1,6}\s|[一二三四五六七八九十]+、|第[一二三四五六七八九十\d]+[章节条部分]|\d+(\.\d+)*\.?\s+\S)")
_BULLET = re.compile(r"^([-*•·]\s+|\d+[.)、]\s*|[（(]\d+[)）]\s*)")
_SEPARATOR = re.compile(r"^:?-{2,}:?$")
_ASKS_NUMBER = re.compile(
    r"几|多少|多久|多长|多大|多高|多远|什么时候|何时|哪天|哪一天|几号|几点|上限|标准|比例|"
    r"\bhow (many|much|long|often|soon|quickly|early|late|far)\b|\bwhen\b|\bwhat time\b|\bwhich (day|date|year)\b|"
    r"\b(limit|percentage|rate|deadline|number|extension)\b",
    re.I,
)
_PAGE_MARK = re.compile(r"第\s*\d+\s*页|\bPage\s+\d+\b", re.I)
_DIGIT = re.compile(r"\d|[一二两三四五六七八九十百千万]")
_PUNCTUATION = re.compile(r"[\s\W_]+", re.U)
MAX_SPANS = 3
MAX_ROWS = 12


@dataclass
class Span:
    """A quotable part of a passage."""

    hit: int  # position of its passage among the hits
    kind: str  # sentence | clause | list | table
    text: str  # what the answer shows (a table is rendered as Markdown)
    quote: str  # the passage's own lines, to highlight in the citation
    context: str = ""  # heading and lead-in: help matching, are not quoted
    ranges: list = field(default_factory=list)
    siblings: bool = False  # a clause of a list of alternatives, or a row of a table
    score: float = 0.0
    lead: str = ""  # a clause's sentence head before "：", a table's lead-in line
    header: list[str] = field(default_factory=list)  # a table row's header cells
    header_quote: str = ""  # ... and the header as the passage writes it
    caption: str = ""  # the heading above a table
    paragraph: tuple[str, str] | None = None  # a short paragraph a sentence belongs to: (shown, quoted)
    line: tuple[str, str] | None = None  # the line of several sentences a sentence belongs to: (shown, quoted)
    at: int = 0  # where the sentence starts in its line's shown text
    share: float = 0.0  # keyword share with the heading and lead-in counting half
    own_share: float = 0.0  # keyword share of the span alone
    met: int = 0  # 1 meets the question's numeric condition, -1 states only others, 0 states none
    sentence: "Span | None" = None  # the whole sentence a clause belongs to

    @property
    def key(self) -> str:
        """The span's content without spacing and punctuation, to recognise the same text twice."""
        return _PUNCTUATION.sub("", self.quote if self.kind == "table" else self.text).lower()


# ------------------------------------------------------------------------------------ reading passages

def _cells(line: str) -> list[str] | None:
    """The cells of a table row written with pipes, or None."""
    if "|" not in line:
        return None
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    return cells if len(cells) >= 2 and any(cells) else None


def _is_cell_line(line: str) -> bool:
    """A short line without sentence punctuation: a table cell as PDF extraction writes it, one per line."""
    return 0 < len(line) <= 30 and not re.search(r"[。；，,;:：!?！？]", line) and "|" not in line


def _columns(run: list[str]) -> int | None:
    """How many columns a run of cell lines has: the smallest count whose columns are consistent
    (every data cell of a column holds a number, or none does) under a header without numbers."""
    for n in range(2, 9):
        if len(run) % n or len(run) // n < 3:
            continue
        header, rows = run[:n], [run[i : i + n] for i in range(n, len(run), n)]
        if any(re.search(r"\d", c) for c in header):
            continue
        if all(len({bool(re.search(r"\d", row[j])) for row in rows}) == 1 for j in range(n)):
            return n
    return None


def _row_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _heading_like(line: str, chunk_heading: str | None) -> bool:
    stripped = line.strip()
    if stripped.startswith("#") or (chunk_heading and stripped == chunk_heading.strip()):
        return True
    if re.search(r"[。；;!?！？]$", stripped) or len(stripped) > 40:
        return False
    return bool(_HEADING.match(stripped)) or (_is_cell_line(stripped) and len(stripped) <= 20)


def _clean(line: str) -> str:
    """A line without Markdown heading, quote and emphasis marks (the quote keeps the original)."""
    return re.sub(r"^\s*(#{1,6}|>)\s*", "", line).replace("**", "").strip()


def _unwrap(lines: list[str]) -> list[str]:
    """Lines with hard-wrapped paragraphs and list items joined again (Markdown wraps at ~100 characters)."""
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if out and stripped and out[-1].strip():
            last = out[-1].rstrip()
            starts_new = bool(_BULLET.match(stripped) or _cells(stripped) or stripped.startswith("#"))
            wrapped = len(last) > 40 and not re.search(r"[。！？!?:：]$|\.$", last)
            if not starts_new and (wrapped or (line[:1] == " " and not _cells(last))):
                out[-1] = last + ("" if CJK.match(stripped[:1]) and CJK.match(last[-1:]) else " ") + stripped
                continue
        out.append(line)
    return out


def read_spans(hit_index: int, text: str, heading: str | None) -> list[Span]:
    """Every quotable span of a passage, in reading order."""
    lines = _unwrap([line.rstrip() for line in text.split("\n")])
    spans: list[Span] = []
    current = heading or ""
    previous = ""
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
            continue
        # a table written with pipes (Markdown, DOCX)
        if _cells(line):
            j = i
            rows = []
            while j < len(lines) and _cells(lines[j].strip()):
                rows.append(lines[j].strip())
                j += 1
            if len(rows) >= 2:
                spans.extend(_table_spans(hit_index, rows, [_cells(r) for r in rows], current, previous))
                previous, i = "", j
                continue
        # a table extracted one cell per line (PDF)
        j = i
        while j < len(lines) and _is_cell_line(lines[j].strip()):
            j += 1
        run = [lines[k].strip() for k in range(i, j)]
        n = _columns(run) if len(run) >= 6 else None
        if n:
            cells = [run[k : k + n] for k in range(0, len(run), n)]
            spans.extend(_table_spans(hit_index, run, cells, current, previous, per_row=n))
            previous, i = "", j
            continue
        if _PAGE_MARK.search(line) and len(line) <= 80:
            i += 1  # a page header or footer
            continue
        if i == len(lines) - 1 and len(line) > 40 and not re.search(r"[。！？!?.；;:：)）」”\"]$", line):
            break  # cut at the end of the chunk: the neighbouring chunk holds the whole sentence
        if _heading_like(line, heading):
            current, previous = _clean(line), ""
            i += 1
            continue
        # a lead-in ending with a colon and the items under it: the list is one span as well
        if line.endswith(("：", ":")) and i + 1 < len(lines):
            items, j = [], i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            while j < len(lines) and lines[j].strip() and len(items) < 8:
                nxt = lines[j].strip()
                if _cells(nxt) or _heading_like(nxt, heading) or nxt.endswith(("：", ":")):
                    break
                items.append(nxt)
                j += 1
            if len(items) >= 2:
                body = "\n".join([line] + items)
                spans.append(Span(hit_index, "list", "\n".join(_clean(x) for x in [line] + items), body, current))
                for item in items:
                    spans.extend(_sentence_spans(hit_index, item, current, line))
                previous, i = line, j
                continue
        spans.extend(_sentence_spans(hit_index, line, current, previous))
        previous = line
        i += 1
    return spans


def _sentence_spans(hit_index: int, line: str, context: str, previous: str) -> list[Span]:
    """Sentences of a line, and the clauses of a sentence that lists alternatives with ；."""
    out = []
    body = _BULLET.sub("", _clean(line)) if _BULLET.match(_clean(line)) else _clean(line)
    original = _BULLET.sub("", re.sub(r"^\s*(#{1,6}|>)\s*", "", line.strip()))
    sentences = [s.strip() for s in _SENTENCE_END.split(body) if s.strip()]
    # a short paragraph reads whole: its second sentence often completes the first (当年未使用的额度不结转)
    short = 1 < len(sentences) <= 3 and len(body) <= 160
    at = 0
    for sentence in sentences:
        at = body.find(sentence, at)
        if len(sentence) < 6 or (not CJK.search(sentence) and len(sentence) < 12):
            continue
        ranges = conditions(sentence)
        whole = Span(hit_index, "sentence", sentence, sentence, context, ranges,
                     paragraph=(body, original) if short else None,
                     line=(body, original) if len(sentences) > 1 else None, at=at)
        out.append(whole)
        clauses = [c.strip() for c in _CLAUSE.split(sentence) if c.strip()]
        if len(clauses) >= 2:
            lead = sentence.split("：", 1)[0] if "：" in clauses[0] else ""
            subject = ""
            for n, clause in enumerate(clauses):
                shown = clause.split("：", 1)[1] if "：" in clause and clause.startswith(lead) and lead else clause
                shown = shown.rstrip("；;。 ")
                if n == 0 and (number := _DIGIT.search(shown)) and conditions(shown):
                    # parallel clauses leave out the subject the first one states: 满 10 年不满 20 年的 is
                    # 累计工作满 10 年不满 20 年的 after 累计工作满 1 年不满 10 年的
                    subject = shown[: number.start()].strip() if number.start() >= 2 else ""
                if len(shown) >= 6:
                    out.append(Span(hit_index, "clause", shown, shown, context, conditions(shown), siblings=True,
                                    lead=f"{lead} {subject}".strip() if n else lead, sentence=whole))
    return out


def _table_spans(hit_index: int, lines: list[str], rows: list[list[str]], context: str, lead: str,
                 per_row: int | None = None) -> list[Span]:
    """A table as one span per data row (selection happens later), with the header kept apart."""
    rows = [r for r in rows if not all(_SEPARATOR.match(c.replace(" ", "")) or not c for c in r)]
    if len(rows) < 2:
        return []
    header, data = rows[0], rows[1:]
    if per_row:  # one cell per line: the row's quote is its cells' lines
        quotes = ["\n".join(lines[k : k + per_row]) for k in range(0, len(lines), per_row)]
        header_quote, data_quotes = quotes[0], quotes[1:]
    else:
        kept = [line for line in lines if not all(_SEPARATOR.match(c.replace(" ", "")) or not c for c in _cells(line))]
        header_quote, data_quotes = kept[0], kept[1:]
    spans = []
    for cells, quote in zip(data, data_quotes):
        row_text = " ".join(cells)
        spans.append(Span(hit_index, "table", _row_line(cells), quote, f"{context} {lead}".strip(),
                          conditions(row_text), siblings=True, lead=lead, header=header, header_quote=header_quote,
                          caption=context))
    return spans


# -------------------------------------------------------------------------------------- choosing

@dataclass
class Choice:
    """The spans an answer quotes, best first."""

    spans: list[Span]
    tables: dict[int, list[Span]]  # id of the first row → the rows of that table to show
    passages: dict[int, str] = field(default_factory=dict)  # hit position → the text its spans come from


def _overlap(a: str, b: str) -> int:
    """Length of the longest end of a that begins b (neighbouring chunks share their edges)."""
    for k in range(min(len(a), len(b), 800), 9, -1):
        if a.endswith(b[:k]):
            return k
    return 0


def passages(hits: list[Hit]) -> list[tuple[int, str, str | None]]:
    """(position of the best hit, text, heading) with neighbouring chunks of one page joined, so a table
    or list cut at a chunk boundary is read whole, with the heading and lead-in above it."""
    order = sorted(range(len(hits)), key=lambda i: (hits[i].chunk.doc_id, hits[i].chunk.page or 0,
                                                    hits[i].chunk.chunk_index))
    runs: list[list[int]] = []
    for i in order:
        c = hits[i].chunk
        if runs:
            last = hits[runs[-1][-1]].chunk
            if (last.doc_id, last.page) == (c.doc_id, c.page) and c.chunk_index == last.chunk_index + 1:
                runs[-1].append(i)
                continue
        runs.append([i])
    out = []
    for run in runs:
        text = hits[run[0]].chunk.text
        for i in run[1:]:
            nxt = hits[i].chunk.text
            k = _overlap(text, nxt)
            text = text + nxt[k:] if k else text + "\n" + nxt
        out.append((min(run), text, hits[run[0]].chunk.heading))
    return sorted(out)


def _met(span: Span, wanted: list[Quantity]) -> int:
    """1 if the span states a condition the question's quantity meets, -1 if it states only others, else 0."""
    if not wanted or not span.ranges:
        return 0
    relevant = [r for r in span.ranges if any(r.about(q) for q in wanted)]
    if not relevant:
        return 0
    return 1 if any(r.contains(q) for r in relevant for q in wanted) else -1


SEMANTIC_SPANS = 12  # how many of the best spans by keywords are embedded and compared by meaning
MEANING_SPANS = 4  # and how many more, the closest by the sentence vectors the index keeps
SPAN_FEATURES = (
    "share", "own_share", "met", "missed", "number", "clause", "list", "table", "position", "passage",
    "other_language", "meaning", "long", "lead_in", "typed", "mistyped", "latent", "rule",
)
# Fitted by `python -m zhiku.retrieval.learn --qa data/eval/sample_qa.jsonl --spans` on the "tune" split
# (a span is right when it shows the question's evidence; 268 of its 274 answerable questions have one
# among the candidates; 5-fold cross-validation, 3 shuffles, quotes the evidence for 247.3 of them since a
# share counts only the keywords some span holds, 245.0 before; top-1 span right 214.0 both ways);
# replaced by a refit, never edited by hand.
SPAN_WEIGHTS: dict[str, float] = {
    "share": 2.2087, "own_share": -0.0947, "met": 2.0574, "missed": -0.6357, "number": 0.6482,
    "clause": -0.9065, "list": 0.7539, "table": 1.1813, "position": 0.8897, "passage": 2.149,
    "other_language": 0.4979, "meaning": 12.1262, "long": -0.3278, "lead_in": -1.9589, "typed": 0.1202,
    "mistyped": -0.6373, "latent": 9.0502, "rule": 1.1822,
}
# a further span is quoted when the model gives it at least this share of the best one's probability; when
# every span chosen is in one language, the best span in the other language is added at OTHER_KEEP (the
# answer is often stated in both, or only in the language not asked in). Measured again with today's
# features, 5-fold cross-validation on tune (3 shuffles, 268 questions with a right span), evidence quoted
# / spans an answer (before OTHER_KEEP and joining): KEEP 0.3 246.3 / 1.75, 0.25 247.3 / 1.87,
# 0.2 247.7 / 1.95 (earlier, with 258 questions: 0.4 238.0 / 1.88, 0.15 244.7 / 2.35; a fourth span adds
# at most 1 question for 0.1–0.3 more spans)
KEEP = 0.25
OTHER_KEEP = 0.02


@dataclass
class Candidates:
    """Every span a question could be answered with, and its features (rows follow spans)."""

    spans: list[Span]
    tables: dict[int, list[Span]]
    passages: dict[int, str]
    features: "np.ndarray"


def candidates(
    question: str,
    hits: list[Hit],
    translator=None,
    context_question: str | None = None,
    embedder=None,
    query_vector=None,
    translated_vector=None,
    query_latent=None,
) -> Candidates:
    """The spans of the hits (a table as one span of its chosen rows) with their features.

    translated_vector: the embedding of the question's keywords in the other language; spans in that
    language are compared with it (a multilingual model matches within a language far better).
    query_latent: the question's latent-term vector (indices, values), if already computed.
    """
    import numpy as np

    groups = question_groups(question, translator)
    extra: list[Group] = []
    if context_question:
        own = {g.text for g in groups}
        extra = [g for g in question_groups(context_question, translator) if g.text not in own]
    # the earlier question's numbers are about its own subject (十二年 of 年假, not of 病假)
    wanted = quantities(question)
    english = language_of(question) == "en"
    gloss = translator.gloss if translator is not None and english else None
    asks_number = bool(_ASKS_NUMBER.search(question))
    types = asked_types(question)
    permission = asks_permission(question)

    joined = passages(hits)
    spans = [s for position, text, heading in joined for s in read_spans(position, text, heading)]
    texts_by_hit = {position: text for position, text, _ in joined}
    if not spans:
        return Candidates([], {}, texts_by_hit, np.zeros((0, len(SPAN_FEATURES))))

    def prepared(text: str) -> Text:
        return Text(text, gloss(text) if gloss and CJK.search(text) else None)

    # a clause is read with its sentence's lead-in: 满 10 年不满 20 年的 … is about 带薪年假天数
    texts = [prepared(f"{s.text} {s.lead}".strip() if s.kind == "clause" else s.text) for s in spans]
    contexts = [prepared(s.context) for s in spans]
    all_groups = groups + extra
    weight = weights(all_groups, texts)
    weight = [w if i < len(groups) else 0.3 * w for i, w in enumerate(weight)]
    # a share of the keywords some span holds: words no span has (想去, 顺便 of 想去香港住几周顺便远程办公) would
    # weigh most by their rarity and shrink every share alike, and with it what the shares tell apart
    found_any = [any(t.matches(g) for t in texts) or any(c.matches(g) for c in contexts) for g in all_groups]
    total = sum(w for w, f in zip(weight, found_any) if f) or 1.0

    def share(text: Text, context: Text | None = None) -> float:
        got = 0.0
        for g, w in zip(all_groups, weight):
            if text.matches(g):
                got += w
            elif context is not None and context.matches(g):
                got += 0.5 * w
        return got / total

    for span, text, context in zip(spans, texts, contexts):
        span.share = share(text, context)
        span.own_share = share(text)
        span.met = _met(span, wanted)

    # a table competes as one span: the rows the question points at, or all of them
    tables: dict[int, list[Span]] = {}
    heads: list[Span] = []
    for rows in _group_tables(spans).values():
        row_texts = [texts[spans.index(r)] for r in rows]
        head_text = prepared(" ".join(rows[0].header) + " " + rows[0].lead)
        # a row is pointed at by words of its own, not by words its header has too (审批 of 审批人)
        own_groups = [i for i, g in enumerate(all_groups) if not head_text.matches(g)]
        specific = [sum(weight[i] for i in own_groups if t.matches(all_groups[i])) for t in row_texts]
        met_rows = [r for r in rows if r.met > 0]
        if met_rows:
            chosen = met_rows
        elif max(specific) > 0 and len(set(specific)) > 1:
            chosen = [r for r, x in zip(rows, specific) if x == max(specific)]
        else:
            chosen = rows[:MAX_ROWS]
        head = chosen[0]
        joined_rows = prepared(" ".join(r.text for r in chosen))
        whole = Text(head_text.text + " " + joined_rows.text, head_text.gloss | joined_rows.gloss)
        head.share = share(whole, contexts[spans.index(head)])
        head.own_share = share(whole)
        head.met = 1 if met_rows else max(r.met for r in rows)
        tables[id(head)] = chosen
        heads.append(head)
    spans = [s for s in spans if s.kind != "table"] + heads

    question_language = language_of(question)
    top_score = hits[0].score if hits else 0.0
    rows = []
    for span in spans:
        table_rows = tables.get(id(span))
        shown = " ".join(r.text for r in table_rows) if table_rows else span.text
        several = span.kind == "sentence" and len(span.ranges) > 1  # holds the wrong alternatives too
        typed = bool(types) and states_type(shown, types)  # states a value of the kind asked for
        rows.append([
            span.share, span.own_share,
            (0.3 if several else 1.0) * (span.met > 0), 1.0 * (span.met < 0),
            1.0 if asks_number and _DIGIT.search(shown) else 0.0,
            1.0 * (span.kind == "clause"), 1.0 * (span.kind == "list"), 1.0 * (span.kind == "table"),
            1.0 / (1.0 + span.hit),
            float(np.clip(hits[span.hit].score - top_score, -3.0, 0.0)) / 3.0 + 1.0 if hits else 0.0,
            1.0 * (language_of(shown) != question_language),
            0.0,
            min(len(shown) / 200.0, 2.0),
            1.0 * span.text.rstrip().endswith((":", "：")),
            1.0 * typed,
            1.0 * (bool(types) and not typed and bool(_DIGIT.search(shown))),
            0.0,
            1.0 * (permission and states_rule(shown)),  # Can I …? is answered by what allows or forbids it
        ])
    matrix = np.asarray(rows, dtype=np.float32)
    # a follow-up (那病假呢？) says too little to be compared by meaning: keywords and context decide
    if embedder is not None and len(spans) > 1 and not context_question:
        _meaning(question, spans, tables, matrix, embedder, query_vector, translated_vector, _stored(hits),
                 query_latent)
    return Candidates(spans, tables, texts_by_hit, matrix)


def _stored(hits: list[Hit]) -> dict:
    """The sentence vectors the index keeps for the hits, by their text without spacing and punctuation."""
    import numpy as np

    from zhiku.retrieval.keywords import sentence_units

    out = {}
    for hit in hits:
        vectors = getattr(hit, "sentences", None)
        if vectors is None or not len(vectors):
            continue
        units = sentence_units(hit.chunk.text)
        if len(units) == len(vectors):  # the passage was split as it is today
            for unit, vector in zip(units, np.asarray(vectors, dtype=np.float32)):
                out.setdefault(_PUNCTUATION.sub("", unit).lower(), vector)
    return out


def _meaning(question: str, spans: list[Span], tables, matrix, embedder, query_vector, translated_vector=None,
             stored: dict | None = None, query_latent=None) -> None:
    """Fill the "meaning" feature: the dense similarity of the best few spans by keywords, relative to
    the best of them in the same language (spans not compared get the lowest value seen). A span that
    is one of the sentences the index keeps a vector for is not embedded again. With an embedder that
    makes latent-term vectors, the same spans get "latent": their latent-term cosine with the question."""
    import numpy as np

    column = SPAN_FEATURES.index("meaning")
    stored = stored or {}
    qv = embedder.embed_query(question) if query_vector is None else np.asarray(query_vector, dtype=np.float32)
    other = np.asarray(translated_vector, dtype=np.float32) if translated_vector is not None else qv
    own_language = language_of(question)

    def shown(i: int) -> str:
        rows = tables.get(id(spans[i]))
        return " ".join(spans[i].header) + " " + " ".join(r.text for r in rows) if rows else spans[i].text

    def cosine(vector, text: str) -> float:
        return float(vector @ (qv if language_of(text) == own_language else other))

    prior = matrix[:, 0] + matrix[:, 2] + 0.3 * matrix[:, SPAN_FEATURES.index("position")]
    order = [int(i) for i in np.argsort(-prior, kind="stable")]
    top, seen = [], set()
    for i in order:
        key = _quote_key(spans[i], tables)
        if key in seen:
            continue
        seen.add(key)
        top.append(i)
        if len(top) == SEMANTIC_SPANS:
            break
    # a paraphrase shares no keyword (请客户吃饭 for 业务招待): the sentences the index keeps vectors for
    # are compared at no cost, and the closest few by meaning join the compared ones
    closest = sorted(((cosine(stored[k], t), i) for i in range(len(spans))
                      if (k := _PUNCTUATION.sub("", t := shown(i)).lower()) in stored), reverse=True)
    extra = 0
    for _, i in closest:
        key = _quote_key(spans[i], tables)
        if extra == MEANING_SPANS:
            break
        if key not in seen:
            seen.add(key)
            top.append(i)
            extra += 1
    texts = [shown(i) for i in top]
    keys = [_PUNCTUATION.sub("", t).lower() for t in texts]
    missing = [t for t, key in zip(texts, keys) if key not in stored]
    fresh = iter(embedder.embed_passages(missing) if missing else [])
    vectors = [stored[key] if key in stored else next(fresh) for key in keys]
    langs = [language_of(t) for t in texts]
    cos = np.array([cosine(v, t) for v, t in zip(vectors, texts)])
    # across languages every cosine runs lower: a span is compared with the best span of its language
    best = {lang: max(c for c, l in zip(cos, langs) if l == lang) for lang in set(langs)}
    gaps = {i: float(c - best[lang]) for i, c, lang in zip(top, cos, langs)}
    floor = min(gaps.values()) - 0.02
    for i in range(len(spans)):
        matrix[i, column] = gaps.get(i, floor)
    encode = latent_of(embedder)
    if encode is not None:
        question_terms, *span_terms = encode([question] + texts) if query_latent is None else [query_latent, *encode(texts)]
        latent = {i: latent_cosine(question_terms, terms) for i, terms in zip(top, span_terms)}
        floor = min(latent.values()) - 0.02
        column = SPAN_FEATURES.index("latent")
        for i in range(len(spans)):
            matrix[i, column] = latent.get(i, floor)


def choose(
    question: str,
    hits: list[Hit],
    translator=None,
    context_question: str | None = None,
    embedder=None,
    query_vector=None,
    span_weights: dict[str, float] | None = None,
    translated_vector=None,
    query_latent=None,
) -> Choice:
    """The spans of the hits that answer the question, best first, without repeats.

    Args:
        question: what the user asked.
        hits: the relevant passages, best first.
        translator: matches an English question against Chinese text and the other way round.
        context_question: the earlier question a follow-up depends on; its keywords count a little.
        embedder: compares the best spans with the question by meaning (weekend meets 休息日).
        query_vector: the question's embedding, if already computed.
        span_weights: override SPAN_WEIGHTS (fitting and evaluation).
        translated_vector: the embedding of the question's keywords in the other language.
        query_latent: the question's latent-term vector, if already computed.
    """
    import numpy as np

    found = candidates(question, hits, translator, context_question, embedder, query_vector, translated_vector,
                       query_latent)
    if not found.spans:
        return Choice([], {}, found.passages)
    chosen_weights = SPAN_WEIGHTS if span_weights is None else span_weights
    w = np.array([chosen_weights.get(f, 0.0) for f in SPAN_FEATURES], dtype=np.float32)
    scores = found.features @ w
    for span, score in zip(found.spans, scores):
        span.score = float(score)
    ranked = sorted(found.spans, key=lambda s: -s.score)
    if log.isEnabledFor(logging.DEBUG):
        for span in ranked[:8]:
            log.debug("%.2f %s [%d] %s", span.score, span.kind, span.hit, span.text[:60].replace("\n", "/"))
    best = ranked[0].score
    other = dict(zip(map(id, found.spans), found.features[:, SPAN_FEATURES.index("other_language")]))

    def repeated(span: Span) -> bool:  # the same words are already quoted (overlapping passages repeat sentences)
        key = _quote_key(span, found.tables)
        return any(key in _quote_key(c, found.tables) or _quote_key(c, found.tables) in key for c in chosen)

    chosen: list[Span] = []
    for span in ranked:
        # the model's probability of this span relative to the best one: exp(score - best)
        if len(chosen) == MAX_SPANS or (chosen and np.exp(span.score - best) < KEEP):
            break
        span = _whole_list(span)
        if not repeated(span):
            chosen.append(span)
    languages = {other[id(c)] for c in chosen}
    if len(languages) == 1:  # (it may be a fourth span: it says what the others say, in the other language)
        extra = next((s for s in ranked if other[id(s)] not in languages and not repeated(s)), None)
        if extra is not None and np.exp(extra.score - best) >= OTHER_KEEP:
            chosen.append(extra)
    chosen = _join_runs(chosen)
    for span in chosen:
        paragraph = span.paragraph
        if paragraph and not any(c is not span and c.hit == span.hit and c.quote in paragraph[1] for c in chosen):
            span.text, span.quote = paragraph
    return Choice(chosen, found.tables, found.passages)


def _whole_list(span: Span) -> Span:
    """A clause of alternatives by condition stands alone only when it meets the question's condition:
    年假有几天？ quoted with 满 20 年及以上的，年假为 20 天 alone reads as 20 days for everyone."""
    whole = span.sentence
    if span.kind != "clause" or span.met > 0 or whole is None or len(whole.ranges) < 2:
        return span
    whole.score = span.score
    return whole


MAX_RUN = 400  # characters: sentences further apart than this are quoted apart


def _join_runs(chosen: list[Span]) -> list[Span]:
    """Sentences of one line quoted apart become one quote with what lies between them: the sentence
    skipped between two chosen ones often holds the answer (Ask … no later than 18:00 …)."""
    out: list[Span] = []
    for span in chosen:
        mate = next((c for c in out if span.kind == c.kind == "sentence" and c.hit == span.hit
                     and c.line is not None and c.line == span.line), None)
        if mate is None:
            out.append(span)
            continue
        body, original = span.line
        start = min(mate.at, span.at)
        end = max(mate.at + len(mate.text), span.at + len(span.text))
        if end - start > MAX_RUN:
            out.append(span)
            continue
        joined = body[start:end]
        # the quote highlights the passage's own text: one piece when the line reads the same there
        mate.quote = joined if joined in original else "\n".join([mate.quote, span.quote])
        mate.text, mate.at = joined, start
    return out


def _group_tables(spans: list[Span]) -> dict[tuple[int, str], list[Span]]:
    """Table rows grouped by passage and header."""
    out: dict[tuple[int, str], list[Span]] = {}
    for s in spans:
        if s.kind == "table":
            out.setdefault((s.hit, s.header_quote), []).append(s)
    return out


def _quote_key(span: Span, tables: dict[int, list[Span]]) -> str:
    rows = tables.get(id(span))
    text = " ".join(r.quote for r in rows) if rows else span.text
    return _PUNCTUATION.sub("", text).lower()


# ------------------------------------------------------------------------------------- rendering

def render(choice: Choice, hits: list[Hit], label: str) -> tuple[str, list[Citation]]:
    """The answer text (label, then quoted spans with [n]) and its citations with the quoted lines."""
    order: dict[int, int] = {}
    quotes: dict[int, list[str]] = {}
    blocks = []
    for span in choice.spans:
        n = order.setdefault(span.hit, len(order) + 1)
        rows = choice.tables.get(id(span))
        if rows:
            header = span.header
            table = [_row_line(header), _row_line(["---"] * len(header))] + [r.text for r in rows]
            caption = span.caption
            lines = ([f"{caption} [{n}]", ""] if caption else []) + table + ([] if caption else ["", f"[{n}]"])
            blocks.append("\n".join(f"> {line}".rstrip() for line in lines))
            quotes.setdefault(span.hit, []).extend([span.header_quote] + [r.quote for r in rows])
        else:
            shown = span.text.replace("\n", "\n> ")
            blocks.append(f"> {shown} [{n}]")
            quotes.setdefault(span.hit, []).append(span.quote)
    text = label + "\n\n" + "\n>\n".join(blocks)
    citations = []
    for position, n in order.items():
        c = hits[position].chunk
        passage = choice.passages.get(position, c.text)
        citations.append(Citation(n, c.doc_id, c.file_name, c.page, passage, "\n".join(quotes[position]), c.heading,
                                  c.collection))
    return text, citations
