"""Analyse a recording or an uploaded clip: verdict, probabilities, timeline, spectrogram, downloads."""

from __future__ import annotations

import streamlit as st

from ser_core.app import adapt, intake, support, views
from ser_core.inference.audio import AudioError

support.ensure_entrypoint()
st.title("Analyse a voice clip")
st.caption(
    "Record yourself or upload a clip of speech; the model names the emotion in the voice "
    "(angry, disgust, fear, happy, neutral or sad)."
)

limits = support.audio_limits_or_stop()
predictor = support.predictor_or_stop()
threshold = predictor.threshold  # the model's "uncertain" cut-off, kept in the JSON result
coverage = support.current_coverage()
model_name = predictor.config.get("model_name")
adaptation = adapt.in_use(predictor)
if adapt.supported(predictor):
    views.adaptation_status(adapt.current(), adapt.is_on(), "analyse_adapt_switch")

record_tab, upload_tab = st.tabs([":material/mic: Record", ":material/upload_file: Upload a file"])
with record_tab:
    recording = st.audio_input(
        f"Record a few seconds of speech (up to {limits.max_seconds:g} s)",
        sample_rate=predictor.params.sample_rate, key="recorder",
    )
with upload_tab:
    # Any file is accepted here and checked by the app, so a rejected one gets a message on the page.
    uploaded = st.file_uploader("Upload a clip of speech", key="uploader")
    support.show_upload_refusals()
    st.caption(f"Accepted: {intake.FORMATS_TEXT} (other audio files are tried too), "
               f"up to {limits.max_seconds:g} s.")


def show(source, key: str, container) -> None:
    """Classify one input and lay its result out in ``container``; problems become messages."""
    with container:
        name, data = intake.read_upload(source)
        try:
            with st.spinner("Listening…"):
                analysis = intake.analyse_bytes(predictor, name, data, threshold, key, limits, adaptation,
                                                coverage)
        except AudioError as error:  # nothing playable: no player, just the reason
            views.show_audio_problem(error)
            return
        except Exception:
            support.show_unexpected_error(f"analysing {name}")
            return
        st.audio(data, format=getattr(source, "type", None) or "audio/wav")
        if analysis.prediction is None:
            views.show_audio_problem(analysis.problem)
            return
        try:
            views.render_prediction(analysis.prediction, predictor.params, name, model_name, key,
                                   predictor.config, adapt.adapted_note(analysis.prediction, adaptation),
                                   support.new_setup_accuracy())
        except Exception:
            support.show_unexpected_error(f"showing the result for {name}")


if recording is not None:
    show(recording, "recording", record_tab)
else:
    with record_tab:
        st.info("Press the microphone, speak for 2–10 seconds, then stop. Nothing leaves this server.")
if uploaded is not None:
    show(uploaded, "upload", upload_tab)
else:
    with upload_tab:
        st.info(f"Recordings longer than {2 * predictor.params.clip_seconds:g} s also show how the emotion "
                "changes over time, one band per stretch of speech.")
