"""Audio into the app: read an upload or a recording, reject what cannot be analysed (with a
message that says why), and classify it once per input and session.

Files are recognised by their content, not their name: the uploader accepts any file, so that a
rejected one gets the app's own message on the page instead of a red file chip, and an audio file
with an unusual name (no extension, ``.aiff``) is simply analysed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from typing import Any

import streamlit as st

from ser_core.app import adapt
from ser_core.inference.audio import FORMATS_TEXT, AudioError, load_audio

__all__ = ["FORMATS_TEXT", "Analysis", "analyse_bytes", "check_upload", "decode_bytes", "probe_duration",
           "read_upload", "with_threshold"]


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What became of audio that decoded: a prediction, or the reason there is none (silence,
    not enough speech). Audio that does not decode raises :class:`AudioError` instead."""

    prediction: Any | None
    problem: AudioError | None = None


def probe_duration(data: bytes) -> float | None:
    """Duration in seconds from the container header, without decoding; None when unknown."""
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(data))
        if info.samplerate > 0 and info.frames > 0:
            return info.frames / info.samplerate
    except Exception:  # not a libsndfile format: ask FFmpeg
        pass
    try:
        import av

        with av.open(io.BytesIO(data), mode="r") as container:
            if container.duration:
                return container.duration / av.time_base
            for stream in container.streams.audio:
                if stream.duration and stream.time_base:
                    return float(stream.duration * stream.time_base)
    except Exception:
        return None
    return None


def read_upload(uploaded: Any) -> tuple[str, bytes]:
    """``(name, bytes)`` of a Streamlit ``UploadedFile`` (or any file-like object with a name)."""
    name = getattr(uploaded, "name", None) or "the audio"
    data = uploaded.getvalue() if hasattr(uploaded, "getvalue") else uploaded.read()
    return name, bytes(data)


def check_upload(name: str, data: bytes, max_seconds: float, max_bytes: int | None = None) -> None:
    """Reject what cannot be analysed before decoding it: empty, too large or too long.

    Raises :class:`AudioError` with a message for the user.
    """
    if not data:
        raise AudioError(f"{name} is empty: it holds no audio. Choose another file.")
    if max_bytes is not None and len(data) > max_bytes:
        raise AudioError(
            f"{name} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:g} MB. "
            f"Trim or compress it (mp3, ogg or m4a hold a minute in about 1 MB) and try again."
        )
    duration = probe_duration(data)
    if duration is not None and duration > max_seconds:
        raise AudioError(
            f"{name} is {duration:.0f} s long; the limit is {max_seconds:g} s. "
            "Trim it and try again."
        )


def with_threshold(prediction: Any, threshold: float) -> Any:
    """The same prediction judged against another "uncertain" threshold (no model call)."""
    return dataclasses.replace(
        prediction, threshold=float(threshold), uncertain=bool(prediction.confidence < threshold)
    )


def _decode(name: str, data: bytes, sample_rate: int, max_seconds: float) -> Any:
    """Mono samples at ``sample_rate``; an undecodable file's message names the formats."""
    source = io.BytesIO(data)
    source.name = name  # type: ignore[attr-defined]  # load_audio names the file in its messages
    try:
        return load_audio(source, sample_rate, max_seconds=max_seconds)
    except AudioError as error:
        message = str(error)
        undecodable = "could not be decoded" in message or "no audio stream" in message
        if undecodable and FORMATS_TEXT not in message:
            message = f"{message} Use {FORMATS_TEXT}."
        raise AudioError(message) from error


def decode_bytes(name: str, data: bytes, sample_rate: int, limits: Any) -> Any:
    """Check uploaded or recorded audio against ``limits`` and decode it to mono at ``sample_rate``.

    Raises :class:`AudioError` with a message for the user (empty, too large or long, not audio).
    """
    check_upload(name, data, limits.max_seconds, limits.max_bytes)
    return _decode(name, data, sample_rate, limits.max_seconds)


def analyse_bytes(predictor: Any, name: str, data: bytes, threshold: float, cache_key: str,
                  limits: Any, adaptation: Any | None = None, coverage: float | None = None) -> Analysis:
    """Classify uploaded or recorded audio within ``limits`` (an
    :class:`~ser_core.app.support.AudioLimits`).

    Raises :class:`AudioError` when the audio cannot be used at all (empty, too large or long,
    not audio); audio that decodes comes back as an :class:`Analysis`, with the reason when the
    model had nothing to classify. The result is kept per session, so that another ``coverage``
    (the sidebar's setting: the answer's set of emotions is made for it) or another widget does not run
    the model again; a new ``adaptation`` (the user's statistics, :mod:`ser_core.app.adapt`; None for
    none) does.
    """
    digest = hashlib.sha1(data).hexdigest()
    version = adapt.signature(adaptation)
    cached = st.session_state.get(cache_key)
    if cached and cached[0] == digest and cached[1] is predictor and cached[2:4] == (limits, version):
        analysis: Analysis = cached[4]
    else:
        st.session_state.pop(cache_key, None)
        rate = predictor.params.sample_rate
        wave = decode_bytes(name, data, rate, limits)
        extra = {} if adaptation is None else {"adaptation": adaptation}  # the CNN's predictor takes none
        try:
            analysis = Analysis(predictor.predict_wave(wave, rate, threshold, **extra))
        except AudioError as problem:  # silence, not enough speech: the audio itself is fine
            analysis = Analysis(None, problem)
        st.session_state[cache_key] = (digest, predictor, limits, version, analysis)
    if analysis.prediction is None:
        return analysis
    prediction = with_threshold(analysis.prediction, threshold)
    if coverage is not None and hasattr(predictor, "with_coverage"):
        prediction = predictor.with_coverage(prediction, coverage)
    return Analysis(prediction)
