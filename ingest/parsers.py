"""File bytes → sections of text that keep their page number and heading."""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Callable, Iterable, Iterator

from zhiku.retrieval.text import count_tokens
from zhiku.core.errors import FileRejected, UnsupportedFile, ZhikuError

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
_MB = 1024 * 1024

# Tables are cut into blocks of rows that each fit one chunk of the default budget (220 tokens), so
# every chunk of a table starts with its title and header instead of losing them to the chunker.
_BLOCK_TOKENS = 160

# Zip containers (DOCX, XLSX, PPTX) are checked against these before any library opens them.
_ZIP_MAX_MEMBERS = 10_000
_ZIP_MAX_TOTAL = 1024 * _MB  # declared uncompressed size of all members together
_ZIP_MAX_RATIO = 200  # XML compresses 5-30x, media ~1x, zeros ~1000x (Apache POI refuses beyond 100x)
_ZIP_RATIO_FLOOR = 8 * _MB  # small members may compress well without being a threat

# pypdf's own limits (75 MB per stream, 2M tokens per content stream) let one page take ~8 s and
# ~400 MB; a text page needs well under 1 MB and 50k tokens, so these bound a Flate bomb far tighter.
_PDF_LIMITS = {
    "zlib_maximum_output_length": 32 * _MB,
    "array_based_stream_maximum_output_length": 32 * _MB,
    "lzw_maximum_output_length": 32 * _MB,
    "run_length_maximum_output_length": 32 * _MB,
    "brotli_maximum_output_length": 32 * _MB,
    "stream_decoding_work_maximum_length": 128 * _MB,
    "stream_parsing_work_maximum_count": 500_000,
}


def _clean(text: str) -> str:
    """Normalise line endings and drop control characters and trailing spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\v", "\n")
    text = re.sub(r"[ \t\u3000]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _one_line(text: str) -> str:
    """Whitespace (line breaks included) collapsed to single spaces, as a table cell or title needs."""
    return re.sub(r"\s+", " ", text or "").strip()


def _shorten(message: object, limit: int = 160) -> str:
    """A library's error message cut to something a user can read."""
    text = _one_line(str(message))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def _unreadable(kind: str, fix: str) -> Iterator[None]:
    """Turn a parser library's exception into FileRejected: hostile files raise many unrelated types."""
    try:
        yield
    except ZhikuError:
        raise
    except Exception as e:
        raise FileRejected(f"unreadable {kind} ({type(e).__name__}: {_shorten(e)}); {fix}") from e


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


# ------------------------------------------------------------------- tables
def _pack(lines: list[str], overhead: int, budget: int = _BLOCK_TOKENS) -> list[tuple[int, int]]:
    """Index ranges of consecutive lines, each range plus a repeated title of `overhead` tokens within budget."""
    ranges: list[tuple[int, int]] = []
    start, used = 0, overhead
    for i, line in enumerate(lines):
        cost = count_tokens(line) + 1
        if i > start and used + cost > budget:
            ranges.append((start, i))
            start, used = i, overhead
        used += cost
    if start < len(lines):
        ranges.append((start, len(lines)))
    return ranges


def _pipe_table(title: str, rows: list[list[str]], heading: str | None, page: int | None) -> list[Section]:
    """A table as `a | b | c` rows in blocks that each repeat the title and the header row."""
    lines = [" | ".join(cells) for cells in rows if any(cells)]
    if not lines:
        return []
    head = f"{title}\n{lines[0]}" if title else lines[0]
    body = lines[1:] or [""]
    return [
        Section("\n".join([head, *body[start:end]]).strip(), page, heading)
        for start, end in _pack(body, count_tokens(head))
    ]


