"""Calibrating the emotion sets (:mod:`ser_core.inference.emotion_sets`) on leave-one-corpus-out scores.

``train.py`` scores every clip with a head that never heard its corpus (strict), and again with each
held-out speaker adapted as in the app. :func:`calibrate_sets` turns those scores into the served
thresholds, one per coverage setting, for plain and adapted answers, and measures what a set does on a
setup nobody calibrated on: each corpus in turn is left out of the calibration too (its temperature and
thresholds come from the other corpora's scores alone) and its sets are scored against the truth.
It tries every method and keeps the one that meets :data:`TARGETS` on every held-out corpus with the
smallest sets.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ser_core.evaluation.metrics import fit_temperature, softmax
from ser_core.inference.emotion_sets import COVERAGES, DEFAULT_COVERAGE, METHODS, calibrate, set_figures, set_mask

__all__ = ["TARGETS", "calibrate_sets", "held_out_figures"]

# What a set must do on every held-out corpus at the 90 % setting (issue 22).
TARGETS = {"min_coverage": 0.85, "max_mean_set_size": 2.5}


def _pooled(results: Mapping[str, Mapping[str, Any]], corpora: list[str]) -> tuple[np.ndarray, np.ndarray]:
    logits = np.concatenate([results[c]["logits"] for c in corpora])
    labels = np.concatenate([results[c]["labels"] for c in corpora])
    return np.where(np.isfinite(logits), logits, -1e4), labels


def _held_out_temperatures(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Per corpus: the temperature fitted on the other corpora's scores only."""
    temperatures = {}
    for corpus in results:
        logits, labels = _pooled(results, [c for c in results if c != corpus])
        temperatures[corpus] = fit_temperature(logits, labels)
    return temperatures


def held_out_figures(results: Mapping[str, Mapping[str, Any]], method: str, coverage: float = DEFAULT_COVERAGE,
                     answered_threshold: float | None = None,
                     temperatures: Mapping[str, float] | None = None) -> dict[str, dict[str, Any]]:
    """Per corpus: the sets' figures when neither the head nor the calibration heard that corpus.

    Parameters
    ----------
    results : dict
        Corpus -> ``{"logits", "labels"}`` of its clips, scored by a head trained without it.
    method, coverage
        The set rule (:data:`~ser_core.inference.emotion_sets.METHODS`) and setting.
    answered_threshold : float, optional
        Also report how the old single answer did: the share of clips whose top probability reaches
        it (``answered_rate``) and how often those are right (``answered_accuracy``).
    temperatures : dict, optional
        Corpus -> the temperature fitted without it (computed here when not given).

    Returns
    -------
    dict
        Corpus -> :func:`~ser_core.inference.emotion_sets.set_figures` (+ the answered figures).
    """
    figures = {}
    temperatures = temperatures or _held_out_temperatures(results)
    for corpus in sorted(results):
        others = [c for c in results if c != corpus]
        logits, labels = _pooled(results, others)
        temperature = temperatures[corpus]
        threshold = calibrate(softmax(logits, temperature), labels, coverage, method)  # type: ignore[arg-type]
        held_logits, held_labels = _pooled(results, [corpus])
        probabilities = softmax(held_logits, temperature)
        row = set_figures(probabilities, held_labels, set_mask(probabilities, threshold, method))  # type: ignore[arg-type]
        if answered_threshold is not None:
            answered = probabilities.max(axis=1) >= answered_threshold
            right = probabilities.argmax(axis=1) == held_labels
            row["answered_rate"] = round(float(answered.mean()), 4)
            row["answered_accuracy"] = round(float(right[answered].mean()), 4) if answered.any() else None
        figures[corpus] = row
    return figures


def _meets(figures: Mapping[str, Mapping[str, Any]]) -> bool:
    return all(row["coverage"] >= TARGETS["min_coverage"] and row["mean_set_size"] <= TARGETS["max_mean_set_size"]
               for row in figures.values())


