"""Every supported format built for real in the test: sections keep pages, headings, tables and Chinese text."""

from __future__ import annotations

import datetime
import io
from email.message import EmailMessage

import pytest

from zhiku.ingest.parsers import SUPPORTED, Section, parse_bytes
from zhiku.retrieval.text import count_tokens
from zhiku.retrieval.types import LOCAL_ADMIN


from conftest import make_pdf


# ------------------------------------------------------------------ builders
def make_docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("信息安全", 1)
    d.add_paragraph("密码至少十二位，每九十天更换一次。")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def make_pptx(notes: str = "") -> bytes:
    """Two slides: bullet text under a Chinese title, then a table under an English title."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "年假制度"
    first.placeholders[1].text = "员工每年享有十五天带薪年假。\n未休年假可顺延至次年三月。"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Travel limits"
    table = second.shapes.add_table(3, 3, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([["City", "Hotel per night", "Meals"], ["北京", "800", "150"], ["Shanghai", "750", "140"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    if notes:
        second.notes_slide.notes_text_frame.text = notes
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def make_xlsx(rows: int = 3) -> bytes:
    """A sheet with a title row, a blank row, a header and data rows; a second small English sheet."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "差旅标准"
    sheet.append(["2024年差旅住宿标准"])
    sheet.append([])
    sheet.append(["城市", "住宿上限（元/晚）", "生效日期"])
    cities = ["北京", "上海", "深圳"] + [f"城市{i}" for i in range(rows - 3)]
    for i, city in enumerate(cities[:rows]):
        sheet.append([city, 800 - 10 * i, datetime.datetime(2024, 5, 1)])
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Department", "Days left"])
    staff.append(["Ann Lee", "IT", 4.0])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def make_html(charset: str = "utf-8") -> bytes:
    page = f"""<!DOCTYPE html><html><head><meta charset="{charset}"><title>员工手册</title>
<style>p {{ color: red }}</style><script>var secret = "脚本内容";</script></head>
<body><nav>首页 | 关于我们</nav>
<p>本手册适用于全体员工，
自发布之日起生效。</p>
<h1>报销制度</h1><p>出差住宿须按<b>标准</b>报销。</p>
<table><caption>住宿标准</caption><tr><th>城市</th><th>金额</th></tr><tr><td>北京</td><td>800</td></tr></table>
<h2>Remote work</h2><ul><li>Up to two days a week.</li><li>Ask your manager first.</li></ul>
</body></html>"""
    return page.encode(charset)


def make_eml() -> bytes:
    """A Chinese mail with plain and HTML bodies, a GB18030 CSV, a Markdown note and a binary logo."""
    mail = EmailMessage()
    mail["From"] = "张三 <zhang@example.com>"
    mail["To"] = "hr@example.com"
    mail["Subject"] = "关于2024年年假安排"
    mail["Date"] = "Mon, 06 May 2024 10:00:00 +0800"
    mail.set_content("各位同事：\n今年的年假请在十二月三十一日前休完。")
    mail.add_alternative("<p>HTML 版本：今年的年假请在十二月三十一日前休完。</p>", subtype="html")
    mail.add_attachment("姓名,剩余年假\n张三,5\n李四,8\n".encode("gb18030"), maintype="text", subtype="csv",
                        filename="年假余额.csv")
    mail.add_attachment("# 申请流程\n\n请提前三天在系统中申请。", subtype="markdown", filename="流程.md")
    mail.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(64), maintype="image", subtype="png", filename="logo.png")
    return mail.as_bytes()


def only(sections: list[Section], heading: str) -> list[Section]:
    return [s for s in sections if s.heading == heading]


