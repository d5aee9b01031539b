"""Live: stream the microphone over WebRTC and follow the emotion about once a second."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from ser_core.app import adapt, support, views, plots, webrtc_setup
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
threshold = support.current_threshold()
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
    views.adaptation_status(adapt.current(), adapt.is_on(), "live_adapt_switch", show_text=False)
    collect = st.toggle(
        "Learn my voice while I talk", key="live_collect",
        help=f"Each {window_s:g} s of your speech is added to the adaptation statistics (this session only, "
             "nothing stored on disk). Speak normally; the results adapt once there is enough. What it hears "
             "becomes your \"normal\": if you stay in one mood the whole time, it will stop naming that mood.")

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

st.caption(f"ICE servers: {rtc_source}. {FALLBACK}")


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
            stream_seconds=stats.samples / (stats.sample_rate or 1), window_seconds=window_s)
    except AudioError as error:  # silence or too little speech: a state of the stream, not a fault
        views.show_audio_problem(error, live=True)
        _draw_timeline()
        return
    except Exception:
        support.show_unexpected_error("classifying the live audio")
        return
    timeline.add(prediction.probabilities)
    views.headline(prediction)
    if collect or getattr(prediction, "adapted", False):
        st.caption(views.live_adaptation_text(adapt.current(), prediction))
    views.render_probabilities(prediction, "live")
    _draw_timeline()


def _draw_timeline() -> None:
    points = timeline.points()
    if len(points) < 2:
        return
    st.subheader("Recent emotion")
    st.altair_chart(
        plots.timeline_chart(points, list(predictor.emotions), x_title="Seconds since start"),
        width="stretch", key="live_timeline_chart",
    )


live_panel()
