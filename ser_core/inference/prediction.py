"""What the predictor answers: the clip's set of emotions (the few that hold the true one 9 times in 10:
:mod:`ser_core.inference.emotion_sets`), its probabilities, the top emotion with the older "uncertain"
cut-off, and the timeline of windows and speech segments, each with its own set."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_THRESHOLD", "UNCERTAIN", "Prediction", "SpeechSegment", "WindowPrediction", "check_threshold"]

DEFAULT_THRESHOLD = 0.55
UNCERTAIN = "uncertain"


def check_threshold(threshold: Any) -> float:
    """Return ``threshold`` as a float after checking it is a confidence in [0, 1].

    Parameters
    ----------
    threshold : float
        Confidence below which an answer is "uncertain".

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When it is not a number, not finite, or outside [0, 1]; the message names the value.

    Examples
    --------
    >>> check_threshold(0.6)
    0.6
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (numbers.Real, str)):
        raise ValueError(f"the threshold must be a number from 0 to 1, got {threshold!r}")
    try:
        value = float(threshold)
    except ValueError:
        raise ValueError(f"the threshold must be a number from 0 to 1, got {threshold!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"the threshold must be a number from 0 to 1 (a confidence), got {threshold}"
        )
    return value


@dataclass(frozen=True)
class WindowPrediction:
    """One 3 s model window. ``start_s``/``end_s`` are times in the original audio (a window of
    joined speech can span a pause that was cut out)."""

    start_s: float
    end_s: float
    probabilities: dict[str, float]
    emotions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "end_s": self.end_s, "emotions": self.emotions,
                "probabilities": self.probabilities}


@dataclass(frozen=True)
class SpeechSegment:
    """One stretch of speech found by the detector, with its own answer.

    ``probabilities`` average the windows that hold this segment, each weighted by how much of
    the segment it holds; ``emotions`` is its set (as the clip's, same calibration), ``label`` the
    top emotion, or "uncertain" below the threshold.
    """

    start_s: float
    end_s: float
    label: str
    top_emotion: str
    confidence: float
    probabilities: dict[str, float]
    emotions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "end_s": self.end_s, "emotions": self.emotions, "label": self.label,
                "top_emotion": self.top_emotion, "confidence": self.confidence,
                "probabilities": self.probabilities}


@dataclass
class Prediction:
    """The answer for one clip or file.

    Attributes
    ----------
    probabilities : dict of str to float
        Whole-audio probability of each emotion (mean over the speech windows).
    emotions : list of str
        The answer: the fewest emotions that hold the true one ``coverage`` of the time on a
        recording setup the model never heard, most likely first (one emotion when it is sure).
    coverage : float
        The setting ``emotions`` was made for (e.g. 0.9).
    top_emotion, confidence, uncertain, threshold
        The most likely emotion, its probability, whether that is below ``threshold``.
    duration_s : float
        Length of the audio, seconds.
    speech_seconds : float
        Speech the detector heard, seconds.
    features : np.ndarray
        ``[n_windows, n_mels, n_frames]``: the CNN's input, or for a Whisper model the Whisper
        log-mel (80 bands) of each window of the speech the encoder heard; empty
        ``[0, n_mels, n_frames]`` when not kept (long files on the command line).
    window_starts : np.ndarray
        Start of each window in the original audio, seconds.
    windows : list of WindowPrediction
    segments : list of SpeechSegment
        The timeline: one answer per speech segment, in time order.
    adapted : bool
        The answer used the user's adaptation statistics (:mod:`ser_core.inference.adaptation`).
    adaptation_clips : int
        How many adaptation clips those statistics came from (0 when not adapted).
    """

    probabilities: dict[str, float]
    top_emotion: str
    confidence: float
    uncertain: bool
    threshold: float
    duration_s: float
    features: np.ndarray = field(repr=False)
    window_starts: np.ndarray = field(repr=False)
    windows: list[WindowPrediction] = field(default_factory=list)
    speech_seconds: float = 0.0
    segments: list[SpeechSegment] = field(default_factory=list)
    adapted: bool = False
    adaptation_clips: int = 0
    emotions: list[str] = field(default_factory=list)
    coverage: float | None = None

    @property
    def label(self) -> str:
        return UNCERTAIN if self.uncertain else self.top_emotion

    def to_dict(self) -> dict[str, Any]:
        return {
            "emotions": self.emotions,
            "coverage": self.coverage,
            "label": self.label,
            "top_emotion": self.top_emotion,
            "confidence": self.confidence,
            "uncertain": self.uncertain,
            "threshold": self.threshold,
            "duration_s": self.duration_s,
            "speech_seconds": self.speech_seconds,
            "adapted": self.adapted,
            "adaptation_clips": self.adaptation_clips,
            "probabilities": self.probabilities,
            "segments": [segment.to_dict() for segment in self.segments],
            "windows": [window.to_dict() for window in self.windows],
        }