# ------------------------------------------------------------------- parsing
def test_supported_types_are_listed_in_the_refusal():
    assert {".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".htm", ".eml", ".md", ".txt"} <= SUPPORTED


def test_pptx_slide_numbers_titles_and_table_rows():
    sections = parse_bytes(make_pptx(notes="Exceptions need the CFO's approval."), "deck.pptx")
    first = only(sections, "年假制度")
    assert [s.page for s in first] == [1]
    assert "员工每年享有十五天带薪年假。\n未休年假可顺延至次年三月。" in first[0].text
    second = only(sections, "Travel limits")
    assert {s.page for s in second} == {2}
    table = next(s for s in second if "|" in s.text)
    # the table stays one block, under the slide title, header first
    assert table.text == "Travel limits\nCity | Hotel per night | Meals\n北京 | 800 | 150\nShanghai | 750 | 140"
    assert any("Notes: Exceptions need the CFO's approval." in s.text for s in second)


def test_xlsx_rows_read_alone_and_stay_with_title_and_sheet():
    sections = parse_bytes(make_xlsx(), "标准.xlsx")
    travel = only(sections, "差旅标准")
    assert len(travel) == 1
    assert travel[0].text == (
        "差旅标准 / 2024年差旅住宿标准（第 4–6 行）\n"
        "城市: 北京 | 住宿上限（元/晚）: 800 | 生效日期: 2024-05-01\n"
        "城市: 上海 | 住宿上限（元/晚）: 790 | 生效日期: 2024-05-01\n"
        "城市: 深圳 | 住宿上限（元/晚）: 780 | 生效日期: 2024-05-01"
    )
    assert "\n\n" not in travel[0].text  # the chunker splits at blank lines
    assert only(sections, "Staff")[0].text == "Staff (row 2)\nName: Ann Lee | Department: IT | Days left: 4"


def test_large_sheet_splits_into_blocks_that_each_repeat_the_title():
    sections = parse_bytes(make_xlsx(rows=200), "标准.xlsx")
    travel = only(sections, "差旅标准")
    assert len(travel) > 5
    rows = [line for s in travel for line in s.text.split("\n")[1:]]
    assert len(rows) == 200 and len(set(rows)) == 200  # every row once, in order
    for block in travel:
        assert block.text.startswith("差旅标准 / 2024年差旅住宿标准（第 ")
        assert count_tokens(block.text) <= 220  # one chunk per block at the default budget
    assert "（第 4–" in travel[0].text and "–203 行）" in travel[-1].text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_encodings_and_delimiters(encoding, delimiter):
    text = "\n".join(delimiter.join(r) for r in [["姓名", "部门", "年假天数"], ["张三", "研发部", "15"],
                                                 ["李四", "财务部", "12"]]) + "\n"
    sections = parse_bytes(text.encode(encoding), "员工.csv")
    assert sections == [Section(
        "员工.csv（第 2–3 行）\n姓名: 张三 | 部门: 研发部 | 年假天数: 15\n姓名: 李四 | 部门: 财务部 | 年假天数: 12",
        None, "员工.csv",
    )]


def test_csv_quoted_cells_and_no_header():
    text = '2024-01-05,"Taxi, airport",120\n2024-01-06,Hotel,800\n'
    sections = parse_bytes(text.encode(), "expenses.csv")
    assert sections[0].text == "expenses.csv (rows 1–2)\n2024-01-05 | Taxi, airport | 120\n2024-01-06 | Hotel | 800"


@pytest.mark.parametrize("charset", ["utf-8", "gb2312", "gbk"])
def test_html_sections_at_headings_without_script_style_nav(charset):
    sections = parse_bytes(make_html(charset), "手册.html")
    text = "\n".join(s.text for s in sections)
    assert "脚本内容" not in text and "color" not in text and "首页" not in text
    assert sections[0] == Section("本手册适用于全体员工，自发布之日起生效。", None, "员工手册")
    assert only(sections, "报销制度")[0].text == "报销制度\n出差住宿须按标准报销。"
    assert only(sections, "报销制度")[1].text == "住宿标准\n城市 | 金额\n北京 | 800"
    assert only(sections, "Remote work")[0].text == "Remote work\nUp to two days a week.\nAsk your manager first."


def test_html_charset_detected_without_meta():
    page = "<html><body><h2>考勤</h2><p>每天九点上班。</p></body></html>".encode("gb18030")
    assert parse_bytes(page, "page.htm") == [Section("考勤\n每天九点上班。", None, "考勤")]


def test_eml_headers_body_and_text_attachments():
    sections = parse_bytes(make_eml(), "mail.eml")
    mail = sections[0]
    assert mail.heading == "关于2024年年假安排"
    assert mail.text.startswith("From: 张三 <zhang@example.com>\nTo: hr@example.com\nDate: Mon, 06 May 2024")
    assert "Subject: 关于2024年年假安排" in mail.text
    assert "各位同事：\n今年的年假请在十二月三十一日前休完。" in mail.text
    assert "HTML 版本" not in mail.text  # text/plain is preferred
    assert only(sections, "attachment: 年假余额.csv")[0].text == (
        "年假余额.csv（第 2–3 行）\n姓名: 张三 | 剩余年假: 5\n姓名: 李四 | 剩余年假: 8"
    )
    assert "请提前三天在系统中申请。" in only(sections, "attachment: 流程.md")[0].text
    assert not only(sections, "attachment: logo.png")  # binary attachments are skipped


def test_eml_html_only_body_becomes_text():
    mail = EmailMessage()
    mail["From"] = "it@example.com"
    mail["Subject"] = "VPN"
    mail.set_content("<html><body><h1>VPN 使用说明</h1><p>先安装客户端。</p><script>track()</script></body></html>",
                     subtype="html")
    sections = parse_bytes(mail.as_bytes(), "vpn.eml")
    assert sections == [Section("From: it@example.com\nSubject: VPN\n\nVPN 使用说明\n先安装客户端。", None, "VPN")]


def test_pdf_with_owner_password_only_is_read():
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(["考勤制度\n每天九点上班。"])))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    sections = parse_bytes(buf.getvalue(), "locked.pdf")
    assert sections[0].page == 1 and "每天九点上班" in sections[0].text


