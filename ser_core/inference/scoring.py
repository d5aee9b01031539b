"""From window logits to calibrated clip probabilities: the one way both inference and evaluation score."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def clip_probabilities(window_logits: np.ndarray, clip_index: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Average the calibrated window probabilities of each clip (as the predictor does)."""
    probabilities = softmax(window_logits, temperature)
    n_clips = int(clip_index.max()) + 1
    sums = np.zeros((n_clips, probabilities.shape[1]))
    np.add.at(sums, clip_index, probabilities)
    return sums / np.bincount(clip_index, minlength=n_clips)[:, None]
