"""Adaptation to one user's voice and room: the head's input standardised with their statistics.

The Whisper model reads standardised embeddings. Out of the box it uses the training corpora's
average statistics; a corpus (a room, a microphone, a set of voices) standardised with its own
statistics scores 7-13 points of UAR more (docs/experiments.md, W33 against W32). A user gives
their own clips, of any emotion, without labels: :class:`Adaptation` keeps the running sums of
those clips' embeddings, and the predictor centres on their mean.

Both statistics are shrunk towards the model's defaults: with a handful of clips the per-dimension
standard deviation is noise (2,048 numbers from 5 clips), so the variance used is the clips'
variance pooled with the default variance weighted as :data:`PRIOR_CLIPS` clips, and the mean is
the clips' mean pooled with the default mean weighted as :data:`PRIOR_CLIPS_MEAN` clips (so a few
clips of one mood do not make that mood the new centre outright). Measured per speaker with k random
clips, their corpus left out of training, for the shipped ridge head (``python -m
benchmarks.adaptation_std``, docs/experiments.md W189, W195; mean UAR over the four corpora, strict
50.3):

================  =====  =====  ======  ======
n0                k = 3  k = 5  k = 10  k = 20
================  =====  =====  ======  ======
variance, ~0      47.2   57.4   60.2    62.2
variance, 10      57.8   59.4   60.7    62.1
variance, inf     57.9   59.1   60.2    61.5
mean, 0           56.5   58.3   60.3    61.5
mean, 2           57.8   59.4   60.7    62.1
mean, 5           55.8   58.2   59.9    62.2
================  =====  =====  ======  ======

(each row with the other prior as shipped: 10 for the variance, 2 for the mean). The clips' own std
falls below the strict figure at k = 3; a variance prior of 10 is within 0.2 points of the best at
every k. A mean prior of 2 is the best at every k; more pulls the answers back to the strict ones.

Ready after :data:`MIN_CLIPS` clips, or two clips or more holding :data:`MIN_SPEECH_SECONDS` of speech:
5 random clips per speaker already give 58-59 % mean UAR against 50.3 % strict (above), while 5-20
neutral clips give 56-57 % and leave calm speech seldom called neutral (W194): the clips should be
varied speech, not one mood.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MIN_CLIPS", "MIN_SPEECH_SECONDS", "PRIOR_CLIPS", "PRIOR_CLIPS_MEAN", "Adaptation", "AdaptationSample"]

MIN_CLIPS = 5
MIN_SPEECH_SECONDS = 15.0
PRIOR_CLIPS = 10.0  # weight of the model's default variance, in clips
PRIOR_CLIPS_MEAN = 2.0  # weight of the model's default mean, in clips (docs/experiments.md, W195)


@dataclass(frozen=True)
class AdaptationSample:
    """One clip's contribution: the head's input before standardisation.

    Attributes
    ----------
    features : np.ndarray
        float64 ``(d,)``, :func:`ser_core.inference.embedding_head.head_input` of the clip.
    speech_seconds : float
        Speech the detector heard in the clip.
    model_key : str
        Which front end and input selection made it; an adaptation only serves models with the same key.
    """

    features: np.ndarray
    speech_seconds: float
    model_key: str


def _frozen(values: np.ndarray) -> np.ndarray:
    values = np.array(values, dtype=np.float64)
    values.setflags(write=False)
    return values


@dataclass(frozen=True)
class Adaptation:
    """The clips a user gave so far, as running sums; immutable (``add`` returns a new one).

    Examples
    --------
    >>> adaptation = Adaptation.empty()
    >>> adaptation = adaptation.add(predictor.adaptation_sample(wave, 16_000))  # doctest: +SKIP
    >>> adaptation.ready, adaptation.n_clips  # doctest: +SKIP
    (False, 1)
    >>> state = adaptation.to_dict()  # JSON-safe, for st.session_state
    >>> Adaptation.from_dict(state) == adaptation
    True
    """

    n_clips: int = 0
    speech_seconds: float = 0.0
    model_key: str | None = None
    total: np.ndarray | None = None  # sum of the clips' features, (d,)
    total_sq: np.ndarray | None = None  # sum of their squares, (d,)

    @classmethod
    def empty(cls) -> "Adaptation":
        return cls()

    def add(self, sample: AdaptationSample) -> "Adaptation":
        """A new adaptation with ``sample`` added.

        Raises
        ------
        ValueError
            ``sample`` comes from another model (front end or input selection) than the clips so far.
        """
        if self.model_key is not None and sample.model_key != self.model_key:
            raise ValueError("this clip was measured for another model than the earlier adaptation clips; "
                             "start the adaptation again")
        features = np.asarray(sample.features, np.float64)
        total = features if self.total is None else self.total + features
        total_sq = np.square(features) if self.total_sq is None else self.total_sq + np.square(features)
        return Adaptation(self.n_clips + 1, self.speech_seconds + float(sample.speech_seconds), sample.model_key,
                          _frozen(total), _frozen(total_sq))

    @property
    def ready(self) -> bool:
        """Enough clips or speech to adapt with (:data:`MIN_CLIPS` clips or :data:`MIN_SPEECH_SECONDS` s)."""
        return self.n_clips >= MIN_CLIPS or (self.n_clips >= 2 and self.speech_seconds >= MIN_SPEECH_SECONDS)

    def statistics(self, default_std: np.ndarray,
                   default_mean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the scale to standardise with: the clips' mean and variance, each shrunk to the default's.

        Parameters
        ----------
        default_std : np.ndarray
            ``(d,)``, the model's default standardisation scale.
        default_mean : np.ndarray, optional
            ``(d,)``, the model's default mean: the clips' mean is pooled with it as if it were
            :data:`PRIOR_CLIPS_MEAN` clips. Without it the clips' own mean is used.

        Returns
        -------
        mean, std : np.ndarray
            ``(d,)`` each.
        """
        if self.n_clips == 0 or self.total is None or self.total_sq is None:
            raise ValueError("no adaptation clips yet")
        n = self.n_clips
        mean = self.total / n
        variance = np.maximum(self.total_sq / n - np.square(mean), 0.0)
        default_std = np.asarray(default_std, np.float64)
        std = np.sqrt((n * variance + PRIOR_CLIPS * np.square(default_std)) / (n + PRIOR_CLIPS))
        if default_mean is not None:
            mean = (n * mean + PRIOR_CLIPS_MEAN * np.asarray(default_mean, np.float64)) / (n + PRIOR_CLIPS_MEAN)
        return mean, std

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (lists of floats), for ``st.session_state`` or a file."""
        return {"n_clips": self.n_clips, "speech_seconds": self.speech_seconds, "model_key": self.model_key,
                "total": None if self.total is None else self.total.tolist(),
                "total_sq": None if self.total_sq is None else self.total_sq.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Adaptation":
        total, total_sq = values.get("total"), values.get("total_sq")
        n_clips = int(values.get("n_clips", 0))
        if n_clips < 0 or (n_clips > 0) != (total is not None and total_sq is not None):
            raise ValueError(f"not an adaptation: n_clips={n_clips} with sums {'present' if total else 'absent'}")
        return cls(n_clips, float(values.get("speech_seconds", 0.0)), values.get("model_key"),
                   None if total is None else _frozen(total), None if total_sq is None else _frozen(total_sq))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Adaptation):
            return NotImplemented
        same = lambda a, b: (a is None and b is None) or (a is not None and b is not None  # noqa: E731
                                                           and np.array_equal(a, b))
        return (self.n_clips, self.speech_seconds, self.model_key) == (other.n_clips, other.speech_seconds,
                                                                       other.model_key) \
            and same(self.total, other.total) and same(self.total_sq, other.total_sq)

    __hash__ = None  # type: ignore[assignment]
