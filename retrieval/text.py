"""Language-aware text helpers: Chinese word segmentation, keyword terms, sentence splitting."""

from __future__ import annotations

import logging
import re
import threading
import zlib
from collections import Counter
from functools import lru_cache

# One token per CJK character, per latin word or number, per punctuation mark: close to (slightly
# above) what multilingual subword tokenizers produce for Chinese, so chunks stay inside the budget.
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*|[\u3400-\u9fff\uf900-\ufaff]+")
_SENTENCE_SPLIT = re.compile(r"(?<=[。！？；!?])|(?<=[.;])\s+|\n+")

STOP_EN = frozenset(
    """a an the and or of to in on at for by with from as is are was were be been being it its this that
    these those i you he she we they me my your our their do does did doing have has had having not no
    can could should would will shall may might must what which who whom whose when where why how if
    then than so such there here about into over under up down out any all each every some more most
    other only own same too very just also s t""".split()
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
    return tokenizer


_jieba_lock = threading.Lock()


def segment(text: str) -> list[str]:
    """Chinese word segmentation (jieba, precise mode)."""
    with _jieba_lock:
        return list(_jieba().cut(text))


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
    for run in _WORD.findall(text.lower()):
        if CJK.match(run):
            with _jieba_lock:
                words = list(_jieba().cut_for_search(run))
            out.extend(w for w in words if w not in STOP_ZH)
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
    """A query's sparse vector: each distinct term once, plus optional lower-weight expansion terms."""
    weights = {term_id(t): 1.0 for t in terms(text)}
    for term in terms(" ".join(extra_terms)):
        weights.setdefault(term_id(term), extra_weight)
    ids = sorted(weights)
    return ids, [weights[i] for i in ids]


def split_sentences(text: str) -> list[str]:
    """Sentences of Chinese or English text, punctuation kept."""
    parts = _SENTENCE_SPLIT.split(text)
    return [p.strip() for p in parts if p and p.strip()]