def _cell(value: object) -> str:
    """A spreadsheet value as people write it: 3 not 3.0, 2024-05-01 not 2024-05-01 00:00:00."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else format(value, ".15g")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return _one_line(str(value))


def _is_header(cells: list[str]) -> bool:
    """Whether a row names columns: two or more cells, none of them a number or a date."""
    filled = [c for c in cells if c]
    return len(filled) >= 2 and not any(re.fullmatch(r"[-+]?[\d.,:/ %]+", c) for c in filled)


def _records(rows: Iterable[tuple[int, list[str]]]) -> tuple[list[str], list[tuple[int, str]]]:
    """Title lines above the header, then every row as `列名: 值 | 列名: 值` with its row number.

    Each row names its own columns, so a row read alone (in a chunk, a citation or a BM25 match) still
    says what its values mean; sheets without a header row become `a | b` rows.
    """
    titles: list[str] = []
    header: list[str] | None = None
    lines: list[tuple[int, str]] = []
    for number, cells in rows:
        filled = [c for c in cells if c]
        if not filled:
            continue
        if header is None and not lines and len(filled) < 2 and len(titles) < 3:
            titles.append(filled[0])
        elif header is None and not lines and _is_header(cells):
            header = cells
        elif header is None:
            lines.append((number, " | ".join(filled)))
        else:
            pairs = [f"{header[i]}: {c}" if i < len(header) and header[i] else c for i, c in enumerate(cells) if c]
            lines.append((number, " | ".join(pairs)))
    return titles, lines


def _row_range(title: str, first: int, last: int) -> str:
    """The title line of one block of rows, in the title's language."""
    span = str(first) if first == last else f"{first}–{last}"
    if _CJK_CHAR.search(title):
        return f"{title}（第 {span} 行）"
    return f"{title} ({'row' if first == last else 'rows'} {span})"


def _sheet_sections(rows: Iterable[tuple[int, list[str]]], name: str, heading: str) -> list[Section]:
    """A sheet or CSV as blocks of rows, each block starting with the table's title and its row numbers."""
    titles, lines = _records(rows)
    title = " / ".join([name, *titles])
    if not lines:
        return [Section(title, None, heading)] if titles else []
    texts = [text for _, text in lines]
    sections = []
    for start, end in _pack(texts, count_tokens(title) + 8):
        head = _row_range(title, lines[start][0], lines[end - 1][0])
        sections.append(Section("\n".join([head, *texts[start:end]]), None, heading))
    return sections


# ---------------------------------------------------------------------- PDF
def _decrypt(reader) -> None:
    """Open a PDF that is only protected against editing (empty user password); refuse a real password."""
    from pypdf.errors import DependencyError

    try:
        opened = reader.decrypt("")
    except (DependencyError, NotImplementedError) as e:
        raise FileRejected(f"encrypted PDF that zhiku cannot open ({_shorten(e)}): remove the password "
                           "(e.g. print to PDF) and upload it again") from e
    if not opened:
        raise FileRejected("encrypted PDF: it needs a password to open; remove the password "
                           "(e.g. print to PDF) and upload it again")


def _pdf_limits() -> dict[str, int]:
    """The tightened limits this pypdf version knows (older 7.x releases lack the parsing budgets)."""
    import dataclasses

    from pypdf import Configuration

    known = {field.name for field in dataclasses.fields(Configuration)}
    return {name: value for name, value in _PDF_LIMITS.items() if name in known}


