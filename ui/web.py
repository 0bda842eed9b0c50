"""The web server around the Streamlit page: sign-in and sign-out, access-checked downloads, the shared services.

`streamlit run app.py` finds the `st.App` in app.py and serves it with uvicorn; these routes and this
middleware run in the same process as the page, so both use the one Services object built here.
Streamlit can read cookies (st.context.cookies) but not set them: signing in is a plain HTML form posted
to /login, whose reply sets an HttpOnly cookie holding a random session token (the store keeps its hash).
"""

from __future__ import annotations

import atexit
import html
import logging
import threading
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from zhiku.accounts import auth_enabled, is_loopback
from zhiku.core.errors import LoginFailed, LoginThrottled, NotFound, ZhikuError
from zhiku.core.settings import load_settings
from zhiku.retrieval.types import LOCAL_ADMIN, User
from zhiku.services import Services, build_services

log = logging.getLogger(__name__)

COOKIE = "zhiku_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
FILES_PATH = "/files"

_lock = threading.Lock()
_services: Services | None = None
_auth: bool | None = None


def listen_address() -> str | None:
    """The address Streamlit listens on (server.address; unset means every interface)."""
    import streamlit as st

    return st.get_option("server.address")


def get_services() -> Services:
    """Build every service once per server process (the page, the routes and the job worker share them)."""
    global _services, _auth
    with _lock:
        if _services is None:
            settings = load_settings()
            services = build_services(settings)
            try:
                address = listen_address()
                auth = auth_enabled(settings.auth, address)
                if auth:
                    password = settings.admin_password.get_secret_value() if settings.admin_password else None
                    services.accounts.ensure_first_admin(settings.admin_user, password)
                    log.info("sign-in is on (ZHIKU_AUTH=%s, server.address=%s)", settings.auth, address or "all")
                elif not is_loopback(address):
                    log.warning("ZHIKU_AUTH=off while the server listens on %s: whoever reaches it acts as the "
                                "admin; set ZHIKU_AUTH=on", address or "every interface")
                else:
                    log.info("single-user mode: listening on %s only, everyone acts as the local admin "
                             "(behind a reverse proxy set ZHIKU_AUTH=on)", address)
            except BaseException:
                services.close()
                raise
            services.start_worker()  # uploads are queued as jobs; this thread carries them out
            atexit.register(services.close)  # on shutdown: stop the worker, release the index (resumed at next start)
            threading.Thread(target=services.searcher.warm_up, daemon=True, name="zhiku-warm-up").start()
            _services, _auth = services, auth
        return _services


def auth_on() -> bool:
    """Whether browsers must sign in (decided once, when the services are built)."""
    get_services()
    return bool(_auth)


def user_for_token(token: str | None) -> User | None:
    """The acting user of a browser: the session's user when sign-in is on, else the local admin."""
    services = get_services()
    if not _auth:
        return LOCAL_ADMIN
    return services.accounts.user_for_token(token)


# --------------------------------------------------------------------- ASGI
def _client(request) -> str | None:
    # uvicorn replaces the peer with X-Forwarded-For only for trusted proxies (FORWARDED_ALLOW_IPS)
    return request.client.host if request.client else None


def _same_origin(request) -> bool:
    """Refuse form posts from other sites (a login or logout forced from another page)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # browsers send Origin with every POST; other clients are not a cross-site threat
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return origin != "null" and urlsplit(origin).netloc in hosts


_CROSS_SITE = ("This form was sent from another site: open zhiku's own page and sign in there. Behind a reverse "
               "proxy, pass the Host header on (nginx: proxy_set_header Host $host).")


_PAGE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>知库 zhiku · Sign in</title>
<style>
body{{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;background:#f6f7f9;margin:0}}
main{{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:.75rem;box-shadow:0 1px 4px #0002}}
h1{{font-size:1.4rem;margin:0 0 1.2rem}} label{{display:block;margin:.8rem 0 .3rem;font-size:.9rem}}
input{{width:100%;box-sizing:border-box;padding:.55rem;font-size:1rem;border:1px solid #bbb;border-radius:.4rem}}
button{{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;border:0;border-radius:.4rem;background:#ff4b4b;color:#fff}}
.error{{background:#fdecea;color:#8a1c13;padding:.6rem;border-radius:.4rem;margin-bottom:.5rem}}
.note{{color:#555;font-size:.85rem;margin-top:1rem}}
</style></head>
<body><main>
<h1>知库 zhiku</h1>
{message}
<form method="post" action="{action}">
<label for="name">User name · 用户名</label>
<input id="name" name="name" autocomplete="username" value="{name}" required autofocus>
<label for="password">Password · 密码</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in · 登录</button>
</form>
<p class="note">Forgot your password? Ask an admin to reset it. · 忘记密码请联系管理员重置。</p>
</main></body></html>
"""

