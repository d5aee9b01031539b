"""What a head reads from pooled Whisper embeddings: the chosen layers, flattened, then standardised.

Kept apart from ``embedding`` on purpose: the embedding cache key fingerprints the front end's
source, and choosing or standardising layers is not part of the front end (editing it must not
recompute every clip's embedding).
"""

from __future__ import annotations

import numpy as np

__all__ = ["head_input", "standardise"]


def head_input(pooled: np.ndarray, layers: tuple[int, ...], statistics: str = "mean_std") -> np.ndarray:
    """The rows of pooled embeddings a head reads, flattened: the same selection in training and inference.

    Parameters
    ----------
    pooled : np.ndarray
        ``(n_layers + 1, 2 * width)`` for one clip, or ``(n_clips, n_layers + 1, 2 * width)``.
    layers : tuple of int
        Encoder layers to keep (0 = the convolutional stem, 1..n = transformer blocks).
    statistics : {"mean_std", "mean"}
        Keep both pooled statistics or the frame mean only.

    Returns
    -------
    np.ndarray
        ``(len(layers) * d,)`` or ``(n_clips, len(layers) * d)`` with ``d = 2 * width`` or ``width``.
    """
    if statistics not in ("mean_std", "mean"):
        raise ValueError(f"statistics must be 'mean_std' or 'mean', got {statistics!r}")
    pooled = np.asarray(pooled)
    single = pooled.ndim == 2
    batch = pooled[None] if single else pooled
    if max(layers) >= batch.shape[1] or min(layers) < 0:
        raise ValueError(f"layers {layers} outside 0..{batch.shape[1] - 1}")
    chosen = batch[:, list(layers)]
    if statistics == "mean":
        chosen = chosen[..., : chosen.shape[-1] // 2]
    flat = chosen.reshape(len(batch), -1)
    return flat[0] if single else flat


def standardise(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(features - mean) / std`` as float32: the statistics of a room, a speaker or the default set.

    Parameters
    ----------
    features : np.ndarray
        ``(d,)`` or ``(n, d)`` :func:`head_input` rows.
    mean, std : np.ndarray
        ``(d,)`` statistics from the model config (``standardisation``) or from adaptation clips.
    """
    return ((np.asarray(features) - mean) / std).astype(np.float32)
