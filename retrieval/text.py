"""Language-aware text helpers: Chinese word segmentation, keyword terms, sentence splitting."""

from __future__ import annotations

import logging
import re
import threading
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

# One token per CJK character, per latin word or number, per punctuation mark: close to (slightly
# above) what multilingual subword tokenizers produce for Chinese, so chunks stay inside the budget.
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]+")
MIXED_WORD = re.compile(r"[A-Za-z]+[\u3400-\u9fff]+")
_SENTENCE_SPLIT = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+|\n+")

STOP_EN = frozenset(
    """a an the and or of to in on at for by with from as is are was were be been being it its this that
    these those i you he she we they me my your our their do does did doing have has had having not no
    can could should would will shall may might must what which who whom whose when where why how if
    then than so such there here about into over under up down out any all each every some more most
    other only own same too very just also one ones s t""".split()
)
STOP_ZH = frozenset(
    """的 了 是 在 和 与 及 或 而 也 都 就 要 会 能 可 可以 对 把 被 让 给 从 向 于 以 为 其 之 这 那 这个 那个
    哪 哪些 什么 怎么 怎样 如何 多少 几 吗 呢 吧 啊 呀 哪里 哪儿 谁 是否 有 没有 我 你 他 她 它 我们 你们 他们
    公司 请问 一下 需要 应该 一个 如果 则 等 中 上 下 个 时 后 前""".split()
)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    # words that begin in latin letters and end in Chinese (U盘, IP地址, SIM卡) are found however they are typed
    mixed = [w for w, freq in list(tokenizer.FREQ.items()) if freq and MIXED_WORD.fullmatch(w)]
    for word in mixed:
        if not tokenizer.FREQ.get(word.lower()):
            tokenizer.add_word(word.lower(), tokenizer.FREQ[word])
    tokenizer.mixed_words = sorted({w.lower() for w in mixed}, key=len, reverse=True)  # for _runs
    return tokenizer


@lru_cache(maxsize=1)
def _runs() -> re.Pattern:
    """_WORD, but a word that begins in latin letters and ends in Chinese (u盘, ip地址, sim卡) is one run:
    split at the change of script, "u" and "盘" would mean nothing."""
    with _jieba_lock:
        mixed = _jieba().mixed_words
    if not mixed:
        return _WORD
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, mixed)) + r")|" + _WORD.pattern)


_jieba_lock = threading.Lock()


def segment(text: str) -> list[str]:
    """Chinese word segmentation (jieba, precise mode)."""
    with _jieba_lock:
        return list(_jieba().cut(text))


def segment_for_search(text: str) -> list[str]:
    """Chinese words and the shorter words inside them (住房公积金 → 住房, 公积, 公积金, 住房公积金)."""
    with _jieba_lock:
        return list(_jieba().cut_for_search(text))


def word_frequency(word: str) -> int:
    """How common a Chinese word is in jieba's dictionary (0 if unknown)."""
    return int(_jieba().FREQ.get(word, 0))


def count_tokens(text: str) -> int:
    """Approximate token count used for chunk budgets and prompt sizes."""
    return len(TOKEN.findall(text))


def is_chinese(text: str) -> bool:
    """Whether a question or text is mainly Chinese."""
    cjk = len(CJK.findall(text))
    latin = len(re.findall(r"[A-Za-z]+", text))
    return cjk > 0 and cjk >= latin


def language_of(text: str) -> str:
    """'zh' or 'en'."""
    return "zh" if is_chinese(text) else "en"


def _stem(word: str) -> str:
    """A light English plural stemmer: enough for 'passwords' to meet 'password'."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Keyword terms: Chinese segmented by jieba (search mode), English lowercased and stemmed."""
    out: list[str] = []
    for run in _runs().findall(text.lower()):
        if CJK.match(run):
            with _jieba_lock:
                words = list(_jieba().cut_for_search(run))
            out.extend(w for w in words if w not in STOP_ZH)
        elif CJK.search(run):  # u盘: the word, and its parts as an index made before it was known has them
            latin = re.match(r"[a-z0-9]+", run).group()
            parts = [_stem(latin)] + segment_for_search(run[len(latin):])
            out += [run] + [p for p in parts if p not in STOP_EN and p not in STOP_ZH]
        elif run not in STOP_EN:
            out.append(_stem(run))
    return out


