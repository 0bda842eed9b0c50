"""The web app in a real browser: Debian's Chromium driven by Playwright against `streamlit run app.py`."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import ROOT
from fake_ollama import FakeOllama

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve_app(tmp_path: Path, ollama_host: str | None = None, extra_env: dict | None = None):
    """`streamlit run app.py` on a free port with an empty data dir; the repo's .streamlit/config.toml applies."""
    port = _free_port()
    env = {**os.environ, "ZHIKU_DATA_DIR": str(tmp_path / "data"), **(extra_env or {})}
    env.pop("OLLAMA_HOST", None)
    if ollama_host:
        env["OLLAMA_HOST"] = ollama_host
    # cwd is not the repo: Streamlit must still find the config shipped next to app.py; its output goes to
    # server.log next to the test's files (read it when a browser test fails)
    log = open(tmp_path / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        log.close()
        pytest.fail("streamlit did not start: " + (tmp_path / "server.log").read_text(errors="replace")[-2000:])
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


@pytest.fixture
def app_url(tmp_path):
    """The web app without Ollama (extractive answers)."""
    with _serve_app(tmp_path) as url:
        yield url


@pytest.fixture
def page(request, tmp_path):
    """A Chromium page. When the test fails, the page is saved as failure.png next to the test's files and
    the browser's console and the app's server log are printed with the failure."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "install Debian's chromium (see .ci/run)"
    console: list[str] = []
    started = time.monotonic()

    def note(kind: str, text: str) -> None:
        console.append(f"{time.monotonic() - started:7.1f}s {kind}: {text}")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: note(f"console.{m.type}", m.text))
        page.on("pageerror", lambda e: note("pageerror", str(e)))
        page.on("framenavigated", lambda f: note("navigated", f.url) if f == page.main_frame else None)
        page.on("websocket", lambda ws: (note("websocket", ws.url),
                                         ws.on("close", lambda w: note("websocket closed", w.url))))
        yield page
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            _report_failure(page, tmp_path, console)
        browser.close()


def _collapsed(lines: list[str]) -> list[str]:
    """Console lines with runs of the same message (timestamps aside) shown once, with their count."""
    out: list[tuple[str, str, int]] = []
    for line in lines:
        stamp, _, message = line.partition("s ")
        if out and out[-1][1] == message:
            out[-1] = (out[-1][0], message, out[-1][2] + 1)
        else:
            out.append((stamp + "s", message, 1))
    return [f"{stamp} {message}" + (f"  (×{n})" if n > 1 else "") for stamp, message, n in out]


def _report_failure(page, tmp_path: Path, console: list[str]) -> None:
    """Print what a failed browser test left behind: the page, the browser's console, the server's log."""
    shot = tmp_path / "failure.png"
    if not shot.exists():  # a test that serves the app itself takes it while the app still runs
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot), full_page=True)
    print(f"the page at the failure: {shot}")
    with contextlib.suppress(Exception):
        print("the page's text at the failure:\n" + page.locator("body").inner_text(timeout=5_000)[-3000:])
    with contextlib.suppress(Exception):
        origin = "/".join(page.url.split("/")[:3])
        started = time.monotonic()
        try:
            status = urllib.request.urlopen(f"{origin}/_stcore/health", timeout=10).status
        except OSError as e:
            status = repr(e)
        print(f"the app's health check at the failure: {status} in {time.monotonic() - started:.1f}s")
    print("the browser's console:\n" + "\n".join(_collapsed(console)[-120:]))
    for log in sorted(tmp_path.rglob("server.log")):
        print(f"{log}:\n" + log.read_text(errors="replace")[-6000:])


# Streamlit marks the elements of the previous run stale until the current run replaces them
SETTLED = "document.querySelectorAll('[data-stale=\"true\"]').length === 0"


def _click_until(button, shown, tries: int = 3, seconds: float = 30) -> None:
    """Click a button until what it opens or starts is shown: a click that lands while Streamlit replaces
    the page is lost with the old element, and a person would click again."""
    for _ in range(tries):
        button.click(timeout=60_000)
        with contextlib.suppress(PlaywrightTimeout):
            shown.wait_for(timeout=seconds * 1000)
            return
    raise AssertionError(f"clicking {button} never showed {shown}")


def _ask(page, question: str) -> None:
    """Type a question once the page is idle and check it was taken.

    Streamlit clears the input when it takes a question. Text sent while it replaces the page after the
    previous answer can be dropped with the old input box and stays there: then Enter is pressed again,
    as a person would, but only when the question has not appeared in the conversation either (a second
    Enter on a question already taken would stop its answer and ask it twice).
    """
    page.wait_for_function(SETTLED, timeout=60_000)
    asked = page.get_by_test_id("stChatMessage").filter(has_text=question).count()
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    taken = """([question, asked]) => {
        const box = document.querySelector('[data-testid="stChatInputTextArea"]');
        const shown = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
            .filter(m => m.innerText.includes(question)).length;
        return shown > asked || (box !== null && box.value === '');
    }"""
    for _ in range(3):
        box.press("Enter")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(taken, arg=[question, asked], timeout=30_000)
            return
    raise AssertionError(f"the question was not taken after three tries: {question}")


def test_sample_upload_ask_and_open_citation(app_url, page, tmp_path):
    page.goto(app_url)
    page.get_by_role("button", name="Load the sample handbook").click(timeout=60_000)
    page.get_by_text("5 documents").wait_for(timeout=240_000)

    _ask(page, "工作满十二年的员工每年有几天年假？")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    answer.get_by_text("摘录式回答").wait_for(timeout=60_000)
    citation = answer.get_by_text("员工手册.pdf · p.").first
    citation.click(timeout=180_000)  # the first answer loads the segmenter and the dictionary
    assert "年假" in answer.get_by_test_id("stExpanderDetails").first.inner_text(timeout=10_000)

    _ask(page, "How many days a week can I work from home?")
    english = page.get_by_test_id("stChatMessage").nth(3)
    english.get_by_text("Extractive answer").wait_for(timeout=60_000)
    # wait for the finished answer: while Streamlit reruns, stale elements of the last run can linger
    english.get_by_text("Remote_Work_Policy.pdf · p.").first.wait_for(timeout=60_000)
    assert "3 days per week" in english.inner_text()
    if os.environ.get("ZHIKU_SCREENSHOT"):
        # let the rerun finish: elements of the previous run stay on screen, marked stale, until replaced
        page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=os.environ["ZHIKU_SCREENSHOT"], full_page=False)

    # upload a file of our own through the browser, then ask about it
    note = tmp_path / "cafeteria.md"
    note.write_text("# Cafeteria\n\nThe staff cafeteria on floor 3 serves breakfast from 7:30 to 9:00.", encoding="utf-8")
    page.get_by_text("Upload documents").click()
    page.locator("input[type=file]").set_input_files(str(note))
    page.get_by_role("button", name="Index these files").click(timeout=30_000)
    page.get_by_text("6 documents").wait_for(timeout=120_000)
    _ask(page, "When does the cafeteria serve breakfast?")
    third = page.get_by_test_id("stChatMessage").nth(5)
    third.get_by_text("cafeteria.md").first.wait_for(timeout=60_000)
    third.get_by_text("7:30").first.wait_for(timeout=10_000)


class _Counter(BaseHTTPRequestHandler):
    """Counts every request: any hit means the browser fetched something a document or a model named."""

    def do_GET(self):
        self.server.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_POST = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def leak_server():
    """An HTTP server on 127.0.0.1 that records the paths it is asked for."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _payloads(origin: str, tag: str) -> str:
    """Every way Markdown or HTML can make a browser fetch (or link to) a URL, each naming its own path."""
    return (f"![x]({origin}/leak-{tag}-image) <img src=\"{origin}/leak-{tag}-html\"> ![y][{tag}ref] "
            f"<{origin}/leak-{tag}-autolink> {origin}/leak-{tag}-literal www.example.com/leak-{tag}-www")


def _elements_naming(page, marker: str) -> list[str]:
    """Elements whose href, src or srcset contains marker."""
    return page.evaluate(
        "m => [...document.querySelectorAll('[href],[src],[srcset]')].map(e => e.outerHTML)"
        ".filter(h => h.includes(m))", marker)


def test_untrusted_text_makes_the_browser_fetch_nothing(tmp_path, page, leak_server):
    """Regression: answers, captions, alerts and expander labels rendered images named by documents and models."""
    origin = f"http://127.0.0.1:{leak_server.server_address[1]}"
    # a file name holds no "/" (and the upload cuts it at "\\"): it can still name a URL on the app's own server
    doc = tmp_path / "travel ![n](leak-name-image) <img src=leak-name-html>.md"
    doc.write_text(
        f"# Travel desk ![h]({origin}/leak-heading-image)\n\n"
        f"The travel desk books hotels up to 500 yuan per night {_payloads(origin, 'doc')}\n\n"
        f"[docref]: {origin}/leak-doc-reference\n",
        encoding="utf-8",
    )
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    with FakeOllama(models=["qwen2.5:7b-instruct"]) as fake, _serve_app(tmp_path, fake.host) as url:
        fake.reply = lambda body: (f"The travel desk books hotels up to 500 yuan per night [1]. "
                                   f"{_payloads(origin, 'reply')}\n\n[replyref]: {origin}/leak-reply-reference\n")
        page.goto(url)
        page.get_by_text("Answers written by Ollama").wait_for(timeout=60_000)
        page.locator("input[type=file]").set_input_files(str(doc))  # the upload panel is open while empty
        page.get_by_role("button", name="Index these files").click(timeout=30_000)
        page.get_by_text("1 documents").wait_for(timeout=120_000)

        _ask(page, "How much does the travel desk allow for hotels per night?")
        reply = page.get_by_test_id("stChatMessage").nth(1)
        reply.get_by_test_id("stExpander").first.wait_for(timeout=60_000)
        assert "500 yuan per night [1]" in reply.inner_text()

        # Ollama fails with a message of its own: the notice and the extractive answer show document text
        fake.fail, fake.error_message = "http500", f"model crashed {_payloads(origin, 'notice')}"
        _ask(page, "What does the travel desk book for hotels per night in yuan?")
        fallback = page.get_by_test_id("stChatMessage").nth(3)
        fallback.get_by_text("Extractive answer").wait_for(timeout=60_000)
        fallback.get_by_test_id("stExpander").first.wait_for(timeout=60_000)
        page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=30_000)
        for expander in page.get_by_test_id("stExpander").all():
            expander.locator("summary").click()
        page.wait_for_timeout(1000)
        assert "500 yuan" in fallback.inner_text() and "model crashed" in fallback.inner_text()
        label = fallback.get_by_test_id("stExpander").first.locator("summary").inner_text()
        links = _elements_naming(page, "leak-")
        page.reload()  # the sidebar now shows Ollama's problem, the conversation list the question
        page.get_by_text("model crashed").first.wait_for(timeout=30_000)
        page.get_by_test_id("stSidebar").get_by_text("Documents", exact=True).click()  # the file name in a table
        page.get_by_test_id("stDataFrame").wait_for(timeout=30_000)
        page.wait_for_timeout(2000)
        links += _elements_naming(page, "leak-")
    assert leak_server.hits == [], f"the browser fetched {leak_server.hits}"
    assert [u for u in requests if "leak-" in u] == [], "a file name made the browser fetch from the app"
    assert links == [], "untrusted URLs must show as plain text, not links"
    foreign = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
    assert foreign == [], f"the browser reached beyond the app: {foreign}"
    assert f"{doc.name}" in label, "the file name shows literally"


