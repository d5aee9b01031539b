"""Emotion sets with a stated coverage: the answer as the few emotions that hold the true one 9 times in 10.

Split conformal prediction over the model's calibrated probabilities. Training scores every clip
with a head that never heard its corpus (leave one corpus out), ranks how "strange" the true
emotion looked to it (the *nonconformity score*), and keeps the score below which ``coverage`` of
those clips fall: the *threshold*. At serving time the set is every emotion whose score would be at
or below the threshold. On a recording setup like the held-out corpora, the set then holds the
true emotion ``coverage`` of the time; a sure clip gets one emotion, a doubtful one several.

Three ways to score (``METHODS``):

- ``"lac"`` (least ambiguous set): score ``1 - p[true]``; the set is every emotion with
  ``p >= 1 - threshold``. Smallest sets on average; rare or hard emotions may be covered less.
- ``"aps"`` (adaptive): score = the probability mass of the emotions ranked at or above the true
  one; the set is the top emotions while their mass stays within the threshold. Larger sets for a
  flat answer, smaller for a sharp one.
- ``"class_lac"`` (class-conditional): ``lac`` with one threshold per emotion, each from the clips
  of that emotion, so every emotion is covered ``coverage`` of the time.

Every set holds at least the top emotion. Pure numpy; no training or app imports.

Examples
--------
>>> sets = EmotionSets(method="lac", thresholds={0.9: 0.8})
>>> sets.names(np.array([0.7, 0.05, 0.05, 0.1, 0.05, 0.05]), ("angry", "disgust", "fear", "happy", "neutral", "sad"))
['angry']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

__all__ = ["COVERAGES", "DEFAULT_COVERAGE", "METHODS", "EmotionSets", "calibrate", "check_coverage",
           "nonconformity", "set_figures", "set_mask"]

Method = Literal["lac", "aps", "class_lac"]
METHODS: tuple[str, ...] = ("lac", "aps", "class_lac")
COVERAGES: tuple[float, ...] = (0.8, 0.9, 0.95)  # the settings train.py calibrates and the app offers
DEFAULT_COVERAGE = 0.9
Threshold = float | list[float]  # one threshold, or one per emotion (class_lac)


def check_coverage(coverage: Any) -> float:
    """``coverage`` as a float after checking it is a fraction strictly between 0 and 1 (the message names it)."""
    try:
        value = float(coverage)
    except (TypeError, ValueError):
        raise ValueError(f"the coverage must be a fraction between 0 and 1 (e.g. 0.9), got {coverage!r}") from None
    if isinstance(coverage, bool) or not math.isfinite(value) or not 0.0 < value < 1.0:
        raise ValueError(f"the coverage must be a fraction between 0 and 1 (e.g. 0.9), got {coverage!r}")
    return value


def _mass_at_or_above(probabilities: np.ndarray) -> np.ndarray:
    """For each emotion, the probability mass of the emotions ranked at or above it (ties count as above)."""
    order = np.argsort(-probabilities, axis=-1, kind="stable")
    cumulative = np.cumsum(np.take_along_axis(probabilities, order, axis=-1), axis=-1)
    mass = np.empty_like(probabilities)
    np.put_along_axis(mass, order, cumulative, axis=-1)
    return mass


def nonconformity(probabilities: np.ndarray, labels: np.ndarray, method: Method) -> np.ndarray:
    """How strange the true emotion looked: ``(n,)`` scores of ``(n, k)`` probabilities and ``(n,)`` labels."""
    probabilities = np.asarray(probabilities, np.float64)
    rows = np.arange(len(labels))
    if method in ("lac", "class_lac"):
        return 1.0 - probabilities[rows, labels]
    if method == "aps":
        return _mass_at_or_above(probabilities)[rows, labels]
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _quantile(scores: np.ndarray, coverage: float) -> float:
    """The conformal quantile: the ceil((n + 1) * coverage)-th smallest score (1.0 when n is too small)."""
    n = len(scores)
    rank = math.ceil((n + 1) * coverage)
    if n == 0 or rank > n:
        return 1.0
    return float(np.sort(scores)[rank - 1])


def calibrate(probabilities: np.ndarray, labels: np.ndarray, coverage: float, method: Method) -> Threshold:
    """The threshold whose sets hold the true emotion of at least ``coverage`` of these clips (and of new ones
    like them).

    Parameters
    ----------
    probabilities : np.ndarray
        ``(n, k)`` calibrated probabilities of clips the model never heard the setup of.
    labels : np.ndarray
        ``(n,)`` true emotion index of each.
    coverage : float
        E.g. 0.9.
    method : {"lac", "aps", "class_lac"}

    Returns
    -------
    float, or a list of k floats for ``class_lac`` (an emotion without calibration clips gets the
    pooled threshold).
    """
    coverage = check_coverage(coverage)
    labels = np.asarray(labels)
    scores = nonconformity(probabilities, labels, method)
    pooled = _quantile(scores, coverage)
    if method != "class_lac":
        return pooled
    return [_quantile(scores[labels == k], coverage) if (labels == k).any() else pooled
            for k in range(np.asarray(probabilities).shape[1])]


def set_mask(probabilities: np.ndarray, threshold: Threshold, method: Method) -> np.ndarray:
    """Which emotions are in each set: a boolean array shaped like ``probabilities`` (``(k,)`` or ``(n, k)``).

    The top emotion is always in (an empty set would say nothing).
    """
    probabilities = np.asarray(probabilities, np.float64)
    if method == "aps":
        inside = _mass_at_or_above(probabilities) <= float(threshold) + 1e-12
    elif method in ("lac", "class_lac"):
        cut = 1.0 - np.asarray(threshold, np.float64)
        inside = probabilities >= cut - 1e-12
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    top = probabilities == probabilities.max(axis=-1, keepdims=True)
    return inside | top


def set_figures(probabilities: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float | int]:
    """What the sets do on labelled clips: how often they hold the truth, how big they are, how often they
    name one emotion and how often that one is right.

    Returns
    -------
    dict
        ``clips``, ``coverage`` (share of sets holding the true emotion), ``mean_set_size``,
        ``single_rate`` (share of one-emotion sets), ``single_accuracy`` (share of those that are right;
        None when there are none) and ``top_accuracy`` (the top emotion alone); fractions 0-1.
    """
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    sizes = mask.sum(axis=1)
    single = sizes == 1
    hit = mask[rows, labels]
    top_right = np.asarray(probabilities).argmax(axis=1) == labels
    return {
        "clips": int(len(labels)),
        "coverage": round(float(hit.mean()), 4) if len(labels) else None,
        "mean_set_size": round(float(sizes.mean()), 3) if len(labels) else None,
        "single_rate": round(float(single.mean()), 4) if len(labels) else None,
        "single_accuracy": round(float(hit[single].mean()), 4) if single.any() else None,
        "top_accuracy": round(float(top_right.mean()), 4) if len(labels) else None,
    }


@dataclass(frozen=True)
class EmotionSets:
    """The served model's set rule: its method and a threshold per coverage, for plain and adapted answers.

    Built from ``config.json``'s ``emotion_sets`` (:meth:`from_config`); a model trained before sets
    existed gets :meth:`uncalibrated` (every emotion at least ``1 - coverage`` likely, 10 % at the 90 %
    setting, which trusts the probabilities as they are: ``calibrated`` is False).
    """

    method: str
    thresholds: Mapping[float, Threshold]
    adapted_thresholds: Mapping[float, Threshold] = field(default_factory=dict)
    calibrated: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"emotion_sets.method must be one of {METHODS}, got {self.method!r}")
        if not self.thresholds:
            raise ValueError("emotion_sets needs at least one threshold")

    @classmethod
    def uncalibrated(cls) -> "EmotionSets":
        return cls(method="lac", thresholds={c: c for c in COVERAGES}, calibrated=False)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "EmotionSets":
        """``config["emotion_sets"]`` (``method``, ``thresholds`` and ``adapted_thresholds``: coverage as a string
        -> threshold), or :meth:`uncalibrated` when the model has none."""
        block = config.get("emotion_sets")
        if not block:
            return cls.uncalibrated()

        def read(table: Mapping[str, Any] | None) -> dict[float, Threshold]:
            return {check_coverage(key): ([float(v) for v in value] if isinstance(value, list) else float(value))
                    for key, value in (table or {}).items()}

        return cls(method=block["method"], thresholds=read(block["thresholds"]),
                   adapted_thresholds=read(block.get("adapted_thresholds")))

    @property
    def coverages(self) -> tuple[float, ...]:
        """The coverage settings this model was calibrated for, lowest first."""
        return tuple(sorted(self.thresholds))

    def threshold(self, coverage: float, adapted: bool = False) -> Threshold:
        """The threshold for ``coverage`` (the nearest calibrated setting), adapted answers' own where measured."""
        coverage = check_coverage(coverage)
        table = self.adapted_thresholds if adapted and self.adapted_thresholds else self.thresholds
        nearest = min(table, key=lambda c: abs(c - coverage))
        return table[nearest]

    def mask(self, probabilities: np.ndarray, coverage: float = DEFAULT_COVERAGE, adapted: bool = False) -> np.ndarray:
        return set_mask(probabilities, self.threshold(coverage, adapted), self.method)  # type: ignore[arg-type]

    def names(self, probabilities: np.ndarray, emotions: Sequence[str], coverage: float = DEFAULT_COVERAGE,
              adapted: bool = False) -> list[str]:
        """The set for one clip's ``(k,)`` probabilities, most likely emotion first."""
        probabilities = np.asarray(probabilities, np.float64)
        inside = self.mask(probabilities, coverage, adapted)
        order = np.argsort(-probabilities, kind="stable")
        return [emotions[i] for i in order if inside[i]]