def _mean(figures: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
    values = [row[key] for row in figures.values() if row.get(key) is not None]
    return round(float(np.mean(values)), 4) if values else None


def calibrate_sets(strict: Mapping[str, Mapping[str, Any]], adapted: Mapping[str, Mapping[str, Any]], *,
                   temperature: float, temperature_adapted: float,
                   answered_threshold: float | None = None,
                   answered_threshold_adapted: float | None = None) -> dict[str, Any]:
    """The ``emotion_sets`` block of ``config.json``.

    Parameters
    ----------
    strict, adapted : dict
        Corpus -> ``{"logits", "labels"}``: leave-one-corpus-out scores, strict and with each held-out
        speaker adapted (``embedding_protocols.leave_one_corpus_out_enrolled``).
    temperature, temperature_adapted : float
        The served temperatures (fitted on the same pooled scores); the thresholds are calibrated on
        the probabilities the predictor will produce.
    answered_threshold, answered_threshold_adapted : float, optional
        The old "uncertain" cut-offs, to report the answered rate beside the sets.

    Returns
    -------
    dict
        ``method`` (chosen by :data:`TARGETS`, then the smallest mean set size, on the strict scores),
        ``thresholds`` and ``adapted_thresholds`` (coverage as a string -> threshold), ``rule``,
        ``held_out`` (per protocol and method, per corpus figures at 90 %, each corpus left out of
        the calibration as well), ``held_out_coverages`` (the chosen method at every setting) and
        ``targets``.
    """
    protocols = {"strict": (strict, answered_threshold), "adapted": (adapted, answered_threshold_adapted)}
    temperatures = {name: _held_out_temperatures(results) for name, (results, _) in protocols.items()}
    held_out = {name: {method: held_out_figures(results, method, DEFAULT_COVERAGE, cut, temperatures[name])
                       for method in METHODS}
                for name, (results, cut) in protocols.items()}
    strict_runs = held_out["strict"]
    meeting = [m for m in METHODS if _meets(strict_runs[m])]
    if meeting:
        method = min(meeting, key=lambda m: _mean(strict_runs[m], "mean_set_size"))
        why = "meets the targets on every held-out corpus with the smallest mean set size"
    else:
        method = max(METHODS, key=lambda m: min(row["coverage"] for row in strict_runs[m].values()))
        why = "no method met the targets on every held-out corpus: the one with the highest lowest coverage"

    def thresholds(results: Mapping[str, Mapping[str, Any]], scale: float) -> dict[str, Any]:
        logits, labels = _pooled(results, list(results))
        probabilities = softmax(logits, scale)
        return {str(c): calibrate(probabilities, labels, c, method) for c in COVERAGES}  # type: ignore[arg-type]

    summary = {name: {m: {key: _mean(figures, key) for key in ("coverage", "mean_set_size", "single_rate",
                                                                 "single_accuracy", "answered_rate",
                                                                 "answered_accuracy")}
                      for m, figures in runs.items()}
               for name, runs in held_out.items()}
    return {
        "method": method,
        "thresholds": thresholds(strict, temperature),
        "adapted_thresholds": thresholds(adapted, temperature_adapted),
        "rule": f"{method}: {why} (at 90 %: coverage >= {TARGETS['min_coverage']:.2f}, mean set size <= "
                f"{TARGETS['max_mean_set_size']}); thresholds from every held-out clip's scores",
        "targets": TARGETS,
        "held_out": held_out,
        "held_out_mean": summary,
        "held_out_coverages": {name: {str(c): held_out_figures(results, method, c, temperatures=temperatures[name])
                                      for c in COVERAGES}
                               for name, (results, _) in protocols.items()},
        "measured_on": ("each corpus held out in turn from the head and from the calibration (temperature and "
                        "thresholds fitted on the other corpora's held-out scores); adapted: each held-out "
                        "speaker adapted with 5, 10 or 20 of their own clips, as in the app"),
    }
