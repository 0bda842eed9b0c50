"""Feedback on answers exported as questions in `zhiku eval`'s format: the start of a company's own test set.

A thumbs-up line carries its evidence (the first citation's quoted words) and file, so it can be used as
is; a thumbs-down line has evidence null and file "" until an admin fills in the passage that answers it
(as exported, `zhiku eval` would count it as a question the knowledge base cannot answer).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from zhiku.core.errors import ZhikuError
from zhiku.retrieval.text import language_of

COLUMNS = ("question", "evidence", "file", "lang", "kind", "rating", "comment", "answer", "user", "at")
FORMATS = ("jsonl", "csv")
# a passage without quoted words: its opening is still contained in the chunk a correct hit returns
_EVIDENCE_CHARS = 120
# Excel runs a cell that starts like a formula: a comment typed as =HYPERLINK(...) must stay text
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def eval_line(row: dict) -> dict:
    """One feedback row (Store.feedback_rows) as an evaluation question with its rating."""
    question = row.get("question") or ""
    lang = language_of(question)
    evidence, file = None, ""
    citations = row.get("citations") or []
    if row.get("rating", 0) > 0 and citations:
        first = citations[0]
        evidence = (first.get("quote") or (first.get("text") or "")[:_EVIDENCE_CHARS]).strip() or None
        file = (first.get("file_name") or "") if evidence else ""
    kind = lang
    if evidence is not None and language_of(evidence) != lang:
        kind = f"{lang}-about-{language_of(evidence)}"  # the sample set's name for cross-language questions
    at = datetime.fromtimestamp(row["at"]).astimezone().isoformat(timespec="seconds") if row.get("at") else ""
    return {"question": question, "evidence": evidence, "file": file, "lang": lang, "kind": kind,
            "rating": row.get("rating"), "comment": row.get("comment"), "answer": row.get("answer") or "",
            "user": row.get("user") or "", "at": at}


def _cell(value) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def feedback_export(rows: list[dict], fmt: str) -> bytes:
    """Feedback rows as JSON lines, or as CSV in UTF-8 with a BOM (so Excel shows Chinese correctly).

    Args:
        rows: Store.feedback_rows(admin).
        fmt: jsonl or csv.

    Returns:
        The file's bytes.
    """
    lines = [eval_line(r) for r in rows]
    if fmt == "jsonl":
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode("utf-8")
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in line.items()} for line in lines)
        return out.getvalue().encode("utf-8-sig")
    raise ZhikuError(f"unknown feedback format {fmt!r}: use {' or '.join(FORMATS)}")
