"""The catalogue at scale (no 10,000 cap) and a clean shutdown of the web app's worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, assert_consistent, run_cli
from zhiku.retrieval.types import LOCAL_ADMIN


def test_ten_thousand_and_fifty_documents_are_all_counted_and_deletable(make_services, tmp_path):
    """Regression: with the index as catalogue, stats said 10,000 and delete could not find the rest."""
    folder = tmp_path / "notes"
    for group in range(101):
        sub = folder / f"g{group:03d}"
        sub.mkdir(parents=True)
        for i in range(100 if group < 100 else 50):
            # 50 texts shared by many files, as boilerplate is: each file is still its own document
            (sub / f"n{i:03d}.txt").write_text(f"Note {i % 50}: meeting room {i % 50} is free.", encoding="utf-8")
    env = {"ZHIKU_DATA_DIR": str(tmp_path / "data")}
    result = run_cli("ingest", str(folder), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = json.loads(run_cli("stats", "--json", env=env).stdout)
    assert stats["documents"] == 10_050 and stats["chunks"] == 10_050
    last = run_cli("delete", "g100/n049.txt", "--json", env=env)
    assert last.returncode == 0, last.stderr
    assert json.loads(last.stdout)["deleted"][0]["path"] == "g100/n049.txt"
    assert json.loads(run_cli("stats", "--json", env=env).stdout)["documents"] == 10_049
    services = make_services(data_dir=tmp_path / "data")
    assert len(assert_consistent(services)) == 10_049


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_app_exits_promptly_on_sigterm_and_the_next_start_resumes_its_jobs(make_services, tmp_path):
    """Regression: `streamlit run` was still alive minutes after SIGTERM, holding the index lock."""
    data = tmp_path / "data"
    folder = tmp_path / "kb"
    folder.mkdir()
    for i in range(6):
        (folder / f"doc{i}.md").write_text(
            "# Rules\n\n" + " ".join(f"Rule {j} of document {i} keeps receipt {i}{j}." for j in range(60)),
            encoding="utf-8")
    producer = make_services(data_dir=data)
    _, jobs = producer.ingestor.enqueue_paths([folder], "default", LOCAL_ADMIN)
    producer.close()
    port = _free_port()
    env = {**os.environ, "ZHIKU_DATA_DIR": str(data)}
    app = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import urllib.request

        deadline = time.monotonic() + 120
        while True:  # the worker starts with the first page load
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                assert app.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            checker = make_services(data_dir=data)
            while not any(j.state == "running" for j in checker.store.jobs(ids=[j.id for j in jobs])):
                assert time.monotonic() < deadline + 120, "the app's worker never claimed the queued jobs"
                time.sleep(0.2)
            checker.close()
            browser.close()
        started = time.monotonic()
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=20)
        elapsed = time.monotonic() - started
        assert elapsed < 10, f"the app took {elapsed:.1f} s to exit"
    finally:
        if app.poll() is None:
            app.kill()
    # nothing holds the index now, and the next worker resumes what the app left
    result = run_cli("ingest", str(folder), "--json", env={"ZHIKU_DATA_DIR": str(data)})
    assert result.returncode == 0, result.stderr
    services = make_services(data_dir=data)
    assert len(assert_consistent(services)) == 6
    assert all(j.finished for j in services.store.jobs(ids=[j.id for j in jobs]))
