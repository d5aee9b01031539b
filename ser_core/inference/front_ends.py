"""One interface for every model kind: audio in, the timeline's probabilities out.

The predictor (:mod:`ser_core.inference.predictor`) never asks which model it holds. Each kind
brings one small front-end object that turns audio into what its head reads (pooled Whisper
embedding rows, or log-mel windows), runs the head (:meth:`FrontEnd.logits`) and hands back a
:class:`Heard`: the clip's probabilities and the timeline's (each ~3 s window and each speech
segment, placed in the original audio). Everything around it (checking the input, opening the file,
the answer's set of emotions, labels, the ``Prediction``) is written once in the predictor.

==============================  ==========================================  ======================
kind (``config.json``)          front end                                   module
==============================  ==========================================  ======================
``whisper_embedding_head``      :class:`WhisperHeadFront`: encoder frames,  ``whisper_head_front``
                                pooled per clip/window/segment, head
log-mel CNN (``feature_params``) :class:`LogMelWindowsFront`: 3 s windows,   ``log_mel_front``
                                CNN per window, averaged after the head
==============================  ==========================================  ======================

A new kind (a fine-tuned encoder, :mod:`ser_core.inference.tuned_head`) is one more class with
these members and one more entry in :func:`front_end_class`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.artifacts import WHISPER_KIND
from ser_core.inference.params import FeatureParams

__all__ = ["FileReading", "FrontEnd", "Heard", "Progress", "front_end_class", "temperatures", "with_progress"]

Progress = Callable[[float, "float | None"], None]


def temperatures(config: dict[str, Any]) -> tuple[float, float, float]:
    """The softmax temperatures of ``config.json``: plain, adapted to a user, self-trained on a batch.

    Adapted to a user's voice the head's answers are sharper, and re-fitted on a batch's own answers
    sharper still (docs/experiments.md, self-training); older configs have one temperature.
    """
    plain = float(config.get("temperature", 1.0))
    adapted = float(config.get("temperature_adapted", plain))
    return plain, adapted, float(config.get("temperature_self_trained", adapted))


@dataclass
class Heard:
    """What a front end and its head made of one recording.

    Probabilities are ``[n_emotions]`` arrays in the config's emotion order; times are seconds of
    the original audio.
    """

    clip: np.ndarray
    windows: list[tuple[float, float, np.ndarray]]
    segments: list[tuple[float, float, np.ndarray]]
    duration_s: float
    speech_seconds: float
    features: np.ndarray  # [n_windows, n_mels, n_frames]: what the page shows as the model's input
    adapted: bool = False
    adaptation_clips: int = 0


@dataclass
class FileReading:
    """A file being classified: its open stream, how to open it again (a long file may be read more
    than once), the progress callback, and whether it is short enough to decode whole."""

    stream: Any  # ser_core.inference.audio.AudioStream
    reopen: Callable[[], Any]
    progress: Progress | None
    short: bool

    def blocks(self) -> Iterator[np.ndarray]:
        """The first reading's blocks, reporting progress after each."""
        return with_progress(self.stream, self.progress)


def with_progress(stream, progress: Progress | None) -> Iterator[np.ndarray]:
    for block in stream:
        yield block
        if progress is not None:
            progress(stream.decoded_s, stream.duration_s)


class FrontEnd(Protocol):
    """What the predictor needs of a model kind.

    Attributes
    ----------
    kind : str
        ``"whisper_embedding_head"`` or ``"log_mel"``.
    params : FeatureParams
        The sample rate audio is read at, the timeline's window length, and the log-mel shown as
        the model's input.
    head_kind : str
        The head's recipe name (``"ridge"``, ``"lr"``, ``"cnn"``...).
    supports_adaptation : bool
        Whether :meth:`adaptation_sample` and the standardised-row methods below work.
    adaptation_key : str or None
        Which model an :class:`AdaptationSample` was measured for (None: no adaptation).
    """

    kind: str
    params: FeatureParams
    head_kind: str
    supports_adaptation: bool
    adaptation_key: str | None

    @staticmethod
    def serving_options(config: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments :meth:`Predictor.from_artifacts` passes to the constructor (its encoder...)."""

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """The head: its inputs (standardised rows, or log-mel windows) to raw logits ``[n, n_emotions]``."""

    def warm_up(self) -> None:
        """Touch everything a first clip would load (graphs, detector, encoder) now."""

    def hear_wave(self, wave: np.ndarray, *, keep_features: bool, name: str | None,
                  adaptation: Adaptation | None) -> Heard:
        """A whole waveform at :attr:`params` ``.sample_rate``; raises ``NotEnoughSpeech`` without speech."""

    def hear_file(self, reading: FileReading, *, keep_features: bool, adaptation: Adaptation | None) -> Heard:
        """A file, in memory that does not grow with its length unless ``keep_features``."""

    # Adaptation models only (``supports_adaptation``): the batch verbs of the predictor use these.
    def adaptation_sample(self, wave: np.ndarray) -> AdaptationSample:
        """One adaptation clip's head input."""

    def standardisation(self, adaptation: Adaptation | None) -> tuple[bool, np.ndarray, np.ndarray]:
        """Whether ``adaptation`` applies to this model, and the mean and std its rows are standardised with."""

    def head_probabilities(self, rows: np.ndarray, adapted: bool) -> np.ndarray:
        """Temperature softmax of standardised head rows ``[n, d]`` (the adapted temperature when ``adapted``)."""


def front_end_class(config: dict[str, Any]) -> type:
    """The front-end class that serves a model of this ``config.json``."""
    from ser_core.inference.log_mel_front import LogMelWindowsFront
    from ser_core.inference.whisper_head_front import WhisperHeadFront

    return WhisperHeadFront if config.get("kind") == WHISPER_KIND else LogMelWindowsFront
