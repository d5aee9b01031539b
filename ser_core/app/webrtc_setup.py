"""WebRTC for the Live page: load streamlit-webrtc before TensorFlow, tell whether a browser can
stream here, and the ICE server configuration.

Why the import order matters: aiortc's SRTP library (libsrtp, loaded with streamlit-webrtc) crashes
the process (a native symbol clash) when it is initialised after TensorFlow's native libraries are
loaded; the other order is fine. ``streamlit_app.py`` therefore calls :func:`preload_webrtc` before
anything can import TensorFlow, and the Live page refuses to start (:func:`webrtc_import_unsafe`)
rather than crash when that did not happen.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import streamlit as st


def preload_webrtc() -> bool:
    """Import streamlit-webrtc (and with it libsrtp) now; False when it is not installed.

    Must run before TensorFlow is imported: libsrtp's initialisation crashes the process when
    TensorFlow's native libraries are already loaded, while the reverse order works.
    """
    if webrtc_import_unsafe():
        return False
    try:
        import streamlit_webrtc  # noqa: F401
    except ImportError:
        return False
    return True


def has_browser_runtime() -> bool:
    """False in bare or simulated runs (``AppTest``), where ``webrtc_streamer`` cannot work:
    it needs the real Streamlit server's session manager to pair with a browser."""
    try:
        from streamlit.runtime import Runtime

        return Runtime.exists() and getattr(Runtime.instance(), "_session_mgr", None) is not None
    except Exception:
        return False


def webrtc_import_unsafe() -> bool:
    """True when importing streamlit-webrtc now would crash the process (see :func:`preload_webrtc`)."""
    return "pylibsrtp" not in sys.modules and "tensorflow" in sys.modules


def rtc_configuration() -> tuple[dict[str, Any], str]:
    """WebRTC configuration and where it came from.

    ``$SER_ICE_SERVERS`` (a JSON list of RTCIceServer objects) wins over ``st.secrets["ice_servers"]``;
    with neither, no ICE servers at all: enough on localhost and the same LAN, and nothing is
    contacted outside. Raises ``ValueError`` for malformed configuration.
    """
    raw = os.environ.get("SER_ICE_SERVERS")
    if raw:
        try:
            servers = json.loads(raw)
        except ValueError as error:
            raise ValueError(f"SER_ICE_SERVERS is not valid JSON: {error}") from error
        source = "the SER_ICE_SERVERS environment variable"
    else:
        servers = None
        try:
            if "ice_servers" in st.secrets:
                servers = st.secrets["ice_servers"]
                servers = [dict(server) for server in servers]
        except FileNotFoundError:
            servers = None
        except Exception as error:  # unreadable secrets.toml
            raise ValueError(f"ice_servers in secrets.toml could not be read: {error}") from error
        source = "st.secrets[\"ice_servers\"]" if servers is not None else "none (localhost only)"
    if servers is None:
        servers = []
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError("ICE servers must be a list of objects, each with a \"urls\" key.")
    return {"iceServers": servers}, source