# ---------------------------------------------------------------- end to end
E2E = [  # file, builder, query, expected page, heading, and a passage the cited chunk must hold
    ("手册.pdf", lambda: make_pdf(["封面", "年假制度\n员工每年享有十五天带薪年假。"]), "带薪年假", 2, "年假制度",
     "员工每年享有十五天带薪年假。"),
    ("安全.docx", make_docx, "密码更换", None, "信息安全", "密码至少十二位，每九十天更换一次。"),
    ("deck.pptx", make_pptx, "Shanghai hotel per night", 2, "Travel limits",
     "Travel limits\nCity | Hotel per night | Meals\n北京 | 800 | 150\nShanghai | 750 | 140"),
    ("标准.xlsx", make_xlsx, "深圳住宿上限", None, "差旅标准",
     "差旅标准 / 2024年差旅住宿标准（第 4–6 行）\n城市: 北京"),
    ("员工.csv", lambda: "姓名,部门,年假天数\n张三,研发部,15\n".encode("gb18030"), "张三 年假天数", None, "员工.csv",
     "员工.csv（第 2 行）\n姓名: 张三 | 部门: 研发部 | 年假天数: 15"),
    ("手册.html", make_html, "出差住宿报销", None, "报销制度", "报销制度\n出差住宿须按标准报销。"),
    ("mail.eml", make_eml, "年假余额 李四", None, "attachment: 年假余额.csv", "姓名: 李四 | 剩余年假: 8"),
]


@pytest.mark.parametrize("name,build,query,page,heading,passage", E2E, ids=[e[0] for e in E2E])
def test_ingest_and_search_each_format(services, tmp_path, name, build, query, page, heading, passage):
    path = tmp_path / name
    path.write_bytes(build())
    [result] = services.ingestor.ingest_paths([path], "docs", LOCAL_ADMIN)
    assert result.status == "added", result.error
    hits = services.searcher.search(query, LOCAL_ADMIN, k=3)
    top = next(h.chunk for h in hits if h.chunk.heading == heading)
    assert (top.file_name, top.page, top.file_type) == (name, page, name.rsplit(".", 1)[1])
    assert passage in top.text


def test_xlsx_declaring_whole_columns_is_not_padded_to_16384_cells(monkeypatch):
    """Regression: read-only openpyxl trusts the declared dimension and padded every row to 16,384 cells
    (about 40x slower; a 100k-row sheet ran into the parse timeout)."""
    import re
    import zipfile

    import zhiku.ingest.parsers

    src = zipfile.ZipFile(io.BytesIO(make_xlsx(rows=3000)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:XFD1048576"', body)
            dst.writestr(info, body)
    cells = []
    real_cell = zhiku.ingest.parsers._cell
    monkeypatch.setattr(zhiku.ingest.parsers, "_cell", lambda value: cells.append(1) or real_cell(value))
    sections = parse_bytes(out.getvalue(), "wide.xlsx")
    assert sum(s.text.count("\n") for s in only(sections, "差旅标准")) == 3000
    assert len(cells) < 20_000  # 3 columns per row, not 16,384
