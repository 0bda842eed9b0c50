"""The web app as employees and admins use it, in headless Chromium: sign in, upload, ask, preview a cited page,
leave feedback, browse the documents table, re-index while answering, switch language.

With ZHIKU_SCREENSHOTS=<dir> the test also writes the README's screenshots (chat.png, documents.png, admin.png).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from test_web import SETTLED, _ask, _click_until, _serve_app, page  # noqa: F401 - page is a fixture
from test_web_auth import _sign_in

pytestmark = pytest.mark.browser

SAMPLE = ROOT / "data" / "sample"


def _settle(page) -> None:
    """Wait until Streamlit's rerun has replaced every element of the previous run."""
    page.wait_for_function(SETTLED, timeout=60_000)
    page.wait_for_timeout(500)


def _shot(page, name: str, height: int | None = None) -> None:
    """A README screenshot (with ZHIKU_SCREENSHOTS set), optionally of a taller window."""
    folder = os.environ.get("ZHIKU_SCREENSHOTS")
    if folder:
        size = page.viewport_size
        if height:
            page.set_viewport_size({"width": size["width"], "height": height})
        _settle(page)
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=False)
        page.set_viewport_size(size)


def _upload_rows(page) -> str:
    return page.get_by_test_id("stSidebar").inner_text()


def _store(data: Path):
    from zhiku.store import Store

    return Store.open(f"sqlite:///{data / 'zhiku.db'}")


