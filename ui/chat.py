"""The chat view: saved conversations, streamed answers with a stop button, citations with page previews,
copy and feedback on every answer."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import streamlit as st

from zhiku.core.errors import NotFound, ZhikuError
from zhiku.retrieval.types import User
from zhiku.services import Services
from zhiku.store.conversations import Conversation, Message
from zhiku.ui import safe
from zhiku.ui.i18n import t
from zhiku.ui.sidebar import enqueue

log = logging.getLogger(__name__)

# an extractive answer is ready at once; shown a sentence at a time it reads like the written ones
_SENTENCE_END = re.compile(r"(?<=[。！？；.!?;])\s*|\n")
TYPE_PAUSE = 0.03
STREAMING = "streaming"  # an answer being written; found so by a later run, it was stopped or cut off
SAVE_EVERY = 0.5


def _readable_collections(services: Services, user: User) -> list[str]:
    if user.readable is None:
        return sorted(c.name for c in services.store.collections())
    return sorted(user.readable)


def _citation_label(c: dict) -> str:
    parts = [f"[{c['n']}] {c['file_name']}"]
    if c.get("page") is not None:
        parts.append(t("page", page=c["page"]))
    if c.get("heading"):
        parts.append(c["heading"])
    return safe.plain(" · ".join(parts))


@st.dialog(" ", width="large")
def _preview(services: Services, user: User, citation: dict) -> None:
    """The cited page as an image with the passage highlighted; the passage's section for other formats."""
    st.markdown(f"**{_citation_label(citation)}**")
    try:
        png = services.ingestor.preview(citation["doc_id"], citation.get("page") or 1, user,
                                        highlight=citation.get("quote") or citation.get("text"))
    except ZhikuError as e:
        st.warning(t("no_preview", error=safe.plain(e)))
        png = None
    if png is not None:
        st.image(png, width="stretch")
        return
    st.caption(t("section"))
    st.markdown(safe.passage_html(citation["text"], citation.get("quote", "")), unsafe_allow_html=True)


def render_citations(services: Services, user: User, citations: list[dict], key: str) -> None:
    """Numbered sources: file, page, heading and the passage with the answering words marked."""
    if not citations:
        return
    st.caption(t("sources"))
    for c in citations:
        with st.expander(_citation_label(c)):
            st.markdown(safe.passage_html(c["text"], c.get("quote", "")), unsafe_allow_html=True)
            cols = st.columns([1, 1, 3])
            if cols[0].button(t("view_page"), key=f"{key}-view-{c['n']}", icon=":material/zoom_in:"):
                _preview(services, user, c)
            # the route checks the session and the collection again; the URL is not shown as text
            cols[1].link_button(t("download"), f"/files/{c['doc_id']}", icon=":material/download:")


def _actions(services: Services, user: User, message: Message) -> None:
    """Copy and thumbs up/down with an optional comment, stored with the answer."""
    cols = st.columns([2, 2, 7])
    with cols[0].popover(t("copy"), icon=":material/content_copy:"):
        st.caption(t("copy.help"))
        st.code(message.content, language=None, wrap_lines=True)
    with cols[1]:
        default = None if message.rating is None else (1 if message.rating > 0 else 0)
        picked = st.feedback("thumbs", key=f"fb-{message.id}", default=default)
    if picked is None:
        return
    rating = 1 if picked == 1 else -1
    if rating != message.rating:
        services.store.set_feedback(message.id, user, rating, message.comment)
        message.rating = rating
    with cols[2]:
        with st.form(f"fb-form-{message.id}", border=False, clear_on_submit=False):
            inner = st.columns([5, 1])
            comment = inner[0].text_input(t("feedback.comment"), value=message.comment or "",
                                          label_visibility="collapsed", placeholder=t("feedback.comment"))
            if inner[1].form_submit_button(t("feedback.send")):
                services.store.set_feedback(message.id, user, rating, comment.strip() or None)
                st.toast(t("feedback.thanks"))


def _show(services: Services, user: User, message: Message) -> None:
    with st.chat_message(message.role):
        safe.show_markdown(message.content)
        if message.notice:
            st.caption(":material/warning: " + safe.plain(message.notice))
        if message.role == "assistant":
            render_citations(services, user, message.citations, key=f"m{message.id}")
            _actions(services, user, message)


def _first_run(services: Services, user: User, sample_dir: Path) -> None:
    """What zhiku does and how to start, for a knowledge base with nothing the user may read."""
    st.markdown(t("welcome"))
    st.markdown(t("first_run"))
    st.markdown(t("first_run.steps"))
    default = services.settings.default_collection
    may_load = sample_dir.is_dir() and user.can_write(default) and (
        user.is_admin or services.store.collection(default) is not None)
    st.info(t("empty_kb") if user.is_admin or user.writable else t("empty_kb.member"))
    if may_load and st.button(t("load_sample"), type="primary"):
        files = sorted(p for p in sample_dir.iterdir() if p.is_file())
        enqueue(services, user, [(p.name, p.read_bytes()) for p in files], default)
        st.rerun()


def _conversation(services: Services, user: User) -> Conversation | None:
    conv_id = st.query_params.get("c")
    if not conv_id:
        return None
    try:
        return services.store.conversation(conv_id, user)
    except NotFound:
        st.query_params.pop("c", None)  # deleted, or another user's link
        return None


