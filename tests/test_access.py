"""Per-collection access through the service layer and the CLI: a member of one group never reaches another's documents.

One knowledge base (real embedded index and model) with an HR collection and an IT collection:
hanna is in group hr (reads and writes hr), sam in group staff (reads it, writes nothing).
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from conftest import run_cli
from zhiku.core.errors import AccessDenied, NotFound
from zhiku.retrieval.types import LOCAL_ADMIN

HR_TEXT = "# Salary bands\n\nThe salary band for senior engineers is 42000 yuan per month. Bonus reviews happen in March."
IT_TEXT = "# Office wifi\n\nThe guest wifi password rotates every Monday. Staff wifi uses your badge login."
SALARY_QUESTION = "What is the salary band for senior engineers per month?"


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """Services over a data dir holding hr/salaries.md and it/wifi.md, with the accounts above."""
    from zhiku.core.settings import load_settings
    from zhiku.services import build_services

    root = tmp_path_factory.mktemp("access")
    services = build_services(load_settings(data_dir=root / "data"))
    accounts = services.accounts
    accounts.create_collection(LOCAL_ADMIN, "hr", read=["hr"], write=["hr"])
    accounts.create_collection(LOCAL_ADMIN, "it", read=["staff", "hr"], write=["it-admins"])
    accounts.add_user(LOCAL_ADMIN, "hanna", "hanna-password", groups=["hr"])
    accounts.add_user(LOCAL_ADMIN, "sam", "sam-password", groups=["staff"])
    (root / "salaries.md").write_text(HR_TEXT, encoding="utf-8")
    (root / "wifi.md").write_text(IT_TEXT, encoding="utf-8")
    [hr] = services.ingestor.ingest_paths([root / "salaries.md"], "hr", LOCAL_ADMIN)
    [it] = services.ingestor.ingest_paths([root / "wifi.md"], "it", LOCAL_ADMIN)
    assert hr.status == it.status == "added"
    yield services, hr.doc_id, it.doc_id, root
    services.close()


def test_members_acting_user_comes_from_their_groups_grants(kb):
    services, *_ = kb
    sam = services.accounts.acting_user("sam")
    hanna = services.accounts.acting_user("hanna")
    assert (sam.readable, sam.writable, sam.is_admin) == (frozenset({"it"}), frozenset(), False)
    assert (hanna.readable, hanna.writable) == (frozenset({"hr", "it"}), frozenset({"hr"}))
    with pytest.raises(NotFound, match="zhiku user list"):
        services.accounts.acting_user("nobody")


def test_a_member_retrieves_and_cites_only_collections_they_may_read(kb):
    services, hr_id, it_id, _ = kb
    sam = services.accounts.acting_user("sam")
    hanna = services.accounts.acting_user("hanna")
    # the HR passage is the best match for hanna; for sam it does not exist
    assert services.searcher.search(SALARY_QUESTION, hanna, k=3)[0].chunk.doc_id == hr_id
    hits = services.searcher.search(SALARY_QUESTION, sam, k=10)
    assert hits and {h.chunk.collection for h in hits} == {"it"}
    assert services.searcher.search(SALARY_QUESTION, sam, k=10, collections=["hr"]) == []
    for mode in ("dense", "sparse"):
        assert all(h.chunk.collection == "it" for h in services.searcher.search("salary 42000", sam, mode=mode))

    answer = services.answers.ask(SALARY_QUESTION, sam)
    assert "42000" not in answer.text and all(c.doc_id != hr_id for c in answer.citations)
    assert "42000" in services.answers.ask(SALARY_QUESTION, hanna).text

    assert [d.id for d in services.ingestor.documents(sam)] == [it_id]
    assert services.ingestor.stats(sam).collections == {"it": 1}


def test_a_written_answer_never_shows_the_model_another_collection(kb, fake_ollama):
    from zhiku.retrieval.answer import AnswerService
    from zhiku.retrieval.llm import OllamaChat

    services, *_ = kb
    answers = AnswerService(services.searcher, OllamaChat(fake_ollama.host, "qwen2.5:7b-instruct"))
    sam = services.accounts.acting_user("sam")
    answers.ask("How do I log in to the staff wifi?", sam)
    answers.ask(SALARY_QUESTION, sam)
    history = [{"role": "user", "content": "Tell me about salary bands"}, {"role": "assistant", "content": "..."}]
    answers.ask("and for senior engineers?", sam, history)
    prompts = json.dumps(fake_ollama.requests_to("/api/chat"), ensure_ascii=False)
    assert "badge login" in prompts  # the model saw sam's passage
    assert "42000" not in prompts and "Salary bands" not in prompts


def test_a_member_cannot_preview_or_download_another_collections_original(kb):
    services, hr_id, it_id, _ = kb
    sam = services.accounts.acting_user("sam")
    with pytest.raises(NotFound) as refused:
        services.ingestor.open_original(hr_id, sam)
    with pytest.raises(NotFound) as missing:
        services.ingestor.readable_document("0" * 32, sam)
    # an unreadable document and a missing one get the same answer: ids reveal nothing
    assert str(refused.value).replace(hr_id, "X") == str(missing.value).replace("0" * 32, "X")
    doc, path = services.ingestor.open_original(it_id, sam)
    assert doc.collection == "it" and path.read_text(encoding="utf-8") == IT_TEXT
    _, path = services.ingestor.open_original(hr_id, services.accounts.acting_user("hanna"))
    assert path.read_text(encoding="utf-8") == HR_TEXT


def test_a_member_cannot_delete_reindex_upload_elsewhere_or_manage_accounts(kb):
    services, hr_id, it_id, _ = kb
    sam = services.accounts.acting_user("sam")
    with pytest.raises(NotFound):
        services.ingestor.delete(hr_id, sam)  # not even visible
    with pytest.raises(NotFound):
        services.ingestor.delete("salaries.md", sam)
    with pytest.raises(AccessDenied, match="may not delete"):
        services.ingestor.delete(it_id, sam)  # readable, not writable
    with pytest.raises(AccessDenied, match="may not re-index"):
        services.ingestor.reindex(sam)
    with pytest.raises(AccessDenied, match="may not add documents"):
        services.ingestor.ingest_bytes(b"# Note\n\nsam was here.", "note.md", "it", sam)
    with pytest.raises(AccessDenied):
        services.ingestor.ingest_bytes(b"# Note\n\nsam was here.", "note.md", "hr", sam)
    accounts = services.accounts
    for attempt in (lambda: accounts.add_user(sam, "mallory", "mallory-password", admin=True),
                    lambda: accounts.users(sam),
                    lambda: accounts.reset_password(sam, "hanna", "taken-over-1"),
                    lambda: accounts.set_disabled(sam, "hanna", True),
                    lambda: accounts.set_groups(sam, "sam", ["hr"]),
                    lambda: accounts.create_collection(sam, "hr", read=["staff"]),
                    lambda: accounts.audit_log(sam)):
        with pytest.raises(AccessDenied, match="ask an admin"):
            attempt()
    assert services.accounts.acting_user("sam").readable == frozenset({"it"})
    assert {d.id for d in services.ingestor.documents(LOCAL_ADMIN)} == {hr_id, it_id}
    denied = [e.detail for e in services.accounts.audit_log(LOCAL_ADMIN, who="sam", action="denied")]
    assert {"delete", "reindex", "upload", "manage users", "manage collections", "read the audit log"} <= set(denied)

    # hanna writes hr: she uploads there, and her upload is in the audit log
    hanna = services.accounts.acting_user("hanna")
    result = services.ingestor.ingest_bytes(b"# Note\n\nPayroll closes on the 25th.", "payroll.md", "hr", hanna)
    assert result.status == "added"
    [entry] = services.accounts.audit_log(LOCAL_ADMIN, who="hanna", action="upload")
    assert entry.target == "hr/payroll.md"
    services.ingestor.delete(result.doc_id, hanna)
    assert services.accounts.audit_log(LOCAL_ADMIN, who="hanna", action="delete")[0].target == "hr/payroll.md"


def test_the_cli_acts_as_the_named_user_and_refuses_with_a_message(kb):
    services, hr_id, it_id, root = kb
    env = {"ZHIKU_DATA_DIR": str(services.settings.data_dir)}

    hits = json.loads(run_cli("search", SALARY_QUESTION, "--user", "sam", "--json", env=env).stdout)["hits"]
    assert hits and {h["collection"] for h in hits} == {"it"}
    answer = json.loads(run_cli("ask", SALARY_QUESTION, "--user", "sam", "--json", env=env).stdout)
    assert "42000" not in answer["answer"] and all(c["doc_id"] != hr_id for c in answer["citations"])

    refusals = {
        ("delete", hr_id, "--user", "sam"): "no document",
        ("delete", it_id, "--user", "sam"): "sam may not delete documents in 'it'",
        ("reindex", "--user", "sam"): "sam may not re-index",
        ("ingest", str(root / "salaries.md"), "--collection", "hr", "--user", "sam"): "may not add documents to 'hr'",
        ("user", "add", "mallory", "--admin", "--user", "sam"): "sam may not manage users",
    }
    for args, message in refusals.items():
        result = run_cli(*args, env=env)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
    entries = json.loads(run_cli("audit", "--json", "--actor", "sam", "--action", "denied", env=env).stdout)["entries"]
    assert {"delete", "reindex", "upload", "manage users"} <= {e["detail"] for e in entries}


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("ZHIKU_LIVE_QDRANT_URL"), reason="set ZHIKU_LIVE_QDRANT_URL to run live Qdrant tests")
def test_on_a_qdrant_server_the_collection_field_is_a_tenant_index(make_services):
    from qdrant_client import QdrantClient

    url = os.environ["ZHIKU_LIVE_QDRANT_URL"]
    services = make_services(qdrant_url=url, index_name=f"zhiku-live-{uuid.uuid4().hex[:6]}")
    assert services.ingestor.ingest_bytes(IT_TEXT.encode(), "wifi.md", "it", LOCAL_ADMIN).status == "added"
    schema = QdrantClient(url=url).get_collection(services.generations.active_generation().name).payload_schema
    assert schema["collection"].params.is_tenant is True
