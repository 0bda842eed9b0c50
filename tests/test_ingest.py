"""Parsing and chunking: pages, headings, Chinese sentences, spans, identity and replacement."""

from __future__ import annotations

import io

import pytest

from zhiku.ingest.chunking import Chunker
from zhiku.retrieval.text import count_tokens
from zhiku.ingest.parsers import Section, parse_bytes
from zhiku.retrieval.index import Scope
from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.core.errors import FileRejected

from conftest import make_pdf


def test_pdf_keeps_page_numbers_and_chinese():
    data = make_pdf(["员工手册\n第一页的内容。", "年假制度\n员工每年享有十五天年假。"])
    sections = parse_bytes(data, "手册.pdf")
    assert [s.page for s in sections] == [1, 2]
    assert sections[1].heading == "年假制度" and "十五天年假" in sections[1].text


def test_docx_headings_and_table_rows():
    import docx

    d = docx.Document()
    d.add_heading("Passwords", 1)
    d.add_paragraph("Passwords must have at least 12 characters.")
    table = d.add_table(rows=2, cols=2)
    for (r, col), text in {(0, 0): "Level", (0, 1): "Rotation", (1, 0): "Admin", (1, 1): "90 days"}.items():
        table.cell(r, col).text = text
    buf = io.BytesIO()
    d.save(buf)
    sections = parse_bytes(buf.getvalue(), "policy.docx")
    assert sections[0].heading == "Passwords" and sections[0].page is None
    assert "Level | Rotation\nAdmin | 90 days" in sections[0].text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_text_encodings(encoding):
    text = "报销须在 30 天内提交。Receipts are required."
    sections = parse_bytes(text.encode(encoding), "note.txt")
    assert sections[0].text == text


@pytest.mark.parametrize(
    "name,data,reason",
    [
        ("empty.pdf", b"", "empty"),
        ("fake.pdf", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "not a PDF"),
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog", "malformed"),
        ("tool.exe", b"MZ", "unsupported"),
    ],
)
def test_bad_files_are_refused_with_a_reason(name, data, reason):
    with pytest.raises(FileRejected, match=reason):
        parse_bytes(data, name)


def test_chinese_chunks_end_at_sentence_marks_and_spans_point_into_the_section():
    text = "".join(f"第{i}条：员工应当遵守公司的信息安全制度，定期修改密码；离职时归还电脑！" for i in range(40))
    section = Section(text, 3, "信息安全")
    chunks = Chunker(chunk_tokens=80, overlap=15).split([section])
    assert len(chunks) > 5
    for chunk in chunks:
        assert count_tokens(chunk.text) <= 80
        assert chunk.text[-1] in "。！？；"  # never cut mid-sentence
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.page == 3 and chunk.heading == "信息安全"


def test_reingest_changed_file_replaces_old_version(services, tmp_path):
    path = tmp_path / "policy.md"
    path.write_text("# Leave\n\nEmployees get 10 days of annual leave.", encoding="utf-8")
    first = services.ingestor.ingest_paths([path], "hr", LOCAL_ADMIN)[0]
    path.write_text("# Leave\n\nEmployees get 12 days of annual leave.", encoding="utf-8")
    second = services.ingestor.ingest_paths([path], "hr", LOCAL_ADMIN)[0]
    assert (first.status, second.status) == ("added", "updated")
    assert first.doc_id == second.doc_id  # identity is (collection, path), not the bytes
    assert services.index.count(Scope(["hr"])) == second.chunks
    assert all("12 days" in c.text for c in services.index.chunks(Scope(["hr"])))
    [doc] = services.ingestor.documents(LOCAL_ADMIN)
    assert services.ingestor.originals.blobs() == {doc.blob}
    assert services.ingestor.original_path(doc).read_text(encoding="utf-8").endswith("12 days of annual leave.")
    # the same bytes in another collection are another document
    other = services.ingestor.ingest_paths([path], "it", LOCAL_ADMIN)[0]
    assert other.status == "added" and services.ingestor.stats(LOCAL_ADMIN).documents == 2


def test_access_scope_is_part_of_the_query(services, tmp_path):
    from zhiku.retrieval.types import User

    (tmp_path / "hr.md").write_text("Salary reviews happen every April.", encoding="utf-8")
    (tmp_path / "it.md").write_text("Salary data must stay on the finance share.", encoding="utf-8")
    services.ingestor.ingest_paths([tmp_path / "hr.md"], "hr", LOCAL_ADMIN)
    services.ingestor.ingest_paths([tmp_path / "it.md"], "it", LOCAL_ADMIN)
    reader = User("ana", frozenset({"it"}))
    hits = services.searcher.search("salary", reader, k=5)
    assert hits and {h.chunk.collection for h in hits} == {"it"}
    assert services.searcher.search("salary", User("bob", frozenset()), k=5) == []
