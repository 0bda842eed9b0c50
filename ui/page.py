"""The page each browser session runs: who is signed in, the sidebar, then chat, documents or administration."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from zhiku.core.errors import ZhikuError
from zhiku.ui import admin, chat, documents, login, safe, sidebar, web
from zhiku.ui.i18n import t

log = logging.getLogger(__name__)

VIEWS = ("chat", "documents", "admin")
STYLE = """<style>
.zhiku-passage{font-size:0.92rem;line-height:1.6} mark{background:#fff3a3;padding:0 1px}
.zhiku-md table{font-size:0.9rem}
</style>"""


def current_view(is_admin: bool) -> str:
    """The view in the URL (a reload stays on it); members never get the admin view."""
    view = st.query_params.get("view", "chat")
    if view not in VIEWS or (view == "admin" and not is_admin):
        return "chat"
    return view


def render(sample_dir: Path) -> None:
    """Draw the whole page for this run; no error reaches the browser as a traceback."""
    st.set_page_config(page_title="知库 zhiku", page_icon="📚", layout="wide")
    st.markdown(STYLE, unsafe_allow_html=True)
    try:
        with st.spinner(t("loading")):
            services = web.get_services()
    except ZhikuError as e:
        st.error(safe.plain(e))
        st.stop()
    user = login.require_user(services)  # stops here, with a link to the login form, if nobody is signed in
    try:
        view = current_view(user.is_admin)
        sidebar.render(services, user, view, sample_dir)
        if view == "admin":
            admin.render(services, user)
        elif view == "documents":
            documents.render(services, user)
        else:
            chat.render(services, user, sample_dir)
    except ZhikuError as e:
        st.error(safe.plain(e))
    except Exception as e:  # noqa: BLE001 - the page says what to do; the log keeps the traceback
        if type(e).__module__.startswith("streamlit."):
            raise  # Streamlit's own signals (a fragment's error already shown, a rerun) and its API errors
        log.exception("the page failed")
        st.error(safe.plain(t("error.unexpected", error=type(e).__name__)))
