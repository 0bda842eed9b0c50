"""The accounts half of the app store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import time

import pytest

from zhiku.core.errors import NotFound, ZhikuError


def test_users_groups_and_grants_give_each_account_its_collections(store):
    store.create_user("alice", "h1", actor="local", groups=["hr", "all"])
    store.create_user("bob", "h2", actor="local", groups=["finance", "all"], email="Bob@example.com")
    with pytest.raises(ZhikuError, match="already exists"):
        store.create_user("alice", "h3", actor="local")
    assert store.account("alice").groups == ["all", "hr"]
    assert store.account_by_email("bob@EXAMPLE.com").name == "bob"
    assert store.groups() == ["all", "finance", "hr"]

    access, created = store.set_grants("hr-docs", read=["hr"], write=["hr"], actor="local")
    assert created and access.read == ["hr"] and access.write == ["hr"]
    store.set_grants("finance-docs", read=["finance"], write=[], actor="local")
    store.set_grants("handbook", read=["all"], write=["hr"], actor="local")
    alice, bob = store.account("alice"), store.account("bob")
    assert store.access_of(alice.id) == ({"hr-docs", "handbook"}, {"hr-docs", "handbook"})
    assert store.access_of(bob.id) == ({"finance-docs", "handbook"}, set())

    # grants are replaced, not added to; the collection is not created twice
    again, created = store.set_grants("handbook", read=["hr"], write=[], actor="local")
    assert not created and again.read == ["hr"]
    assert store.access_of(bob.id) == ({"finance-docs"}, set())
    assert [c.name for c in store.collection_access()] == ["finance-docs", "handbook", "hr-docs"]

    store.update_user("bob", groups=["hr"])
    assert store.access_of(bob.id) == ({"hr-docs", "handbook"}, {"hr-docs"})
    with pytest.raises(NotFound):
        store.update_user("nobody", disabled=True)


def test_sessions_end_by_expiry_logout_disabling_and_a_new_password(store):
    user = store.create_user("carol", "h", actor="local")
    now = time.time()
    store.create_session("t1", user.id, now + 60, "10.0.0.1")
    store.create_session("t2", user.id, now - 1, "10.0.0.1")
    assert store.session_account("t1", now).name == "carol"
    assert store.session_account("t2", now) is None  # expired
    assert store.session_account("nope", now) is None
    assert store.delete_session("t1") == "carol"
    assert store.session_account("t1", now) is None

    store.create_session("t3", user.id, now + 60, None)
    store.update_user("carol", password_hash="h2")
    assert store.session_account("t3", now) is None
    store.create_session("t4", user.id, now + 60, None)
    store.update_user("carol", disabled=True)
    assert store.session_account("t4", now) is None
    assert store.count_admins() == 0


def test_login_failures_count_per_name_since_the_last_success_and_per_address(store):
    now = time.time()
    for i in range(3):
        store.record_login("dave", "10.0.0.9", False, now - 30 + i)
    assert store.login_failures(name="dave", since=now - 900) == (3, now - 28)
    store.record_login("dave", "10.0.0.9", True, now - 20)
    store.record_login("dave", "10.0.0.9", False, now - 10)
    assert store.login_failures(name="dave", since=now - 900) == (1, now - 10)
    assert store.login_failures(address="10.0.0.9", since=now - 900)[0] == 4  # successes do not reset an address
    assert store.login_failures(address="10.0.0.9", since=now - 15)[0] == 1


def test_audit_log_is_newest_first_and_filtered(store):
    store.audit("alice", "login", "alice", address="10.0.0.1")
    store.audit("local", "user.add", "bob", "groups: hr")
    store.audit("alice", "upload", "hr/a.md")
    assert [e.action for e in store.audit_log()] == ["upload", "user.add", "login"]
    assert [e.action for e in store.audit_log(actor="alice")] == ["upload", "login"]
    assert store.audit_log(action="user.add")[0].to_dict()["detail"] == "groups: hr"
    assert len(store.audit_log(limit=1)) == 1
