"""The admin panel's page logic (Streamlit AppTest): adding a user and a collection goes through the services."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _admin_panel():
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.ui import admin, web

    admin.render(web.get_services(), LOCAL_ADMIN)


@pytest.fixture
def services(monkeypatch):
    from zhiku.ui import web

    monkeypatch.setattr(web, "_services", None)
    services = web.get_services()
    yield services
    services.close()


def _by_label(widgets, label):
    [found] = [w for w in widgets if w.label == label]
    return found


def test_an_admin_adds_a_user_sees_the_one_time_password_once_and_creates_a_collection(services):
    at = AppTest.from_function(_admin_panel).run(timeout=60)
    assert not at.exception
    _by_label(at.text_input, "Name").input("dora")
    _by_label(at.text_input, "Groups (comma-separated)").input("finance, staff")
    _by_label(at.button, "Add").click()
    at.run(timeout=60)
    assert not at.exception
    account = services.store.account("dora")
    assert account.groups == ["finance", "staff"] and not account.is_admin
    [password] = [c.value for c in at.code]
    assert services.accounts.login("dora", password, None).user.name == "dora"
    at.run(timeout=60)
    assert not at.code  # shown once

    _by_label(at.text_input, "Collection").input("ledgers")
    _by_label(at.text_input, "Read groups").input("finance")
    _by_label(at.button, "Save").click()
    at.run(timeout=60)
    assert not at.exception
    assert services.accounts.acting_user("dora").readable == frozenset({"ledgers"})
    audit = [e.action for e in services.store.audit_log()]
    assert audit[:3] == ["collection.create", "login", "user.add"]
