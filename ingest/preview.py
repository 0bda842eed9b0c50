"""Page previews: a PDF page rendered as a PNG, with a cited passage highlighted where the text layer allows."""

from __future__ import annotations

import ctypes
import io
import logging
import re
import threading
import unicodedata
from pathlib import Path

from zhiku.core.errors import ZhikuError

log = logging.getLogger(__name__)

HIGHLIGHT = (255, 221, 0, 110)  # translucent yellow: the text stays readable beneath it
MIN_PIECE = 4  # shorter pieces of a passage match too many places on a page to mean anything
MAX_WIDTH = 3000
# a passage is searched sentence by sentence and line by line: extraction may have joined or split lines
# differently from the PDF's own text layer, and a sentence cut by a page break is still partly found
_PIECES = re.compile(r"(?<=[。！？；!?;])|(?<=[.:])(?=\s)|\n")
# pdfium is not thread-safe: the web app renders previews from several sessions at once
_PDFIUM = threading.Lock()


def _normalised(chars: list[tuple[int, str]]) -> tuple[str, list[int]]:
    """Text without whitespace, in NFKC form (full-width digits, ligatures), with each character's source index."""
    out: list[str] = []
    where: list[int] = []
    for index, ch in chars:
        for c in unicodedata.normalize("NFKC", ch):
            if not c.isspace():
                out.append(c.casefold() if c.isascii() else c)
                where.append(index)
    return "".join(out), where


def _pieces(highlight: str) -> list[str]:
    """The highlight's sentences and lines, normalised like the page text, shortest ones left out."""
    pieces = []
    for part in _PIECES.split(highlight):
        text, _ = _normalised(list(enumerate(part)))
        if len(text) >= MIN_PIECE:
            pieces.append(text)
    return pieces


def _match_indexes(page_text: str, where: list[int], pieces: list[str]) -> set[int]:
    """Character indexes of the page covered by the pieces found in its text."""
    found: set[int] = set()
    for piece in pieces:
        start = page_text.find(piece)
        while start != -1:
            found.update(where[start:start + len(piece)])
            start = page_text.find(piece, start + len(piece))
    return found


def _boxes(pdfium, page, textpage, indexes: set[int], size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Device-pixel rectangles over the characters, merged along each line."""
    raw = pdfium.raw
    width, height = size
    rects: list[list[float]] = []
    for index in sorted(indexes):
        left, bottom, right, top = textpage.get_charbox(index)
        if right <= left or top <= bottom:
            continue  # a generated space or line break has no box
        corners = []
        for x, y in ((left, top), (right, bottom)):
            dx, dy = ctypes.c_int(), ctypes.c_int()
            # the page's rotation and crop box offset are applied by pdfium, as in the rendering
            raw.FPDF_PageToDevice(page.raw, 0, 0, width, height, 0, x, y, ctypes.byref(dx), ctypes.byref(dy))
            corners.append((dx.value, dy.value))
        x0, x1 = sorted((corners[0][0], corners[1][0]))
        y0, y1 = sorted((corners[0][1], corners[1][1]))
        last = rects[-1] if rects else None
        # the next character of the same line (vertical overlap, a small gap) widens the last rectangle
        if last and min(last[3], y1) - max(last[1], y0) > 0.5 * (y1 - y0) and -2 <= x0 - last[2] <= (y1 - y0):
            last[0], last[1], last[2], last[3] = min(last[0], x0), min(last[1], y0), max(last[2], x1), max(last[3], y1)
        else:
            rects.append([x0, y0, x1, y1])
    pad = 2
    return [(int(a) - pad, int(b) - pad, int(c) + pad, int(d) + pad) for a, b, c, d in rects]


def page_png(pdf_path: Path, page: int, highlight: str | None = None, width: int = 900) -> bytes:
    """The 1-based page of a PDF as a PNG width pixels wide, the highlight text's characters marked in yellow.

    Args:
        pdf_path: the PDF file.
        page: the page number, from 1.
        highlight: a passage (as extracted when indexing) to mark; what the text layer does not hold is skipped.
        width: the image width in pixels.

    Returns:
        The PNG's bytes.
    """
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    if not 100 <= width <= MAX_WIDTH:
        raise ZhikuError(f"a preview is 100 to {MAX_WIDTH} pixels wide, not {width}: ask for another width")
    name = Path(pdf_path).name
    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(str(pdf_path))
        except pdfium.PdfiumError as e:
            raise ZhikuError(f"cannot show a page of {name}: it is not a readable PDF ({e}); "
                             "download the original instead") from e
        try:
            count = len(pdf)
            if not 1 <= page <= count:
                raise ZhikuError(f"{name} has {count} page{'s' if count != 1 else ''}, there is no page {page}: "
                                 f"ask for a page from 1 to {count}")
            pdf_page = pdf[page - 1]
            try:
                scale = width / pdf_page.get_width()
                image = pdf_page.render(scale=scale).to_pil().convert("RGBA")
                boxes = []
                if highlight and highlight.strip():
                    textpage = pdf_page.get_textpage()
                    try:
                        chars = [(i, chr(pdfium.raw.FPDFText_GetUnicode(textpage.raw, i)))
                                 for i in range(textpage.count_chars())]
                        page_text, where = _normalised(chars)
                        indexes = _match_indexes(page_text, where, _pieces(highlight))
                        boxes = _boxes(pdfium, pdf_page, textpage, indexes, image.size)
                    finally:
                        textpage.close()
                    if not boxes:
                        log.info("the passage was not found in the text layer of %s page %d", name, page)
            finally:
                pdf_page.close()
        except pdfium.PdfiumError as e:
            raise ZhikuError(f"cannot render page {page} of {name} ({e}): download the original instead") from e
        finally:
            pdf.close()
    if boxes:
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for box in boxes:
            draw.rectangle(box, fill=HIGHLIGHT)
        image = Image.alpha_composite(image, overlay)
    if image.width != width:  # the renderer rounds the page size; the caller asked for an exact width
        image = image.resize((width, max(1, round(image.height * width / image.width))))
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=False)
    return out.getvalue()
