"""The chat page: ask, watch the answer arrive, open the cited passages."""

from __future__ import annotations

import streamlit as st

from zhiku.ui import safe
from zhiku.ui.sidebar import current_user
from zhiku.services import Services

PLACEHOLDER = "Ask a question · 用中文或英文提问"


def render_citations(citations: list[dict], key: str) -> None:
    """One expander per citation: file, page, heading and the passage with the quote marked."""
    if not citations:
        return
    st.caption("Sources · 来源")
    for c in citations:
        page = f" · p.{c['page']}" if c.get("page") is not None else ""
        with st.expander(safe.plain(f"[{c['n']}] {c['file_name']}{page}")):
            if c.get("heading"):
                st.caption(safe.plain(c["heading"]))
            st.markdown(safe.passage_html(c["text"], c.get("quote", "")), unsafe_allow_html=True)
            st.caption(safe.plain(f"{c.get('collection', '')} · doc {c['doc_id'][:12]}"))


def _show(message: dict, index: int) -> None:
    with st.chat_message(message["role"]):
        safe.show_markdown(message["content"])
        if message.get("notice"):
            st.caption("⚠️ " + safe.plain(message["notice"]))
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
                    safe.show_markdown(shown + "▌", placeholder)
                elif event.kind == "reset":
                    shown = ""
                elif event.kind == "done":
                    answer = event.answer
            safe.show_markdown(answer.text, placeholder)
            if answer.notice:
                st.caption("⚠️ " + safe.plain(answer.notice))
            citations = [c.to_dict() for c in answer.citations]
            render_citations(citations, key=f"m{len(messages)}")
        messages.append(
            {"role": "assistant", "content": answer.text, "citations": citations, "notice": answer.notice}
        )
