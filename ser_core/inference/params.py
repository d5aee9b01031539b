"""The one parameter record shared by training and inference.

The feature parameters are saved next to the model in ``artifacts/config.json`` and read back at
inference, so the app always computes exactly the features the model was trained on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# The six emotions RAVDESS and CREMA-D share, in the model's output order.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad")
# RAVDESS's two other emotions. ``train.py --auxiliary-emotions`` trains on them as extra output classes
# (more speech of the same actors to learn from) and drops those outputs before the model is saved:
# the model never predicts them. Their labels follow the six, so the six keep their indices.
AUXILIARY_EMOTIONS: tuple[str, ...] = ("calm", "surprised")
TRAINING_LABELS: tuple[str, ...] = EMOTIONS + AUXILIARY_EMOTIONS


@dataclass(frozen=True)
class FeatureParams:
    """Log-mel front end.

    64 mel bands: at the bottom of the scale their centres are ~46 Hz apart, fine enough to separate the
    first harmonics of a voice (F0 ≈ 85–300 Hz), while halving the CNN's cost against the 128 bands
    of the reference notebook; 128 would mostly split the upper, noise-like bands finer. (Not
    measured against 128 here: see docs/experiments.md for what was.)
    """

    sample_rate: int = 16_000
    win_length: int = 400  # 25 ms
    hop_length: int = 160  # 10 ms
    n_fft: int = 512
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 8_000.0
    clip_seconds: float = 3.0  # the model's fixed input window
    # Dynamic range kept below each window's loudest bin. 50 dB, not the usual 80: the detail 50-80 dB
    # down is studio-specific and the first thing noise buries (see docs/experiments.md).
    top_db: float = 50.0
    trim_db: float = 30.0  # leading/trailing audio this far below the peak counts as silence

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        return 1 + self.clip_samples // self.hop_length

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.n_mels, self.n_frames, 1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "FeatureParams":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class EmbeddingParams:
    """Whisper-encoder front end (``ser_core.inference.embedding``): one record for training and inference.

    Saved with every embedding model and part of every embedding cache key, so a model is never fed
    embeddings computed another way than those it was trained on.
    """

    model: str = "base"
    # SHA-256 of the whole CTranslate2 model.bin; the encoder refuses weights that do not match.
    weights_sha256: str = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    sample_rate: int = 16_000
    # Keep only what Silero VAD calls speech: leading/trailing silence made the pooled means depend
    # on each corpus's editing (44 -> 55 % UAR on one held-out corpus with trimming + level, see
    # docs/experiments.md).
    vad: bool = True
    # RMS of the speech parts is brought to this level. Peak normalisation let one click or shout
    # set the level of a whole clip; Whisper's log-mel is not level-invariant.
    speech_level_dbfs: float = -23.0
    max_gain_db: float = 40.0  # a near-silent input is not amplified into noise beyond this
    # Whisper's window is 30 s; longer speech is split into equal segments no longer than this and
    # pooled over all their frames.
    max_segment_seconds: float = 20.0
    # Shorter speech is zero-padded (symmetrically) to this length: the encoder's first frames carry a
    # start-of-window transient, and 0.3 s words would be dominated by it.
    min_segment_seconds: float = 0.0
    # How the encoder's transformer blocks run: "float32" (numpy) or "int8" (onnxruntime, int8
    # weights; ser_core.inference.whisper_int8). Embeddings differ slightly between the two, so
    # each has its own cache key and a model is served with the one it was trained on.
    encoder_precision: str = "float32"

    def __post_init__(self) -> None:
        if self.sample_rate != 16_000:
            raise ValueError(f"the Whisper front end needs 16 kHz audio, got sample_rate={self.sample_rate}")
        if not 1.0 <= self.max_segment_seconds <= 30.0:
            raise ValueError(f"max_segment_seconds must be in [1, 30], got {self.max_segment_seconds}")
        if not -60.0 <= self.speech_level_dbfs <= 0.0:
            raise ValueError(f"speech_level_dbfs must be in [-60, 0], got {self.speech_level_dbfs}")
        if self.encoder_precision not in ("float32", "int8"):
            raise ValueError(f"encoder_precision must be 'float32' or 'int8', got {self.encoder_precision!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EmbeddingParams":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown EmbeddingParams keys: {sorted(unknown)}")
        return cls(**values)
