"""Names the documents themselves give in both languages: 兰亭通（LantingOne）, Lanting Technology (兰亭科技).

A company's systems, programmes and teams are in no dictionary, yet its documents often introduce them
with the other language's name in brackets. Those pairs join the dictionary for the knowledge base that
writes them, so "LantingOne" finds 兰亭通 and 兰亭云盘 finds LantingDrive, with no glossary to maintain.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from zhiku.retrieval.text import STOP_ZH, segment

# An English name: one to four capitalised words (LantingOne, Lanting Launch, VPN), maybe in quotes.
_EN = r"[A-Z][A-Za-z0-9]*(?:[ &][A-Z][A-Za-z0-9]*){0,3}"
_OPEN = re.compile(r"[（(]")
# what stands before an opening bracket, and what the brackets hold (searched near each bracket only:
# a pattern over the whole text tries every position of every run of Chinese)
_ZH_BEFORE = re.compile(r"([\u4e00-\u9fff]{2,16})[”\"]?\s*$")
_EN_INSIDE = re.compile(rf"\s*({_EN})\s*[)）]")
_EN_BEFORE = re.compile(rf"(?<![A-Za-z0-9])({_EN})[”\"]?\s*$")
_ZH_INSIDE = re.compile(r"\s*[“\"]?([\u4e00-\u9fff]{2,8})[”\"]?\s*[)）]")
_NEAR = 60  # characters looked at before and after a bracket
# words that end a name's run on its left: 通过兰亭通 is "through 兰亭通", 一名入职伙伴 "one 入职伙伴"
_BEFORE_NAME = STOP_ZH | frozenset("通过 使用 用 将 由 向 到 见 即 称 叫 名为 简称 包括 例如 比如 登录 打开".split())
_COUNT = re.compile(r"^[一二两三四五六七八九十百千\d]+[名个位家项款套种份]?$")
MAX_ZH = 8  # characters of a Chinese name
MAX_SENSES = 3  # names of one name in the other language (a name introduced differently in two places)


def name_pairs(text: str) -> list[tuple[str, str]]:
    """(Chinese name, English name) of each name the text gives in both languages, in order."""
    out: list[tuple[str, str]] = []
    for bracket in _OPEN.finditer(text):
        at = bracket.start()
        start, end = max(0, at - _NEAR), min(len(text), at + 1 + _NEAR)
        if (inside := _EN_INSIDE.match(text, at + 1, end)) and (before := _ZH_BEFORE.search(text, start, at)):
            zh = _name_end(before.group(1))
            if zh and len(inside.group(1)) >= 2:
                out.append((zh, inside.group(1)))
        elif (inside := _ZH_INSIDE.match(text, at + 1, end)) and (before := _EN_BEFORE.search(text, start, at)):
            if len(before.group(1)) >= 2:
                out.append((inside.group(1), before.group(1)))
    return out


def count_pairs(texts) -> Counter:
    """How often some passages give each (Chinese name, English name in lower case)."""
    return Counter((zh, en.lower()) for text in texts for zh, en in name_pairs(text))


def _name_end(run: str) -> str | None:
    """The name a run of Chinese text ends with: its last words, back to a word that introduces it."""
    words = segment(run)
    taken: list[str] = []
    for word in reversed(words):
        if word in _BEFORE_NAME or _COUNT.match(word) or len(word) + sum(map(len, taken)) > MAX_ZH:
            break
        taken.insert(0, word)
    name = "".join(taken)
    return name if len(name) >= 2 else None


@dataclass
class Names:
    """A knowledge base's names in both languages, looked up either way (English in lower case)."""

    to_english: dict[str, list[str]] = field(default_factory=dict)
    to_chinese: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, texts) -> Names:
        """The names of some passages; the ones they give most often come first."""
        return cls.of(count_pairs(texts))

    @classmethod
    def of(cls, counts: Counter) -> Names:
        """The names of counted pairs; of an English name and a longer one that ends with it for the same
        Chinese name (Lanting Technology, Compliance Lanting Technology: a heading ran into the text) only
        the shorter is kept."""
        names = cls()
        english: dict[str, set[str]] = {}
        for zh, en in counts:
            english.setdefault(zh, set()).add(en)
        for (zh, en), _ in sorted(counts.items(), key=lambda item: (-item[1], len(item[0][1]))):
            if any(other != en and en.endswith(" " + other) for other in english[zh]):
                continue
            for table, key, value in ((names.to_english, zh, en), (names.to_chinese, en, zh)):
                senses = table.setdefault(key, [])
                if len(senses) < MAX_SENSES:
                    senses.append(value)
        return names

    def __bool__(self) -> bool:
        return bool(self.to_english)

    @cached_property
    def _chinese(self) -> re.Pattern:
        # every name starting at each position (a lookahead), so overlapping ones are all seen
        return re.compile(f"(?=({'|'.join(map(re.escape, sorted(self.to_english, key=len, reverse=True)))}))")

    @cached_property
    def _english(self) -> re.Pattern:
        alternatives = "|".join(map(re.escape, sorted(self.to_chinese, key=len, reverse=True)))
        return re.compile(f"(?<![a-z0-9])(?=({alternatives})(?![a-z0-9]))")

    def in_chinese(self, text: str) -> list[tuple[str, list[str]]]:
        """(Chinese name, its English names) of the names a Chinese text holds, the longest of overlapping
        ones, in text order."""
        if not self:
            return []
        found = [(m.start(), m.group(1)) for m in self._chinese.finditer(text)]
        return [(zh, self.to_english[zh]) for _, zh in _apart(found)]

    def in_english(self, text: str) -> list[tuple[str, list[str]]]:
        """(English name in lower case, its Chinese names) of the names an English text holds, in text order."""
        if not self:
            return []
        found = [(m.start(), m.group(1)) for m in self._english.finditer(text.lower())]
        return [(en, self.to_chinese[en]) for _, en in _apart(found)]


def _apart(found: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The longest of overlapping matches, each once, in text order."""
    chosen: list[tuple[int, str]] = []
    for start, name in sorted(found, key=lambda f: (-len(f[1]), f[0])):
        if all(start + len(name) <= s or s + len(n) <= start for s, n in chosen):
            chosen.append((start, name))
    seen: set[str] = set()
    return [(s, n) for s, n in sorted(chosen) if not (n in seen or seen.add(n))]