def _header(services: Services, user: User, conv: Conversation | None, readable: list[str]) -> list[str] | None:
    """The conversation's title with rename and delete, and the collections it searches."""
    if conv is not None:
        cols = st.columns([6, 1])
        cols[0].markdown(f"#### {safe.plain(conv.title or t('untitled'))}")
        with cols[1].popover("⋯", help=t("chat_options")):
            title = st.text_input(t("title_label"), value=conv.title, key=f"title-{conv.id}")
            if st.button(t("rename"), key=f"rename-{conv.id}"):
                services.store.rename_conversation(conv.id, user, title)
                st.rerun()
            st.divider()
            st.caption(t("delete_chat_confirm", title=safe.plain(conv.title or t("untitled"))))
            if st.button(t("delete"), key=f"delete-{conv.id}", type="primary"):
                services.store.delete_conversation(conv.id, user)
                st.query_params.pop("c", None)
                st.rerun()
    if len(readable) <= 1:
        return None
    chosen = (conv.collections if conv is not None else None) or readable
    picked = st.multiselect(t("search_in"), readable, default=[c for c in chosen if c in readable],
                            format_func=safe.plain, help=t("search_in.help"),
                            key=f"scope-{conv.id if conv else 'new'}")
    scope = None if not picked or set(picked) == set(readable) else sorted(picked)
    if conv is not None and scope != conv.collections:
        services.store.set_conversation_collections(conv.id, user, scope)
    return scope


def _type_out(shown: str, text: str, placeholder) -> None:
    """Show a ready answer a sentence at a time after what is shown already."""
    pieces = [p for p in re.split(f"({_SENTENCE_END.pattern})", text) if p]
    for piece in pieces:
        shown += piece
        if piece.strip():
            safe.show_markdown(shown + "▌", placeholder)
            time.sleep(TYPE_PAUSE)


def _answer(services: Services, user: User, conv: Conversation, question: str, history: list[dict],
            scope: list[str] | None) -> None:
    """Stream the answer of question into the page and the store.

    The text so far is saved as it arrives (at most every SAVE_EVERY seconds): Stop starts a new run of the page
    at once, while this one ends at its next Streamlit call, and the new run shows what was saved.
    """
    stopped = t("stopped")  # no Streamlit call may run once a stop is under way
    saved = services.store.add_message(conv.id, user, "assistant", "", notice=stopped, mode=STREAMING)
    with st.chat_message("assistant"):
        stop = st.empty()
        stop.button(t("stop"), key="stop", icon=":material/stop_circle:")  # a click starts a new run
        placeholder = st.empty()
        shown, answer, last_save = "", None, time.monotonic()
        try:
            for event in services.answers.stream(question, user, history, scope):
                if event.kind == "delta":
                    if services.answers.mode == "extractive":
                        _type_out(shown, event.text, placeholder)
                    shown += event.text
                    if time.monotonic() - last_save > SAVE_EVERY:
                        services.store.update_message(saved.id, user, shown, notice=stopped, mode=STREAMING)
                        last_save = time.monotonic()
                    safe.show_markdown(shown + "▌", placeholder)
                elif event.kind == "reset":
                    shown = ""
                elif event.kind == "done":
                    answer = event.answer
        except Exception as e:  # the page says what went wrong; the conversation keeps it with the question
            problem = str(e) if isinstance(e, ZhikuError) else t("error.unexpected", error=type(e).__name__)
            services.store.update_message(saved.id, user, shown, notice=problem, mode="failed")
            raise
        except BaseException as e:  # stopped: keep the part that was shown
            log.info("answer stopped (%s) after %d characters", type(e).__name__, len(shown))
            services.store.update_message(saved.id, user, shown, notice=stopped, mode="stopped")
            raise
        stop.empty()
        safe.show_markdown(answer.text, placeholder)
        services.store.update_message(saved.id, user, answer.text, citations=answer.citations, notice=answer.notice,
                                      mode=answer.mode if answer.answerable else "refused", query=answer.query)
    st.rerun()  # draw it as a saved message, with its citations, copy and feedback


def render(services: Services, user: User, sample_dir: Path) -> None:
    """Draw the conversation and handle a new question."""
    conv = _conversation(services, user)
    readable = _readable_collections(services, user)
    empty = services.ingestor.stats(user).documents == 0
    if empty and conv is None:
        _first_run(services, user, sample_dir)
    scope = _header(services, user, conv, readable)
    messages = services.store.messages(conv.id, user) if conv is not None else []
    if conv is None and not empty:
        st.markdown(t("welcome"))
        st.caption(t("welcome.caption"))
    for message in messages:
        _show(services, user, message)

    if question := st.chat_input(t("placeholder")):
        if conv is None:
            conv = services.store.create_conversation(user, collections=scope)
            st.query_params["c"] = conv.id
        history = [{"role": m.role, "content": m.content} for m in messages
                   if m.mode not in ("stopped", "failed", STREAMING)]
        services.store.add_message(conv.id, user, "user", question)
        with st.chat_message("user"):
            safe.show_markdown(question)
        if empty:
            services.store.add_message(conv.id, user, "assistant",
                                       t("empty_kb") if user.is_admin or user.writable else t("empty_kb.member"),
                                       mode="refused")
            st.rerun()
        _answer(services, user, conv, question, history, scope)
