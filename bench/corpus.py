"""A deterministic mixed corpus of company documents (Chinese and English) for the ingestion benchmark.

PDF pages come from reportlab (Chinese in the built-in CID font STSong-Light, English in Helvetica);
DOCX, Markdown, TXT, HTML and XLSX have no pages, so a page of those counts as ~3,000 characters.
The same seed always gives the same files, byte for byte.
"""

from __future__ import annotations

import datetime
import io
import math
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.retrieval.text import count_tokens

CHARS_PER_PAGE = 3000  # a page of a format without pages
# Body tokens of one generated PDF page (one chunk at the default budget): a light page of a
# policy, form or slide deck. Kept modest so the whole benchmark fits in ~25 minutes on 2 cores.
PDF_PAGE_TOKENS = (80, 200)
_FIXED_TIME = datetime.datetime(2025, 1, 1, 9, 0, 0)

# ------------------------------------------------------------------ vocabulary
_EN = {
    "dept": ["Finance", "Human Resources", "IT", "Legal", "Sales", "Operations", "Procurement", "Facilities",
             "Internal Audit", "Customer Success"],
    "item": ["laptops", "business travel", "client meals", "software licences", "training courses",
             "conference fees", "mobile phones", "parking permits", "office furniture", "visa applications",
             "home-office equipment", "relocation costs"],
    "role": ["team leads", "managers", "contractors", "interns", "regional directors", "new hires",
             "field engineers", "sales representatives"],
    "boss": ["head", "deputy head", "compliance officer", "budget owner", "director"],
    "system": ["the expense portal", "the HR system", "the IT service desk", "the procurement tool",
               "the contract register", "the intranet"],
    "city": ["Hangzhou", "Beijing", "Shenzhen", "Shanghai", "Chengdu", "Singapore", "Frankfurt"],
    "channel": ["email", "the hotline", "a service ticket", "the incident form"],
    "course": ["Information Security Basics", "Anti-Bribery", "Data Protection", "Safe Driving",
               "Procurement Essentials"],
    "period": ["month", "quarter", "year", "trip"],
}
_EN_SENTENCES = [
    "{dept} approves requests for {item} above {amount} yuan within {n} working days.",
    "Employees at grade {grade} may claim up to {amount} yuan per {period} for {item}.",
    "Receipts for {item} must be uploaded to {system} no later than {n} days after the expense.",
    "{Role} in {city} report problems with {item} to {dept} through {channel}.",
    "The {dept} team reviews the rules on {item} every {n} months and publishes changes on {system}.",
    "If a request is rejected, the applicant may appeal to the {boss} of {dept} within {n} days.",
    "From {date}, {role} must complete the {course} course before they request {item}.",
    "Exceptions need written approval from the {boss} of {dept} and are recorded in {system}.",
    "Requests for {item} that exceed the annual budget of {amount} yuan are escalated to the {boss}.",
    "{Role} keep the original invoices for {item} for {n} years, as required by the {dept} policy.",
    "Questions about {item} go to {dept} on extension {ext}, Monday to Friday.",
    "A request for {item} is complete only when the cost centre {ext} and the project code are filled in.",
]
_ZH = {
    "dept": ["财务部", "人力资源部", "信息技术部", "法务部", "销售部", "运营部", "采购部", "行政部", "审计部", "客户成功部"],
    "item": ["笔记本电脑", "差旅", "客户招待", "软件许可", "培训课程", "会议费", "手机", "停车证", "办公家具", "签证办理",
             "居家办公设备", "搬迁费用"],
    "role": ["团队负责人", "部门经理", "外包人员", "实习生", "区域总监", "新员工", "现场工程师", "销售代表"],
    "boss": ["负责人", "副负责人", "合规专员", "预算负责人", "总监"],
    "system": ["报销系统", "人事系统", "IT 服务台", "采购平台", "合同台账", "内网门户"],
    "city": ["杭州", "北京", "深圳", "上海", "成都", "新加坡", "法兰克福"],
    "channel": ["邮件", "服务热线", "服务工单", "事件报告表"],
    "course": ["信息安全基础", "反商业贿赂", "个人信息保护", "安全驾驶", "采购基础"],
    "period": ["月", "季度", "年", "次出差"],
}
_ZH_SENTENCES = [
    "{dept}负责审批金额超过{amount}元的{item}申请，一般在{n}个工作日内完成。",
    "职级为{grade}级的员工每{period}可报销不超过{amount}元的{item}费用。",
    "{item}的发票须在费用发生后{n}天内上传至{system}。",
    "{city}办公室的{role}如发现{item}方面的问题，应通过{channel}报告{dept}。",
    "{dept}每{n}个月复核一次{item}相关制度，并在{system}发布修订内容。",
    "申请被驳回的，申请人可在{n}天内向{dept}{boss}提出复议。",
    "自{date}起，{role}申请{item}前须完成“{course}”培训。",
    "特殊情况须经{dept}{boss}书面批准，并在{system}中登记备案。",
    "超过年度预算{amount}元的{item}申请，须上报{boss}审批。",
    "{role}应将{item}的原始发票保存{n}年，以符合{dept}的管理要求。",
    "有关{item}的问题请联系{dept}，分机号{ext}，工作日受理。",
    "{item}申请须填写成本中心{ext}和项目编号，否则视为材料不全。",
]
_EN_TITLES = ["Travel and Expense Policy", "Information Security Standard", "Procurement Handbook",
              "Remote Work Guidelines", "Code of Conduct", "Onboarding Guide", "Facilities Manual",
              "Data Protection Policy", "Training and Development Policy", "Sales Compensation Plan"]
