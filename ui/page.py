"""The page each browser session runs: who is signed in, the sidebar, then the chat or the admin panel."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from zhiku.core.errors import ZhikuError
from zhiku.ui import admin, chat, login, safe, sidebar, web


def render(sample_dir: Path) -> None:
    """Draw the whole page for this run."""
    st.set_page_config(page_title="知库 zhiku", page_icon="📚", layout="wide")
    try:
        with st.spinner("Loading the knowledge base…"):
            services = web.get_services()
    except ZhikuError as e:
        st.error(safe.plain(e))
        st.stop()
    user = login.require_user(services)  # stops here, with a link to the login form, if nobody is signed in
    sidebar.render(services, sample_dir)
    login.account_panel(services, user)
    if user.is_admin and st.sidebar.toggle("Administration · 管理", key="admin_view"):
        admin.render(services, user)
    else:
        chat.render(services)