def term_id(term: str) -> int:
    """Stable sparse-vector index of a term (same in every process and on every machine)."""
    return zlib.crc32(term.encode("utf-8"))


_K1, _B, _AVG_LEN = 1.2, 0.75, 120.0


def sparse_document(text: str) -> tuple[list[int], list[float]]:
    """BM25 term-frequency part of a passage's sparse vector; Qdrant's IDF modifier adds the rest."""
    counts = Counter(terms(text))
    length = sum(counts.values()) or 1
    norm = _K1 * (1 - _B + _B * length / _AVG_LEN)
    merged: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_id(term)
        merged[index] = merged.get(index, 0.0) + tf * (_K1 + 1) / (tf + norm)
    return list(merged), list(merged.values())


def sparse_query(text: str, extra_terms: list[str] = (), extra_weight: float = 0.5) -> tuple[list[int], list[float]]:
    """A query's sparse vector: each distinct keyword once, plus optional lower-weight expansion terms."""
    weights = {term_id(t): 1.0 for t in query_terms(text)}
    for term in terms(" ".join(extra_terms)):
        weights.setdefault(term_id(term), extra_weight)
    ids = sorted(weights)
    return ids, [weights[i] for i in ids]


def split_sentences(text: str) -> list[str]:
    """Sentences of Chinese or English text, punctuation kept."""
    parts = _SENTENCE_SPLIT.split(text)
    return [p.strip() for p in parts if p and p.strip()]


# ------------------------------------------------------------------ questions: keywords and numbers

# Words that say what kind of answer is wanted, not what it is about: kept out of a question's keywords
# (documents keep them: they are dropped from the query side only, so the index needs no rebuild).
QUESTION_WORDS_ZH = frozenset(
    """几 几天 几次 几号 几点 几个 几年 几月 几位 几种 多少 多久 多长 多长时间 多大 多高 多远 什么 什么样 什么时候
    怎么 怎么样 怎样 怎么办 如何 哪 哪些 哪个 哪天 哪家 哪里 哪儿 哪位 哪种 为什么 是否 吗 呢 吧 能否 可否 是不是
    有没有 要不要 能不能 可不可以 会不会 用不用 需不需要 可以 能 请问 想 我 我们 要 需要 一下
    以后 之后 以前 之前 时候 的话 一般 通常 应该 一直 期间 现在 目前 最晚 最早 最长 最多 最少 大概 大约""".split()
)
# auxiliaries jieba glues to a neighbour in words its dictionary lacks (能休, 最多能, 假要, 会扣, 来批)
_AUXILIARY = frozenset("能要会可还就都也再被来去着了过掉完得没叫")
QUESTION_WORDS_EN = frozenset(
    """how much many long often soon quickly early late far what which who whom whose when where why
    can could may might must should shall will would do does did is are am was were i my me we our you your
    get allowed i'm i've i'd called""".split()
)


# removed before segmenting too: jieba reads 几天年假 as 几 / 天年 / 假 and loses 年假
_QUESTION_RUN = re.compile(
    "|".join(sorted((w for w in QUESTION_WORDS_ZH if len(w) > 1 and w not in ("可以", "需要", "我们")),
                    key=len, reverse=True))
    + r"|[吗呢吧](?=[？?！!。，,\s]|$)"
    # 几 before any other measure word asks too (在几楼？ is about 楼, 买几台 about 台); 几乎 and 茶几 are words
    + r"|(?<!茶)几(?=[\u4e00-\u9fff])(?!乎)"
)


def strip_question_words(text: str) -> str:
    """The question with its asking words (几天, 多少, 什么时候 ...) replaced by spaces."""
    return _QUESTION_RUN.sub(" ", text)


def query_terms(text: str) -> list[str]:
    """A question's keyword terms: terms() without the words that only ask (什么, 多少, how many ...)."""
    out = [t for t in terms(strip_question_words(text)) if t not in QUESTION_WORDS_ZH and t not in QUESTION_WORDS_EN]
    return out or terms(text)


def _peel(word: str) -> list[str]:
    """A word jieba does not know, with auxiliaries at its edges split off (能休 → 能, 休; 最多能 → 最多, 能);
    known words stay whole (要求, 完成, 还清)."""
    if len(word) < 2 or not CJK.match(word) or word_frequency(word) > 0:
        return [word]
    head = [ch for ch in word[:1] if ch in _AUXILIARY]
    rest = word[len(head):]
    tail = [ch for ch in rest[-1:] if ch in _AUXILIARY and len(rest) > 1]
    core = rest[: len(rest) - len(tail)]
    return head + ([core] if core else []) + tail


