"""The admin panel: accounts, collections and their groups, re-index with its progress, health, feedback and
the audit log with their exports."""

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
from zhiku.ui.i18n import t, when


def _names(text: str) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _users(services: Services, admin: User) -> None:
    accounts = services.accounts.users(admin)
    st.dataframe([{"name": a.name, "admin": a.is_admin, "disabled": a.disabled, "groups": ", ".join(a.groups),
                   "created": when(a.created_at, seconds=True), "by": a.created_by} for a in accounts],
                 hide_index=True, width="stretch")
    with st.form("add-user", clear_on_submit=True):
        st.markdown(t("users.add"))
        cols = st.columns(3)
        name = cols[0].text_input(t("users.name"))
        groups = cols[1].text_input(t("users.groups"))
        password = cols[2].text_input(t("users.password"), type="password")
        make_admin = st.checkbox(t("users.admin"))
        if st.form_submit_button(t("users.add_button")):
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
        st.markdown(t("users.change"))
        cols = st.columns(3)
        name = cols[0].selectbox(t("users.user"), [a.name for a in accounts])
        groups = cols[1].text_input(t("users.new_groups"))
        action = cols[2].selectbox(t("users.action"), ["set groups", "reset password", "disable", "enable"],
                                  format_func=lambda a: t("action." + a.replace(" ", "_")))
        if st.form_submit_button(t("users.apply")):
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
                   "write": ", ".join(c.write)} for c in collections], hide_index=True, width="stretch")
    with st.form("collection", clear_on_submit=True):
        st.markdown(t("collections.edit"))
        cols = st.columns(3)
        name = cols[0].text_input(t("collections.name"))
        read = cols[1].text_input(t("collections.read"))
        write = cols[2].text_input(t("collections.write"))
        if st.form_submit_button(t("save")):
            try:
                services.accounts.create_collection(admin, name.strip(), _names(read), _names(write))
                st.rerun()
            except ZhikuError as e:
                st.error(safe.plain(e))


def _audit(services: Services, admin: User) -> None:
    entries = services.accounts.audit_log(admin, limit=None)
    rows = [{"time": when(e.at, seconds=True), "actor": e.actor, "action": e.action, "target": e.target or "",
             "detail": e.detail or "", "address": e.address or ""} for e in entries]
    st.dataframe(rows[:1000], hide_index=True, width="stretch")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["time", "actor", "action", "target", "detail", "address"])
    writer.writeheader()
    writer.writerows(rows)
    cols = st.columns(2)
    cols[0].download_button(t("export.csv"), buffer.getvalue().encode("utf-8-sig"), "zhiku-audit.csv", "text/csv")
    jsonl = "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in entries)
    cols[1].download_button(t("export.jsonl"), jsonl.encode(), "zhiku-audit.jsonl", "application/jsonl")


HEALTH_ICONS = {True: ":green[:material/check_circle:]", False: ":red[:material/error:]", None: ":material/remove:"}


HEALTH_SECONDS = 30  # the checks reach Ollama and embed a sentence: not on every click of the admin page


def _health(services: Services) -> None:
    st.markdown(f"**{t('health')}**")
    again = st.button(t("health.again"), key="health-again")
    checked = st.session_state.get("health")
    if again or checked is None or time.time() - checked[0] > HEALTH_SECONDS:
        checked = (time.time(), services.health())
        st.session_state["health"] = checked
    for check in checked[1]:
        name = {"ollama": "llm"}.get(check.name, check.name)
        if check.ok is None:
            detail = t(f"health.{name}.off")
        elif check.facts:
            facts = {k: safe.plain(v) if isinstance(v, str) else v for k, v in check.facts.items()}
            detail = t(f"health.{name}.{'ok' if check.ok else 'down'}", **facts)
        else:
            detail = safe.plain(check.detail)  # a problem, in the words of the part that has it
        st.markdown(f"{HEALTH_ICONS[check.ok]} **{t('health.' + name)}** · " + detail)


def _feedback(services: Services, admin: User) -> None:
    from zhiku.feedback import feedback_export

    rows = services.store.feedback_rows(admin)
    if not rows:
        st.info(t("feedback.none"))
        return
    st.markdown(t("feedback.export", n=len(rows)))
    st.dataframe([{"rating": "+1" if r["rating"] > 0 else "-1", "question": r["question"], "comment": r["comment"] or "",
                   "user": r["user"], "at": when(r["at"])} for r in rows], hide_index=True, width="stretch")
    cols = st.columns(2)
    cols[0].download_button(t("export.csv"), feedback_export(rows, "csv"), "zhiku-feedback.csv", "text/csv",
                            key="feedback-csv")
    cols[1].download_button(t("export.jsonl"), feedback_export(rows, "jsonl"), "zhiku-feedback.jsonl",
                            "application/jsonl", key="feedback-jsonl")


def render(services: Services, admin: User) -> None:
    """Draw the admin panel (the services refuse every change if the user is not an admin)."""
    st.markdown(t("admin.title"))
    notice = st.session_state.pop("admin_notice", None)
    if notice:
        what, name, generated = notice
        st.success(t("users.created" if what == "created" else "users.new_password", name=safe.plain(name)))
        if generated:
            st.caption(t("users.one_time"))
            st.code(generated, language=None)
    index, users, collections, feedback, audit = st.tabs(
        [t("health"), t("tab.users"), t("tab.collections"), t("tab.feedback"), t("tab.audit")])
    with index:
        _health(services)
    with users:
        _users(services, admin)
    with collections:
        _collections(services, admin)
    with feedback:
        _feedback(services, admin)
    with audit:
        _audit(services, admin)
