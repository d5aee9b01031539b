"""Speech emotion recognition app: the entry point (`streamlit run streamlit_app.py`).

It defines the navigation and the sidebar shared by every page; the pages themselves live in
``pages/`` and call ``ser_core``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import streamlit as st

# The page config and the navigation come first, before anything slow.
st.set_page_config(page_title="Speech emotion recognition", page_icon=":material/graphic_eq:", layout="wide")


def model_can_adapt() -> bool:
    """Whether the served model is the Whisper model (the one that adapts), from its config.json.

    Read with the standard library only: importing ``ser_core`` (numpy) before ``st.navigation``
    lets a fresh server draw Streamlit's default menu of ``pages/`` first.
    """
    folder = Path(os.environ.get("SER_ARTIFACTS_DIR") or Path(__file__).resolve().parent / "artifacts")
    if (folder / "current").is_dir():  # the link a training run publishes its model through
        folder = folder / "current"
    try:
        return json.loads((folder / "config.json").read_text()).get("kind") == "whisper_embedding_head"
    except (OSError, ValueError, AttributeError):
        return False


USE = [
    st.Page("pages/analyse.py", title="Analyse", icon=":material/graphic_eq:", default=True),
    st.Page("pages/live.py", title="Live", icon=":material/sensors:"),
]
if model_can_adapt():
    USE.append(st.Page("pages/adapt.py", title="Adapt to my voice", icon=":material/record_voice_over:"))
PAGES = {
    "Use the model": USE,
    "How good is it": [
        st.Page("pages/test_results.py", title="Test results", icon=":material/fact_check:"),
        st.Page("pages/training_curves.py", title="Training curves", icon=":material/show_chart:"),
    ],
}
# The menu is drawn here as page links rather than by st.navigation: on a fresh server, Streamlit's
# first run lists pages/ as its own menu (lowercase file names) before this script can replace it,
# and .streamlit/config.toml (client.showSidebarNavigation = false) hides that menu, ours included.
navigation = st.navigation(PAGES, position="hidden")
with st.sidebar:
    for section, section_pages in PAGES.items():
        st.caption(section)
        for page in section_pages:
            st.page_link(page)

from ser_core.app import webrtc_setup  # noqa: E402

# Load aiortc's SRTP library (through streamlit-webrtc) before anything loads TensorFlow:
# initialising libsrtp in a process where TensorFlow is already loaded segfaults (a native symbol
# clash); the other order is fine. The Live page refuses to start rather than crash if it is late.
webrtc_setup.preload_webrtc()

from ser_core.app import support  # noqa: E402  (after the preload, on purpose)

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
support.render_sidebar(support.load_reports())
navigation.run()