def _pdf_pages(data: bytes) -> list[Section]:
    """One section per page with text, inside tightened pypdf limits."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError

    sections = []
    with apply_configuration(**_pdf_limits()):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            _decrypt(reader)
        for number, page in enumerate(reader.pages, start=1):
            try:
                text = _clean(page.extract_text() or "")
            except LimitReachedError as e:
                raise FileRejected(
                    f"decompression bomb: page {number} inflates beyond zhiku's safety limits ({_shorten(e)}); "
                    "if the document is genuine, re-export it as PDF from the original application"
                ) from e
            if text:
                text = _unwrap(text)
                sections.append(Section(text, number, _guess_heading(text)))
    return sections


def parse_pdf(data: bytes) -> list[Section]:
    """One section per page, page numbers from 1."""
    with _unreadable("PDF: malformed or truncated", "re-export it from the original application"):
        sections = _pdf_pages(data)
    if not sections:
        raise FileRejected(
            "no extractable text: this looks like a scanned PDF without a text layer; run OCR on it first"
        )
    return sections


# ------------------------------------------------------------ zip containers
def check_zip(data: bytes, kind: str) -> None:
    """Refuse a DOCX/XLSX/PPTX that is not a zip or would inflate far beyond its size, before opening it."""
    # counted on the raw bytes, so a central directory of millions of entries is never loaded
    if data.count(b"PK\x01\x02") > _ZIP_MAX_MEMBERS:
        raise FileRejected(f"decompression bomb: the {kind} holds more than {_ZIP_MAX_MEMBERS} parts; "
                           "re-save it from the original application")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise FileRejected(_not_a_zip(data, kind)) from e
    # zipfile never inflates a member past the size its central directory declares, so checking the
    # declared sizes bounds what python-docx, python-pptx and openpyxl can be made to read
    total = sum(m.file_size for m in members)
    if total > _ZIP_MAX_TOTAL:
        raise FileRejected(f"decompression bomb: the {kind} would inflate to {total / _MB:.0f} MB "
                           f"(limit {_ZIP_MAX_TOTAL / _MB:.0f} MB); split it or remove embedded media")
    for m in members:
        ratio = m.file_size // max(m.compress_size, 1)
        if m.file_size > _ZIP_RATIO_FLOOR and ratio > _ZIP_MAX_RATIO:
            raise FileRejected(
                f"decompression bomb: part {m.filename!r} of the {kind} inflates {ratio}x to "
                f"{m.file_size / _MB:.0f} MB; re-save the file from the original application"
            )


def _not_a_zip(data: bytes, kind: str) -> str:
    """Why a DOCX/XLSX/PPTX failed to open as a zip, with the fix."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return (f"not a valid {kind}: this is a password-protected Office file or an old binary one "
                f"(.doc/.xls/.ppt); remove the password or save it as .{kind.lower()} and upload it again")
    what = _describe(data)
    return (f"not a valid {kind}: the file is not a zip archive{f' but {what}' if what else ''}; "
            f"open it and save it as .{kind.lower()} again")


# --------------------------------------------------------------------- DOCX
def parse_docx(data: bytes) -> list[Section]:
    """Sections split at headings; tables become one row per line, cells joined by ' | '."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    with _unreadable("DOCX", "open and re-save it in Word or LibreOffice"):
        document = docx.Document(io.BytesIO(data))
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


# --------------------------------------------------------------------- PPTX
def _shape_order(shape) -> tuple[int, int]:
    """Reading order on a slide: top to bottom, then left to right."""
    return (shape.top or 0, shape.left or 0)


def _slide_content(shapes, skip, texts: list[str], tables: list[list[list[str]]]) -> None:
    """Collect text frames and tables from shapes (inside groups too), in reading order."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in sorted(shapes, key=_shape_order):
        if skip is not None and shape.shape_id == skip:
            continue
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            _slide_content(shape.shapes, skip, texts, tables)
        elif getattr(shape, "has_table", False) and shape.has_table:
            tables.append([[_one_line(cell.text) for cell in row.cells] for row in shape.table.rows])
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = _clean(shape.text_frame.text)
            if text:
                texts.append(text)


def _slide_sections(slide, number: int) -> list[Section]:
    """A slide's text (and speaker notes) as one section, each table as its own blocks."""
    title_shape = slide.shapes.title
    title = _one_line(title_shape.text_frame.text) if title_shape is not None else ""
    texts: list[str] = []
    tables: list[list[list[str]]] = []
    _slide_content(slide.shapes, title_shape.shape_id if title_shape is not None else None, texts, tables)
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        notes = _clean(slide.notes_slide.notes_text_frame.text)
        if notes:
            texts.append(f"Notes: {notes}")
    heading = title or None
    sections = []
    body = _clean("\n".join([title, *texts]))
    if body and (texts or not tables):
        sections.append(Section(body, number, heading))
    for table in tables:
        sections.extend(_pipe_table(title or f"Slide {number}", table, heading, number))
    return sections


