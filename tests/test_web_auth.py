"""Signing in to the web app in a real browser: required when sign-in is on, kept across a reload, ended by logout."""

from __future__ import annotations

import pytest

from test_web import _ask, _click_until, _serve_app, page  # noqa: F401 - page is a fixture
from zhiku.retrieval.types import LOCAL_ADMIN

pytestmark = pytest.mark.browser

HR_TEXT = "# Salary bands\n\nThe salary band for senior engineers is 42000 yuan per month. Bonus reviews happen in March."
IT_TEXT = "# Office wifi\n\nThe guest wifi password rotates every Monday. Staff wifi uses your badge login."


@pytest.fixture
def kb(tmp_path):
    """A data dir with hr/salaries.md (group hr) and it/wifi.md (group staff), and the member sam in staff."""
    from zhiku.core.settings import load_settings
    from zhiku.services import build_services

    services = build_services(load_settings(data_dir=tmp_path / "data"))
    try:
        services.accounts.create_collection(LOCAL_ADMIN, "hr", read=["hr"], write=["hr"])
        services.accounts.create_collection(LOCAL_ADMIN, "it", read=["staff"])
        services.accounts.add_user(LOCAL_ADMIN, "sam", "sam-password", groups=["staff"])
        (tmp_path / "salaries.md").write_text(HR_TEXT, encoding="utf-8")
        (tmp_path / "wifi.md").write_text(IT_TEXT, encoding="utf-8")
        [hr] = services.ingestor.ingest_paths([tmp_path / "salaries.md"], "hr", LOCAL_ADMIN)
        [it] = services.ingestor.ingest_paths([tmp_path / "wifi.md"], "it", LOCAL_ADMIN)
    finally:
        services.close()
    return hr.doc_id, it.doc_id


def _sign_in(page, name: str, password: str) -> None:
    page.locator("#name").fill(name)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in · 登录").click()


def test_sign_in_is_required_a_reload_keeps_the_session_and_logout_ends_it(tmp_path, page, kb):  # noqa: F811
    hr_id, it_id = kb
    env = {"ZHIKU_AUTH": "on", "ZHIKU_ADMIN_USER": "boss", "ZHIKU_ADMIN_PASSWORD": "boss-password"}
    with _serve_app(tmp_path, extra_env=env) as url:
        page.goto(url)
        page.wait_for_url(f"{url}/login")  # nothing of the app before signing in
        assert page.request.get(f"{url}/files/{it_id}").status == 401

        _sign_in(page, "sam", "not-his-password")
        page.get_by_text("wrong user name or password").wait_for(timeout=30_000)
        _sign_in(page, "sam", "sam-password")
        page.wait_for_url(f"{url}/")
        page.get_by_text("Signed in as sam").wait_for(timeout=60_000)
        page.get_by_text("1 documents").wait_for(timeout=30_000)  # the IT document only

        page.reload()  # a new Streamlit session: the cookie, not the session state, says who this is
        page.get_by_text("Signed in as sam").wait_for(timeout=60_000)
        assert page.url == f"{url}/"
        _ask(page, "What is the salary band for senior engineers per month?")
        page.get_by_test_id("stChatMessage").nth(1).wait_for(timeout=60_000)
        page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=30_000)
        assert "42000" not in page.get_by_test_id("stChatMessage").nth(1).inner_text()

        # downloads check the same rule as search: the original of a readable document only
        assert page.request.get(f"{url}/files/{hr_id}").status == 404
        mine = page.request.get(f"{url}/files/{it_id}")
        assert mine.status == 200 and mine.text() == IT_TEXT
        assert "attachment" in mine.headers["content-disposition"]

        _click_until(page.get_by_role("button", name="Log out"), page.get_by_text("Please sign in"))
        page.reload()
        page.wait_for_url(f"{url}/login")
        assert page.request.get(f"{url}/files/{it_id}").status == 401