def keywords(text: str) -> list[str]:
    """Distinct keywords for matching by substring: like query_terms, but single characters that jieba
    left apart are joined again (年 + 假 → 年假, a word its dictionary lacks), and sub-words of a longer
    keyword are dropped (十二年 keeps neither 十二 nor 二年)."""
    out: list[str] = []
    for run in _runs().findall(strip_question_words(text).lower()):
        if not CJK.match(run):  # an English word, or one that begins in latin letters (u盘)
            word = re.sub(r"'s$", "", run)  # Lanting's → lanting; what's asks like what
            if word not in STOP_EN and word not in QUESTION_WORDS_EN:
                out.append(_stem(word))
            continue
        words = [piece for w in segment(run) if w.strip() for piece in _peel(w)]
        merged: list[str] = []
        for word in words:
            single = len(word) == 1 and CJK.match(word)
            if single and merged and len(merged[-1]) == 1 and CJK.match(merged[-1]) and merged[-1] not in STOP_ZH \
                    and word not in STOP_ZH:
                merged[-1] += word
            else:
                merged.append(word)
        out.extend(w for w in merged if w not in STOP_ZH and w not in QUESTION_WORDS_ZH)
    unique = list(dict.fromkeys(out))
    return [w for w in unique if not any(w != other and w in other for other in unique)] or query_terms(text)


