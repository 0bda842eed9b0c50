"""Page previews of cited PDFs: the page as a PNG with the passage highlighted, checked like a download."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from conftest import make_pdf
from zhiku.core.errors import NotFound, ZhikuError
from zhiku.ingest.preview import page_png
from zhiku.retrieval.types import LOCAL_ADMIN

PAGES = [
    "员工手册 Employee handbook\n第一章 总则\nThis handbook applies to every employee.",
    "第二章 年假\n员工累计工作已满 1 年不满 10 年的，年假 5 天。\nEmployees with ten to twenty years of service "
    "get ten days of annual leave.\n已满 20 年的，年假 15 天。",
    "第三章 报销\nTravel expenses are reimbursed within 30 days.",
]
PASSAGE = "员工累计工作已满1年不满10年的，年假5天。\nEmployees with ten to twenty years of service get ten days"


def _yellow(png: bytes, size: int | None = None) -> int:
    """How many pixels are highlighter yellow (the page itself is black text on white)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if size is not None:
        assert image.width == size
    return sum(1 for r, g, b in image.getdata() if r > 200 and g > 170 and b < 150)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """Services holding handbook.pdf (3 pages) and notes.md in collection hr, which only group hr reads."""
    from zhiku.core.settings import load_settings
    from zhiku.services import build_services

    root = tmp_path_factory.mktemp("preview")
    (root / "handbook.pdf").write_bytes(make_pdf(PAGES))
    (root / "notes.md").write_text("# Notes\n\nAnnual leave requests go to your manager.", encoding="utf-8")
    services = build_services(load_settings(data_dir=root / "data"))
    services.accounts.create_collection(LOCAL_ADMIN, "hr", read=["hr"], write=["hr"])
    services.accounts.add_user(LOCAL_ADMIN, "hanna", "hanna-password", groups=["hr"])
    services.accounts.add_user(LOCAL_ADMIN, "sam", "sam-password", groups=["staff"])
    results = services.ingestor.ingest_paths([root / "handbook.pdf", root / "notes.md"], "hr", LOCAL_ADMIN)
    assert [r.status for r in results] == ["added", "added"], results
    ids = {r.file_name: r.doc_id for r in results}
    yield services, ids, root
    services.close()


def test_a_page_renders_at_the_width_asked_and_the_passage_is_highlighted(kb):
    _, _, root = kb
    pdf = root / "handbook.pdf"
    plain = page_png(pdf, 2, width=640)
    assert plain.startswith(b"\x89PNG") and _yellow(plain, 640) == 0
    marked = page_png(pdf, 2, PASSAGE, width=640)
    # both lines of the passage (extraction joined and spaced them differently from the PDF) are marked
    assert _yellow(marked, 640) > 2000
    one_line = page_png(pdf, 2, "Employees with ten to twenty years of service", width=640)
    assert 500 < _yellow(one_line) < _yellow(marked)
    # a passage of another page is not on this one: nothing is marked, and that is not an error
    assert _yellow(page_png(pdf, 2, "Travel expenses are reimbursed within 30 days.", width=640)) == 0
    assert Image.open(io.BytesIO(page_png(pdf, 1))).width == 900


def test_a_page_out_of_range_or_an_unreadable_pdf_says_what_to_do(kb, tmp_path):
    _, _, root = kb
    for page in (0, 4):
        with pytest.raises(ZhikuError, match="handbook.pdf has 3 pages, there is no page .*from 1 to 3"):
            page_png(root / "handbook.pdf", page)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\nthis is not really a PDF")
    with pytest.raises(ZhikuError, match="broken.pdf: it is not a readable PDF .*download the original"):
        page_png(broken, 1)


def test_the_preview_of_a_cited_passage_is_checked_like_a_download(kb):
    services, ids, _ = kb
    hanna = services.accounts.acting_user("hanna")
    sam = services.accounts.acting_user("sam")
    # the passage exactly as the index holds it (pypdf's extraction), as a citation passes it on
    [hit] = [h for h in services.searcher.search("年假 5 天", hanna, k=5) if h.chunk.page == 2][:1]
    png = services.ingestor.preview(ids["handbook.pdf"], 2, hanna, hit.chunk.text, width=500)
    assert _yellow(png, 500) > 1000
    assert services.ingestor.preview(ids["notes.md"], 1, hanna) is None  # the UI shows the section instead
    for doc_id in (ids["handbook.pdf"], ids["notes.md"]):
        with pytest.raises(NotFound) as refused:
            services.ingestor.preview(doc_id, 1, sam)
        with pytest.raises(NotFound) as download:
            services.ingestor.open_original(doc_id, sam)
        assert str(refused.value) == str(download.value)
    with pytest.raises(ZhikuError, match="no page 9"):
        services.ingestor.preview(ids["handbook.pdf"], 9, hanna)
