"""Showing a prediction: the answer (a set of emotions with a stated coverage), the probability bars
and table, the timeline (one labelled band per speech segment), the spectrogram the model receives,
and the JSON/CSV exports of the result."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from ser_core.app import adapt, front_end, plots, words
from ser_core.app.safe_text import plain


def prediction_json(prediction: Any, source_name: str, model_name: str | None) -> str:
    record = {"file": source_name, "model": model_name, **prediction.to_dict()}
    return json.dumps(record, indent=2)


def prediction_csv(prediction: Any) -> str:
    """One row for the whole clip, then one per model window."""
    emotions = list(prediction.probabilities)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["segment", "start_s", "end_s", "answer", "label", *emotions])
    writer.writerow(
        ["clip", 0.0, round(prediction.duration_s, 3), " or ".join(getattr(prediction, "emotions", None) or []),
         prediction.label, *(round(prediction.probabilities[e], 6) for e in emotions)]
    )
    for index, window in enumerate(prediction.windows, start=1):
        top = max(window.probabilities, key=window.probabilities.get)
        writer.writerow(
            [f"window {index}", round(window.start_s, 3), round(window.end_s, 3),
             " or ".join(getattr(window, "emotions", None) or []), top,
             *(round(window.probabilities[e], 6) for e in emotions)]
        )
    return buffer.getvalue()


def probability_table(probabilities: Mapping[str, float]) -> pd.DataFrame:
    """The exact numbers behind the bars, in the model's emotion order."""
    return plots.probability_frame(probabilities).rename(
        columns={"emotion": "Emotion", "probability": "Probability"}
    )


def answer_of(prediction: Any) -> list[str]:
    """The answer's set of emotions, most likely first (the top emotion alone for an answer without one)."""
    return list(getattr(prediction, "emotions", None) or [prediction.top_emotion])


def headline(prediction: Any, config: Mapping[str, Any] | None = None) -> None:
    """The answer: "Angry", "Angry or disgusted", or "Can't tell: angry, disgusted or fearful", and one line
    on what its coverage (9 in 10) means."""
    emotions = answer_of(prediction)
    text = words.answer_text(emotions)
    if len(emotions) == 1:
        st.success(f"**{text}**", icon=":material/sentiment_satisfied:")
    elif len(emotions) == 2:
        st.info(f"**{text}**", icon=":material/contrast:")
    else:
        head, _, rest = text.partition(": ")
        st.warning(f"**{head}:** {rest}", icon=":material/help:")
    coverage = getattr(prediction, "coverage", None) or 0.9
    st.caption(words.coverage_line(coverage, config, bool(getattr(prediction, "adapted", False))))


def timeline_bands(prediction: Any, clip_seconds: float = 3.0) -> list[tuple[float, float, list[str]]]:
    """``(start s, end s, set of emotions)`` per band of the "Emotion over time" view, or [] when there is
    nothing to follow over time (a recording shorter than two model windows).

    One band per speech segment when there are two or more; one speech stretch heard long enough for three
    windows or more gets one band per window (each from half-way after the window before to half-way
    before the next: the windows overlap). Every band's answer is made like the clip's.
    """
    if prediction.duration_s < 2 * clip_seconds:
        return []
    segments = list(getattr(prediction, "segments", None) or [])
    if len(segments) >= 2:
        return [(s.start_s, s.end_s, list(s.emotions or [s.top_emotion])) for s in segments]
    windows = list(prediction.windows)
    if len(windows) < 3:
        return []
    centres = [(w.start_s + w.end_s) / 2 for w in windows]
    edges = [windows[0].start_s, *[(a + b) / 2 for a, b in zip(centres, centres[1:])], windows[-1].end_s]
    return [(edges[i], edges[i + 1], list(w.emotions or [max(w.probabilities, key=w.probabilities.get)]))
            for i, w in enumerate(windows)]


SPEECH_KINDS = ("no_speech", "too_little_speech")