_ZH_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_UNIT = {"十": 10, "百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_ZH_RUN = re.compile(r"[零〇一二两三四五六七八九十][零〇一二两三四五六七八九十百千万亿]*")
# a Chinese numeral counts as a number only before a measure word: 一律, 统一 and 一起 stay words
_MEASURE = re.compile(
    r"\s*(?:个多|个)?\s*(?:周岁|岁|年|天|日|个月|月|周|星期|小时|分钟|次|元|块|万|倍|人|名|位|层|楼|号|点|晚|夜|页|张|台|项|档|级|%)"
)
_EN_NUMBER = {
    w: n for n, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "hundred": 100, "thousand": 1000}
_EN_WORD = re.compile(r"\b(" + "|".join(_EN_NUMBER) + r")\b", re.I)


def chinese_number(run: str) -> int | None:
    """The value of a Chinese numeral such as 十二, 两千, 一万五千 or 二〇二四 (None if it is not one)."""
    if all(ch in _ZH_DIGIT for ch in run):
        return int("".join(str(_ZH_DIGIT[ch]) for ch in run)) if run else None
    total = section = 0
    digit: int | None = None
    for ch in run:
        if ch in _ZH_DIGIT:
            digit = _ZH_DIGIT[ch]
            continue
        unit = _ZH_UNIT[ch]
        if unit >= 10_000:
            total = (total + section + (digit or 0)) * unit
            section = 0
        else:
            section += (1 if digit is None else digit) * unit
        digit = None
    return total + section + (digit or 0)


def normalize_numbers(text: str) -> str:
    """Write numbers as digits: 十二年 → 12年, 百分之五十 → 50%, 五千块 → 5000块, 50,000 → 50000, two → 2."""

    def percent(match: re.Match) -> str:
        value = match.group(1)
        number = value if value.isdigit() else chinese_number(value)
        return f"{number}%"

    text = re.sub(r"百分之([零〇一二两三四五六七八九十百]+|\d+)", percent, text)

    def numeral(match: re.Match) -> str:
        run = match.group(0)
        if len(run) == 1 and not _MEASURE.match(text, match.end()):
            return run
        if not _MEASURE.match(text, match.end()) and not any(ch in _ZH_UNIT for ch in run):
            return run
        value = chinese_number(run)
        return run if value is None else str(value)

    text = _ZH_RUN.sub(numeral, text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return _EN_WORD.sub(lambda m: str(_EN_NUMBER[m.group(1).lower()]), text)


# Units of a condition, converted so 两个月 can meet 超过 60 天: (dimension, factor).
_UNITS = {
    "年": ("time", 365), "周岁": ("time", 365), "岁": ("time", 365), "year": ("time", 365),
    "个月": ("time", 30), "月": ("time", 30), "month": ("time", 30),
    "周": ("time", 7), "星期": ("time", 7), "week": ("time", 7),
    "天": ("time", 1), "日": ("time", 1), "day": ("time", 1), "工作日": ("time", 1),
    "小时": ("hours", 1), "hour": ("hours", 1), "分钟": ("hours", 1 / 60), "minute": ("hours", 1 / 60),
    "元": ("money", 1), "块": ("money", 1), "yuan": ("money", 1), "cny": ("money", 1), "rmb": ("money", 1),
    "万元": ("money", 10_000), "次": ("count", 1), "time": ("count", 1), "%": ("percent", 1),
}
_UNIT = r"\s*-?(万元|元|块|周岁|岁|年|个多月|个月|月|周|星期|工作日|天|日|个小时|个多小时|小时|分钟|次|%|(?:years?|months?|weeks?|days?|hours?|minutes?|times?|yuan|cny|rmb)\b)?"
_NUM = r"(\d+(?:\.\d+)?)"
INF = float("inf")


@dataclass(frozen=True)
class Quantity:
    """A number in a question with its dimension; bias nudges 'above 5' / '5 多' past the bound."""

    value: float
    dimension: str | None
    bias: float = 0.0
    scale: float = 1.0  # the unit it was written in, in the dimension's base unit (a year is 365 days)


# two amounts of time written in units this far apart measure different things: service in years,
# leave in days (工作满十二年 says nothing about 连续病假 2 天以上); months still meet days and years
_SCALE_APART = 60


@dataclass(frozen=True)
class Range:
    """A condition in a passage: 满 10 年不满 20 年 is [3650, 7300) in days."""

    low: float
    high: float
    low_closed: bool
    high_closed: bool
    dimension: str | None
    scale: float = 1.0

    def about(self, q: Quantity) -> bool:
        """Whether the condition measures what the quantity measures: the same dimension (when both are
        known), in units not too far apart."""
        if self.dimension and q.dimension and self.dimension != q.dimension:
            return False
        return max(self.scale, q.scale) / min(self.scale, q.scale) < _SCALE_APART

    def contains(self, q: Quantity) -> bool:
        """Whether the quantity meets the condition (and is about what it measures)."""
        if not self.about(q):
            return False
        v = q.value + q.bias
        above = v > self.low or (self.low_closed and v == self.low)
        below = v < self.high or (self.high_closed and v == self.high)
        return above and below


def _unit(raw: str | None) -> tuple[str | None, float]:
    if not raw:
        return None, 1.0
    key = raw.lower().replace("个多月", "个月").replace("个多小时", "小时").replace("个小时", "小时")
    key = key[:-1] if key.endswith("s") and key[:-1] in _UNITS else key
    return _UNITS.get(key, (None, 1.0))


def quantities(question: str) -> list[Quantity]:
    """Numbers in a question with their units: 工作满十二年 → 12 years, above 50,000 yuan → 50000+."""
    text = normalize_numbers(question)
    out = []
    for m in re.finditer(_NUM + r"(多|余)?" + _UNIT, text, re.I):  # 四十多天: more than 40 days
        before, after = text[max(0, m.start() - 12) : m.start()].lower(), text[m.end() : m.end() + 2]
        if re.search(r"\d[:.]$", before) or after.startswith(":"):
            continue  # a time of day such as 10:00 is not a quantity
        dimension, factor = _unit(m.group(3))
        if dimension is None:
            continue  # a bare number is not a condition to meet
        if factor == _unit("年")[1] and re.fullmatch(r"(19|20|21)\d\d", m.group(1)):
            continue  # 2022 年 is a calendar year, not 2022 years of service
        if float(m.group(1)) == 1 and not re.search(r"(满|超过|不满|未满|above|over|more than|after|at least)\s*$", before):
            continue  # 一个月的加班, 一次, per year: a unit of measure, not a condition
        bias = 0.0
        if re.search(r"(above|over|more than|exceed\w*|超过|多于|高于|大于)\s*$", before) or "多" in (m.group(3) or "") \
                or m.group(2) or after.startswith("多"):
            bias = 0.5
        elif re.search(r"(below|under|less than|fewer than|不到|不满|低于|少于)\s*$", before):
            bias = -0.5
        out.append(Quantity(float(m.group(1)) * factor, dimension, bias * factor, factor))
    return out


_RANGE_PATTERNS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"满\s*" + _NUM + _UNIT + r"\s*不满\s*" + _NUM + _UNIT), "[)"),
    (re.compile(r"(?:超过|多于|高于|大于)\s*" + _NUM + _UNIT + r"\s*(?:但|且)?\s*(?:未超过|不超过|不满|至)\s*" + _NUM + _UNIT), "(]"),
    (re.compile(_NUM + _UNIT + r"\s*以上\s*(?:至|到)\s*" + _NUM + _UNIT), "(]"),
    (re.compile(r"between\s+" + _NUM + _UNIT + r"\s+and\s+" + _NUM + _UNIT, re.I), "[]"),
    (re.compile(r"(?:未满|不满|低于|少于|不足|less than|fewer than|under|below)\s*" + _NUM + _UNIT, re.I), "~)"),
    (re.compile(r"(?:满|at least)\s*" + _NUM + _UNIT + r"\s*(?:及以上|以上)?", re.I), "[~"),
    (re.compile(_NUM + _UNIT + r"\s*(?:及以上|以上|or more)", re.I), "[~"),
    # a cap (不得超过 15 天, must not exceed 30 days) before "more than": 超过 15 天 is inside it
    (re.compile(r"(?:不(?:得|能|可|应|宜|会)?超过|未超过|最多|至多|up to|at most|no more than|within|"
                r"(?:must|may|shall|should|cannot|can|does|do)?\s*not\s+(?:be\s+)?(?:exceed(?:ing)?|more than|longer than))\s*"
                + _NUM + _UNIT, re.I), "~]"),
    (re.compile(r"(?:超过|多于|高于|大于|逾期|more than|over|above|exceeding|longer than)\s*" + _NUM + _UNIT, re.I), "(~"),
    (re.compile(_NUM + _UNIT + r"\s*(?:及以下|以下|以内|之内|or less)", re.I), "~]"),
]


