"""Speech emotion recognition app: the entry point (`streamlit run streamlit_app.py`).

It defines the navigation and the sidebar shared by every page; the pages themselves live in
``pages/`` and call ``ser_core``.
"""

from __future__ import annotations

import logging

import streamlit as st

# The page config and the navigation come first, before anything slow: until st.navigation has run
# once, a fresh server shows Streamlit's default menu of pages/ (lowercase file names) instead.
st.set_page_config(page_title="Speech emotion recognition", page_icon=":material/graphic_eq:", layout="wide")

from ser_core.app.front_end import WHISPER, configured_front_end  # noqa: E402  (JSON and numpy only)

USE = [
    st.Page("pages/analyse.py", title="Analyse", icon=":material/graphic_eq:", default=True),
    st.Page("pages/live.py", title="Live", icon=":material/sensors:"),
]
if configured_front_end() == WHISPER:  # only the Whisper model can adapt
    USE.append(st.Page("pages/adapt.py", title="Adapt to my voice", icon=":material/record_voice_over:"))
PAGES = {
    "Use the model": USE,
    "How good is it": [
        st.Page("pages/test_results.py", title="Test results", icon=":material/fact_check:"),
        st.Page("pages/training_curves.py", title="Training curves", icon=":material/show_chart:"),
    ],
}
navigation = st.navigation(PAGES)

from ser_core.app import webrtc_setup  # noqa: E402

# Load aiortc's SRTP library (through streamlit-webrtc) before anything loads TensorFlow:
# initialising libsrtp in a process where TensorFlow is already loaded segfaults (a native symbol
# clash); the other order is fine. The Live page refuses to start rather than crash if it is late.
webrtc_setup.preload_webrtc()

from ser_core.app import support  # noqa: E402  (after the preload, on purpose)

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
support.render_sidebar(support.load_reports())
navigation.run()