_ZH_TITLES = ["差旅与报销管理办法", "信息安全管理规范", "采购管理手册", "远程办公指引", "员工行为准则", "新员工入职指南",
              "行政后勤手册", "个人信息保护制度", "培训与发展制度", "销售激励方案"]
_EN_SECTIONS = ["Scope", "Definitions", "Responsibilities", "Approval limits", "Procedure", "Documentation",
                "Exceptions", "Appeals", "Records", "Contacts", "Review"]
_ZH_SECTIONS = ["适用范围", "术语定义", "职责分工", "审批权限", "办理流程", "材料要求", "例外情形", "复议", "档案管理",
                "联系方式", "制度修订"]


class Writer:
    """Sentences, paragraphs and titles in one language from a seeded random generator."""

    def __init__(self, lang: str, seed: int):
        self.lang = lang
        self.rng = random.Random(seed)
        self._vocab, self._templates = (_ZH, _ZH_SENTENCES) if lang == "zh" else (_EN, _EN_SENTENCES)

    def sentence(self) -> str:
        rng = self.rng
        slots = {k: rng.choice(v) for k, v in self._vocab.items()}
        slots.update(
            amount=rng.choice([200, 500, 800, 1000, 1500, 3000, 5000, 12000, 20000]),
            n=rng.randint(2, 30), grade=rng.randint(3, 12), ext=rng.randint(1000, 8999),
            date=f"{rng.randint(2023, 2026)}-{rng.randint(1, 12):02d}-01" if self.lang == "en"
            else f"{rng.randint(2023, 2026)}年{rng.randint(1, 12)}月1日",
        )
        slots["Role"] = slots["role"][:1].upper() + slots["role"][1:]
        return rng.choice(self._templates).format(**slots)

    def text(self, tokens: int) -> str:
        """Sentences until the text has about this many tokens."""
        out: list[str] = []
        used = 0
        while used < tokens:
            s = self.sentence()
            out.append(s)
            used += count_tokens(s)
        return ("" if self.lang == "zh" else " ").join(out)

    def paragraphs(self, chars: int) -> list[str]:
        """Paragraphs of 2-5 sentences until they hold about this many characters."""
        out: list[str] = []
        total = 0
        joiner = "" if self.lang == "zh" else " "
        while total < chars:
            p = joiner.join(self.sentence() for _ in range(self.rng.randint(2, 5)))
            out.append(p)
            total += len(p) + 1
        return out

    def title(self) -> str:
        return self.rng.choice(_ZH_TITLES if self.lang == "zh" else _EN_TITLES)

    def section(self) -> str:
        return self.rng.choice(_ZH_SECTIONS if self.lang == "zh" else _EN_SECTIONS)


# --------------------------------------------------------------------- PDF
def _register_fonts() -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines that fit the width: at spaces for English, at any character for Chinese."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase.pdfmetrics import stringWidth

    if font == "Helvetica":
        return simpleSplit(text, font, size, width)
    lines, line = [], ""
    for ch in text:
        if stringWidth(line + ch, font, size) > width:
            lines.append(line)
            line = ch
        else:
            line += ch
    return lines + ([line] if line else [])


def pdf_pages(writer: Writer, pages: int, title: str) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) per page, each page's body within PDF_PAGE_TOKENS."""
    out = []
    for page in range(pages):
        lo, hi = PDF_PAGE_TOKENS
        body = writer.text(writer.rng.randint(lo, hi) - 20)
        heading = f"{page + 1}. {writer.section()}" if writer.lang == "en" else f"第{page + 1}节 {writer.section()}"
        out.append((heading, [body]))
    return out