def conditions(passage: str) -> list[Range]:
    """Numeric conditions a clause or table row states (满 10 年不满 20 年, 2000 元以上至 10000 元, over 30 days)."""
    text = normalize_numbers(passage)
    taken = [False] * len(text)
    out: list[Range] = []
    for pattern, shape in _RANGE_PATTERNS:
        for m in pattern.finditer(text):
            if any(taken[m.start() : m.end()]):
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            groups = m.groups()
            if shape in ("[)", "(]", "[]"):
                (a, ua), (b, ub) = (groups[0], groups[1]), (groups[2], groups[3])
                dim_b, fb = _unit(ub)
                dim_a, fa = _unit(ua) if ua else (dim_b, fb)
                out.append(Range(float(a) * fa, float(b) * fb, shape[0] == "[", shape[1] in "]", dim_a or dim_b,
                                 min(fa, fb)))
            else:
                dim, f = _unit(groups[1])
                v = float(groups[0]) * f
                if shape[1] == "~":
                    out.append(Range(v, INF, shape[0] == "[", False, dim, f))
                else:
                    out.append(Range(-INF, v, False, shape[1] == "]", dim, f))
    return out


# what kind of value a question asks for, and how a span states one: a question asking how long is answered
# by a duration (3 个工作日, within 30 minutes), not by the amounts of money the same passage lists
_WEEKDAY = r"周[一二三四五六日]|星期[一二三四五六日天]|礼拜[一二三四五六日天]|\b(mon|tues|wednes|thurs|fri|satur|sun)days?\b"
_MONTH = r"\b(january|february|march|april|may|june|july|august|september|october|november|december)\b"
ANSWER_TYPES: dict[str, tuple[re.Pattern, re.Pattern]] = {
    "duration": (
        re.compile(r"多久|多长时间|多长|几天|几个?月|几年|几周|几个?小时|几分钟|多少天|多少个?小时|多少分钟|多少年|期限|"
                   r"\bhow (long|soon|quickly|fast|often)\b|\bhow many (working |business |calendar )?(days|weeks|months|years|hours|minutes)\b|"
                   r"\bwithin how\b", re.I),
        re.compile(r"\d+(\.\d+)?\s*(个)?\s*(工作日|自然日|天|日内|小时|分钟|周|星期|个月|月内|年)|[一二两三四五六七八九十半]+\s*(个)?"
                   r"(工作日|天|小时|分钟|周|星期|个月|年)|\d+\s*(working |business |calendar )?(days?|hours?|minutes?|weeks?|months?|years?)\b",
                   re.I),
    ),
    "clock": (
        re.compile(r"几点|什么时间段|哪个时间段|时间段|几点到几点|\bwhat time\b|\bwhich hours\b|\bwhat hours\b|\bopening hours\b", re.I),
        re.compile(r"\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*点|\b\d{1,2}\s*(am|pm|a\.m\.|p\.m\.)", re.I),
    ),
    "money": (
        re.compile(r"多少钱|多少元|几块|多少补贴|补贴多少|报销多少|花多少|多少费用|费用是多少|价格|\bhow much\b|\bcost\b|\bprice\b|"
                   r"\bfee\b|\ballowance\b|\bbudget\b", re.I),
        re.compile(r"\d[\d,]*(\.\d+)?\s*(万)?\s*(元|块|yuan|rmb|cny)|[¥￥]\s*\d|\b(rmb|cny)\s*\d", re.I),
    ),
    "date": (
        re.compile(r"哪天|哪一天|几号|几月|哪个月|什么时候|何时|哪年|星期几|周几|^\W*when\b|"
                   r"\bwhen (is|are|was|were|do|does|did|will|can|could|must|should|would)\b|\bwhich (day|date|month|year|weekdays?)\b|"
                   r"\bwhat (day|date|month|year)\b|\bin what year\b|\bwhich days?\b", re.I),
        re.compile(rf"{_WEEKDAY}|{_MONTH}|\d+\s*月\s*\d*\s*[日号]?|\d+\s*[日号]|每月|每周|每年|(19|20)\d\d\s*年|"
                   r"\b(19|20)\d\d\b|\b\d{1,2}(st|nd|rd|th)\b|\bday of the month\b", re.I),
    ),
    "share": (
        re.compile(r"比例|百分之|几成|多少成|\bpercent(age)?\b|\bshare of\b|\brate\b", re.I),
        re.compile(r"\d+(\.\d+)?\s*%|百分之|[一二三四五六七八九]成|\bpercent\b", re.I),
    ),
    "count": (
        re.compile(r"几次|多少次|几个人|多少人|几台|几张|\bhow many times\b|\bhow often\b|\bhow many\b", re.I),
        re.compile(r"\d+\s*(次|人|台|张|个|份|名|件)|[一二两三四五六七八九十]+\s*(次|人|台|张|个|份|名|件)|\b\d+\s*(times?|people|persons?|devices?)\b|"
                   r"\b(once|twice)\b", re.I),
    ),
}


