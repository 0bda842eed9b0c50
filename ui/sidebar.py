"""Sidebar: answer mode, documents, uploads and the sample handbook."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from zhiku.core.errors import ZhikuError
from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.services import Services
from zhiku.store import new_id
from zhiku.ui import safe


def current_user():
    """The acting user, set by the sign-in check at the top of every run (ui/login.py)."""
    return st.session_state.get("user", LOCAL_ADMIN)


def _mode_panel(services: Services) -> None:
    answers = services.answers
    if answers.mode == "ollama":
        st.success("Answers by Ollama · " + safe.plain(answers.llm.model))
    else:
        st.info("Extractive answers: quoted passages with citations. Set OLLAMA_HOST for written answers.")
        if answers.llm_problem:
            st.warning(safe.plain(answers.llm_problem))


STAGE_ICONS = {"queued": "⏳", "parsing": "📄", "embedding": "🧮", "cleanup": "🧮", "indexed": "✅",
               "unchanged": "✅", "failed": "❌"}


def _enqueue(services: Services, items: list[tuple[str, bytes]], collection: str) -> None:
    """Queue uploaded files for the job worker and return at once; progress comes from the job rows."""
    user = current_user()
    batch = new_id()
    for name, data in items:
        services.ingestor.enqueue_upload(name, data, collection, user, batch)
    st.session_state.setdefault("batches", []).append(batch)


@st.fragment(run_every=1.0)
def _upload_progress(services: Services) -> None:
    """One row per uploaded file, fed by the job rows, so leaving or reloading the page cancels nothing."""
    batches = st.session_state.get("batches", [])
    jobs = [job for batch in batches for job in reversed(services.store.jobs(batch=batch, limit=1000))]
    if not jobs:
        return
    for job in jobs:
        name = (job.path or job.source or "").rsplit("/", 1)[-1]
        stage = job.stage if job.state != "done" else (job.result or job.stage)
        detail = f"{job.done}/{job.total}" if stage == "embedding" and job.total else ""
        if job.state == "failed":
            st.error(safe.plain(f"{name}: {job.error}"), icon="❌")
        else:
            st.markdown(f"{STAGE_ICONS.get(stage, '⏳')} " + safe.plain(f"{name}: {stage} {detail}".strip()))
    finished = all(job.finished for job in jobs)
    settled = [j.id for j in jobs if j.finished]
    if settled != st.session_state.get("settled_jobs", []):
        st.session_state["settled_jobs"] = settled
        if any(j.state == "done" for j in jobs if j.finished):
            st.rerun(scope="app")  # new documents: the documents list and counts outside this fragment too
    if finished and st.button("Dismiss", key="dismiss-uploads"):
        st.session_state["batches"] = []
        st.rerun()


def _upload_panel(services: Services, user, expanded: bool) -> None:
    """Uploads into a collection the user may write (admins name any collection; members pick one)."""
    writable = None if user.is_admin else sorted(user.writable or ())
    if writable == []:
        return  # a member who may write nowhere gets no uploader
    with st.expander("Upload documents", expanded=expanded):
        if writable is None:
            collection = st.text_input("Collection", services.settings.default_collection)
        else:
            collection = st.selectbox("Collection", writable, format_func=safe.plain)
        uploads = st.file_uploader(
            "PDF, Word, PowerPoint, Excel, CSV, HTML, e-mail, Markdown or text", accept_multiple_files=True, key=f"upload-{st.session_state.get('uploads', 0)}"
        )
        if uploads and st.button("Index these files", use_container_width=True):
            try:
                _enqueue(services, [(u.name, u.getvalue()) for u in uploads], collection)
            except ZhikuError as e:
                st.error(safe.plain(e))
            # a new key is the only way to clear a file_uploader: one per upload, not one per session
            st.session_state["uploads"] = st.session_state.get("uploads", 0) + 1
            st.rerun()


def render(services: Services, sample_dir: Path) -> None:
    """Draw the sidebar."""
    user = current_user()
    with st.sidebar:
        st.title("知库 zhiku")
        _mode_panel(services)
        docs = services.ingestor.documents(user)
        backend = "Qdrant server" if services.settings.qdrant_url else "embedded index"
        st.caption(f"{len(docs)} documents · {backend}")

        default = services.settings.default_collection
        # members may load the sample only into a default collection an admin created and let them write
        if not docs and sample_dir.is_dir() and user.can_write(default) and (
                user.is_admin or services.store.collection(default) is not None):
            st.write("The knowledge base is empty.")
            if st.button("Load the sample handbook", type="primary", use_container_width=True):
                files = sorted(p for p in sample_dir.iterdir() if p.is_file())
                _enqueue(services, [(p.name, p.read_bytes()) for p in files], default)
                st.rerun()

        _upload_progress(services)
        _upload_panel(services, user, expanded=not docs)

        if docs:
            with st.expander(f"Documents ({len(docs)})"):
                for doc in docs:
                    cols = st.columns([5, 1])
                    cols[0].markdown(f"**{safe.plain(doc.file_name)}**  \n{safe.plain(doc.collection)} · {doc.chunks} chunks")
                    if user.can_write(doc.collection) and cols[1].button("🗑", key=f"del-{doc.id}", help="Delete " + safe.plain(doc.path)):
                        services.ingestor.delete(doc.id, user, doc.collection, wait=False)
                        st.rerun()
        if st.session_state.get("messages") and st.button("New conversation", use_container_width=True):
            st.session_state["messages"] = []
            st.rerun()
