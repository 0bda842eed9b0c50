"""Hostile and broken files through the real Ingestor: each fails alone, with a reason, leaving nothing behind."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
import zipfile
import zlib

import pytest

from zhiku.ingest.parsers import parse_bytes
from conftest import assert_consistent
from zhiku.retrieval.index import Scope
from zhiku.retrieval.types import LOCAL_ADMIN
from test_formats import make_docx, make_pdf, make_pptx, make_xlsx
from zhiku.core.errors import FileRejected

COLLECTION = "inbox"
_MB = 1024 * 1024


# ------------------------------------------------------------------ builders
def zip_bomb(base: bytes, member: str, megabytes: int = 200) -> bytes:
    """A real DOCX/XLSX/PPTX plus one member of zeros; written streaming, so building it stays light."""
    out = io.BytesIO()
    zeros = bytes(_MB)
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with dst.open(member, "w", force_zip64=True) as f:
            for _ in range(megabytes):
                f.write(zeros)
    return out.getvalue()


def many_members(count: int = 10_001) -> bytes:
    """A zip whose central directory lists more parts than any real Office file has."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for i in range(count):
            z.writestr(f"word/p{i}.xml", b"")
    return out.getvalue()


def flate_bomb_pdf(megabytes: int = 300) -> bytes:
    """A valid one-page PDF whose content stream is a few hundred KB that inflate to `megabytes` MB."""
    packer = zlib.compressobj(9)
    chunk = b"0" * _MB
    stream = b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(["机密文件\n工资调整方案。"])))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def scanned_pdf() -> bytes:
    """A page with only a drawn image-like shape: what a scan without OCR looks like to a text extractor."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.rect(50, 50, 400, 600, fill=1)
    c.showPage()
    c.save()
    return buf.getvalue()


def zipped(data: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, body in data.items():
            z.writestr(name, body)
    return out.getvalue()


# ------------------------------------------------------------------- helpers
def ingest_with_a_good_file(services, tmp_path, name: str, data: bytes):
    """Ingest the bad file and a good one in one batch; return both results."""
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / name).write_bytes(data)
    (folder / "zz_good.md").write_text("# 考勤\n\n每天九点上班，弹性半小时。", encoding="utf-8")
    bad, good = services.ingestor.ingest_paths([folder / name, folder / "zz_good.md"], COLLECTION, LOCAL_ADMIN)
    return bad, good


def assert_refused_alone(services, bad, good, data: bytes, reason: str) -> None:
    """The bad file failed with the reason and left nothing; the good one is fully indexed."""
    assert bad.status == "failed" and reason in bad.error, bad.error
    assert bad.chunks == 0
    assert services.index.count(Scope([COLLECTION], file_names=[bad.file_name])) == 0
    [doc] = assert_consistent(services)  # nothing of the bad file is stored or indexed
    assert doc.id == good.doc_id
    assert good.status == "added" and services.index.count(Scope([COLLECTION])) == good.chunks > 0


def refuse(services, tmp_path, name: str, data: bytes, reason: str) -> str:
    bad, good = ingest_with_a_good_file(services, tmp_path, name, data)
    assert_refused_alone(services, bad, good, data, reason)
    return bad.error


# --------------------------------------------------------------- bad inputs
def test_zero_byte_file(services, tmp_path):
    refuse(services, tmp_path, "空白.docx", b"", "empty file (0 bytes)")


def test_encrypted_pdf(services, tmp_path):
    error = refuse(services, tmp_path, "工资.pdf", encrypted_pdf(), "encrypted")
    assert "remove the password" in error


def test_malformed_pdf(services, tmp_path):
    data = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R"
    refuse(services, tmp_path, "broken.pdf", data, "malformed or truncated")


def test_truncated_pdf(services, tmp_path):
    data = make_pdf(["第一页", "第二页"])
    refuse(services, tmp_path, "cut.pdf", data[: len(data) // 2], "malformed or truncated")


def test_scanned_pdf_without_text_layer(services, tmp_path):
    error = refuse(services, tmp_path, "scan.pdf", scanned_pdf(), "no extractable text")
    assert "OCR" in error


def test_pdf_that_is_really_a_png(services, tmp_path):
    error = refuse(services, tmp_path, "photo.pdf", b"\x89PNG\r\n\x1a\n" + bytes(200), "not a PDF")
    assert "PNG image" in error


def test_pdf_that_is_really_a_zip(services, tmp_path):
    error = refuse(services, tmp_path, "archive.pdf", zipped({"a.txt": b"hello"}), "not a PDF")
    assert "ZIP archive" in error


@pytest.mark.parametrize("name,build,member", [
    ("bomb.docx", make_docx, "word/media/image1.bin"),
    ("bomb.xlsx", make_xlsx, "xl/worksheets/sheet9.xml"),
    ("bomb.pptx", make_pptx, "ppt/media/video1.bin"),
])
def test_office_zip_bomb(services, tmp_path, name, build, member):
    refuse(services, tmp_path, name, zip_bomb(build(), member), "decompression bomb")


def test_office_file_with_too_many_parts(services, tmp_path):
    refuse(services, tmp_path, "parts.docx", many_members(), "decompression bomb")


def test_pdf_flate_bomb(services, tmp_path):
    data = flate_bomb_pdf()
    assert len(data) < 1 * _MB
    refuse(services, tmp_path, "bomb.pdf", data, "decompression bomb")


def test_pdf_flate_bomb_stays_within_bounded_memory():
    tracemalloc.start()
    try:
        with pytest.raises(FileRejected, match="decompression bomb"):
            parse_bytes(flate_bomb_pdf(), "bomb.pdf")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 120 * _MB  # 300 MB inflated without the bound


def test_docx_that_is_not_a_zip(services, tmp_path):
    error = refuse(services, tmp_path, "notes.docx", "只是一段文字，不是 Word 文件。".encode(), "not a valid DOCX")
    assert "not a zip archive" in error


def test_encrypted_office_file(services, tmp_path):
    # Office stores password-protected DOCX/XLSX/PPTX in an OLE2 container, not a zip
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    error = refuse(services, tmp_path, "budget.xlsx", ole2, "not a valid XLSX")
    assert "password" in error


def test_unsupported_type_lists_what_is_supported(services, tmp_path):
    error = refuse(services, tmp_path, "setup.exe", b"MZ" + bytes(100), "unsupported file type .exe")
    for suffix in (".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".eml", ".md", ".txt"):
        assert suffix in error


def test_binary_file_named_as_text(services, tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)
    error = refuse(services, tmp_path, "notes.txt", png, "not a text file")
    assert "PNG image" in error


def test_eml_that_is_not_a_mail():
    with pytest.raises(FileRejected, match="not an email message"):
        parse_bytes("这只是一段普通文字，没有邮件头。\n第二行。".encode(), "note.eml")


# ---------------------------------------------------------------- file names
GOOD = "# 报销\n\n出租车费凭发票报销。".encode()


def ingest_named(services, name: str, data: bytes = GOOD):
    return services.ingestor.ingest_bytes(data, name, COLLECTION, LOCAL_ADMIN)


def stored_files(services) -> list[str]:
    return sorted(services.ingestor.originals.blobs())


@pytest.mark.parametrize("raw,expected", [
    ("../../etc/报销.md", "报销.md"),
    ("C:\\Users\\ann\\Desktop\\报销.md", "报销.md"),
    ("/tmp/../报销.md", "报销.md"),
    ("报\x00销\x1b[31m\n.md", "报销[31m.md"),
    ("\u202e报销.md", "报销.md"),  # a right-to-left override would make the name lie about its type
])
def test_file_names_lose_directories_and_control_characters(services, raw, expected):
    result = ingest_named(services, raw)
    assert (result.status, result.file_name) == ("added", expected), result.error
    [doc] = services.ingestor.documents(LOCAL_ADMIN)
    assert (doc.id, doc.file_name, doc.path) == (result.doc_id, expected, expected)
    assert stored_files(services) == [doc.blob]  # stored under a generated id, never under the given name
    [chunk] = services.index.chunks(Scope([COLLECTION], [doc.id]))
    assert chunk.file_name == expected  # the name the index cites


@pytest.mark.parametrize("raw", ["..", "../..", "\x00\x01", "   ", "/"])
def test_file_names_without_a_name_are_refused(services, raw):
    result = ingest_named(services, raw)
    assert result.status == "failed" and "invalid file name" in result.error
    assert services.index.count(Scope([COLLECTION])) == 0 and stored_files(services) == []


def test_long_file_names_are_kept_whole_and_never_collide(services):
    """Regression: names sharing their first 200 bytes were truncated to one name and replaced each other."""
    first = ingest_named(services, "年" * 300 + "甲.md")
    second = ingest_named(services, "年" * 300 + "乙.md", "# 报销\n\n餐费凭发票报销。".encode())
    assert (first.status, second.status) == ("added", "added"), (first.error, second.error)
    assert first.file_name == "年" * 300 + "甲.md" and second.file_name == "年" * 300 + "乙.md"
    assert services.ingestor.stats(LOCAL_ADMIN).documents == 2
    assert len(stored_files(services)) == 2
