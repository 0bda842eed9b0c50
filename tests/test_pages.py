"""Page logic of the web app (Streamlit AppTest): saved conversations, the collection picker, the documents table,
the first run and the interface language. The browser tests (test_webapp.py) cover what needs a real page."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from zhiku.retrieval.types import LOCAL_ADMIN

HR = "# Leave\n\nParental leave is 98 days for every parent. Requests go to HR two months ahead."
IT = "# Laptops\n\nLaptops are replaced every four years. Broken screens are repaired within five days."


# The page as a script. The guard matters: parser processes started while AppTest runs the script re-run it
# as __mp_main__ (multiprocessing prepares a child from the parent's __main__), where it must do nothing.
PAGE = """
if __name__ == "__main__":
    from pathlib import Path

    from zhiku.ui import page

    page.render(Path("no-sample-here"))
"""


def _page_test() -> AppTest:
    return AppTest.from_string(PAGE)


@pytest.fixture
def services(monkeypatch, tmp_path):
    """The web app's shared services on an empty data dir (sign-in off: the page acts as the local admin)."""
    from zhiku.ui import web

    monkeypatch.setenv("ZHIKU_AUTH", "off")
    monkeypatch.setattr(web, "_services", None)
    services = web.get_services()
    yield services
    services.close()


@pytest.fixture
def two_collections(services, tmp_path):
    services.accounts.create_collection(LOCAL_ADMIN, "hr", read=["hr"], write=["hr"])
    services.accounts.create_collection(LOCAL_ADMIN, "it", read=["staff"])
    for name, text, collection in (("leave.md", HR, "hr"), ("laptops.md", IT, "it")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        services.ingestor.ingest_paths([tmp_path / name], collection, LOCAL_ADMIN)
    return services


def _run(at: AppTest) -> AppTest:
    at.run(timeout=120)
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]
    return at


def _plain(markdown: str) -> str:
    """A label as the reader sees it: the page escapes Markdown in untrusted text (ui/safe.py)."""
    return markdown.replace("\\", "")


def _labels(at: AppTest) -> list[str]:
    return [_plain(e.label) for e in at.expander]


def test_first_run_explains_zhiku_and_an_empty_knowledge_base_says_so(services):
    at = _run(_page_test())
    text = " ".join(m.value for m in at.markdown)
    assert "answers questions from your company's documents" in text
    assert any("The knowledge base is empty" in i.value for i in at.info)
    at.chat_input[0].set_value("What is the parental leave?")
    _run(at)
    [reply] = [m for m in at.chat_message if m.name == "assistant"]
    assert "The knowledge base is empty" in reply.markdown[0].value  # not "nothing relevant"


def test_a_conversation_is_saved_restored_renamed_and_deleted(two_collections):
    services = two_collections
    at = _run(_page_test())
    at.chat_input[0].set_value("How long is parental leave?")
    _run(at)
    conv_id = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    assert any("leave.md" in label for label in _labels(at))

    # a reload is a new session: the URL names the conversation, the store holds its answers and sources
    again = _page_test()
    again.query_params["c"] = conv_id
    _run(again)
    messages = [m for m in again.chat_message]
    assert [m.name for m in messages] == ["user", "assistant"]
    assert "98 days" in " ".join(md.value for md in messages[1].markdown)
    assert any("[1] leave.md" in label for label in _labels(again))
    assert "How long is parental leave?" in [_plain(b.label) for b in again.sidebar.button]  # listed, titled by the question

    [title] = [w for w in again.text_input if w.label == "Title"]
    title.input("Leave questions")
    [rename] = [b for b in again.button if b.label == "Rename"]
    rename.click()
    _run(again)
    assert services.store.conversation(conv_id, LOCAL_ADMIN).title == "Leave questions"
    [delete] = [b for b in again.button if b.label == "Delete"]
    delete.click()
    _run(again)
    assert services.store.conversations(LOCAL_ADMIN) == []
    assert "c" not in again.query_params


def test_the_collection_picker_narrows_the_search_and_is_kept_with_the_conversation(two_collections):
    services = two_collections
    at = _run(_page_test())
    [picker] = [m for m in at.multiselect if m.label == "Search in"]
    assert picker.value == ["hr", "it"]  # default: every readable collection
    picker.set_value(["it"])
    _run(at)
    at.chat_input[0].set_value("How long is parental leave?")
    _run(at)
    assert not any("leave.md" in label for label in _labels(at))  # hr is not searched
    [conv] = services.store.conversations(LOCAL_ADMIN)
    assert conv.collections == ["it"]


