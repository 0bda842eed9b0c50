"""Feedback exported as `zhiku eval` questions: the export format, and `zhiku feedback` for admins only."""

from __future__ import annotations

import csv
import io
import json

from conftest import run_cli
from zhiku.feedback import COLUMNS, feedback_export
from zhiku.retrieval.evaluate import load_questions
from zhiku.retrieval.types import Citation, User

EMP = User("emp", frozenset({"hr"}), False, frozenset())
LEAVE = Citation(1, "d1", "员工手册.pdf", 3, "员工累计工作已满 1 年不满 10 年的，年假 5 天。", "年假 5 天", "年假", "hr")


def _rate(store, question: str, answer: str, citations, rating: int, comment: str | None = None) -> None:
    conv = store.create_conversation(EMP)
    store.add_message(conv.id, EMP, "user", question)
    store.add_message(conv.id, EMP, "assistant", "something else first")
    reply = store.add_message(conv.id, EMP, "user", question)
    assert reply.seq == 3
    message = store.add_message(conv.id, EMP, "assistant", answer, citations, mode="extractive")
    store.set_feedback(message.id, EMP, rating, comment)


def _fill(store) -> None:
    _rate(store, "入职六年有几天年假？", "5 天 [1]", [LEAVE], 1)
    _rate(store, "How many days of annual leave after six years?", "5 days [1]", [LEAVE], 1)
    _rate(store, "报销要多久？", "没有找到", [], -1, "=HYPERLINK(\"http://evil\") 应该是 30 天")


def test_ratings_become_eval_questions_an_admin_completes(store, tmp_path):
    _fill(store)
    rows = store.feedback_rows(User("local", None, True))
    lines = [json.loads(line) for line in feedback_export(rows, "jsonl").decode("utf-8").splitlines()]
    assert [tuple(line) for line in lines] == [COLUMNS] * 3
    down, up_en, up_zh = lines  # newest first
    assert (up_zh["question"], up_zh["evidence"], up_zh["file"]) == ("入职六年有几天年假？", "年假 5 天", "员工手册.pdf")
    assert (up_zh["lang"], up_zh["kind"], up_zh["rating"], up_zh["answer"], up_zh["user"]) == ("zh", "zh", 1, "5 天 [1]",
                                                                                              "emp")
    assert (up_en["lang"], up_en["kind"]) == ("en", "en-about-zh")
    assert (down["evidence"], down["file"], down["rating"]) == (None, "", -1)
    assert down["comment"].endswith("应该是 30 天") and down["at"][:2] == "20"

    qa = tmp_path / "qa.jsonl"
    qa.write_bytes(feedback_export(rows, "jsonl"))
    questions = load_questions(qa)  # zhiku eval reads the file as it is
    assert [(q.evidence, q.file, q.kind) for q in questions] == [
        (None, "", "unanswerable"), ("年假 5 天", "员工手册.pdf", "en-about-zh"), ("年假 5 天", "员工手册.pdf", "zh")]

    data = feedback_export(rows, "csv")
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with a BOM
    table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert [r["question"] for r in table] == [line["question"] for line in lines]
    assert table[0]["evidence"] == "" and table[2]["evidence"] == "年假 5 天" and table[0]["rating"] == "-1"
    assert table[0]["comment"].startswith("'=HYPERLINK")  # a comment never runs as a formula in Excel


def test_the_feedback_command_exports_for_admins_and_refuses_others(tmp_path):
    from zhiku.core.settings import load_settings
    from zhiku.store import Store

    data_dir = tmp_path / "kb"
    store = Store.open(load_settings(data_dir=data_dir).database)
    try:
        store.create_user("emp", "not-a-real-hash", actor="local")
        _fill(store)
    finally:
        store.close()
    env = {"ZHIKU_DATA_DIR": str(data_dir)}

    out = run_cli("feedback", env=env)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["rating"] for line in lines] == [-1, 1, 1] and lines[2]["evidence"] == "年假 5 天"

    target = tmp_path / "feedback.csv"
    out = run_cli("feedback", "--format", "csv", "--out", str(target), env=env)
    assert out.returncode == 0 and "3 ratings" in out.stderr
    assert target.read_bytes().startswith(b"\xef\xbb\xbfquestion,evidence,file,lang,kind,rating")

    refused = run_cli("feedback", "--user", "emp", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "emp may not read the feedback of others: ask an admin" in refused.stderr