# the login page loads nothing and runs nothing; no other site may frame it
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make the browser post the form with Origin: null
}


def _login_page(message: str = "", name: str = "", status: int = 200, headers: dict | None = None):
    from starlette.responses import HTMLResponse

    block = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    body = _PAGE.format(message=block, action=LOGIN_PATH, name=html.escape(name, quote=True))
    return HTMLResponse(body, status_code=status, headers={**_HEADERS, **(headers or {})})


async def login_page(request):
    """GET /login: the form (or the app, for a browser that is signed in already)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import RedirectResponse

    try:
        user = await run_in_threadpool(user_for_token, request.cookies.get(COOKIE))
    except ZhikuError as e:
        return _login_page(str(e), status=503)
    if user is not None:
        return RedirectResponse("/", status_code=303)
    return _login_page()


async def login_submit(request):
    """POST /login: check the password; on success set the session cookie and go to the app."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import RedirectResponse

    if not _same_origin(request):
        return _login_page(_CROSS_SITE, status=403)
    form = await request.form()
    name, password = str(form.get("name") or ""), str(form.get("password") or "")
    try:
        services = await run_in_threadpool(get_services)
        if not _auth:
            return RedirectResponse("/", status_code=303)
        session = await run_in_threadpool(services.accounts.login, name, password, _client(request))
    except LoginThrottled as e:
        return _login_page(str(e), name, 429, {"Retry-After": str(int(e.retry_after) + 1)})
    except LoginFailed as e:
        return _login_page(str(e), name, 401)
    except ZhikuError as e:
        return _login_page(str(e), name, 503)
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
    response.set_cookie(COOKIE, session.token, max_age=int(services.accounts.session_seconds), path="/",
                        httponly=True, samesite="lax", secure=secure)
    return response


async def logout(request):
    """POST /logout: end the session and forget the cookie."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import RedirectResponse

    if not _same_origin(request):
        return _login_page(_CROSS_SITE, status=403)
    services = await run_in_threadpool(get_services)
    await run_in_threadpool(services.accounts.logout, request.cookies.get(COOKIE), _client(request))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def download(request):
    """GET /files/{doc_id}: a document's original, for users who may read its collection."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse, PlainTextResponse

    doc_id = request.path_params["doc_id"]
    try:
        user = await run_in_threadpool(user_for_token, request.cookies.get(COOKIE))
        if user is None:
            return PlainTextResponse("sign in first: open zhiku's page", status_code=401)
        services = get_services()
        doc, path = await run_in_threadpool(services.ingestor.open_original, doc_id, user)
    except NotFound as e:
        return PlainTextResponse(str(e), status_code=404)
    except ZhikuError as e:
        return PlainTextResponse(str(e), status_code=503)
    await run_in_threadpool(services.store.audit, user.name, "download", f"{doc.collection}/{doc.path}", None,
                            _client(request))
    # always a download, never a page of this site: an uploaded HTML file must not run here
    return FileResponse(path, media_type="application/octet-stream", filename=doc.file_name,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
                                 "Content-Security-Policy": "sandbox; default-src 'none'"})


class SignInFirst:
    """ASGI middleware: with sign-in on, a page load without a live session goes to the login form.

    The page checks the session itself on every run (ui/login.py); this only spares a signed-out visitor
    an empty page.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/":
            from starlette.concurrency import run_in_threadpool
            from starlette.requests import Request
            from starlette.responses import RedirectResponse

            try:
                user = await run_in_threadpool(user_for_token, Request(scope).cookies.get(COOKIE))
            except ZhikuError:
                user = LOCAL_ADMIN  # the page shows what is wrong
            if user is None:
                await RedirectResponse(LOGIN_PATH, status_code=303)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def routes() -> list:
    """zhiku's own routes next to Streamlit's."""
    from starlette.routing import Route

    return [
        Route(LOGIN_PATH, login_page, methods=["GET"]),
        Route(LOGIN_PATH, login_submit, methods=["POST"]),
        Route(LOGOUT_PATH, logout, methods=["POST"]),
        Route(FILES_PATH + "/{doc_id}", download, methods=["GET"]),
    ]


def middleware() -> list:
    """Middleware in front of Streamlit."""
    from starlette.middleware import Middleware

    return [Middleware(SignInFirst)]


@asynccontextmanager
async def lifespan(_app):
    """Build the services while the server starts (a first admin's one-time password is logged now)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    threading.Thread(target=_build_quietly, daemon=True, name="zhiku-start").start()
    yield


def _build_quietly() -> None:
    try:
        get_services()
    except ZhikuError as e:
        log.error("%s", e)  # the page shows it too, with the same words
