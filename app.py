"""zhiku web app: `streamlit run app.py`."""

from __future__ import annotations

import atexit
import logging
import threading
from pathlib import Path

import streamlit as st

from zhiku.ui import chat, safe, sidebar
from zhiku.core.errors import ZhikuError
from zhiku.services import Services, build_services
from zhiku.core.settings import load_settings

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="知库 zhiku", page_icon="📚", layout="wide")


@st.cache_resource(show_spinner="Loading the knowledge base…")
def get_services() -> Services:
    """Build every service once per server process."""
    services = build_services(load_settings())
    services.start_worker()  # uploads are queued as jobs; this thread carries them out
    atexit.register(services.close)  # on shutdown: stop the worker, release the index (resumed at next start)
    threading.Thread(target=services.searcher.warm_up, daemon=True, name="zhiku-warm-up").start()
    return services


try:
    services = get_services()
except ZhikuError as e:
    st.error(safe.plain(e))
    st.stop()

sidebar.render(services, SAMPLE_DIR)
chat.render(services)
