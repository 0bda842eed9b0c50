"""The documents view: every document the user may read with its status, filters, and delete with confirmation."""

from __future__ import annotations

import streamlit as st

from zhiku.core.errors import ZhikuError
from zhiku.retrieval.types import User
from zhiku.services import Services
from zhiku.store import Document
from zhiku.ui import safe
from zhiku.ui.i18n import t, when

STATUSES = ("indexed", "queued", "failed", "deleting")


def rows(docs: list[Document]) -> list[dict]:
    """The table's rows (column keys are translated in the header only)."""
    return [{
        "name": d.path, "collection": d.collection, "pages": str(d.pages) if d.pages is not None else "—", "chunks": d.chunks,
        "size": round(d.size / 1024, 1), "ingested_at": when(d.ingested_at), "by": d.ingested_by or "",
        "status": t(f"status.{d.status}") if d.status in STATUSES else d.status, "error": d.error or "",
    } for d in docs]


@st.dialog(" ")
def _confirm_delete(services: Services, user: User, docs: list[Document]) -> None:
    st.markdown(t("docs.delete_confirm", n=len(docs)))
    for d in docs[:20]:
        st.markdown("- " + safe.plain(f"{d.collection} / {d.path}"))
    if len(docs) > 20:
        st.markdown(f"- … (+{len(docs) - 20})")
    cols = st.columns(2)
    if cols[0].button(t("delete"), type="primary", key="confirm-delete", width="stretch"):
        try:
            for d in docs:
                services.ingestor.delete(d.id, user, d.collection, wait=False)
        except ZhikuError as e:
            st.error(safe.plain(e))
            return
        st.session_state["docs-notice"] = t("docs.deleted", n=len(docs))
        st.rerun()
    if cols[1].button(t("cancel"), key="cancel-delete", width="stretch"):
        st.rerun()


def render(services: Services, user: User) -> None:
    """Draw the documents table with its filters and the delete action."""
    st.markdown(t("docs.title"))
    if notice := st.session_state.pop("docs-notice", None):
        st.success(notice)
    docs = services.ingestor.documents(user, statuses=STATUSES)
    collections = sorted({d.collection for d in docs})
    cols = st.columns([3, 2, 2])
    search = cols[0].text_input(t("docs.search"), key="docs-search").strip().lower()
    picked = cols[1].multiselect(t("docs.collections"), collections, format_func=safe.plain, key="docs-collections")
    status = cols[2].multiselect(t("docs.status"), STATUSES, format_func=lambda s: t(f"status.{s}"),
                                 key="docs-status")
    shown = [d for d in docs
             if (not search or search in d.path.lower() or search in d.file_name.lower())
             and (not picked or d.collection in picked) and (not status or d.status in status)]
    if not shown:
        st.info(t("docs.none"))
        return
    config = {key: st.column_config.Column(t(f"col.{key}")) for key in
              ("name", "collection", "pages", "chunks", "size", "ingested_at", "by", "status", "error")}
    event = st.dataframe(rows(shown), hide_index=True, width="stretch", column_config=config,
                         on_select="rerun", selection_mode="multi-row", key="docs-table")
    selected = [shown[i] for i in event.selection.rows if i < len(shown)]
    if not selected:
        return
    denied = sorted({d.collection for d in selected if not user.can_write(d.collection)})
    st.caption(t("docs.selected", n=len(selected)))
    if denied:
        st.warning(t("docs.delete_denied", collections=safe.plain(", ".join(denied))))
    elif st.button(t("docs.delete"), type="primary", icon=":material/delete:", key="docs-delete"):
        _confirm_delete(services, user, selected)
