"""A question's keywords, each with its dictionary translations, and how much of them a text contains."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

from zhiku.retrieval.text import CJK, is_chinese, keywords, normalize_numbers, terms

# a quantity in a question (工作满十二年, above 50,000 yuan) is a condition, matched by text.conditions,
# not a keyword: documents write 满 10 年不满 20 年, never 十二年
_QUANTITY = re.compile(
    r"(?<![A-Za-z0-9])\d+(?:\.\d+)?\s*-?(?:万元|元|块|周岁|岁|年|个多月|个月|月|周|星期|天|日|个小时|小时|分钟|次|%"
    r"|(?:years?|months?|weeks?|days?|hours?|minutes?|times?|yuan)\b(?:-old)?)?",
    re.I,
)
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9'.-]*")
_SENTENCE = re.compile(r"(?<=[。！？；;!?])|(?<=\.)\s+|\n+")


# English forms Porter's stemmer leaves apart; matching only (the index keeps its own terms)
_IRREGULAR = {
    "paid": "pay", "daily": "day", "nightly": "night", "weekly": "week", "monthly": "month", "yearly": "year",
    "got": "get", "took": "take", "taken": "take", "lost": "lose", "spent": "spend", "sent": "send", "made": "make",
    "gave": "give", "given": "give", "bought": "buy", "kept": "keep", "held": "hold", "chose": "choose",
    "chosen": "choose", "wrote": "write", "written": "write", "met": "meet", "told": "tell", "began": "begin",
}


@lru_cache(maxsize=1)
def _porter():
    try:
        from nltk.stem.porter import PorterStemmer  # installed with llama-index-core
    except ImportError:
        return None
    return PorterStemmer()


@lru_cache(maxsize=65536)
def match_form(term: str) -> str:
    """The form two words are compared in: Chinese as it is, English stemmed harder than the index does
    (approved/approval, travelling/travel, paid/pay), so a question's word meets a passage's or a gloss's."""
    if not term or CJK.match(term) or not term.isascii():
        return term
    term = _IRREGULAR.get(term, term)
    stemmer = _porter()
    return stemmer.stem(term) if stemmer is not None and term.isalpha() else term


@dataclass(frozen=True)
class Group:
    """One keyword (or dictionary phrase) of a question; any one option found in a text counts.

    An option is a tuple of terms that must all be present: ("maternity", "leave") or ("产假",).
    """

    text: str
    options: tuple[tuple[str, ...], ...]
    translated: bool = False  # the second and later options come from the bilingual dictionary
    # the translations as the dictionary writes them (options hold matching forms: offici, busi)
    surface: tuple[str, ...] = ()


class Text:
    """A passage, sentence or table row prepared for keyword matching.

    gloss: English terms of the dictionary senses of its Chinese words (Translator.gloss), so an
    English question's words can be found in a Chinese passage.
    """

    def __init__(self, text: str, gloss: frozenset[str] | None = None):
        self.text = text
        self.lowered = text.lower()
        words = [t for t in gloss or () if " " not in t]
        self.gloss = frozenset(match_form(t) for t in words)
        self.gloss_phrases = frozenset(" ".join(match_form(w) for w in t.split()) for t in gloss or () if " " in t)

    @cached_property
    def terms(self) -> frozenset[str]:
        return frozenset(match_form(t) for t in terms(self.text))

    @cached_property
    def words(self) -> tuple[str, ...]:
        return tuple(_LATIN_WORD.findall(self.lowered))

    def _inside(self, term: str) -> bool:
        """Chinese anywhere in the text (no spaces between words); English only at the start of a word
        (a stem such as reimburs meets reimbursed, but tall does not meet install)."""
        if len(term) < 2:
            return False
        if not term.isascii():
            return term in self.lowered
        return any(word.startswith(term) for word in self.words)

    def has(self, term: str) -> bool:
        """A term is present as a word, inside the text (see _inside), or among the glossed senses."""
        return term in self.terms or self._inside(term) or term in self.gloss

    def matches(self, group: Group, own_only: bool = False) -> bool:
        """Whether any option of the group is present (only the question's own words, not through the
        dictionary, if own_only)."""
        own = all(t in self.terms or self._inside(t) for t in group.options[0])
        if own or own_only:
            return own
        for option in group.options:
            if len(option) > 1 and self.gloss_phrases:
                # through the dictionary, the words of a phrase must be one sense of one word
                if all(t in self.terms or self._inside(t) for t in option) \
                        or " ".join(option) in self.gloss_phrases:
                    return True
            elif all(self.has(t) for t in option):
                return True
        return False