def parse_pptx(data: bytes) -> list[Section]:
    """One or more sections per slide: page is the slide number, heading the slide title."""
    from pptx import Presentation

    with _unreadable("PPTX", "open and re-save it in PowerPoint or LibreOffice"):
        presentation = Presentation(io.BytesIO(data))
        return [s for number, slide in enumerate(presentation.slides, start=1)
                for s in _slide_sections(slide, number)]


# --------------------------------------------------------------- XLSX, CSV
def parse_xlsx(data: bytes) -> list[Section]:
    """Every sheet as blocks of rows under the sheet's name (the heading) and title rows."""
    from openpyxl import load_workbook

    with _unreadable("XLSX", "open and re-save it in Excel or LibreOffice"):
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sections = []
            for sheet in workbook.worksheets:
                # the declared dimension is often A1:XFD1048576 (formatting applied to whole columns);
                # trusting it pads every row to 16,384 cells
                sheet.reset_dimensions()
                rows = ((n, [_cell(v) for v in values])
                        for n, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1))
                sections.extend(_sheet_sections(rows, sheet.title, sheet.title))
            return sections
        finally:
            workbook.close()


def _csv_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The delimiter and quoting sniffed from the first lines; comma when they are ambiguous."""
    sample = text[:16384]
    if len(text) > len(sample) and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        first = sample.split("\n", 1)[0]
        return csv.excel_tab if first.count("\t") > first.count(",") else csv.excel


def parse_csv(text: str, file_name: str) -> list[Section]:
    """A CSV as blocks of rows under the file's name, the same way as a spreadsheet."""
    text = text.replace("\x00", "")
    with _unreadable("CSV", "check its quoting, or save it again as CSV (UTF-8)"):
        reader = csv.reader(io.StringIO(text), _csv_dialect(text))
        rows = [(n, [_one_line(c) for c in cells]) for n, cells in enumerate(reader, start=1)]
    return _sheet_sections(rows, file_name, file_name)


# --------------------------------------------------------------------- HTML
_DROP = {"script", "style", "nav", "noscript", "template", "svg", "head", "iframe", "object", "canvas"}
_BLOCK = {"p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "li", "dl",
          "dt", "dd", "blockquote", "pre", "figure", "figcaption", "h4", "h5", "h6", "address", "hr",
          "form", "fieldset", "details", "summary", "body", "tr", "caption"}