def speech_shortfall(error: Exception, live: bool) -> tuple[str, str] | None:
    """``(headline, what to do)`` when ``error`` says the audio held too little speech, else None.

    The inference package raises ``NotEnoughSpeech`` (``ser_core.inference.speech``) with the
    attributes ``kind`` ("no_speech" or "too_little_speech"), ``speech_seconds`` and
    ``needed_seconds``; they are read by name, so any error carrying them is shown the same way.
    """
    kind = getattr(error, "kind", None)
    if kind not in SPEECH_KINDS:
        return None
    heard = getattr(error, "speech_seconds", None)
    needed = getattr(error, "needed_seconds", None)
    if kind == "no_speech":
        headline = "No speech heard"
    elif isinstance(heard, (int, float)) and isinstance(needed, (int, float)):
        headline = f"Too little speech ({heard:.1f} s heard; {needed:.1f} s needed)"
    else:
        headline = "Too little speech"
    need = f"at least {needed:g} s of speech" if isinstance(needed, (int, float)) else "more speech"
    if live:
        advice = (f"Keep talking, close to the microphone: the result appears once the last few seconds "
                  f"hold {need}. If it never does, check that the right microphone is selected and not muted.")
    else:
        advice = (f"The model needs {need} to judge the emotion; music, noise and silence do not count. "
                  "Record again and speak for a few seconds, or try again with a clip that has more speech.")
    return headline, advice


def show_audio_problem(error: Exception, live: bool = False, name: str | None = None) -> None:
    """Why there is no result: too little speech as a plain state, anything else as an error.

    ``name`` (the upload's) starts the speech note, for pages that take several clips at once.
    """
    shortfall = speech_shortfall(error, live)
    if shortfall is None:
        if live:  # a quiet moment in a stream is not a fault
            st.info(plain(error))
        else:
            st.error(plain(error))
        return
    headline, advice = shortfall
    about = f"{plain(name)}: " if name else ""
    st.info(f"**{about}{headline}.** {advice}", icon=":material/hearing:")


def render_probabilities(prediction: Any, key: str) -> None:
    """Bars per emotion (top one highlighted) and the exact numbers."""
    st.altair_chart(
        plots.probability_chart(prediction.probabilities),
        width="stretch", key=f"{key}_bars",
    )
    with st.expander("Exact probabilities"):
        st.dataframe(
            probability_table(prediction.probabilities), hide_index=True, width="stretch",
            column_config={
                "Probability": st.column_config.ProgressColumn(
                    "Probability", min_value=0.0, max_value=1.0, format="percent"
                )
            },
            key=f"{key}_table",
        )


def render_model_input(prediction: Any, params: Any, kind: str, key: str) -> None:
    """"What the model hears": the spectrogram of its input, with a picker when there are several
    (the CNN's 3 s windows, or the Whisper encoder's segments of a long recording)."""
    st.subheader("What the model hears")
    panels = front_end.spectrogram_panels(prediction, params, kind)
    if not panels:
        st.caption("The model's input was not kept for this result.")
        return
    index = 0
    if len(panels) > 1:
        index = st.select_slider(panels[0].picker,
                                 options=list(range(len(panels))), key=f"{key}_window",
                                 format_func=lambda i: panels[i].label)
    panel = panels[index]
    floor = front_end.WHISPER_FLOOR_DB if kind == front_end.WHISPER else None
    figure = plots.spectrogram_figure(panel.db, params, start_s=panel.start_s, x_label=panel.x_label,
                                      floor_db=floor)
    st.pyplot(figure, width="stretch")
    st.caption(front_end.caption(params, kind))


def adaptation_line(adaptation: Any, on: bool) -> None:
    """Is the model adapted to this voice, and on how much audio, in one line."""
    st.markdown(f":material/record_voice_over: {adapt.status_text(adaptation, on)}")


def adaptation_status(adaptation: Any, on: bool, switch_key: str, show_text: bool = True) -> None:
    """One line on the Analyse and Live pages: is the model adapted to this voice, on how much
    audio (unless ``show_text`` is False: the Live page redraws it every second); the switch, and
    the way to the Adapt page."""
    if show_text:
        adaptation_line(adaptation, on)
    # The switch and the link under the line, in columns wide enough for their labels on a narrow window
    switch, link, _ = st.columns([2, 2, 1], vertical_alignment="center")
    with switch:
        adapt.switch("Use adaptation", key=switch_key, disabled=not adaptation.ready,
                     help="On: results are judged against how your own voice sounds. Off: against the "
                          "average of the recordings the model learnt from, as for a new user.")
    link.page_link("pages/adapt.py", label="Adapt to my voice" if not adaptation.n_clips else "Manage",
                   icon=":material/tune:")


