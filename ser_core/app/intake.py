"""Audio into the app: read an upload or a recording, reject what cannot be analysed before
decoding it, and classify it once per input and session."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import streamlit as st

from ser_core.inference.audio import SUPPORTED_EXTENSIONS, AudioError
from ser_core.inference.predictor import MAX_AUDIO_SECONDS

UPLOAD_TYPES: list[str] = [extension.lstrip(".") for extension in SUPPORTED_EXTENSIONS]


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


def check_upload(name: str, data: bytes, max_seconds: float) -> None:
    """Reject what cannot be analysed before decoding it: empty, unknown type or too long."""
    if not data:
        raise AudioError(f"{name} is empty.")
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in SUPPORTED_EXTENSIONS:
        raise AudioError(
            f"{name}: {suffix} files are not supported; use wav, flac, mp3, ogg, m4a or webm."
        )
    duration = probe_duration(data)
    if duration is not None and duration > max_seconds:
        raise AudioError(
            f"{name} is {duration:.0f} s long; the limit is {max_seconds:.0f} s. "
            "Trim it and try again."
        )


def with_threshold(prediction: Any, threshold: float) -> Any:
    """The same prediction judged against another "uncertain" threshold (no model call)."""
    return dataclasses.replace(
        prediction, threshold=float(threshold), uncertain=bool(prediction.confidence < threshold)
    )


def analyse_bytes(predictor: Any, name: str, data: bytes, threshold: float, cache_key: str) -> Any:
    """Classify uploaded or recorded audio; the result is kept per session so that moving the
    threshold or another widget does not run the model again. Raises :class:`AudioError`."""
    digest = hashlib.sha1(data).hexdigest()
    cached = st.session_state.get(cache_key)
    if cached and cached[0] == digest and cached[1] is predictor:
        return with_threshold(cached[2], threshold)
    st.session_state.pop(cache_key, None)
    check_upload(name, data, MAX_AUDIO_SECONDS)
    source = io.BytesIO(data)
    source.name = name  # type: ignore[attr-defined]  # load_audio names the file in its messages
    prediction = predictor.predict_file(source, threshold=threshold)
    st.session_state[cache_key] = (digest, predictor, prediction)
    return prediction
