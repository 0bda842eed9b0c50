"""Sidebar: answer mode, documents, uploads and the sample handbook."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.services import Services
from zhiku.ui import safe


def current_user():
    """The acting user (accounts come later; the local user is an admin)."""
    return st.session_state.get("user", LOCAL_ADMIN)


def _mode_panel(services: Services) -> None:
    answers = services.answers
    if answers.mode == "ollama":
        st.success("Answers by Ollama · " + safe.plain(answers.llm.model))
    else:
        st.info("Extractive answers: quoted passages with citations. Set OLLAMA_HOST for written answers.")
        if answers.llm_problem:
            st.warning(safe.plain(answers.llm_problem))


def _ingest(services: Services, items: list[tuple[str, bytes]], collection: str) -> None:
    """Index uploaded files in one run (stages overlap) with per-file progress and a result line each."""
    with st.status(f"Indexing {len(items)} file(s)…", expanded=True) as status:
        bar = st.progress(0.0)

        def on_progress(p):
            within = p.done / p.total if p.total else 0.0
            bar.progress(min((p.file_index + within) / max(p.file_count, 1), 1.0), text=safe.plain(f"{p.file_name}: {p.stage}"))

        results = services.ingestor.ingest_many(items, collection, current_user(), on_progress)
        for result in results:
            if result.status == "failed":
                st.error(safe.plain(f"{result.file_name}: {result.error}"))
            else:
                st.markdown("✅ " + safe.plain(f"{result.file_name}: {result.status}, {result.chunks} chunks"))
        failed = sum(r.status == "failed" for r in results)
        bar.progress(1.0)
        status.update(label=f"Indexed {len(items) - failed} of {len(items)} file(s)",
                      state="error" if failed else "complete")


def render(services: Services, sample_dir: Path) -> None:
    """Draw the sidebar."""
    user = current_user()
    with st.sidebar:
        st.title("知库 zhiku")
        _mode_panel(services)
        docs = services.ingestor.documents(user)
        st.caption(f"{len(docs)} documents · index: {services.index.backend}")

        if not docs and sample_dir.is_dir():
            st.write("The knowledge base is empty.")
            if st.button("Load the sample handbook", type="primary", use_container_width=True):
                files = sorted(p for p in sample_dir.iterdir() if p.is_file())
                _ingest(services, [(p.name, p.read_bytes()) for p in files], services.settings.default_collection)
                st.rerun()

        with st.expander("Upload documents", expanded=not docs):
            collection = st.text_input("Collection", services.settings.default_collection)
            uploads = st.file_uploader(
                "PDF, Word, PowerPoint, Excel, CSV, HTML, e-mail, Markdown or text", accept_multiple_files=True, key=st.session_state.get("upload_key", "u0")
            )
            if uploads and st.button("Index these files", use_container_width=True):
                _ingest(services, [(u.name, u.getvalue()) for u in uploads], collection)
                st.session_state["upload_key"] = f"u{len(st.session_state.get('upload_key', 'u0')) + 1}"
                st.rerun()

        if docs:
            with st.expander(f"Documents ({len(docs)})"):
                for doc in docs:
                    cols = st.columns([5, 1])
                    cols[0].markdown(f"**{safe.plain(doc.file_name)}**  \n{safe.plain(doc.collection)} · {doc.chunks} chunks")
                    if user.is_admin and cols[1].button("🗑", key=f"del-{doc.collection}-{doc.doc_id}",
                                                        help="Delete " + safe.plain(doc.file_name)):
                        services.ingestor.delete(doc.doc_id, user, doc.collection)
                        st.rerun()
        if st.session_state.get("messages") and st.button("New conversation", use_container_width=True):
            st.session_state["messages"] = []
            st.rerun()
