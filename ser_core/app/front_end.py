"""What the model hears, for either kind of model: the panels of the "What the model hears" view.

Two front ends ship (``artifacts/config.json`` says which):

- the log-mel CNN: ``Prediction.features`` is ``[n_windows, n_mels, n_frames]``, one 3 s window of
  the clip each, in dB below the window's loudest bin (floor ``-top_db``);
- the Whisper embedding model (``"kind": "whisper_embedding_head"``, or ``"front_end":
  "whisper_embedding"``): ``Prediction.features`` is Whisper's own 80-band log-mel (10 ms hop,
  16 kHz) of the speech the encoder heard (pauses cut out), one array per timeline window (or per
  encoder segment), in Whisper's scaled units ``(log10(power) + 4) / 4``, clamped 8 decades
  below the loudest bin.

:func:`spectrogram_panels` turns both into the same thing: dB below the loudest bin with an 80 dB
floor, a start time and an axis label, so one figure function draws either. Pure functions, no
Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ser_core.inference.artifacts import WHISPER_KIND

__all__ = ["LOG_MEL", "WHISPER", "SpectrogramPanel", "caption", "model_front_end",
           "spectrogram_panels", "whisper_to_db"]

LOG_MEL = "log_mel"
WHISPER = "whisper_embedding"
# Whisper clamps its log-mel 8 decades (80 dB) below the loudest bin and scales log10 by 1/4.
WHISPER_FLOOR_DB = 80.0
_WHISPER_DB_PER_UNIT = 40.0  # 10 dB per decade x 4 decades per scaled unit


def model_front_end(config: Mapping[str, Any] | None) -> str:
    """:data:`WHISPER` for the Whisper embedding model, :data:`LOG_MEL` for the CNN (and older configs).

    Examples
    --------
    >>> model_front_end({"kind": "whisper_embedding_head", "front_end": {"model": "base"}})
    'whisper_embedding'
    >>> model_front_end({"feature_params": {"n_mels": 64}})
    'log_mel'
    """
    config = config or {}
    if config.get("kind") == WHISPER_KIND or config.get("front_end") == WHISPER:
        return WHISPER
    return LOG_MEL


def whisper_to_db(features: np.ndarray) -> np.ndarray:
    """Whisper's scaled log-mel as dB below its loudest bin, floored at ``-80`` dB."""
    features = np.asarray(features, dtype=np.float32)
    if features.size == 0:
        return features
    return np.maximum(_WHISPER_DB_PER_UNIT * (features - features.max()), -WHISPER_FLOOR_DB)


@dataclass(frozen=True)
class SpectrogramPanel:
    """One picture of the model's input: ``db`` is ``[n_mels, n_frames]`` in dB below the loudest
    bin; ``start_s`` is where its time axis starts; ``label`` names it in the picker."""

    db: np.ndarray
    start_s: float
    x_label: str
    label: str
    picker: str = "Window"  # what the picker between panels is called


def _as_arrays(features: Any) -> list[np.ndarray]:
    """``[n, mels, frames]`` array or a list of ``[mels, frames]`` arrays -> list of 2-D arrays."""
    if isinstance(features, np.ndarray):
        if features.ndim == 2:
            return [features]
        return [features[i] for i in range(features.shape[0])]
    arrays = [np.asarray(f) for f in (features or [])]
    return [a for a in arrays if a.ndim == 2 and a.size]


def spectrogram_panels(prediction: Any, params: Any, front_end: str) -> list[SpectrogramPanel]:
    """The panels to show for one prediction, in order.

    Parameters
    ----------
    prediction : Prediction
        Its ``features`` and ``window_starts``.
    params : FeatureParams
        The predictor's ``params`` (``hop_length``, ``sample_rate``, ``clip_seconds``).
    front_end : {"log_mel", "whisper_embedding"}
        From :func:`model_front_end`.
    """
    arrays = _as_arrays(prediction.features)
    starts = [float(s) for s in np.asarray(getattr(prediction, "window_starts", []))]
    whisper = front_end == WHISPER
    if whisper:
        arrays = [whisper_to_db(a) for a in arrays]
    if len(arrays) > 1 and len(starts) == len(arrays):  # windows of a longer clip: time in the clip
        x_label = "Time in the clip (s; pauses cut out)" if whisper else "Time in the clip (s)"
        windows = list(getattr(prediction, "windows", []) or [])
        # A window of joined speech can span a pause that was cut out: its end in the clip is the
        # window's own end_s when the predictor gives it.
        ends = ([float(w.end_s) for w in windows] if len(windows) == len(arrays)
                else [start + params.clip_seconds for start in starts])
        return [SpectrogramPanel(array, start, x_label, f"{i + 1}: {start:.1f}–{end:.1f} s")
                for i, (array, start, end) in enumerate(zip(arrays, starts, ends))]
    if whisper:  # the speech, or its encoder segments, one after the other
        if len(arrays) == 1:
            arrays = [_without_padding(arrays[0])]
        hop_s = params.hop_length / params.sample_rate
        panels, start = [], 0.0
        for index, array in enumerate(arrays):
            seconds = array.shape[1] * hop_s
            label = (f"segment {index + 1}: {start:.1f}–{start + seconds:.1f} s of speech"
                     if len(arrays) > 1 else "all the speech")
            panels.append(SpectrogramPanel(array, start, "Time in the speech the model heard (s)", label,
                                           "Segment"))
            start += seconds
        return panels
    # a short clip, trimmed and centred in one zero-padded window
    x_label = f"Time in the model's {params.clip_seconds:g} s window (s)"
    return [SpectrogramPanel(a, 0.0, x_label, "the window") for a in arrays]


def _without_padding(db: np.ndarray) -> np.ndarray:
    """A short clip's single window without the floor-level frames that fill it out to the window's length:
    the model heard only the speech, and the picture's time axis should end where it does."""
    if db.size == 0 or db.max() == db.min():
        return db
    heard = np.flatnonzero((db > db.min()).any(axis=0))
    return db[:, : heard[-1] + 1]


def caption(params: Any, front_end: str) -> str:
    """What the picture is, in a sentence under it."""
    frame_ms = params.hop_length / params.sample_rate * 1000
    if front_end == WHISPER:
        return ("The sound as the Whisper speech model hears it: time left to right, low to high frequencies bottom to top, "
                "brighter where it is louder (0 dB is the loudest moment; the darkest is "
                f"{WHISPER_FLOOR_DB:g} dB quieter). Only the speech is kept (pauses and silence are cut out), "
                "brought to one loudness level; the emotion is judged from all of it. "
                f"(Whisper's log-mel spectrogram: {params.n_mels} mel bands, {frame_ms:.0f} ms frames.)")
    return ("The sound as the model hears it: time left to right, low to high frequencies bottom to top, brighter where it is "
            f"louder (0 dB is the loudest moment; the darkest is {params.top_db:g} dB quieter). "
            f"(Log-mel spectrogram: {params.n_mels} mel bands, {frame_ms:.0f} ms frames.)")