def live_controls(adaptation: Any, window_seconds: float) -> bool:
    """The Live page's adaptation controls in one row: the switch, "Learn my voice while I talk" (returned)
    and the way to the Adapt page."""
    switch, learn, link = st.columns([2, 3, 2], vertical_alignment="center")
    with switch:
        adapt.switch("Use adaptation", key="live_adapt_switch", disabled=not adaptation.ready,
                     help="On: results are judged against how your own voice sounds, once there is enough speech.")
    with learn:
        collect = st.toggle(
            "Learn my voice while I talk", key="live_collect",
            help=f"Each {window_seconds:g} s of your speech is added to what the model knows of your voice (this "
                 "session only, nothing stored on disk). Speak normally; results adapt once there is enough. What "
                 "it hears becomes your \"normal\": if you stay in one mood the whole time, it will stop naming "
                 "that mood.")
    link.page_link("pages/adapt.py", label="Adapt to my voice" if not adaptation.n_clips else "Manage",
                   icon=":material/tune:")
    return bool(collect)


def live_adaptation_text(adaptation: Any, answer: Any) -> str:
    """Under the Live verdict: adapted or not, and how much audio the adaptation rests on."""
    del adaptation  # the line above the answer says how much audio it rests on
    state = "adapted to your voice" if getattr(answer, "adapted", False) else "not adapted"
    learning = " · this window was added to the adaptation" if getattr(answer, "collected", False) else ""
    return f"This answer: {state}{learning}."


def meaning(prediction: Any, new_setup_accuracy: float | None = None) -> None:
    """What the answer means, how far to trust it and what to do next, in plain words."""
    with st.expander("What does this mean, and how far can I trust it?", icon=":material/help:"):
        st.markdown(words.SETS_MEAN)
        st.markdown(words.trust(new_setup_accuracy))
        st.markdown(words.NEXT_STEPS)
        st.page_link("pages/test_results.py", label="Test results", icon=":material/fact_check:")


def render_prediction(prediction: Any, params: Any, source_name: str, model_name: str | None,
                      key: str, config: Mapping[str, Any] | None = None, note: str | None = None,
                      new_setup_accuracy: float | None = None) -> None:
    """Everything the Analyse page shows for one clip; ``config`` (the model's) says which front end
    made ``prediction.features``; ``note`` (adapted or not) goes under the verdict;
    ``new_setup_accuracy`` (leave one corpus out) tells the user how far to trust it."""
    headline(prediction, config)
    speech = getattr(prediction, "speech_seconds", 0.0)
    st.caption(
        f"{plain(source_name)} · {prediction.duration_s:.1f} s"
        + (f" · {speech:.1f} s of speech" if speech else "")
        + (f" · {note}" if note else "")
    )
    meaning(prediction, new_setup_accuracy)
    render_probabilities(prediction, key)

    bands = timeline_bands(prediction, params.clip_seconds)
    if bands:
        st.subheader("Emotion over time")
        st.altair_chart(plots.answer_bands_chart(bands, list(prediction.probabilities), words.answer_text,
                                                 short=words.band_text),
                        width="stretch", key=f"{key}_timeline")
        st.caption("One band per stretch of speech, answered like the whole recording (point at a band for its "
                   "whole answer); the colour is its most likely emotion, faint where it could not tell. Pauses "
                   "are left blank.")

    render_model_input(prediction, params, front_end.model_front_end(config), key)

    stem = Path(source_name).stem or "recording"
    left, right = st.columns(2)
    left.download_button(
        "Download result (JSON)", prediction_json(prediction, source_name, model_name),
        file_name=f"{stem}_emotion.json", mime="application/json", key=f"{key}_json",
        on_click="ignore", icon=":material/download:",
    )
    right.download_button(
        "Download result (CSV)", prediction_csv(prediction), file_name=f"{stem}_emotion.csv",
        mime="text/csv", key=f"{key}_csv", on_click="ignore", icon=":material/download:",
    )
