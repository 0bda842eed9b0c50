"""File bytes → sections of text that keep their page number and heading."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from zhiku.errors import FileRejected, UnsupportedFile

log = logging.getLogger(__name__)


@dataclass
class Section:
    """A run of text from one page (or one heading's section) of a document."""

    text: str
    page: int | None = None
    heading: str | None = None


_SENTENCE_END = tuple("。！？；.!?;:：")
_PAGE_HEADER = re.compile(r"第\s*\d+\s*页|\bpage\s+\d+\b", re.I)
_CJK_CHAR = re.compile(r"[\u3400-\u9fff\uf900-\uff60]")


def _clean(text: str) -> str:
    """Normalise line endings and drop control characters and trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = re.sub(r"[ \t\u3000]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _guess_heading(text: str) -> str | None:
    """The first line that looks like a title (short, no sentence ending, not a running page header)."""
    for line in text.strip().split("\n")[:3]:
        line = line.strip()
        if not line or _PAGE_HEADER.search(line):
            continue
        if len(line) <= 60 and not line.endswith(_SENTENCE_END):
            return line
        return None
    return None


def _unwrap(text: str) -> str:
    """Join lines that a PDF wrapped at the page margin, keeping short lines (titles, table rows) apart."""
    lines = text.split("\n")
    lengths = sorted(len(line.strip()) for line in lines if line.strip())
    width = lengths[int(len(lengths) * 0.9)] if lengths else 0
    out: list[str] = []
    wrapped = False
    for line in lines:
        stripped = line.strip()
        if out and wrapped and stripped:
            joint = "" if _CJK_CHAR.match(out[-1][-1]) or _CJK_CHAR.match(stripped[0]) else " "
            out[-1] = out[-1] + joint + stripped
        else:
            out.append(stripped)
        # a line that fills the width and stops mid-sentence continues on the next one
        wrapped = len(stripped) >= 0.8 * width and not stripped.endswith(_SENTENCE_END)
    return "\n".join(out)


def parse_pdf(data: bytes) -> list[Section]:
    """One section per page, page numbers from 1."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise FileRejected("encrypted PDF: remove the password (e.g. print to PDF) and upload it again")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = _clean(page.extract_text() or "")
            if text:
                text = _unwrap(text)
                sections.append(Section(text, number, _guess_heading(text)))
    except FileRejected:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise FileRejected(f"malformed or truncated PDF ({e}); re-export it from the original application") from e
    if not sections:
        raise FileRejected(
            "no extractable text: this looks like a scanned PDF without a text layer; run OCR on it first"
        )
    return sections


def parse_docx(data: bytes) -> list[Section]:
    """Sections split at headings; tables become one row per line, cells joined by ' | '."""
    import docx
    from docx.document import Document as _Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document: _Document = docx.Document(io.BytesIO(data))
    except Exception as e:  # python-docx raises several unrelated types for broken zips
        raise FileRejected(f"unreadable DOCX ({e}); open and re-save it in Word or LibreOffice") from e

    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []

    def flush() -> None:
        text = _clean("\n".join(lines))
        if text:
            sections.append(Section(text, None, heading))
        lines.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = block.text.strip()
            style = (block.style.name if block.style is not None else "") or ""
            if style.lower().startswith(("heading", "title")) and text:
                flush()
                heading = text
                lines.append(text)
            elif text:
                lines.append(text)
        elif isinstance(block, Table):
            rows = [" | ".join(c.text.strip() for c in row.cells) for row in block.rows]
            lines.append("\n".join(rows))
    flush()
    return sections


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def parse_markdown(text: str) -> list[Section]:
    """Sections split at ATX headings (outside fenced code)."""
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        body = _clean("\n".join(lines))
        if body:
            sections.append(Section(body, None, heading))
        lines.clear()

    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        if match:
            flush()
            heading = match.group(2).strip()
        lines.append(line)
    flush()
    return sections


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030/GBK."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileRejected("unknown text encoding: save the file as UTF-8 and upload it again")


def parse_text(text: str) -> list[Section]:
    """The whole text as one section."""
    body = _clean(text)
    return [Section(body, None, _guess_heading(body))] if body else []


SUPPORTED = {".pdf", ".docx", ".md", ".markdown", ".txt"}


def check_supported(file_name: str) -> str:
    """The file's lower-cased extension; raises UnsupportedFile listing what zhiku reads."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedFile(
            f"unsupported file type {suffix or '(none)'}: zhiku reads {', '.join(sorted(SUPPORTED))}"
        )
    return suffix


def parse_bytes(data: bytes, file_name: str) -> list[Section]:
    """Parse a file's bytes by its extension; raises FileRejected with the fix in the message."""
    suffix = check_supported(file_name)
    if not data:
        raise FileRejected("empty file (0 bytes): upload the file again")
    if suffix == ".pdf":
        if not data.lstrip()[:5].startswith(b"%PDF"):
            raise FileRejected("not a PDF: the file's contents do not match its .pdf extension")
        sections = parse_pdf(data)
    elif suffix == ".docx":
        sections = parse_docx(data)
    elif suffix in (".md", ".markdown"):
        sections = parse_markdown(decode_text(data))
    else:
        sections = parse_text(decode_text(data))
    if not sections:
        raise FileRejected("no extractable text in this file")
    return sections
