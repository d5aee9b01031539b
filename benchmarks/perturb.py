"""Speed perturbation for the augmentation screen: a new voice from an old one (pitch and formants).

Resampling a clip and playing it at the original rate scales time and every frequency by the same
factor, as speed perturbation in speech recognition does (Ko et al., 2015). Kept apart from
``whisper_screen`` because the embedding cache's key includes this module's source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np


@dataclass(frozen=True)
class SpeedPerturbation:
    """Play each clip ``factor`` times faster, one factor drawn per clip from ``factors``."""

    factors: tuple[float, ...] = (0.9, 1.1)
    sample_rate: int = 16_000

    def to_dict(self) -> dict[str, Any]:
        return {"speed_perturbation": dataclasses.asdict(self)}

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        factor = float(rng.choice(self.factors))
        stretched = librosa.resample(np.asarray(wave, np.float32), orig_sr=self.sample_rate,
                                     target_sr=round(self.sample_rate / factor))
        return stretched.astype(np.float32)
