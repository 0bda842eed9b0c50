"""Sidebar: language, navigation, conversations, uploads with their progress, answer mode and the account."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from zhiku.core.errors import ZhikuError
from zhiku.ingest.parsers import SUPPORTED
from zhiku.retrieval.types import LOCAL_ADMIN, User
from zhiku.services import Services
from zhiku.store import new_id
from zhiku.ui import login, safe
from zhiku.ui.i18n import switch, t, when

# Material icons ship with Streamlit; emoji need a colour emoji font that servers often lack
STAGE_ICONS = {"queued": ":material/schedule:", "parsing": ":material/description:",
               "embedding": ":material/memory:", "cleanup": ":material/memory:", "indexed": ":green[:material/check_circle:]",
               "unchanged": ":green[:material/check_circle:]", "deleted": ":material/delete:"}
UPLOAD_TYPES = sorted(s.lstrip(".") for s in SUPPORTED)


def current_user() -> User:
    """The acting user, set by the sign-in check at the top of every run (ui/login.py)."""
    return st.session_state.get("user", LOCAL_ADMIN)


def upload_limit_mb(services: Services) -> int:
    """The real size limit of one upload: the smaller of zhiku's and Streamlit's."""
    return int(min(services.settings.max_file_mb, st.get_option("server.maxUploadSize")))


def enqueue(services: Services, user: User, items: list[tuple[str, bytes]], collection: str) -> None:
    """Queue uploaded files for the job worker and return at once; their rows come from the job table."""
    batch = new_id()
    for name, data in items:
        services.ingestor.enqueue_upload(name, data, collection, user, batch)


def _stage_label(stage: str) -> str:
    key = f"stage.{stage}"
    try:
        return t(key)
    except KeyError:
        return stage


# Live parts of the sidebar run again every second only while something they show is under way: an idle
# page costs the server nothing, and Streamlit's page, which can break when a fragment's rerun overlaps a
# rerun of the whole page, never meets that overlap while someone reads or asks.
POLL_SECONDS = 1.0


def upload_rows(services: Services, user: User) -> None:
    """One row per uploaded file, fed by the job rows: they stay until dismissed and survive a reload."""
    jobs = services.store.recent_uploads(user)
    if any(not j.finished for j in jobs):
        _upload_rows_live(services, user)
    else:
        _draw_upload_rows(services, user, jobs)


@st.fragment(run_every=POLL_SECONDS)
def _upload_rows_live(services: Services, user: User) -> None:
    """The rows while a file is on its way; the whole page again when a document is added, and when the
    last file has ended (the rows stop following the jobs then)."""
    jobs = services.store.recent_uploads(user)
    if _draw_upload_rows(services, user, jobs) or all(j.finished for j in jobs):
        st.rerun(scope="app")  # new documents: the counts and the documents table outside this fragment


def _draw_upload_rows(services: Services, user: User, jobs) -> bool:
    """Draw the rows; whether a job has ended with a new document since the last time they were drawn."""
    if not jobs:
        return False
    for job in jobs:
        name = (job.path or job.source or "").rsplit("/", 1)[-1]
        # a finished upload is "indexed" (added or updated) or "unchanged"
        stage = job.stage if job.state != "done" else {"added": "indexed", "updated": "indexed"}.get(
            job.result or "", job.result or job.stage)
        if job.state == "failed":
            st.error(safe.plain(f"{name}: {job.error}"), icon=":material/error:")
        else:
            detail = f" {job.done}/{job.total}" if stage == "embedding" and job.total else ""
            st.markdown(f"{STAGE_ICONS.get(stage, ':material/schedule:')} " + safe.plain(f"{name}: {_stage_label(stage)}{detail}"))
    settled = [j.id for j in jobs if j.finished]
    added = False
    if settled != st.session_state.get("settled_jobs"):
        first = "settled_jobs" not in st.session_state
        st.session_state["settled_jobs"] = settled
        added = not first and any(j.state == "done" for j in jobs if j.finished)
    if settled and st.button(t("upload.dismiss"), key="dismiss-uploads", width="stretch"):
        services.store.dismiss_uploads(user, settled)
        st.rerun(scope="app")
    return added


def _collection_choice(services: Services, user: User) -> str | None:
    """The collection to upload into: admins pick one or name a new one on purpose, writers pick theirs."""
    default = services.settings.default_collection
    if user.is_admin:
        names = sorted({c.name for c in services.store.collections()} | {default})
        new = t("upload.new")
        picked = st.selectbox(t("upload.collection"), names + [new], index=names.index(default),
                              format_func=safe.plain, key="upload-collection")
        if picked != new:
            return picked
        name = st.text_input(t("upload.new_collection"), key="upload-new-collection").strip()
        return name or None
    writable = sorted(user.writable or ())
    return st.selectbox(t("upload.collection"), writable, format_func=safe.plain, key="upload-collection")


def _upload_panel(services: Services, user: User, expanded: bool) -> None:
    """Uploads into a collection the user may write; members who may write nowhere get no uploader."""
    if not user.is_admin and not user.writable:
        return
    with st.expander(t("upload"), expanded=expanded):
        collection = _collection_choice(services, user)
        limit = upload_limit_mb(services)
        uploads = st.file_uploader(
            t("upload.files", types=", ".join(UPLOAD_TYPES), mb=limit), type=UPLOAD_TYPES,
            accept_multiple_files=True, key=f"upload-{st.session_state.get('uploads', 0)}",
        )
        if uploads and collection and st.button(t("upload.go"), width="stretch", type="primary"):
            try:
                enqueue(services, user, [(u.name, u.getvalue()) for u in uploads], collection)
            except ZhikuError as e:
                st.error(safe.plain(e))
                return
            # a new key is the only way to clear a file_uploader
            st.session_state["uploads"] = st.session_state.get("uploads", 0) + 1
            st.rerun()


def reindex_status(services: Services) -> None:
    """The last re-index: a progress bar while it runs (from the job rows), then how it ended."""
    if _reindex_running(services):
        _reindex_status_live(services)
    else:
        _draw_reindex_status(services)
        if st.session_state.pop("reindex-running", False):
            st.rerun()  # the button above was drawn disabled


@st.fragment(run_every=POLL_SECONDS)
def _reindex_status_live(services: Services) -> None:
    """The progress each second; the whole page again when the re-index ends (its button is enabled again)."""
    running = _draw_reindex_status(services)
    if running != st.session_state.get("reindex-running", False) or not running:
        st.session_state["reindex-running"] = running
        st.rerun(scope="app")  # the button is disabled while it runs; when it ends, the polling stops too


def _reindex_running(services: Services) -> bool:
    batch = st.session_state.get("reindex-batch")
    if batch is not None:
        return not all(j.finished for j in services.store.jobs(batch=batch, limit=100_000))
    last = services.store.jobs(kinds=("reindex",), limit=1)
    return bool(last) and last[0].state in ("queued", "running")


def _draw_reindex_status(services: Services) -> bool:
    """Draw the state of the last re-index; whether it is still running."""
    batch = st.session_state.get("reindex-batch")
    if batch is not None:  # one collection: its documents' jobs
        jobs = services.store.jobs(batch=batch, limit=100_000)
        done = sum(j.finished for j in jobs)
        failed = [j for j in jobs if j.state == "failed"]
        if done < len(jobs):
            st.progress(done / max(len(jobs), 1), text=t("reindex.running", done=done, total=len(jobs)))
        elif failed:
            st.error(t("reindex.kept", n=len(failed), error=safe.plain(f"{failed[0].path}: {failed[0].error}")))
        else:
            st.success(t("reindex.collection_done", n=len(jobs)))
        return done < len(jobs)
    last = services.store.jobs(kinds=("reindex",), limit=1)
    if not last:
        return False
    job = last[0]
    if job.state in ("queued", "running"):
        st.progress(min(job.done / max(job.total, 1), 1.0), text=t("reindex.running", done=job.done, total=job.total))
        return True
    if job.state == "failed":
        st.error(t("reindex.failed", error=safe.plain(job.error)))
    else:
        st.success(t("reindex.done", when=when(job.finished_at or job.updated_at)))
    return False


def _reindex_panel(services: Services, user: User) -> None:
    """Admins re-index everything or one collection from the sidebar; questions are answered meanwhile."""
    if not user.is_admin:
        return
    with st.expander(t("reindex")):
        st.caption(t("reindex.help"))
        everything = t("reindex.every")
        names = sorted(c.name for c in services.store.collections())
        target = st.selectbox(t("upload.collection"), [everything] + names, key="reindex-target",
                              format_func=lambda n: n if n == everything else safe.plain(n))
        last = services.store.jobs(kinds=("reindex",), limit=1)
        running = (bool(last) and last[0].state in ("queued", "running")) or st.session_state.get("reindex-running")
        if st.button(t("reindex.go"), icon=":material/refresh:", disabled=bool(running), key="reindex-all",
                     width="stretch"):
            try:
                if target == everything:
                    services.ingestor.reindex(user, wait=False)
                    st.session_state.pop("reindex-batch", None)
                else:
                    jobs = services.ingestor.reindex_collection(target, user, wait=False)
                    st.session_state["reindex-batch"] = jobs[0].batch if jobs else None
                st.toast(t("reindex.queued"))
            except ZhikuError as e:
                st.error(safe.plain(e))
                return
            st.rerun()
        reindex_status(services)


def _mode_panel(services: Services) -> None:
    answers = services.answers
    if answers.mode == "ollama":
        st.success(t("mode.ollama", model=safe.plain(answers.llm.model)))
    else:
        st.info(t("mode.extractive"))
        if answers.llm_problem:
            st.warning(safe.plain(answers.llm_problem))


def _navigation(user: User, view: str) -> None:
    views = ["chat", "documents"] + (["admin"] if user.is_admin else [])
    picked = st.segmented_control("view", views, default=view, format_func=lambda v: t(f"nav.{v}"),
                                  key="nav", label_visibility="collapsed")
    if picked and picked != view:
        st.query_params["view"] = picked
        st.rerun()


def _conversations(services: Services, user: User) -> None:
    current = st.query_params.get("c")
    if st.button(t("new_chat"), icon=":material/add:", key="new-chat", width="stretch",
                 type="primary" if current is None else "secondary"):
        st.query_params.pop("c", None)
        st.rerun()
    chats = services.store.conversations(user, limit=50)
    if not chats:
        return
    st.caption(t("conversations"))
    for conv in chats:
        title = conv.title or t("untitled")
        if st.button(safe.plain(title[:40]), key=f"conv-{conv.id}", width="stretch",
                     type="primary" if conv.id == current else "tertiary"):
            st.query_params["c"] = conv.id
            st.rerun()


def render(services: Services, user: User, view: str, sample_dir: Path) -> None:
    """Draw the sidebar."""
    with st.sidebar:
        st.title("知库 zhiku")
        switch()
        _navigation(user, view)
        stats = services.ingestor.stats(user)
        backend = t("backend.server") if services.settings.qdrant_url else t("backend.embedded")
        st.caption(t("counts", docs=stats.documents, chunks=stats.chunks, backend=backend))
        upload_rows(services, user)
        _upload_panel(services, user, expanded=stats.documents == 0)
        _reindex_panel(services, user)
        if view == "chat":
            _conversations(services, user)
        st.divider()
        _mode_panel(services)
        login.account_panel(services, user)
