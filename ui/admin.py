"""The admin panel: accounts, collections and their groups, re-index, and the audit log with its export."""

from __future__ import annotations

import csv
import io
import json
import time

import streamlit as st

from zhiku.core.errors import ZhikuError
from zhiku.retrieval.types import User
from zhiku.services import Services
from zhiku.ui import safe


def _names(text: str) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _users(services: Services, admin: User) -> None:
    accounts = services.accounts.users(admin)
    st.dataframe([{"name": a.name, "admin": a.is_admin, "disabled": a.disabled, "groups": ", ".join(a.groups),
                   "created": _when(a.created_at), "by": a.created_by} for a in accounts],
                 hide_index=True, use_container_width=True)
    with st.form("add-user", clear_on_submit=True):
        st.markdown("**Add a user · 添加用户**")
        cols = st.columns(3)
        name = cols[0].text_input("Name · 用户名")
        groups = cols[1].text_input("Groups (comma-separated) · 用户组")
        password = cols[2].text_input("Password (empty: generate one) · 密码", type="password")
        make_admin = st.checkbox("Admin · 管理员")
        if st.form_submit_button("Add · 添加"):
            try:
                _, generated = services.accounts.add_user(admin, name.strip(), password or None,
                                                          groups=_names(groups), admin=make_admin)
                st.session_state["admin_notice"] = ("created", name.strip(), generated)
                st.rerun()
            except ZhikuError as e:
                st.error(safe.plain(e))
    if not accounts:
        return
    with st.form("change-user"):
        st.markdown("**Change a user · 修改用户**")
        cols = st.columns(3)
        name = cols[0].selectbox("User · 用户", [a.name for a in accounts])
        groups = cols[1].text_input("New groups (comma-separated) · 新用户组")
        action = cols[2].selectbox("Action · 操作", ["set groups", "reset password", "disable", "enable"])
        if st.form_submit_button("Apply · 应用"):
            try:
                if action == "set groups":
                    services.accounts.set_groups(admin, name, _names(groups))
                elif action == "reset password":
                    st.session_state["admin_notice"] = ("password", name,
                                                        services.accounts.reset_password(admin, name))
                else:
                    services.accounts.set_disabled(admin, name, action == "disable")
                st.rerun()
            except ZhikuError as e:
                st.error(safe.plain(e))


def _collections(services: Services, admin: User) -> None:
    collections = services.accounts.collections(admin)
    _, _, counts = services.store.stats()
    st.dataframe([{"collection": c.name, "documents": counts.get(c.name, 0), "read": ", ".join(c.read),
                   "write": ", ".join(c.write)} for c in collections], hide_index=True, use_container_width=True)
    with st.form("collection", clear_on_submit=True):
        st.markdown("**Create a collection, or change its groups · 创建知识库或修改权限**")
        cols = st.columns(3)
        name = cols[0].text_input("Collection · 知识库")
        read = cols[1].text_input("Read groups · 可读用户组")
        write = cols[2].text_input("Write groups · 可写用户组")
        if st.form_submit_button("Save · 保存"):
            try:
                services.accounts.create_collection(admin, name.strip(), _names(read), _names(write))
                st.rerun()
            except ZhikuError as e:
                st.error(safe.plain(e))
    if st.button("Re-index every document · 重建索引"):
        try:
            services.ingestor.reindex(admin, wait=False)
            st.success("Re-index queued: the current index answers questions meanwhile.")
        except ZhikuError as e:
            st.error(safe.plain(e))


def _audit(services: Services, admin: User) -> None:
    entries = services.accounts.audit_log(admin, limit=None)
    rows = [{"time": _when(e.at), "actor": e.actor, "action": e.action, "target": e.target or "",
             "detail": e.detail or "", "address": e.address or ""} for e in entries]
    st.dataframe(rows[:1000], hide_index=True, use_container_width=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["time", "actor", "action", "target", "detail", "address"])
    writer.writeheader()
    writer.writerows(rows)
    cols = st.columns(2)
    cols[0].download_button("Export CSV", buffer.getvalue().encode("utf-8-sig"), "zhiku-audit.csv", "text/csv")
    jsonl = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in entries)
    cols[1].download_button("Export JSON lines", jsonl.encode(), "zhiku-audit.jsonl", "application/jsonl")


def render(services: Services, admin: User) -> None:
    """Draw the admin panel (the services refuse every change if the user is not an admin)."""
    st.markdown("### Administration · 管理")
    notice = st.session_state.pop("admin_notice", None)
    if notice:
        what, name, generated = notice
        st.success(safe.plain(f"{'Created' if what == 'created' else 'New password for'} {name}."))
        if generated:
            st.caption("One-time password, shown only now · 一次性密码（仅显示一次）:")
            st.code(generated, language=None)
    users, collections, audit = st.tabs(["Users · 用户", "Collections · 知识库", "Audit log · 审计日志"])
    with users:
        _users(services, admin)
    with collections:
        _collections(services, admin)
    with audit:
        _audit(services, admin)
