"""zhiku web app: `streamlit run app.py`.

Streamlit finds the `st.App` below and serves it with uvicorn: zhiku's routes (sign-in, sign-out,
access-checked downloads) next to the page. Each browser session then runs this same file as its
script, with Streamlit's runtime up, and draws the page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit import runtime

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"

if runtime.exists():  # a browser session runs the page
    from zhiku.ui import page

    page.render(SAMPLE_DIR)
else:  # uvicorn imports this module to find the ASGI app
    from zhiku.ui import web

    app = st.App(__file__, routes=web.routes(), middleware=web.middleware(), lifespan=web.lifespan)