def test_employee_and_admin_day_in_the_browser(tmp_path, page):  # noqa: F811
    data = tmp_path / "data"
    files = tmp_path / "upload"
    files.mkdir()
    for f in SAMPLE.iterdir():
        shutil.copy(f, files / f.name)
    (files / "broken.pdf").write_bytes(b"this is not a PDF at all")
    env = {"ZHIKU_AUTH": "on", "ZHIKU_ADMIN_USER": "boss", "ZHIKU_ADMIN_PASSWORD": "boss-password",
           "ZHIKU_PAUSE_AT": "switch"}
    with _serve_app(tmp_path, extra_env=env) as url, _screenshot_on_failure(page, tmp_path):
        page.goto(url)
        page.wait_for_url(f"{url}/login")
        _sign_in(page, "boss", "boss-password")
        page.wait_for_url(f"{url}/")

        # first run: what zhiku is, and an empty knowledge base that says so
        page.get_by_text("answers questions from your company's documents").wait_for(timeout=60_000)
        page.get_by_text("The knowledge base is empty").first.wait_for()

        # several files at once, one of them broken: every row ends indexed or failed with its reason
        page.locator("input[type=file]").set_input_files(sorted(str(f) for f in files.iterdir()))
        page.get_by_role("button", name="Index these files").click(timeout=30_000)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("broken.pdf:").first.wait_for(timeout=60_000)
        page.get_by_text("5 documents").wait_for(timeout=300_000)
        page.reload()  # the rows come from the job table: a reload keeps them
        page.get_by_text("5 documents").wait_for(timeout=60_000)
        # the catalogue counts a document once it is published; its job row says indexed a moment later
        expected = [f"{f.name}: indexed" for f in SAMPLE.iterdir()]
        _wait_for(lambda: all(e in _upload_rows(page) for e in expected), 60, "not every row ended indexed")
        rows = _upload_rows(page)
        assert "broken.pdf" in rows and "indexed" not in rows.split("broken.pdf", 1)[1].split("\n", 1)[0]

        # ask in Chinese: the answer quotes the matching clause, the citation opens its PDF page
        _ask(page, "工作满十二年的员工每年有几天年假？")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        # the first question loads the segmenter, the dictionary and the ranker: slow on a busy machine
        answer.get_by_text("员工手册.pdf").first.wait_for(timeout=300_000)
        _settle(page)
        assert "15 天" in answer.inner_text()
        answer.get_by_test_id("stExpander").first.locator("summary").click()
        answer.get_by_role("button", name="View page").first.wait_for(timeout=10_000)
        _shot(page, "chat.png", height=1250)
        dialog = page.get_by_test_id("stDialog")
        _click_until(answer.get_by_role("button", name="View page").first, dialog)
        dialog.locator("img").first.wait_for(timeout=60_000)
        assert dialog.locator("img").first.evaluate("img => img.naturalWidth") > 300
        _shot(page, "preview.png")
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden", timeout=10_000)

        # feedback: thumbs up with a comment, stored with the answer
        answer.get_by_test_id("stFeedback").locator("button").first.click()
        comment = answer.get_by_placeholder("Comment (optional)")
        comment.wait_for(timeout=30_000)
        comment.fill("right clause, thanks")
        answer.get_by_role("button", name="Send").click()
        page.get_by_text("your feedback is saved").wait_for(timeout=30_000)

        # a reload (a new session) brings the conversation back, with its citations
        page.reload()
        restored = page.get_by_test_id("stChatMessage").nth(1)
        restored.get_by_text("员工手册.pdf").first.wait_for(timeout=60_000)
        # the saved answer's text is drawn by its own element, which can arrive after its sources
        restored.get_by_text("15 天").first.wait_for(timeout=30_000)
        store = _store(data)
        try:
            from zhiku.retrieval.types import LOCAL_ADMIN

            [row] = store.feedback_rows(LOCAL_ADMIN)
            assert row["rating"] == 1 and row["comment"] == "right clause, thanks"
            assert row["question"] == "工作满十二年的员工每年有几天年假？"
        finally:
            store.close()

        # dismissing the finished rows (they stay dismissed after a reload)
        sidebar.get_by_role("button", name="Dismiss finished").click()
        sidebar.get_by_text("onboarding.md: indexed").wait_for(state="detached", timeout=30_000)

        # the documents table: the five files, the broken one with its reason
        page.get_by_test_id("stSidebar").get_by_text("Documents", exact=True).click()
        table = page.get_by_test_id("stDataFrame")
        table.wait_for(timeout=60_000)
        _settle(page)
        _shot(page, "documents.png")

        # admin: start a re-index from the sidebar; it waits before the swap (ZHIKU_PAUSE_AT=switch) while a
        # question is answered
        active_before = _active_generation(data)
        sidebar.get_by_text("Administration", exact=True).click()
        page.get_by_text("Health").first.wait_for(timeout=60_000)
        sidebar.get_by_text("Re-index", exact=True).click()
        _click_until(sidebar.get_by_role("button", name="Start re-index"),
                     sidebar.get_by_text(re.compile("Re-index queued|Re-indexing")).first)
        marker = data / "paused-switch"
        _wait_for(marker.exists, 300, "the re-index never reached the swap")
        # the progress bar follows the job row: every document embedded, waiting for the swap
        sidebar.get_by_text("Re-indexing: 5 of 5 documents").wait_for(timeout=60_000)
        _shot(page, "admin.png")
        page.get_by_test_id("stSidebar").get_by_text("Chat", exact=True).click()
        page.get_by_role("button", name="New chat").click(timeout=30_000)
        page.wait_for_function("!location.search.includes('c=')", timeout=30_000)
        page.get_by_text("Ask the company knowledge base").wait_for(timeout=30_000)
        _settle(page)
        _ask(page, "How many days a week can I work from home?")
        during = page.get_by_test_id("stChatMessage").nth(1)
        during.get_by_text("Remote_Work_Policy.pdf").first.wait_for(timeout=300_000)
        assert "3 days per week" in during.inner_text()
        assert _active_generation(data) == active_before  # answered by the old index, mid re-index
        marker.unlink()  # let the re-index swap
        _wait_for(lambda: _active_generation(data) != active_before, 120, "the re-index never swapped")
        sidebar.get_by_text("Re-index finished").wait_for(timeout=60_000)

        # the interface in Chinese; the choice stays in the URL across a reload
        page.get_by_test_id("stSidebar").get_by_text("中文", exact=True).click()
        page.get_by_text("新对话").first.wait_for(timeout=30_000)
        page.reload()
        page.get_by_text("新对话").first.wait_for(timeout=60_000)
        assert "lang=zh" in page.url


@contextlib.contextmanager
def _screenshot_on_failure(page, tmp_path: Path):
    """A failing step leaves a picture of the page next to the test's files."""
    try:
        yield
    except BaseException:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"the page at the failure: {tmp_path / 'failure.png'}")
        raise


def _active_generation(data: Path) -> int | None:
    store = _store(data)
    try:
        gen = store.active_generation()
        return gen.id if gen else None
    finally:
        store.close()