def question_groups(question: str, translator=None) -> list[Group]:
    """The question's keywords in order, merged with their translations when a translator is given."""
    own = keywords(_QUANTITY.sub(" ", normalize_numbers(question)))
    groups: list[Group] = [Group(w, ((match_form(w),),)) for w in own]
    if translator is None:
        return groups
    for phrase, found in translator.expand_groups(question, senses=8):
        pairs = [(t, (t,) if CJK.match(t) else tuple(match_form(w) for w in terms(t))) for t in found]
        pairs = [(t, option) for t, option in pairs if option]
        if not pairs:
            continue
        extra = tuple(option for _, option in pairs)
        surface = tuple(t for t, _ in pairs)
        words = [w for w in (terms(phrase) if not is_chinese(phrase) else [phrase]) if w]
        if any(g.translated and g.text == phrase for g in groups):
            continue  # the same word twice in the question
        # a keyword already merged with a longer phrase stays with it (审批 of 审批人 … 审批报销单)
        covered = [g for g in groups if not g.translated and (
            g.text in words or any(g.text in w or w in g.text for w in words)
            or (is_chinese(phrase) and _overlap(question, phrase, g.text)))]
        if not covered and any(match_form(phrase) in g.options[0] for g in groups):
            continue  # its words are already a keyword, merged with a longer phrase
        if covered:
            first = groups.index(covered[0])
            groups = [g for g in groups if g not in covered]
            # single characters the segmenter left over (人 of 审批人) are no words to look for on their own, nor
            # words that reach outside a Chinese phrase (发餐 of 还发餐补, where the phrase is 餐补)
            own_option = tuple(dict.fromkeys(
                t for g in covered for t in g.options[0]
                if (len(t) > 1 or not CJK.match(t)) and (not is_chinese(phrase) or t in phrase))) \
                or (match_form(phrase),)
            groups.insert(first, Group(phrase, (own_option,) + extra, True, surface))
        else:
            groups.append(Group(phrase, ((match_form(phrase),),) + extra, True, surface))
    return groups


def _overlap(text: str, a: str, b: str) -> bool:
    """Whether a and b overlap somewhere in the text (发餐 and 餐补 in 还发餐补吗)."""
    spans = [(m.start(), m.end()) for m in re.finditer(re.escape(b), text)] if b else []
    return any(s < end and start < e for m in re.finditer(re.escape(a), text)
               for start, end in [(m.start(), m.end())] for s, e in spans)


def weights(groups: list[Group], pool: list[Text]) -> list[float]:
    """Rarer keywords weigh more: an inverse document frequency over the candidate passages."""
    n = len(pool)
    out = []
    for g in groups:
        df = sum(1 for t in pool if t.matches(g))
        length = max(len(g.text), 2) if CJK.match(g.text) else 2.0
        out.append(math.log((n + 1) / (df + 0.5)) * math.sqrt(length) if n else math.sqrt(length))
    return out


def coverage(groups: list[Group], text: Text, weight: list[float] | None = None, own_only: bool = False) -> float:
    """Weighted share of the question's keywords the text contains (0..1)."""
    if not groups:
        return 0.0
    weight = weight or [1.0] * len(groups)
    total = sum(weight)
    found = sum(w for g, w in zip(groups, weight) if text.matches(g, own_only))
    return found / total if total else 0.0


def sentences(text: str) -> list[str]:
    """Sentences and lines of a passage (clauses split at ；), for proximity."""
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


MAX_UNITS = 48  # sentence vectors kept per passage (a chunk of 256 tokens rarely has more sentences)


def sentence_units(text: str) -> list[str]:
    """The sentences of a passage that get a vector of their own: fragments under 6 characters (a table
    cell, a page number) join the sentence before them; a passage with one sentence has none (its own
    vector says the same)."""
    units: list[str] = []
    for sentence in sentences(text):
        if units and len(sentence) < 6:
            units[-1] = f"{units[-1]} {sentence}"
        else:
            units.append(sentence)
    if len(units) > MAX_UNITS:  # keep the whole passage covered: join neighbours pairwise
        step = -(-len(units) // MAX_UNITS)
        units = [" ".join(units[i : i + step]) for i in range(0, len(units), step)]
    return units if len(units) > 1 else []


def translated_keywords(groups: list[Group]) -> str:
    """The question's keywords in the other language, word by word: the first translation of each group
    (untranslated keywords kept as they are); empty when nothing translates."""
    if not any(g.translated for g in groups):
        return ""
    words = []
    for g in groups:
        # the dictionary's own words: the embedding model reads "official business", not "offici busi"
        found = list(g.surface[:4]) if g.translated else []
        words.extend(found or [g.text])
    return " ".join(words)