def make_pdf(writer: Writer, pages: int) -> bytes:
    """A PDF of `pages` pages: a running header, a heading and body text on each page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    _register_fonts()
    font = "STSong-Light" if writer.lang == "zh" else "Helvetica"
    title = writer.title()
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setTitle(title)
    width, height = A4
    for number, (heading, paragraphs) in enumerate(pdf_pages(writer, pages, title), start=1):
        c.setFont(font, 8)
        header = f"{title} — 第 {number} 页" if writer.lang == "zh" else f"{title} — Page {number}"
        c.drawString(60, height - 40, header)
        c.setFont(font, 14)
        c.drawString(60, height - 80, heading)
        y = height - 110
        c.setFont(font, 11)
        for paragraph in paragraphs:
            for line in _wrap(paragraph, font, 11, width - 120):
                c.drawString(60, y, line)
                y -= 16
            y -= 8
        c.showPage()
    c.save()
    return buf.getvalue()


# ---------------------------------------------------------------- page-less
def _sections(writer: Writer, chars: int) -> list[tuple[str, list[str]]]:
    """(heading, paragraphs) sections holding about `chars` characters in all."""
    out, total = [], 0
    while total < chars:
        paragraphs = writer.paragraphs(min(900, chars - total))
        heading = writer.section()
        out.append((heading, paragraphs))
        total += sum(len(p) + 1 for p in paragraphs) + len(heading)
    return out


def _rows(writer: Writer, count: int) -> list[list[str]]:
    rng = writer.rng
    vocab = _ZH if writer.lang == "zh" else _EN
    header = (["日期", "部门", "事项", "金额（元）", "状态"] if writer.lang == "zh"
              else ["Date", "Department", "Item", "Amount (CNY)", "Status"])
    states = ["已批准", "待审批", "已驳回"] if writer.lang == "zh" else ["approved", "pending", "rejected"]
    rows = [header]
    for _ in range(count):
        rows.append([f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", rng.choice(vocab["dept"]),
                     rng.choice(vocab["item"]), str(rng.randint(50, 20000)), rng.choice(states)])
    return rows


def make_docx(writer: Writer, chars: int) -> tuple[bytes, int]:
    """A DOCX with a title, headings, paragraphs and a table; returns (bytes, visible characters)."""
    import docx

    d = docx.Document()
    title = writer.title()
    d.add_heading(title, 0)
    visible = len(title)
    for heading, paragraphs in _sections(writer, chars):
        d.add_heading(heading, 1)
        visible += len(heading)
        for p in paragraphs:
            d.add_paragraph(p)
            visible += len(p)
    rows = _rows(writer, 8)
    table = d.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for col, value in enumerate(row):
            table.cell(r, col).text = value
            visible += len(value)
    d.core_properties.created = d.core_properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    d.save(buf)
    return _fixed_zip(buf.getvalue()), visible


def make_markdown(writer: Writer, chars: int) -> str:
    lines = [f"# {writer.title()}", ""]
    for heading, paragraphs in _sections(writer, chars):
        lines += [f"## {heading}", ""] + [p + "\n" for p in paragraphs]
    return "\n".join(lines)


def make_text(writer: Writer, chars: int) -> str:
    lines = [writer.title(), ""]
    for heading, paragraphs in _sections(writer, chars):
        lines += [heading, ""] + [p + "\n" for p in paragraphs]
    return "\n".join(lines)


def make_html(writer: Writer, chars: int) -> tuple[str, int]:
    """A web page with navigation, a script, h2 sections and a table; returns (HTML, visible characters)."""
    from html import escape

    title = escape(writer.title())
    visible = len(title)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>",
             "<style>body{font-family:sans-serif}</style><script>var t=1;</script></head><body>",
             "<nav><a href='/'>Home</a> | <a href='/policies'>Policies</a></nav>", f"<h1>{title}</h1>"]
    for heading, paragraphs in _sections(writer, chars):
        parts.append(f"<h2>{escape(heading)}</h2>")
        parts += [f"<p>{escape(p)}</p>" for p in paragraphs]
        visible += len(heading) + sum(len(p) for p in paragraphs)
    rows = _rows(writer, 6)
    visible += sum(len(v) for row in rows for v in row)
    parts.append("<table>" + "".join(
        "<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>" for row in rows) + "</table>")
    parts.append("<footer>© Hengtai Group</footer></body></html>")
    return "\n".join(parts), visible


def make_xlsx(writer: Writer, chars: int) -> tuple[bytes, int]:
    """A workbook of expense records (a title row, a header, rows) holding about `chars` characters."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "报销记录" if writer.lang == "zh" else "Expense records"
    title = f"{writer.title()} 2025"
    sheet.append([title])
    visible = len(title)
    per_row = 30 if writer.lang == "zh" else 45  # characters in one record, roughly
    rows = _rows(writer, max(1, chars // per_row))
    for row in rows:
        sheet.append([int(v) if v.isdigit() else v for v in row])
        visible += sum(len(v) for v in row)
    book.properties.created = book.properties.modified = _FIXED_TIME
    buf = io.BytesIO()
    book.save(buf)
    return _fixed_zip(buf.getvalue()), visible


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with fixed member timestamps, so a rebuild is byte-identical."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2025, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info))
    return out.getvalue()


# ------------------------------------------------------------------ corpus
# (format, language, share of pages, pages per file) — PDFs carry most pages, as in a real company share
_MIX = [
    ("pdf", "zh", 0.455, (4, 40)),
    ("pdf", "en", 0.490, (4, 40)),
    ("docx", "en", 0.010, (1, 3)),
    ("md", "en", 0.010, (1, 2)),
    ("txt", "en", 0.006, (1, 2)),
    ("html", "en", 0.008, (1, 2)),
    ("docx", "zh", 0.002, (1, 1)),
    ("md", "zh", 0.0015, (1, 1)),
    ("txt", "zh", 0.001, (1, 1)),
    ("html", "zh", 0.0015, (1, 1)),
    ("xlsx", "zh", 0.0025, (1, 2)),
    ("xlsx", "en", 0.0025, (1, 2)),
]


@dataclass
class CorpusFile:
    path: Path
    fmt: str
    lang: str
    pages: int
    chars: int


@dataclass
class Corpus:
    folder: Path
    files: list[CorpusFile] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files)

    def breakdown(self) -> dict[str, dict[str, int]]:
        """Files and pages per format and language, e.g. {'pdf/zh': {'files': 40, 'pages': 900}}."""
        out: dict[str, dict[str, int]] = {}
        for f in self.files:
            row = out.setdefault(f"{f.fmt}/{f.lang}", {"files": 0, "pages": 0, "chars": 0})
            row["files"] += 1
            row["pages"] += f.pages
            row["chars"] += f.chars
        return out


def _pdf_chars(data: bytes) -> int:
    from pypdf import PdfReader

    return sum(len(p.extract_text() or "") for p in PdfReader(io.BytesIO(data)).pages)


def build_file(path: Path, fmt: str, lang: str, pages: int, seed: int) -> CorpusFile:
    """Write one file of about `pages` pages; returns what it holds."""
    writer = Writer(lang, seed)
    chars = pages * CHARS_PER_PAGE
    if fmt == "pdf":
        data = make_pdf(writer, pages)
        path.write_bytes(data)
        return CorpusFile(path, fmt, lang, pages, _pdf_chars(data))
    if fmt == "docx":
        data, visible = make_docx(writer, chars)
        path.write_bytes(data)
    elif fmt == "xlsx":
        data, visible = make_xlsx(writer, chars)
        path.write_bytes(data)
    elif fmt == "html":
        text, visible = make_html(writer, chars)
        path.write_text(text, encoding="utf-8")
    else:
        text = {"md": make_markdown, "txt": make_text}[fmt](writer, chars)
        path.write_text(text, encoding="utf-8")
        visible = len(text)
    return CorpusFile(path, fmt, lang, max(1, round(visible / CHARS_PER_PAGE)), visible)


def build_corpus(folder: Path, pages: int = 2000, seed: int = 7) -> Corpus:
    """Files of every format in `folder` until they hold at least `pages` pages (same seed, same bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    corpus = Corpus(folder)
    for fmt, lang, share, (lo, hi) in _MIX:
        target = max(1, math.ceil(pages * share))
        made = 0
        while made < target:
            n = min(rng.randint(lo, hi), target - made) if fmt == "pdf" else rng.randint(lo, hi)
            index = sum(1 for f in corpus.files if f.fmt == fmt and f.lang == lang)
            name = f"{fmt}_{lang}_{index:03d}.{fmt}"
            built = build_file(folder / name, fmt, lang, n, rng.randint(0, 2**31))
            corpus.files.append(built)
            made += built.pages
    while corpus.pages < pages:  # rounding of small shares: top up with English PDF pages
        index = sum(1 for f in corpus.files if f.fmt == "pdf" and f.lang == "en")
        n = min(40, pages - corpus.pages)
        corpus.files.append(build_file(folder / f"pdf_en_{index:03d}.pdf", "pdf", "en", n, rng.randint(0, 2**31)))
    return corpus
