"""Names the documents give in both languages (兰亭通（LantingOne）) join the dictionary of the knowledge base
that writes them: read from its passages, scoped to what the user may read, and forgotten with them."""

from __future__ import annotations

import time

import pytest

from zhiku.retrieval.index import Scope
from zhiku.retrieval.keywords import Text, question_groups
from zhiku.retrieval.names import Names, name_pairs
from zhiku.retrieval.translate import Translator
from zhiku.retrieval.types import LOCAL_ADMIN, User

SYSTEMS = ("# 常用内部系统\n\n修订内容将通过兰亭通（LantingOne）发布公告。兰信（LanChat）用于即时沟通和视频会议；"
           "每位新员工都会由所在团队指定一名入职伙伴（Buddy）。")
MAINTENANCE = ("# 系统维护\n\n兰亭通每周日凌晨 2 点到 4 点停机维护，期间无法打卡。\n\n"
               "兰信每周六凌晨 1 点到 3 点停机维护，期间无法发送消息。")
ONBOARDING = 'Welcome to Lanting Technology (兰亭科技)! Check the date of your "Lanting Launch" (兰亭启航) orientation.'


def test_names_given_in_both_languages_are_read_with_their_bounds():
    """The Chinese name is the end of its run of text, back to the word that introduces it (通过, 一名);
    brackets that hold no name (a year, a unit, an extension) give none."""
    assert name_pairs(SYSTEMS) == [("兰亭通", "LantingOne"), ("兰信", "LanChat"), ("入职伙伴", "Buddy")]
    assert name_pairs(ONBOARDING) == [("兰亭科技", "Lanting Technology"), ("兰亭启航", "Lanting Launch")]
    assert name_pairs("请通过“兰亭通”(LantingOne)申请；使用虚拟专用网络（VPN）访问内网。") == [
        ("兰亭通", "LantingOne"), ("虚拟专用网络", "VPN")]
    # a heading that runs into the text adds capitalised words before a name: the shorter name is the name
    headed = Names.read(["Welcome to Lanting Technology (兰亭科技).", "Security Compliance Lanting Technology (兰亭科技)"])
    assert headed.to_english["兰亭科技"] == ["lanting technology"]
    none = "兰亭科技员工手册（2024 版）。住宿上限（每晚）。告知行政部（分机 8300）。工作五天（周一至周五）。IT Helpdesk (Room 501)"
    assert name_pairs(none) == []


def test_a_name_replaces_the_dictionarys_reading_of_its_parts_in_both_directions():
    translator = Translator()
    names = Names.read([SYSTEMS, ONBOARDING])
    plain, named = translator.within(lambda words: set()), translator.within(lambda words: set(), names)
    # an English question reaches the Chinese name, which the dictionary alone never gives
    assert "兰亭通" not in plain.expand("How do I clock in with LantingOne?")
    assert "兰亭通" in named.expand("How do I clock in with LantingOne?")
    assert dict(named.expand_groups("When is the Lanting Launch orientation?"))["lanting launch"] == ["兰亭启航"]
    # a Chinese question reaches the English name, and 兰亭 is no longer read as the dictionary's pavilion
    groups = dict(named.expand_groups("兰亭通怎么打卡？", senses=8))
    assert groups["兰亭通"] == ["lantingone"] and "兰亭" not in groups
    (name,) = [g for g in question_groups("兰亭通怎么打卡？", named) if g.text == "兰亭通"]
    assert Text("Clock in and out in LantingOne.").matches(name)
    # a Chinese passage read in English holds the names it writes
    assert "lantingone" in named.gloss(MAINTENANCE) and "lantingone" not in plain.gloss(MAINTENANCE)


@pytest.fixture
def named_kb(make_services, tmp_path):
    services = make_services()
    for collection, name, text in (("it", "systems.md", SYSTEMS), ("hr", "maintenance.md", MAINTENANCE)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        (result,) = services.ingestor.ingest_paths([tmp_path / name], collection, LOCAL_ADMIN)
        assert result.status == "added", result.error
    return services


def test_an_english_question_finds_the_chinese_passage_through_a_name_another_document_gives(named_kb):
    """兰亭通 and 兰信 are both down for maintenance at night; only the name that systems.md gives in both
    languages tells which one an English question about LanChat means."""
    answer = named_kb.answers.ask("When is LanChat down for maintenance?", LOCAL_ADMIN)
    assert answer.answerable, answer.text
    # the answer leads with LanChat's hours; LantingOne's, if quoted at all, come later
    quotes = [line for line in answer.text.splitlines() if "停机维护" in line]
    assert quotes and "兰信每周六凌晨 1 点到 3 点停机维护" in quotes[0], answer.text


def test_names_come_only_from_passages_the_user_may_read_and_leave_with_them(named_kb, monkeypatch):
    monkeypatch.setattr("zhiku.retrieval.search.NAMES_CHECK", 0.0)  # the count is looked at on every question
    searcher = named_kb.searcher
    assert searcher.names(Scope.for_user(LOCAL_ADMIN)).to_english["兰信"] == ["lanchat"]
    # the name is written in the "it" collection: someone who reads only "hr" does not get it
    hr_only = User("hr-reader", readable=frozenset({"hr"}))
    assert not searcher.names(Scope.for_user(hr_only))
    assert "兰信" not in searcher.translator_for(Scope.for_user(hr_only)).expand("When is LanChat down?")
    # deleting the document that gives the names takes them away: the question after the change still gets
    # the names read before (read again in the background, not on the question's time), later ones do not
    named_kb.ingestor.delete("systems.md", LOCAL_ADMIN)
    assert searcher.names(Scope.for_user(LOCAL_ADMIN)).to_english["兰信"] == ["lanchat"]
    deadline = time.monotonic() + 30
    while searcher.names(Scope.for_user(LOCAL_ADMIN)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not searcher.names(Scope.for_user(LOCAL_ADMIN))
    assert "兰信" not in searcher.translator_for(Scope.for_user(LOCAL_ADMIN)).expand("When is LanChat down?")
