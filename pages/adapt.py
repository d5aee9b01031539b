"""Adapt to my voice: a few clips of the user's ordinary speech become the statistics the model
standardises with (this session only); how much audio it rests on, switch off, clear."""

from __future__ import annotations

import streamlit as st

from ser_core.app import adapt, intake, support, views, words
from ser_core.app.safe_text import plain
from ser_core.inference.audio import AudioError

support.ensure_entrypoint()
st.title("Adapt to my voice")
limits = support.audio_limits_or_stop()
predictor = support.predictor_or_stop()
if not adapt.supported(predictor):
    st.info("The model in use cannot adapt to a voice: only the Whisper model can (its answers rest on "
            "statistics it can re-measure on your speech). Results on the other pages are not adapted.")
    st.page_link("pages/analyse.py", label="Go to Analyse", icon=":material/graphic_eq:")
    st.stop()

st.markdown(words.ADAPT_INTRO)
with st.expander("Why adapt, and how much speech it needs", icon=":material/help:"):
    st.markdown(words.ADAPT_WHY)
    st.markdown(words.adapt_how_much(predictor.config.get("adaptation_gain")))  # the served model's own figures


def add(source, key: str) -> None:
    """Measure one recorded or uploaded clip and add it; say what happened."""
    name, data = intake.read_upload(source)
    try:
        wave = intake.decode_bytes(name, data, predictor.params.sample_rate, limits)
        with st.spinner(f"Measuring {plain(name)}…"):
            result = adapt.add_clip(predictor, wave, predictor.params.sample_rate, clip_id=data,
                                    source_id=getattr(source, "file_id", None))
    except AudioError as error:  # includes too little speech: shown as a state, not a fault
        views.show_audio_problem(error, name=name)
        return
    except Exception:
        support.show_unexpected_error(f"measuring {name} for the adaptation")
        return
    if result.added:
        heard = f" Before adapting, it sounds: **{words.answer_text(result.heard)}**." if result.heard else ""
        st.success(f"Added {plain(name)}: {result.speech_seconds:.1f} s of speech.{heard}", icon=":material/check:")
    elif result.duplicate:
        st.info(f"{plain(name)} is the same audio as a clip you already gave, so it is counted once. "
                "Record or upload a different clip to add more.", icon=":material/content_copy:")


record_tab, upload_tab = st.tabs([":material/mic: Record", ":material/upload_file: Upload clips"])
with record_tab:
    recording = st.audio_input("Record 5–10 seconds of ordinary speech, then record again",
                               sample_rate=predictor.params.sample_rate, key="adapt_recorder")
    if recording is not None:
        add(recording, "adapt_recording")
with upload_tab:
    uploads = st.file_uploader("Upload clips of your ordinary speech", accept_multiple_files=True,
                               key="adapt_uploader")
    st.caption(f"Accepted: {intake.FORMATS_TEXT}, up to {limits.max_seconds:g} s each.")
    for upload in uploads or []:
        add(upload, "adapt_upload")

st.subheader("What the adaptation rests on")
adaptation = adapt.current()
clips_needed, seconds_needed = adapt.needs()
left, middle, right = st.columns(3)
left.metric("Recordings", adaptation.n_clips)
middle.metric("Speech", f"{adaptation.speech_seconds:.0f} s")
right.metric("In use", "yes" if adapt.in_use(predictor) is not None else "no")
st.progress(adapt.progress(adaptation),
            text=f"Used from {clips_needed} clips, or {seconds_needed:g} s of speech over two clips or more")
st.markdown(adapt.status_text(adaptation, adapt.is_on()))
moods = adapt.moods_text()
if moods:
    st.caption(moods)
switch, clear = st.columns([3, 1])
with switch:
    adapt.switch("Use the adaptation for my results", key="adapt_page_switch", disabled=not adaptation.ready,
                 help="Off: results compare your voice with the recordings the model learnt from, as for a "
                      "new user. It can be switched on once there is enough speech.")
clear.button("Clear", icon=":material/delete:", on_click=adapt.clear, disabled=not adaptation.n_clips,
             help="Forget every clip given so far.")
st.caption(words.ADAPT_PRIVACY)
st.page_link("pages/analyse.py", label="Analyse a clip with it", icon=":material/graphic_eq:")
st.page_link("pages/live.py", label="Or talk to it live", icon=":material/sensors:")
st.page_link("pages/test_results.py", label="How much adapting helps: Test results",
             icon=":material/fact_check:")