def _wait_for(condition, seconds: float, message: str) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def test_stop_keeps_the_partial_answer_and_delete_asks_first(tmp_path, page):  # noqa: F811
    from fake_ollama import FakeOllama
    from zhiku.core.settings import load_settings
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    note = tmp_path / "canteen.md"
    note.write_text("# Canteen\n\nThe canteen on floor 3 serves lunch from 11:30 to 13:30 every working day.",
                    encoding="utf-8")
    services = build_services(load_settings(data_dir=tmp_path / "data"))
    try:
        services.ingestor.ingest_paths([note], "default", LOCAL_ADMIN)
    finally:
        services.close()
    long_reply = "The canteen serves lunch from 11:30 to 13:30 [1]. " + "It is on floor 3 and open every working day. " * 40
    with FakeOllama(models=["qwen2.5:7b-instruct"], reply=lambda body: long_reply, chunk_size=8,
                    chunk_delay=0.15) as fake, \
            _serve_app(tmp_path, fake.host) as url, _screenshot_on_failure(page, tmp_path):
        page.goto(url)
        page.get_by_text("Answers written by Ollama").wait_for(timeout=60_000)
        _ask(page, "When does the canteen serve lunch?")
        reply = page.get_by_test_id("stChatMessage").nth(1)
        reply.get_by_text("11:30").first.wait_for(timeout=60_000)  # streaming has begun
        reply.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped before the answer was complete").wait_for(timeout=30_000)
        _settle(page)
        shown = page.get_by_test_id("stChatMessage").nth(1).inner_text()
        assert "11:30" in shown and shown.count("working day") < 40  # what was written so far, no more
        store = _store(tmp_path / "data")
        try:
            [conv] = store.conversations(LOCAL_ADMIN)
            saved = store.messages(conv.id, LOCAL_ADMIN)
        finally:
            store.close()
        assert saved[0].mode is None and saved[1].mode in ("stopped", "streaming") and 0 < len(saved[1].content) < len(long_reply)

        # delete from the documents table: select the row, confirm in a dialog
        page.get_by_test_id("stSidebar").get_by_text("Documents", exact=True).click()
        table = page.get_by_test_id("stDataFrame")
        table.wait_for(timeout=60_000)
        _settle(page)
        table.click(position={"x": 18, "y": 54})  # the first row's selection box
        page.get_by_role("button", name="Delete selected").click(timeout=30_000)
        dialog = page.get_by_test_id("stDialog")
        dialog.get_by_text("canteen.md").wait_for(timeout=30_000)
        dialog.get_by_role("button", name="Delete", exact=True).click()
        page.get_by_text("0 documents").wait_for(timeout=60_000)


def test_an_upload_finishing_does_not_cut_off_the_answer_being_written(tmp_path, page):  # noqa: F811
    """An upload that finishes in the background refreshes the page; it must wait for the answer being written."""
    from fake_ollama import FakeOllama
    from zhiku.core.settings import load_settings
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    note = tmp_path / "canteen.md"
    note.write_text("# Canteen\n\nThe canteen on floor 3 serves lunch from 11:30 to 13:30 every working day.",
                    encoding="utf-8")
    long_reply = "The canteen serves lunch from 11:30 to 13:30 [1]. " + "It is on floor 3 and open every working day. " * 30
    marker = tmp_path / "data" / "paused-published"
    with FakeOllama(models=["qwen2.5:7b-instruct"], reply=lambda body: long_reply, chunk_size=8,
                    chunk_delay=0.1) as fake, \
            _serve_app(tmp_path, fake.host, {"ZHIKU_PAUSE_AT": "published"}) as url, \
            _screenshot_on_failure(page, tmp_path):
        page.goto(url)
        page.get_by_text("Answers written by Ollama").wait_for(timeout=60_000)
        # an upload from another session (a colleague, or this user in another tab): queued for the worker
        services = build_services(load_settings(data_dir=tmp_path / "data"))
        try:
            services.ingestor.enqueue_upload(note.name, note.read_bytes(), "default", LOCAL_ADMIN, "batch-1")
        finally:
            services.close()
        # the document is searchable, its job row not yet finished
        _wait_for(marker.exists, 120, "the upload never reached the pause after publishing")
        page.reload()
        page.get_by_text("1 documents").first.wait_for(timeout=60_000)
        page.get_by_text("canteen.md: finishing").wait_for(timeout=60_000)  # its row: not finished yet
        _ask(page, "When does the canteen serve lunch?")
        reply = page.get_by_test_id("stChatMessage").nth(1)
        reply.get_by_text("11:30").first.wait_for(timeout=60_000)  # streaming has begun
        marker.unlink()  # the upload finishes while the answer is being written

        def saved():
            store = _store(tmp_path / "data")
            try:
                [conv] = store.conversations(LOCAL_ADMIN)
                return store.messages(conv.id, LOCAL_ADMIN)[1]
            finally:
                store.close()

        _wait_for(lambda: saved().mode not in ("streaming", None), 120, "the answer never finished")
        answer = saved()
        assert answer.mode == "ollama" and answer.content.count("working day") == 30, answer.mode
        reply.get_by_text("canteen.md").first.wait_for(timeout=60_000)  # its sources are shown
        page.get_by_text("canteen.md: indexed").wait_for(timeout=60_000)  # and the upload row caught up
