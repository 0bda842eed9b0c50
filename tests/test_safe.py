"""Untrusted text reaches Streamlit only as Markdown or HTML that can load nothing (zhiku.ui.safe)."""

from __future__ import annotations

import tomllib
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from zhiku.ui import safe

URL = "http://127.0.0.1:9/leak"
HOSTILE = [
    f"![x]({URL}-image)",
    f'<img src="{URL}-html">',
    f"![y][r]\n\n[r]: {URL}-reference",
    f"<{URL}-autolink>",
    f"{URL}-literal www.example.com/leak a@example.com",
    f"[click]({URL}-link)",
    f"text\r\r![x]({URL}-after-cr)",
    f"```\ncode\n\n![z]({URL}-after-blank)\n```",
    f'<div>\n\n<img src="{URL}-block">\n\n</div>',
    f"<style>@import url({URL}-css)</style><iframe src={URL}-frame></iframe>",
]
# what Streamlit's Markdown renderer does with st.markdown(..., unsafe_allow_html=True), in CommonMark terms
STREAMLIT_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
ALLOWED_TAGS = {"div", "p", "br", "strong", "em", "s", "del", "code", "pre", "blockquote", "ul", "ol", "li",
                "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "mark"}


class _Tags(HTMLParser):
    """The tags and attributes of an HTML fragment, and its text."""

    def __init__(self, fragment: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def _assert_inert(fragment: str) -> None:
    """Only formatting tags; no attribute but a class or a list start can name a URL."""
    for tag, attrs in _Tags(fragment).tags:
        assert tag in ALLOWED_TAGS, f"<{tag}> in {fragment!r}"
        assert set(attrs) <= {"class", "start", "style"} and "url" not in str(attrs.get("style", "")), (tag, attrs)


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_renders_as_its_own_text(text):
    rendered = STREAMLIT_MARKDOWN.render(safe.plain(text))
    _assert_inert(rendered)
    shown = _Tags(rendered).text.strip().replace("\u2060", "")
    assert shown == " ".join(text.split())


def test_plain_breaks_the_urls_github_markdown_would_link():
    out = safe.plain("see https://evil.example/x, www.evil.example or boss@evil.example")
    for start in ("https\\:\\/\\/", "www", "boss\\@"):
        assert start + "\u2060" in out


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_html_is_inert_and_markdown_leaves_it_alone(text):
    out = safe.markdown_html(text)
    assert "\n" not in out and "\r" not in out
    _assert_inert(out)
    # one raw HTML block: Streamlit's Markdown pass must hand it to the browser unchanged
    assert STREAMLIT_MARKDOWN.render(out).strip() == out


def test_markdown_html_keeps_formatting_and_shows_links_and_images_as_text():
    out = safe.markdown_html(
        f"**Extractive answer**\n\n> 满 10 年不满 20 年的，年假 10 天 [1]\n\n- one\n- two\n\n"
        f"See [the portal]({URL}) and ![the chart]({URL}.png) <b>x</b>"
    )
    tags = [tag for tag, _ in _Tags(out).tags]
    assert {"strong", "blockquote", "ul", "li"} <= set(tags)
    text = _Tags(out).text
    assert f"the portal ({URL})" in text and "the chart" in text and "<b>x</b>" in text
    assert "[1]" in text and URL + ".png" not in text


def test_passage_html_escapes_and_marks_quotes():
    out = safe.passage_html("a <b> & c\r\n\r\n![x](http://e/x) d", "& c\n![x](http://e/x)\nmissing")
    assert out == ('<div class="zhiku-passage">a &lt;b&gt; <mark>&amp; c</mark><br><br>'
                   "<mark>![x](http://e/x)</mark> d</div>")
    assert STREAMLIT_MARKDOWN.render(out).strip() == out


def _chat_with_hostile_text():
    """A stored conversation whose every field holds an image, raw HTML and links (AppTest script)."""
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.store import Message
    from zhiku.ui import chat

    payload = "![x](http://127.0.0.1:9/leak) <img src='http://127.0.0.1:9/leak'> <http://127.0.0.1:9/leak>"
    citation = {"n": 1, "doc_id": "d" * 32, "file_name": f"f {payload}.md", "page": 2, "text": f"T {payload}",
                "quote": payload, "heading": f"H {payload}", "collection": f"c {payload}"}
    # drawing saved messages reads nothing from the services (they are used when a button is clicked)
    chat._show(None, LOCAL_ADMIN, Message(1, "c", 1, "user", f"Q {payload}", [], None, None, None, 0.0))
    chat._show(None, LOCAL_ADMIN, Message(2, "c", 2, "assistant", f"A {payload}", [citation], f"N {payload}",
                                          "extractive", None, 0.0, 1, f"C {payload}"))


def test_chat_page_sends_streamlit_no_live_markdown():
    at = AppTest.from_function(_chat_with_hostile_text).run(timeout=120)  # imports the services
    assert not at.exception
    bodies = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.label for e in at.expander]
    assert len(bodies) >= 7 and sum("leak" in b for b in bodies) >= 5  # question, answer, notice, passage, label
    for body in bodies:
        _assert_inert(STREAMLIT_MARKDOWN.render(body))


def test_streamlit_config_matches_the_product():
    from zhiku.core.settings import Settings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["toolbarMode"] == "viewer"
    assert config["server"]["maxUploadSize"] == Settings.model_fields["max_file_mb"].default
    assert config["server"]["headless"] is True