def test_employees_see_no_developer_toolbar(app_url, page):
    """The shipped .streamlit/config.toml (toolbarMode viewer) hides Deploy, even on localhost."""
    page.goto(app_url)
    page.get_by_text("知库 zhiku").first.wait_for(timeout=60_000)
    page.get_by_test_id("stToolbar").wait_for(timeout=30_000)
    assert page.get_by_test_id("stAppDeployButton").count() == 0


def test_an_idle_page_asks_the_server_for_nothing(app_url, page, tmp_path):
    """The upload rows and the re-index progress follow their jobs each second only while one runs: a page
    left open after its upload has finished sends the server nothing (it used to ask for two reruns a
    second, forever, and each overlapping rerun of the whole page could break Streamlit's page)."""
    sent: list[float] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda _payload: sent.append(time.monotonic())))
    page.goto(app_url)
    note = tmp_path / "parking.md"
    note.write_text("# Parking\n\nStaff park on level B2; visitors register at the front desk.", encoding="utf-8")
    page.locator("input[type=file]").set_input_files(str(note))
    page.get_by_role("button", name="Index these files").click(timeout=30_000)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("parking.md: indexed").wait_for(timeout=120_000)  # followed while it ran
    page.get_by_text("1 documents").wait_for(timeout=30_000)
    page.wait_for_function(SETTLED, timeout=30_000)
    page.wait_for_timeout(2_000)
    quiet_from = len(sent)
    page.wait_for_timeout(5_000)
    assert len(sent) == quiet_from, f"{len(sent) - quiet_from} messages in 5 s from an idle page"
    # and it still takes a question
    _ask(page, "Where do staff park?")
    page.get_by_test_id("stChatMessage").nth(1).get_by_text("parking.md").first.wait_for(timeout=120_000)
