"""Live: stream the microphone over WebRTC and follow the emotion about once a second."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from ser_core.app import adapt, support, views, plots, webrtc_setup, words
from ser_core.inference.audio import AudioError
from ser_core.app.live_audio import AudioRingBuffer, RollingTimeline, make_audio_frame_callback

UPDATE_SECONDS = 1.0
BUFFER_SECONDS = 10.0
QUIET_DBFS = -55.0  # below this RMS a window is background noise, not speech
CONNECT_TIMEOUT_S = 15.0
NO_AUDIO_TIMEOUT_S = 5.0

support.ensure_entrypoint()
st.title("Live emotion")
st.caption(
    "Stream your microphone to the model; every second it classifies the last few seconds. "
    "Audio stays in this server's memory and is never stored."
)
predictor = support.predictor_or_stop()
threshold = predictor.threshold  # the model's "uncertain" cut-off, kept in the JSON result
coverage = support.current_coverage()
window_s = predictor.params.clip_seconds
FALLBACK = "If live streaming does not work here, record a clip on the **Analyse** page instead."

try:
    rtc_configuration, rtc_source = webrtc_setup.rtc_configuration()
except ValueError as error:
    st.error(f"The WebRTC configuration is invalid: {error}")
    st.page_link("pages/analyse.py", label="Record on the Analyse page instead", icon=":material/mic:")
    st.stop()

if not webrtc_setup.has_browser_runtime():
    st.info("Live streaming needs a browser connected to a running server (`streamlit run "
            "streamlit_app.py`); it is off in this simulated run. " + FALLBACK)
    st.page_link("pages/analyse.py", label="Go to Analyse", icon=":material/mic:")
    st.stop()

if webrtc_setup.webrtc_import_unsafe():
    st.error("Live streaming is unavailable in this server process: its WebRTC library has to be "
             "loaded before TensorFlow (start the app with `streamlit run streamlit_app.py`). " + FALLBACK)
    st.page_link("pages/analyse.py", label="Go to Analyse", icon=":material/mic:")
    st.stop()
try:
    from streamlit_webrtc import WebRtcMode, webrtc_streamer
except ImportError:
    st.error("Live streaming needs the streamlit-webrtc package, which is not installed. " + FALLBACK)
    st.page_link("pages/analyse.py", label="Go to Analyse", icon=":material/mic:")
    st.stop()

collect = False
if adapt.supported(predictor):
    collect = views.live_controls(adapt.current(), window_s)

# Per-session state. The buffer is the only thing the WebRTC thread touches.
if "live_buffer" not in st.session_state:
    st.session_state.live_buffer = AudioRingBuffer(BUFFER_SECONDS)
    st.session_state.live_callback = make_audio_frame_callback(st.session_state.live_buffer)
    st.session_state.live_timeline = RollingTimeline(max_points=90)
buffer: AudioRingBuffer = st.session_state.live_buffer
timeline: RollingTimeline = st.session_state.live_timeline

try:
    context = webrtc_streamer(
        key="live-audio",
        mode=WebRtcMode.SENDONLY,
        rtc_configuration=rtc_configuration,
        media_stream_constraints={"audio": True, "video": False},
        audio_frame_callback=st.session_state.live_callback,
        async_processing=True,
    )
except Exception:
    support.show_unexpected_error("starting the live stream")
    st.page_link("pages/analyse.py", label="Record on the Analyse page instead", icon=":material/mic:")
    st.stop()

playing = bool(context.state.playing)
signalling = bool(context.state.signalling)
# A new stream starts from an empty buffer and timeline.
if (playing or signalling) and not st.session_state.get("live_active"):
    buffer.clear()
    timeline.clear()
    st.session_state.live_started = time.monotonic()
st.session_state.live_active = playing or signalling

st.caption(FALLBACK)
with st.expander("Connection details"):
    st.caption(f"The browser sends its microphone to this server over WebRTC. Relay (ICE) servers: {rtc_source}; "
               "set SER_ICE_SERVERS when the app is served to other networks (docs/app.md).")


@st.fragment(run_every=UPDATE_SECONDS if (playing or signalling) else None)
def live_panel() -> None:
    """Re-run every second while streaming: read the buffer, classify, redraw."""
    if adapt.supported(predictor):  # redrawn here, so it follows what the stream adds
        views.adaptation_line(adapt.current(), adapt.is_on())
    stats = buffer.stats()
    waited = time.monotonic() - st.session_state.get("live_started", time.monotonic())
    if not playing:
        if signalling and waited > CONNECT_TIMEOUT_S:
            st.error(
                f"The connection has not come up after {waited:.0f} s. A firewall or NAT between "
                "your browser and this server may block WebRTC; remote deployments need STUN/TURN "
                "servers (see docs/app.md, SER_ICE_SERVERS). " + FALLBACK
            )
        elif signalling:
            st.info("Connecting…")
        else:
            st.info("Press **START** and allow the microphone. Speak naturally; the result follows "
                    f"the last {window_s:g} s.")
        if timeline.points():
            _draw_timeline()
        return

    if stats.frames == 0 or (stats.seconds_since_last_push() or 0) > NO_AUDIO_TIMEOUT_S:
        if waited > NO_AUDIO_TIMEOUT_S:
            st.error(
                "Connected, but no audio is arriving. Check that the right microphone is selected "
                "and not muted; otherwise the network may be dropping the media. " + FALLBACK
            )
        else:
            st.info("Waiting for audio…")
        return

    rate_khz = (stats.sample_rate or 0) / 1000
    st.caption(f"Receiving audio: {rate_khz:g} kHz, {stats.seconds_buffered:.1f} s buffered.")
    if stats.seconds_buffered < min(1.0, window_s):
        st.info("Listening…")
        return
    wave = buffer.latest_at(window_s, predictor.params.sample_rate)
    rms = float(np.sqrt(np.mean(np.square(wave)))) if wave.size else 0.0
    if 20 * np.log10(max(rms, 1e-10)) < QUIET_DBFS:
        st.info("Too quiet to classify: speak a little louder or closer to the microphone.")
        _draw_timeline()
        return
    try:
        prediction = adapt.classify_live(
            predictor, wave, predictor.params.sample_rate, threshold, collect=collect,
            stream_seconds=stats.samples / (stats.sample_rate or 1), window_seconds=window_s, coverage=coverage)
    except AudioError as error:  # silence or too little speech: a state of the stream, not a fault
        views.show_audio_problem(error, live=True)
        _draw_timeline()
        return
    except Exception:
        support.show_unexpected_error("classifying the live audio")
        return
    timeline.add(prediction.probabilities, emotions=views.answer_of(prediction))
    views.headline(prediction, predictor.config)
    if collect or getattr(prediction, "adapted", False):
        st.caption(views.live_adaptation_text(adapt.current(), prediction))
    views.render_probabilities(prediction, "live")
    _draw_timeline()


def _draw_timeline() -> None:
    bands = timeline.bands()
    if len(bands) < 2:
        return
    st.subheader("Recent emotion")
    st.altair_chart(
        plots.answer_bands_chart(bands, list(predictor.emotions), words.answer_text, x_title="Seconds since start",
                                 labels=False),
        width="stretch", key="live_timeline_chart",
    )
    st.caption("Each band is one update's answer: solid when it named one emotion, fainter for two, faint when "
               "it could not tell. Point at a band to read it.")


live_panel()