_SECTION_HEADINGS = {"h1", "h2", "h3"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_GB_ALIASES = {"gb2312", "gbk", "x-gbk", "gb_2312-80", "cp936", "euc-cn"}


def decode_html(data: bytes) -> str:
    """Decode HTML by its BOM, then its <meta> charset, then the same detection as plain text."""
    if not data.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        match = _META_CHARSET.search(data[:8192])
        if match:
            charset = match.group(1).decode("ascii").lower()
            # pages declared as GB2312/GBK routinely contain characters only GB18030 (their superset) maps
            charset = "gb18030" if charset in _GB_ALIASES else charset
            try:
                return data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                log.info("HTML declares charset %s but does not decode with it; detecting instead", charset)
    return decode_text(data)


class _HtmlText:
    """Walks an HTML tree into sections split at h1-h3, with tables as blocks of rows."""

    def __init__(self, title: str | None):
        self.sections: list[Section] = []
        self.heading = title
        self.lines: list[str] = []
        self.inline: list[str] = []

    def end_line(self) -> None:
        line = _inline_text("".join(self.inline))
        if line:
            self.lines.append(line)
        self.inline.clear()

    def flush(self) -> None:
        self.end_line()
        text = _clean("\n".join(self.lines))
        if text:
            self.sections.append(Section(text, None, self.heading))
        self.lines.clear()

    def table(self, element) -> None:
        # rows of this table only: a nested table is read as the text of its cell
        rows = [[_one_line(cell.text_content()) for cell in row.xpath("./th|./td")]
                for row in element.iter("tr") if next(row.iterancestors("table"), None) is element]
        caption = element.find("caption")
        title = _one_line(caption.text_content()) if caption is not None else self.heading or ""
        self.flush()
        self.sections.extend(_pipe_table(title, rows, self.heading, None))

    def walk(self, element) -> None:
        tag = element.tag.lower() if isinstance(element.tag, str) else None  # comments have no str tag
        if tag is None or tag in _DROP:
            pass
        elif tag in _SECTION_HEADINGS:
            self.flush()
            self.heading = _one_line(element.text_content()) or self.heading
            self.lines.append(self.heading or "")
        elif tag == "table":
            self.table(element)
        elif tag == "br":
            self.end_line()
        else:
            block = tag in _BLOCK
            if block:
                self.end_line()
            self.inline.append(element.text or "")
            for child in element:
                self.walk(child)
            if block:
                self.end_line()
        self.inline.append(element.tail or "")


_WIDE = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"  # CJK characters and full-width punctuation
_WIDE_BREAK = re.compile(f"(?<=[{_WIDE}])\\s*\\n\\s*(?=[{_WIDE}])")


def _inline_text(text: str) -> str:
    """Collapse HTML whitespace; a source line break between two Chinese characters is not a space."""
    return _one_line(_WIDE_BREAK.sub("", text))


def html_sections(text: str) -> list[Section]:
    """HTML text → sections split at h1-h3 headings; scripts, styles and navigation dropped."""
    import lxml.html

    # lxml refuses str input that still declares an encoding
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    if not text.strip():
        return []
    with _unreadable("HTML", "save the page again as HTML (UTF-8)"):
        root = lxml.html.document_fromstring(text)
        title = root.findtext(".//title")
        walker = _HtmlText(_one_line(title) or None)
        body = root.find("body")
        walker.walk(body if body is not None else root)
        walker.flush()
    return walker.sections


def parse_html(data: bytes) -> list[Section]:
    """An HTML file's sections, decoded by its declared or detected charset."""
    return html_sections(decode_html(data))


# ---------------------------------------------------------------------- EML
_TEXT_ATTACHMENTS = {".txt", ".md", ".markdown", ".csv", ".html", ".htm"}


def _part_bytes_text(part) -> str:
    """A MIME part's text, by its declared charset or, failing that, by detection."""
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode("gb18030" if charset.lower() in _GB_ALIASES else charset)
        except (LookupError, UnicodeDecodeError):
            log.info("mail part declares charset %s but does not decode with it; detecting instead", charset)
    return decode_text(payload) if payload else ""


def _attachment_sections(part, name: str) -> list[Section]:
    """A text-like attachment parsed by its type, every section headed `attachment: name`."""
    suffix = Path(name).suffix.lower()
    text = _part_bytes_text(part)
    if suffix == ".csv":
        found = parse_csv(text, name)
    elif suffix in (".html", ".htm"):
        found = html_sections(text)
    elif suffix in (".md", ".markdown"):
        found = parse_markdown(text)
    else:
        found = parse_text(text)
    return [Section(s.text, None, f"attachment: {name}") for s in found]


def _attachments(message, body) -> Iterator[tuple[str, object]]:
    """Named leaf parts other than the body, at any depth (forwarded mails included)."""
    for part in message.walk():
        if part is body or part.is_multipart():
            continue
        name = part.get_filename()
        if name:
            yield _one_line(name.replace("\\", "/").split("/")[-1]) or "attachment", part


def _mail_body(message) -> tuple[object | None, str]:
    """The body part (plain text preferred, else HTML turned into text) and its text."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return None, ""
    text = _part_bytes_text(body)
    if body.get_content_type() == "text/html":
        text = "\n\n".join(s.text for s in html_sections(text))
    return body, text


def parse_eml(data: bytes) -> list[Section]:
    """The message (headers and body) as one section, then text-like attachments as their own."""
    import email
    from email import policy

    with _unreadable("email", "save it again from your mail program as .eml"):
        message = email.message_from_bytes(data, policy=policy.default)
        headers = [(n, _one_line(str(message[n] or ""))) for n in ("From", "To", "Cc", "Date", "Subject")]
        headers = [(n, v) for n, v in headers if v]
        if not any(n in ("From", "To", "Subject") for n, _ in headers):
            raise FileRejected("not an email message: it has no From, To or Subject header; "
                               "save the mail again from your mail program as .eml")
        body, text = _mail_body(message)
        subject = dict(headers).get("Subject")
        sections = [Section(_clean("\n".join(f"{n}: {v}" for n, v in headers) + "\n\n" + text), None, subject)]
        for name, part in _attachments(message, body):
            sections.extend(_safe_attachment(part, name))
    return sections


def _safe_attachment(part, name: str) -> list[Section]:
    """A text-like attachment's sections; a binary or unreadable one is skipped, the mail still counts."""
    if Path(name).suffix.lower() not in _TEXT_ATTACHMENTS:
        log.debug("skipping binary attachment %s", name)
        return []
    try:
        return _attachment_sections(part, name)
    except FileRejected as e:
        log.info("skipping attachment %s: %s", name, e)
        return []


# ----------------------------------------------------------- text, Markdown
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
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise FileRejected("broken UTF-16 text: save the file as UTF-8 and upload it again") from e
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


# --------------------------------------------------------------- dispatcher
_ZIP_KINDS = {".docx": "DOCX", ".xlsx": "XLSX", ".pptx": "PPTX"}
_TEXT_KINDS = {".txt", ".md", ".markdown", ".csv", ".html", ".htm", ".eml"}

_PARSERS: dict[str, Callable[[bytes, str], list[Section]]] = {
    ".pdf": lambda data, name: parse_pdf(data),
    ".docx": lambda data, name: parse_docx(data),
    ".pptx": lambda data, name: parse_pptx(data),
    ".xlsx": lambda data, name: parse_xlsx(data),
    ".csv": lambda data, name: parse_csv(decode_text(data), name),
    ".html": lambda data, name: parse_html(data),
    ".htm": lambda data, name: parse_html(data),
    ".eml": lambda data, name: parse_eml(data),
    ".md": lambda data, name: parse_markdown(decode_text(data)),
    ".markdown": lambda data, name: parse_markdown(decode_text(data)),
    ".txt": lambda data, name: parse_text(decode_text(data)),
}

SUPPORTED = set(_PARSERS)

_MAGIC = [
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or a DOCX/XLSX/PPTX)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0", "an old binary Office file (.doc/.xls/.ppt) or an encrypted Office file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
]


