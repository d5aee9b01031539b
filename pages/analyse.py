"""Analyse a recording or an uploaded clip: verdict, probabilities, timeline, spectrogram, downloads."""

from __future__ import annotations

import streamlit as st

from ser_core.app import intake, support, views
from ser_core.inference.audio import AudioError
from ser_core.inference.predictor import MAX_AUDIO_SECONDS

support.ensure_entrypoint()
st.title("Analyse a voice clip")
st.caption(
    "Record yourself or upload a clip of speech; the model names the emotion in the voice "
    "(angry, disgust, fear, happy, neutral or sad)."
)

predictor = support.predictor_or_stop()
threshold = support.current_threshold()
model_name = predictor.config.get("model_name")

record_tab, upload_tab = st.tabs([":material/mic: Record", ":material/upload_file: Upload a file"])
with record_tab:
    recording = st.audio_input(
        "Record a few seconds of speech", sample_rate=predictor.params.sample_rate, key="recorder"
    )
with upload_tab:
    uploaded = st.file_uploader(
        f"Upload speech audio ({', '.join(intake.UPLOAD_TYPES)}; up to "
        f"{MAX_AUDIO_SECONDS:.0f} s)",
        type=intake.UPLOAD_TYPES, key="uploader",
    )


def show(source, key: str, container) -> None:
    """Classify one input and lay its result out in ``container``; errors become messages."""
    with container:
        name, data = intake.read_upload(source)
        st.audio(data, format=getattr(source, "type", None) or "audio/wav")
        try:
            with st.spinner("Listening…"):
                prediction = intake.analyse_bytes(predictor, name, data, threshold, key)
        except AudioError as error:
            st.error(str(error))
            return
        except Exception:
            support.show_unexpected_error(f"analysing {name}")
            return
        try:
            views.render_prediction(prediction, predictor.params, name, model_name, key)
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
        st.info(f"Clips longer than {predictor.params.clip_seconds:g} s are analysed window by "
                "window and also shown as a timeline.")
