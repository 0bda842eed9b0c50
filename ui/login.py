"""The page's side of signing in: who is at this browser (checked on every run), and signing out."""

from __future__ import annotations

import streamlit as st

from zhiku.retrieval.types import User
from zhiku.services import Services
from zhiku.ui import safe, web


def _token() -> str | None:
    return st.context.cookies.get(web.COOKIE)


def _sign_in_prompt(message: str) -> None:
    st.title("知库 zhiku")
    st.info(message)
    # our own fixed HTML: a plain link that leaves the page for the login form in the same tab
    st.markdown(f'<a href="{web.LOGIN_PATH}" target="_self">Sign in · 登录</a>', unsafe_allow_html=True)


def require_user(services: Services) -> User:
    """The signed-in user (or the local admin when sign-in is off); otherwise a link to sign in, and stop.

    A reload starts a new Streamlit session: the session cookie, not st.session_state, says who this is,
    and the store says whether that session still lasts and what its user may read now.
    """
    user = web.user_for_token(_token())
    if user is None:
        for key in list(st.session_state.keys()):  # nothing of an earlier user stays in this tab
            del st.session_state[key]
        _sign_in_prompt("Please sign in. · 请先登录。")
        st.stop()
    if st.session_state.get("user_name") not in (None, user.name):
        st.session_state.clear()
    st.session_state["user_name"] = user.name
    st.session_state["user"] = user
    return user


def account_panel(services: Services, user: User) -> None:
    """In the sidebar: who is signed in, and a button to sign out."""
    if not web.auth_on():
        return
    with st.sidebar:
        role = "admin · 管理员" if user.is_admin else "member · 成员"
        st.caption(f"Signed in as **{safe.plain(user.name)}** ({role})")
        if st.button("Log out · 退出", key="logout"):
            services.accounts.logout(_token())
            st.session_state.clear()
            st.rerun()
