"""`zhiku chat` and the answer scoring of `zhiku eval`, through the installed script on the sample handbook."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import ZHIKU

ASK_KEYS = {"answer", "mode", "answerable", "citations", "language", "notice", "query"}


def _chat(kb, lines: list[str], *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZHIKU_DATA_DIR": str(kb.settings.data_dir)}
    return subprocess.run([str(ZHIKU), "chat", *args], input="\n".join(lines) + "\n", capture_output=True,
                          text=True, env=env, timeout=600)


def test_chat_json_answers_one_conversation_a_line(sample_kb):
    result = _chat(sample_kb, ["How many days a week can I work from home?", "", "What about interns?",
                               "What is the capital of France?"], "--json")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 3  # the empty line is skipped
    assert all(set(a) == ASK_KEYS for a in answers)
    first, follow_up, unrelated = answers
    assert first["answerable"] and "up to 3 days per week" in first["answer"]
    # the follow-up is read with the earlier question, the unrelated one on its own
    assert follow_up["query"] != "What about interns?" and "contract explicitly allows it" in follow_up["answer"]
    assert unrelated["answerable"] is False and unrelated["query"] == "What is the capital of France?"
    assert unrelated["citations"] == []


def test_chat_text_prints_answer_and_sources(sample_kb):
    result = _chat(sample_kb, ["婚假有几天？"], "--collection", "default")
    assert result.returncode == 0, result.stderr
    assert "婚假为 13 天" in result.stdout and "[1] 员工手册.pdf, p.4" in result.stdout


def test_chat_as_an_unknown_user_is_refused_with_the_fix(sample_kb):
    result = _chat(sample_kb, ["婚假有几天？"], "--user", "bob", "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert "bob" in result.stderr and "--user" in result.stderr
    assert _chat(sample_kb, ["婚假有几天？"], "--user", "local", "--json").returncode == 0


def test_eval_scores_answers_and_conversations(sample_kb, tmp_path):
    qa = tmp_path / "qa.jsonl"
    lines = [
        {"question": "工作满十二年的员工每年有几天年假？", "evidence": "满 10 年不满 20 年的，年假为 15 天",
         "file": "员工手册.pdf", "kind": "zh", "split": "tune"},
        {"question": "How long is maternity leave?", "evidence": "女员工产假为 158 天", "file": "员工手册.pdf",
         "kind": "en-about-zh", "split": "heldout"},
        {"question": "What is the capital of Australia?", "evidence": None, "split": "heldout"},
        {"turns": ["婚假有几天？", "产假呢？"], "relation": "follow-up", "evidence": "女员工产假为 158 天",
         "file": "员工手册.pdf", "split": "tune"},
        {"turns": ["Can I bring my dog to the office?", "What is the capital of France?"], "relation": "unrelated",
         "evidence": None, "split": "heldout"},
    ]
    qa.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    env = {**os.environ, "ZHIKU_DATA_DIR": str(sample_kb.settings.data_dir)}
    run = subprocess.run([str(ZHIKU), "eval", str(qa), "--json", "--configs", "rrf,hybrid"], capture_output=True,
                         text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["configurations"]) == {"rrf", "hybrid"} and set(report["splits"]) == {"tune", "heldout"}
    answers = report["answers"]["all"]
    assert (answers["answerable"], answers["quoted"], answers["cited"]) == (2, 2, 2)
    assert answers["cross_language_refused"] == 0 and answers["unanswerable_refused"] == 1
    assert report["answers"]["heldout"]["answerable"] == 1
    talk = report["conversations"]["all"]
    assert talk == {"follow_ups": 1, "followed": 1, "unrelated": 1, "leaked": 0, "unrelated_correct": 1}
    text = subprocess.run([str(ZHIKU), "eval", str(qa), "--split", "heldout", "--configs", "hybrid"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert text.returncode == 0, text.stderr
    assert "1 answerable questions (heldout 1)" in text.stdout and "quoted the evidence 1/1" in text.stdout
    assert "leaked 0/1" in text.stdout
