"""Metrics, calibration fitting and reliability figures of a model's answers."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from ser_core.inference.params import EMOTIONS
from ser_core.inference.scoring import clip_probabilities, softmax  # noqa: F401  (part of this module's API)


def classification_report(labels: np.ndarray, predicted: np.ndarray,
                          emotions: tuple[str, ...] = EMOTIONS) -> dict[str, Any]:
    """Accuracy, UAR (balanced accuracy), macro-F1, per-class figures and the confusion matrix.

    An emotion with no clips in ``labels`` is not measured: its precision, recall and F1 are None
    (JSON null), not 0, and it is left out of UAR and macro-F1, so a folder without some emotions
    is neither penalised nor flattered by them. Each row also counts how often the emotion was
    ``predicted``, so answers given for an absent emotion (all of them wrong) still show.
    """
    classes = list(range(len(emotions)))
    present = sorted(set(np.asarray(labels).tolist()))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    matrix = confusion_matrix(labels, predicted, labels=classes)

    def measured(value: float, count: int) -> float | None:
        return float(value) if count > 0 else None

    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "uar": float(np.mean(recall[present])),
        "macro_f1": float(np.mean(f1[present])),
        "labels": list(emotions),
        "confusion_matrix": matrix.tolist(),
        "per_class": {
            emotion: {"precision": measured(p, s), "recall": measured(r, s), "f1": measured(f, s),
                      "support": int(s), "predicted": int(n)}
            for emotion, p, r, f, s, n in zip(emotions, precision, recall, f1, support,
                                              matrix.sum(axis=0))
        },
    }


def report_from_confusion(matrix: np.ndarray, emotions: tuple[str, ...] = EMOTIONS) -> dict[str, Any]:
    """:func:`classification_report` of the labels and predictions a confusion matrix counts."""
    matrix = np.asarray(matrix, dtype=int)
    true_class, predicted_class = np.nonzero(matrix)
    counts = matrix[true_class, predicted_class]
    return classification_report(np.repeat(true_class, counts), np.repeat(predicted_class, counts), emotions)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``."""

    def nll(log_temperature: float) -> float:
        probabilities = softmax(logits, float(np.exp(log_temperature)))
        return float(-np.mean(np.log(probabilities[np.arange(len(labels)), labels] + 1e-12)))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def reliability(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Expected calibration error and the reliability-diagram bins of top-1 confidence."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / np.maximum(count, 1)
    mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / np.maximum(count, 1)
    ece = float(np.sum(count * np.abs(accuracy - mean_confidence)) / max(len(labels), 1))
    return {
        "ece": ece,
        "bin_edges": edges.tolist(),
        "accuracy": accuracy.tolist(),
        "confidence": mean_confidence.tolist(),
        "count": count.tolist(),
    }


def ece_sampling_floor(confidence: np.ndarray, n_bins: int = 10, draws: int = 2000, seed: int = 0) -> float:
    """Expected ECE of a *perfectly calibrated* model with these top-1 confidences, on this many clips.

    Even when every confidence is exactly right, whether each clip is correct is a coin flip, so the
    binned ECE of a finite test set is above zero. Simulating those flips gives the level below which
    a measured ECE says nothing: about 0.05 for ~170 clips, which is why per-fold ECEs are noisy.
    """
    confidence = np.asarray(confidence, dtype=float)
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    in_bin = np.eye(n_bins)[bins]  # [clips, bins] one-hot
    correct = rng.random((draws, len(confidence))) < confidence  # [draws, clips]
    gap_per_bin = correct @ in_bin - confidence @ in_bin  # correct minus expected, per draw and bin
    return float(np.mean(np.sum(np.abs(gap_per_bin), axis=1)) / max(len(confidence), 1))


# The "uncertain" cut-off is chosen, not fitted: the lowest confidence at which the answered clips of a
# setup the model never heard (leave-one-corpus-out) are right at least 2 times in 3. Higher cut-offs
# answer fewer clips for little gain; lower ones answer clips that are wrong half the time.
ANSWERED_ACCURACY_TARGET = 2 / 3
THRESHOLD_GRID = tuple(round(0.25 + 0.05 * i, 2) for i in range(8))  # 0.25 .. 0.60


def answered_table(probabilities: np.ndarray, labels: np.ndarray,
                   cut_offs: tuple[float, ...] = THRESHOLD_GRID) -> list[dict[str, float]]:
    """Per cut-off: the share of clips answered (top probability >= cut-off) and their accuracy.

    Parameters
    ----------
    probabilities : np.ndarray
        ``(n_clips, n_classes)`` calibrated probabilities.
    labels : np.ndarray
        ``(n_clips,)`` true class indices.

    Returns
    -------
    list of dict
        ``{"threshold", "answered", "accuracy"}`` per cut-off; ``accuracy`` is None when none is answered.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    top, right = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    rows = []
    for cut in cut_offs:
        answered = top >= cut
        accuracy = float(right[answered].mean()) if answered.any() else None
        rows.append({"threshold": float(cut), "answered": float(answered.mean()), "accuracy": accuracy})
    return rows


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray, *,
                     target: float = ANSWERED_ACCURACY_TARGET,
                     cut_offs: tuple[float, ...] = THRESHOLD_GRID) -> float:
    """The lowest cut-off whose answered clips reach ``target`` accuracy (the highest one if none does).

    Examples
    --------
    >>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.45, 0.55]])
    >>> choose_threshold(probabilities, np.array([0, 1, 0, 0]))  # 0.25-0.55: 2 of 4 right; 0.6: 2 of 3
    0.6
    """
    for row in answered_table(probabilities, labels, cut_offs):
        if row["accuracy"] is not None and row["accuracy"] >= target:
            return row["threshold"]
    return float(max(cut_offs))