def test_the_documents_table_filters_by_name_and_collection(two_collections):
    at = _page_test()
    at.query_params["view"] = "documents"
    _run(at)
    [table] = at.dataframe
    assert sorted(table.value["name"]) == ["laptops.md", "leave.md"]
    [search] = [w for w in at.text_input if w.label == "Search by name or path"]
    search.input("lap")
    _run(at)
    assert list(at.dataframe[0].value["name"]) == ["laptops.md"]
    [search] = [w for w in at.text_input if w.label == "Search by name or path"]  # this run's widget
    search.input("")
    [collections] = [m for m in at.multiselect if m.label == "Collections"]
    collections.set_value(["hr"])
    _run(at)
    assert list(at.dataframe[0].value["name"]) == ["leave.md"]
    assert list(at.dataframe[0].value["status"]) == ["indexed"]


def test_the_interface_follows_the_language_switch(two_collections):
    at = _page_test()
    at.query_params["lang"] = "zh"
    _run(at)
    labels = [b.label for b in at.sidebar.button]
    assert "新对话" in labels and "New chat" not in labels
    assert at.chat_input[0].placeholder == "用中文或英文提问"
    at.get_by_key("language-switch").set_value("en")  # the switch in the sidebar
    _run(at)
    assert "New chat" in [b.label for b in at.sidebar.button]
    assert at.query_params["lang"] in ("en", ["en"])  # kept in the URL for a reload


def test_every_interface_string_exists_in_both_languages():
    from zhiku.ui.i18n import STRINGS

    for key, (english, chinese) in STRINGS.items():
        assert english.strip() and chinese.strip(), key
        # the same placeholders in both, so a message never fails to format in one language
        import string

        names = lambda s: sorted(f for _, f, _, _ in string.Formatter().parse(s) if f)  # noqa: E731
        assert names(english) == names(chinese), key


def test_a_failed_reindex_says_why_and_the_old_index_keeps_answering(two_collections):
    import time

    services = two_collections
    [leave] = services.store.documents(["hr"])
    services.ingestor.original_path(leave).unlink()  # a stored original lost on disk
    at = _run(_page_test())
    [button] = [b for b in at.sidebar.button if b.label == "Start re-index"]
    button.click()
    _run(at)
    deadline = time.monotonic() + 120
    while services.store.jobs(kinds=("reindex",), limit=1)[0].state in ("queued", "running"):
        assert time.monotonic() < deadline, "the re-index did not end"
        time.sleep(0.2)
    at.run(timeout=120)
    assert not at.exception
    errors = [_plain(e.value) for e in at.sidebar.error]
    assert any("Re-index failed, the previous index keeps serving" in e and "leave.md" in e for e in errors), errors
    at.chat_input[0].set_value("How long is parental leave?")
    at.run(timeout=120)
    assert not at.exception
    assert any("leave.md" in label for label in _labels(at))  # answered from the index that kept serving


def test_reindexing_one_collection_renews_its_documents_and_leaves_the_others(two_collections):
    import time

    services = two_collections
    before = {d.path: d for d in services.store.documents()}
    at = _run(_page_test())
    at.sidebar.selectbox(key="reindex-target").set_value("hr")
    [button] = [b for b in at.sidebar.button if b.label == "Start re-index"]
    button.click()
    _run(at)
    deadline = time.monotonic() + 120
    while any(not j.finished for j in services.store.recent_uploads(LOCAL_ADMIN)):
        assert time.monotonic() < deadline, "the re-index did not end"
        time.sleep(0.2)
    _run(at)
    assert any("Re-indexed 1 documents" in s.value for s in at.sidebar.success)
    after = {d.path: d for d in services.store.documents()}
    assert after["leave.md"].blob != before["leave.md"].blob  # a new version of the hr document
    assert after["leave.md"].content_hash == before["leave.md"].content_hash and after["leave.md"].chunks == 1
    assert after["laptops.md"].blob == before["laptops.md"].blob  # the it collection is untouched
    hits = services.searcher.search("parental leave days", LOCAL_ADMIN)
    assert hits[0].chunk.file_name == "leave.md" and hits[0].chunk.version == after["leave.md"].blob
    from zhiku.retrieval.index import Scope

    assert services.index.count(Scope.for_user(LOCAL_ADMIN)) == 2  # the old version's chunks are gone