def asked_types(question: str) -> list[str]:
    """The kinds of value the question asks for (duration, clock, money, date, share, count)."""
    return [name for name, (asks, _) in ANSWER_TYPES.items() if asks.search(question)]


def states_type(text: str, types: list[str]) -> bool:
    """Whether the text states a value of one of the kinds."""
    return any(ANSWER_TYPES[name][1].search(text) for name in types)


# a question asking whether something is allowed (可以…吗, Can I …?) is answered by a sentence that allows,
# forbids or limits it (不得, 只能, is not allowed, are blocked), not by one that merely shares its words
_ASKS_PERMISSION = re.compile(
    r"可以.{0,20}[吗么]|可不可以|能不能|能否|能.{0,20}[吗么]|行不行|行吗|允许|让不让|准不准|"
    r"^\W*(can|could|may) (i|we|employees?|staff|they|an? |the |my |interns?|contractors?|visitors?)\b|"
    r"\ballowed\b|\bpermitted\b|\bis it ok(ay)?\b|\bam i able\b",
    re.I,
)
_STATES_RULE = re.compile(
    r"不得|不能|不可|不准|不允许|禁止|严禁|不予|不接受|不以|不结转|只能|仅限|仅可|一律|原则上|方可|可以|可[\u4e00-\u9fff]|允许|"
    r"\bnot (allowed|permitted|accepted|available|eligible)\b|\bmay( not)?\b|\bcannot\b|\bcan't\b|\bmust not\b|"
    r"\bnever\b|\bonly\b|\bup to\b|\bat most\b|\bdo not\b|\bnot be\b|"
    r"\b(is|are|be) (blocked|prohibited|forbidden|allowed|permitted|eligible|carried over)\b",
    re.I,
)


def asks_permission(question: str) -> bool:
    """Whether the question asks if something is allowed (访客可以进机房吗？, Can I work from Hong Kong?)."""
    return bool(_ASKS_PERMISSION.search(question))


def states_rule(text: str) -> bool:
    """Whether the text allows, forbids or limits something (不得进入机房, is not allowed, only in LantingVault)."""
    return bool(_STATES_RULE.search(text))
