"""The chat page: ask, watch the answer arrive, open the cited passages."""

from __future__ import annotations

import html

import streamlit as st

from zhiku.ui.sidebar import current_user
from zhiku.services import Services

PLACEHOLDER = "Ask a question · 用中文或英文提问"


def _highlight(text: str, quote: str) -> str:
    """The passage as HTML with the quoted part marked."""
    safe = html.escape(text).replace("\n", "<br>")
    for part in filter(None, (q.strip() for q in quote.splitlines())):
        escaped = html.escape(part)
        if escaped and escaped in safe:
            safe = safe.replace(escaped, f"<mark>{escaped}</mark>", 1)
    return safe


def render_citations(citations: list[dict], key: str) -> None:
    """One expander per citation: file, page, heading and the passage with the quote marked."""
    if not citations:
        return
    st.caption("Sources · 来源")
    for c in citations:
        page = f" · p.{c['page']}" if c.get("page") is not None else ""
        with st.expander(f"[{c['n']}] {c['file_name']}{page}"):
            if c.get("heading"):
                st.caption(c["heading"])
            st.markdown(
                f"<div class='zhiku-passage'>{_highlight(c['text'], c.get('quote', ''))}</div>",
                unsafe_allow_html=True,
            )
            st.caption(f"{c.get('collection', '')} · doc {c['doc_id'][:12]}")


def _show(message: dict, index: int) -> None:
    with st.chat_message(message["role"]):
        st.markdown(message["content"])
        if message.get("notice"):
            st.caption(f"⚠️ {message['notice']}")
        render_citations(message.get("citations", []), key=f"m{index}")


def render(services: Services) -> None:
    """Draw the conversation and handle a new question."""
    st.markdown(
        "<style>.zhiku-passage{font-size:0.92rem;line-height:1.6} mark{background:#fff3a3}</style>",
        unsafe_allow_html=True,
    )
    if "messages" not in st.session_state:
        st.session_state["messages"] = []
    messages = st.session_state["messages"]
    if not messages:
        st.markdown("### 知库 · Ask the company knowledge base")
        st.caption("Answers cite the file, page and passage they come from. 回答会注明出处（文件、页码、段落）。")
    for i, message in enumerate(messages):
        _show(message, i)

    if question := st.chat_input(PLACEHOLDER):
        history = [{"role": m["role"], "content": m["content"]} for m in messages]
        messages.append({"role": "user", "content": question})
        _show(messages[-1], len(messages) - 1)
        with st.chat_message("assistant"):
            placeholder = st.empty()
            shown = ""
            answer = None
            for event in services.answers.stream(question, current_user(), history):
                if event.kind == "delta":
                    shown += event.text
                    placeholder.markdown(shown + "▌")
                elif event.kind == "reset":
                    shown = ""
                elif event.kind == "done":
                    answer = event.answer
            placeholder.markdown(answer.text)
            if answer.notice:
                st.caption(f"⚠️ {answer.notice}")
            citations = [c.to_dict() for c in answer.citations]
            render_citations(citations, key=f"m{len(messages)}")
        messages.append(
            {"role": "assistant", "content": answer.text, "citations": citations, "notice": answer.notice}
        )
