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
