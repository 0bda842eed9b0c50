"""zhiku's own web routes (sign-in, sign-out, downloads) through Starlette's test client, without a browser."""

from __future__ import annotations

import pytest

from zhiku.retrieval.types import LOCAL_ADMIN


@pytest.fixture
def client(tmp_path, monkeypatch):
    """The routes and middleware with sign-in on, over fresh services; the member sam reads collection it."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from zhiku.ui import web

    monkeypatch.setenv("ZHIKU_AUTH", "on")
    monkeypatch.setenv("ZHIKU_ADMIN_PASSWORD", "boss-password")
    monkeypatch.setattr(web, "_services", None)
    monkeypatch.setattr(web, "listen_address", lambda: None)

    async def streamlit_page(request):  # stands for Streamlit's page behind the middleware
        return PlainTextResponse("the app")

    app = Starlette(routes=[*web.routes(), Route("/", streamlit_page)], middleware=web.middleware())
    services = web.get_services()
    services.accounts.clock = lambda: 2_000_000_000.0  # throttling waits must not run out on a slow machine
    services.accounts.create_collection(LOCAL_ADMIN, "it", read=["staff"])
    services.accounts.add_user(LOCAL_ADMIN, "sam", "sam-password", groups=["staff"])
    with TestClient(app, base_url="http://zhiku.test", follow_redirects=False) as client:
        yield client, services
    services.close()


def _login(client, name, password, origin="http://zhiku.test"):
    return client.post("/login", data={"name": name, "password": password}, headers={"Origin": origin})


def test_signing_in_sets_an_http_only_session_cookie_and_signing_out_ends_it(client):
    client, services = client
    assert client.get("/").headers["location"] == "/login"
    response = _login(client, "sam", "sam-password")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "zhiku_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert f"Max-Age={12 * 3600}" in cookie and "sam" not in cookie  # an opaque token, not a name
    assert client.get("/").text == "the app"
    assert client.get("/login").headers["location"] == "/"  # signed in already

    assert client.post("/logout", headers={"Origin": "http://zhiku.test"}).headers["location"] == "/login"
    assert client.get("/").headers["location"] == "/login"


def test_forms_from_other_sites_wrong_passwords_and_guessing_are_refused(client):
    client, services = client
    assert _login(client, "sam", "sam-password", origin="http://evil.test").status_code == 403
    assert _login(client, "sam", "sam-password", origin="null").status_code == 403
    for _ in range(5):
        refused = _login(client, "sam", "guess-guess")
        assert refused.status_code == 401 and "wrong user name or password" in refused.text
        assert "set-cookie" not in refused.headers
    throttled = _login(client, "sam", "sam-password")
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 2
    assert "try again in" in throttled.text
    html = _login(client, "<script>x</script>", "guess-guess").text
    assert "<script>x" not in html and "&lt;script&gt;x" in html  # the typed name comes back escaped
    failed = services.accounts.audit_log(LOCAL_ADMIN, action="login.failed")
    assert len(failed) == 6 and {e.address for e in failed} == {"testclient"}


def test_a_download_is_an_attachment_for_readers_only(client):
    client, services = client
    page = b"<html><body><h1>Board minutes</h1><p>The board met on Monday.</p><script>alert(1)</script></body></html>"
    doc = services.ingestor.ingest_bytes(page, "board.html", "it", LOCAL_ADMIN)
    assert doc.status == "added"
    assert client.get(f"/files/{doc.doc_id}").status_code == 401
    _login(client, "sam", "sam-password")
    response = client.get(f"/files/{doc.doc_id}")
    assert response.status_code == 200 and response.content == page
    # an uploaded page must never run on zhiku's origin
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    services.accounts.set_groups(LOCAL_ADMIN, "sam", [])  # access follows the groups at once
    assert client.get(f"/files/{doc.doc_id}").status_code == 404
    assert services.accounts.audit_log(LOCAL_ADMIN, action="download")[0].actor == "sam"