def _describe(data: bytes) -> str | None:
    """What a file's first bytes say it really is, when they say anything."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return what
    return None


def check_supported(file_name: str) -> str:
    """The file's lower-cased extension; raises UnsupportedFile listing what zhiku reads."""
    suffix = Path(file_name).suffix.lower()
    if suffix not in SUPPORTED:
        raise UnsupportedFile(
            f"unsupported file type {suffix or '(none)'}: zhiku reads {', '.join(sorted(SUPPORTED))}"
        )
    return suffix


def _check_content(data: bytes, suffix: str) -> None:
    """Refuse bytes that do not match their extension (a .pdf that is really a PNG), or zip bombs."""
    if suffix == ".pdf" and b"%PDF-" not in data[:1024]:
        what = _describe(data)
        found = f"the file is really {what}" if what else "the file's contents do not match its .pdf extension"
        raise FileRejected(f"not a PDF: {found}; upload the original or export it as PDF")
    if suffix in _ZIP_KINDS:
        check_zip(data, _ZIP_KINDS[suffix])
    # text never holds NUL bytes, except UTF-16, which starts with its byte order mark
    if suffix in _TEXT_KINDS and b"\x00" in data[:1024] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        what = _describe(data) or "binary data"
        raise FileRejected(f"not a text file: the {suffix} file is really {what}; "
                           "upload the original, or save it as UTF-8 text")


def parse_bytes(data: bytes, file_name: str) -> list[Section]:
    """Parse a file's bytes by its extension; raises FileRejected with the fix in the message."""
    suffix = check_supported(file_name)
    if not data:
        raise FileRejected("empty file (0 bytes): upload the file again")
    _check_content(data, suffix)
    sections = _PARSERS[suffix](data, Path(file_name).name)
    if not sections:
        raise FileRejected("no extractable text in this file")
    return sections
