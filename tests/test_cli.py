"""The CLI contract, end to end: the installed `zhiku` script, the real embedded index and model."""

from __future__ import annotations

import json

import pytest

from pathlib import Path

from conftest import SAMPLE, built_once, run_cli


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """A data dir with the sample handbook ingested through the CLI (once a run; each worker has a copy)."""
    def ingest(directory):
        result = run_cli("ingest", str(SAMPLE), "--json", env={"ZHIKU_DATA_DIR": str(directory / "data")})
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    copy, report = built_once(tmp_path_factory, "cli-kb", ingest)
    return {"ZHIKU_DATA_DIR": str(copy / "data")}, report


def _json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_ingest_reports_every_file(kb):
    _, report = kb
    files = report["files"]
    assert len(files) == len([p for p in SAMPLE.iterdir() if p.is_file()])
    for f in files:
        assert set(f) >= {"path", "status", "chunks", "error"}
        assert f["status"] == "added" and f["chunks"] > 0 and f["error"] is None


def test_reingest_is_unchanged(kb):
    env, first = kb
    again = _json(run_cli("ingest", str(SAMPLE), "--json", env=env))
    assert [f["status"] for f in again["files"]] == ["unchanged"] * len(first["files"])
    stats = _json(run_cli("stats", "--json", env=env))
    assert stats["chunks"] == sum(f["chunks"] for f in first["files"])  # no duplicates


def test_stats(kb):
    env, first = kb
    stats = _json(run_cli("stats", "--json", env=env))
    assert stats["documents"] == len(first["files"])
    assert stats["collections"] == {"default": len(first["files"])}


