"""Untrusted text (documents, model replies, file names, error messages) as Markdown or HTML that loads nothing.

Streamlit renders Markdown in st.markdown, st.caption, alerts, expander and widget labels, tooltips and
progress text, and the browser fetches every image it finds there by itself: one `![x](https://…)` in a
document or a prompt-injected reply sends the conversation to any server. Every piece of text that did not
come from this code goes through one of these functions before it reaches Streamlit.
"""

from __future__ import annotations

import html
import re
from typing import Any

import streamlit as st
from markdown_it import MarkdownIt

# every ASCII punctuation character may be backslash-escaped in CommonMark, and only these start markup
_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")
# GitHub-flavoured Markdown turns bare URLs, www. names and e-mail addresses into links even when every
# character is escaped (remark-gfm finds them in the parsed text): an invisible word joiner breaks them
_AUTOLINK_START = re.compile(r"(?<=://)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def plain(value: Any) -> str:
    """Markdown that shows value literally, on one line: for labels, captions, alerts, tooltips and file names."""
    text = " ".join(str(value).split())  # CommonMark line endings (\r too) would start new blocks
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK_START.sub(_WORD_JOINER, text))


def _render_image(self, tokens, idx, options, env) -> str:
    """An image becomes its alt text: the browser must not fetch its URL."""
    return html.escape(self.renderInlineAsText(tokens[idx].children or [], options, env))


def _render_link_open(self, tokens, idx, options, env) -> str:
    """A link shows its text, not an <a>: remember the target to print after it."""
    token = tokens[idx]
    hidden = token.markup not in ("autolink", "linkify")  # an autolink's text is its URL already
    env.setdefault("zhiku_links", []).append(token.attrGet("href") if hidden else None)
    return ""


def _render_link_close(self, tokens, idx, options, env) -> str:
    """The target of a link as text after its label, so the reader still sees where it points."""
    stack = env.get("zhiku_links")
    href = stack.pop() if stack else None
    return f" ({html.escape(_MARKDOWN.normalizeLinkText(href))})" if href else ""


# html=False: raw HTML in the source is shown as text; no linkify: bare URLs stay text
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MARKDOWN.enable(["table", "strikethrough"])
_MARKDOWN.add_render_rule("image", _render_image)
_MARKDOWN.add_render_rule("link_open", _render_link_open)
_MARKDOWN.add_render_rule("link_close", _render_link_close)


def _one_block(css_class: str, inner_html: str) -> str:
    """HTML on a single line, so Streamlit's Markdown parser takes all of it as one raw HTML block."""
    # a blank line would end the HTML block and Markdown parsing would resume: a `![x](url)` after it
    # would be an image again; "&#10;" is the same line break for the browser (and keeps <pre> intact)
    inner = inner_html.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "&#10;")
    return f'<div class="{css_class}">{inner}</div>'


def markdown_html(text: str) -> str:
    """Untrusted Markdown (an answer, a question) as HTML for st.markdown(..., unsafe_allow_html=True)."""
    # emphasis, lists, quotes, tables and code keep their form; images become their alt text, links their
    # text and target as plain text, raw HTML shows as text
    return _one_block("zhiku-md", _MARKDOWN.render(text or "", {}))


def passage_html(text: str, quote: str = "") -> str:
    """A passage as HTML (for st.markdown(..., unsafe_allow_html=True)) with each line of quote marked."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    marks: list[tuple[int, int]] = []
    for part in filter(None, (q.strip() for q in (quote or "").splitlines())):
        start = text.find(part)
        if start >= 0 and all(start >= e or start + len(part) <= s for s, e in marks):
            marks.append((start, start + len(part)))
    pieces, at = [], 0
    for start, end in sorted(marks):
        pieces += [html.escape(text[at:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        at = end
    pieces.append(html.escape(text[at:]))
    return _one_block("zhiku-passage", "".join(pieces).replace("\n", "<br>"))


def show_markdown(text: str, where: Any = None) -> None:
    """Render untrusted Markdown in where (a container or placeholder; default: the current one)."""
    (st if where is None else where).markdown(markdown_html(text), unsafe_allow_html=True)