def test_chinese_question_finds_chinese_document(kb):
    env, _ = kb
    hits = _json(run_cli("search", "工作满十二年的员工每年有几天年假？", "--k", "3", "--json", env=env))["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert any(h["file_name"] == "员工手册.pdf" and "年假" in h["text"] for h in hits)
    top = hits[0]
    assert set(top) >= {"rank", "doc_id", "file_name", "page", "text", "score"}


def test_page_is_null_for_formats_without_pages(kb):
    env, _ = kb
    hits = _json(run_cli("search", "报销发票要求", "--k", "5", "--json", env=env))["hits"]
    md = [h for h in hits if h["file_name"].endswith(".md")]
    assert md and all(h["page"] is None for h in md)


def test_ask_cites_file_and_page(kb):
    env, _ = kb
    answer = _json(run_cli("ask", "How many days a week may employees work remotely?", "--json", env=env))
    assert answer["mode"] == "extractive" and answer["answerable"] is True
    assert answer["citations"], answer
    assert any(c["file_name"] == "Remote_Work_Policy.pdf" and isinstance(c["page"], int) for c in answer["citations"])
    numbers = {c["n"] for c in answer["citations"]}
    import re

    assert {int(n) for n in re.findall(r"\[(\d+)\]", answer["answer"])} <= numbers
    assert "Extractive answer" in answer["answer"]


def test_ask_in_chinese_is_labelled_in_chinese(kb):
    env, _ = kb
    answer = _json(run_cli("ask", "出差住宿报销标准是多少？", "--json", env=env))
    assert answer["answerable"] is True and answer["language"] == "zh"
    assert answer["answer"].startswith("【摘录式回答】")
    assert any(c["page"] is not None or c["file_name"].endswith(".md") for c in answer["citations"])


def test_ask_unrelated_question_is_not_answerable(kb):
    env, _ = kb
    answer = _json(run_cli("ask", "火星上最高的山叫什么名字？", "--json", env=env))
    assert answer["answerable"] is False and answer["citations"] == []
    assert "知识库" in answer["answer"]


def test_failed_file_is_reported_and_exit_code_is_1(kb, tmp_path):
    env, _ = kb
    bad = tmp_path / "notes.xyz"
    bad.write_text("hello")
    good = tmp_path / "ok.txt"
    good.write_text("The cafeteria on floor 3 opens at 7:30 every weekday.", encoding="utf-8")
    result = run_cli("ingest", str(bad), str(good), "--collection", "misc", "--json", env=env)
    assert result.returncode == 1
    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    bad, good = Path(bad.name), Path(good.name)  # results name files by their logical path
    assert files[str(bad)]["status"] == "failed" and "unsupported" in files[str(bad)]["error"]
    assert files[str(good)]["status"] == "added"
    assert "notes.xyz" in result.stderr
    # the good file is searchable in its own collection only
    hits = _json(run_cli("search", "cafeteria opening time", "--collection", "misc", "--json", env=env))["hits"]
    assert hits and all(h["file_name"] == "ok.txt" for h in hits)
    deleted = run_cli("delete", "ok.txt", env=env)
    assert deleted.returncode == 0, deleted.stderr


def test_delete_and_reindex(tmp_path):
    env = {"ZHIKU_DATA_DIR": str(tmp_path / "kb")}
    _json(run_cli("ingest", str(SAMPLE / "onboarding.md"), str(SAMPLE / "报销制度.md"), "--json", env=env))
    before = _json(run_cli("stats", "--json", env=env))
    assert before["documents"] == 2
    assert run_cli("delete", "onboarding.md", env=env).returncode == 0
    after = _json(run_cli("stats", "--json", env=env))
    assert after["documents"] == 1 and after["chunks"] < before["chunks"]
    missing = run_cli("delete", "onboarding.md", env=env)
    assert missing.returncode != 0 and "no document" in missing.stderr
    assert run_cli("reindex", env=env).returncode == 0
    assert _json(run_cli("stats", "--json", env=env)) == after
    one = _json(run_cli("reindex", "--collection", "default", "--json", env=env))
    assert (one["status"], one["documents"], one["chunks"]) == ("done", 1, after["chunks"])
    assert _json(run_cli("stats", "--json", env=env)) == after
    unknown = run_cli("reindex", "--collection", "nope", env=env)
    assert unknown.returncode != 0 and "no collection 'nope'" in unknown.stderr


def test_ask_with_ollama_in_both_languages(kb, fake_ollama):
    env, _ = kb

    def reply(body):
        # a grounded model: restate the first line of source 1 and cite it
        user = body["messages"][-1]["content"]
        first = user.split('<source id="1"', 1)[1].split(">\n", 1)[1].split("\n")[1][:40]
        return f"{first} [1]."

    fake_ollama.reply = reply
    ollama_env = {**env, "OLLAMA_HOST": fake_ollama.host}
    zh = _json(run_cli("ask", "工作满十二年的员工每年有几天年假？", "--json", env=ollama_env))
    en = _json(run_cli("ask", "How many days a week may employees work remotely?", "--json", env=ollama_env))
    for answer in (zh, en):
        assert answer["mode"] == "ollama" and answer["citations"] and answer["citations"][0]["n"] == 1
    assert zh["language"] == "zh" and en["language"] == "en"
    streamed = run_cli("ask", "How many days a week may employees work remotely?", env=ollama_env)
    assert streamed.returncode == 0 and "[1]" in streamed.stdout and "Remote_Work_Policy.pdf" in streamed.stdout


def test_a_malformed_company_glossary_stops_with_the_line_to_fix(kb, tmp_path):
    env, _ = kb
    glossary = tmp_path / "glossary.tsv"
    glossary.write_text("# our systems\n费控系统 spendly\n", encoding="utf-8")  # a space where the tab belongs
    result = run_cli("ask", "年假有几天？", env={**env, "ZHIKU_GLOSSARY": str(glossary)})
    assert result.returncode != 0 and "glossary.tsv, line 2" in result.stderr and "a tab" in result.stderr
    glossary.write_text("# our systems\n费控系统\tspendly; expense system\n", encoding="utf-8")
    fixed = run_cli("ask", "年假有几天？", "--json", env={**env, "ZHIKU_GLOSSARY": str(glossary)})
    assert fixed.returncode == 0 and json.loads(fixed.stdout)["answerable"] is True


def test_an_english_question_worded_unlike_the_policy_is_still_answered(kb):
    """The policy says "USB storage devices"; the user says "USB drive". A glossary phrase (usb drive → U盘)
    must not turn the question's two words into one that no passage holds, and the answer refused."""
    env, _ = kb
    answer = _json(run_cli("ask", "Can I plug a USB drive into my laptop?", "--json", env=env))
    assert answer["answerable"] is True, answer["answer"]
    assert any(c["file_name"] == "IT_Security_Policy.docx" and "USB storage devices" in c["quote"]
               for c in answer["citations"]), answer["citations"]
