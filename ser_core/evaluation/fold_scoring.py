"""Scoring a trained model on held-out speakers: one run's test set, a cross-validation fold, all folds.

The figures of ``metrics.json`` (:func:`holdout_metrics`) and of ``cv_<arch>.json``
(:func:`fold_result`, :func:`score_fold`, :func:`pooled_calibration`, :func:`summarise_folds`) are
computed here from window logits, so any set of saved logits is scored by the same code as the run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ser_core.data.corpora import Clip
from ser_core.data.dataset import WindowSet, window_set
from ser_core.evaluation.metrics import (classification_report, clip_probabilities, ece_sampling_floor,
                                         fit_temperature, reliability)
from ser_core.inference.params import EMOTIONS, FeatureParams

__all__ = ["CONDITIONS", "calibration_of", "calibration_report", "corrupted_logits", "fold_result",
           "holdout_metrics", "pooled_calibration", "print_cv_table", "rounded", "score", "score_fold",
           "summarise_folds", "window_logits"]

CONDITIONS = ("snr_20db", "snr_10db", "snr_5db", "reverb_rt60_0.6s")


def window_logits(model, windows: WindowSet) -> np.ndarray:
    """``model``'s logits for every window of ``windows``, ``[windows, classes]``, float64."""
    return np.asarray(model.predict(windows.x[..., None], batch_size=128, verbose=0), dtype=np.float64)


def score(logits: np.ndarray, windows: WindowSet, temperature: float) -> dict:
    """Clip-level classification report of ``windows`` from their window logits."""
    probabilities = clip_probabilities(logits, windows.clip_index, temperature)
    return classification_report(windows.clip_labels, probabilities.argmax(axis=1))


def calibration_report(logits: np.ndarray, windows: WindowSet, temperature: float) -> dict:
    """Expected calibration error and reliability bins of ``windows``, unscaled and scaled, with the
    ECE a perfectly calibrated model would show on this many clips (see ``ece_sampling_floor``)."""
    return calibration_of(clip_probabilities(logits, windows.clip_index),
                          clip_probabilities(logits, windows.clip_index, temperature), windows.clip_labels)


def calibration_of(unscaled: np.ndarray, scaled: np.ndarray, labels: np.ndarray) -> dict:
    """:func:`calibration_report` from clip probabilities without and with the temperature."""
    before, after = reliability(unscaled, labels), reliability(scaled, labels)
    return {"ece_before": before["ece"], "ece_after": after["ece"], "ece_floor": ece_sampling_floor(scaled.max(axis=1)),
            "reliability": {"before": before, "after": after}}


def holdout_metrics(validation_logits: np.ndarray, validation: WindowSet, test_logits: np.ndarray | None,
                    test: WindowSet | None, temperature: float, fitted_on: str) -> dict:
    """``metrics.json`` of one training run, less its ``split``.

    Parameters
    ----------
    validation_logits, test_logits : ndarray, shape (windows, 6)
        The model's window logits on the validation and test speakers (``test_logits`` None without).
    validation, test : WindowSet
        Those windows, with their clips and labels (``test`` None without test speakers).
    temperature : float
        The calibration temperature; ``fitted_on`` says where it came from.

    Returns
    -------
    dict
        ``validation`` and ``test`` classification reports (per clip) and ``calibration``: measured on
        the test speakers, or on the validation ones when there are none (then optimistic with a
        temperature fitted there: its own data).
    """
    on_validation = calibration_report(validation_logits, validation, temperature)
    metrics = {"validation": score(validation_logits, validation, temperature)}
    if test is None:
        metrics["calibration"] = {"temperature": temperature, "fitted_on": fitted_on,
                                  "measured_on": "validation speakers", **on_validation}
        return metrics
    metrics["test"] = score(test_logits, test, temperature)
    metrics["calibration"] = {
        "temperature": temperature, "fitted_on": fitted_on, "measured_on": "test speakers",
        **calibration_report(test_logits, test, temperature),
        "validation": {"ece_before": on_validation["ece_before"], "ece_after": on_validation["ece_after"]}}
    return metrics


def corrupted_logits(model, clips: list[Clip], params: FeatureParams, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """``{condition: {"clip_index", "logits"}}`` of ``clips`` with white noise at 20/10/5 dB SNR and
    reverberated, features recomputed from the corrupted waveform (which may change the window count)."""
    from ser_core.data.corrupt import add_noise, reverberate
    from ser_core.inference.audio import load_audio
    from ser_core.inference.features import clip_features

    corruptions = {
        "snr_20db": lambda w, rng: add_noise(w, 20, rng),
        "snr_10db": lambda w, rng: add_noise(w, 10, rng),
        "snr_5db": lambda w, rng: add_noise(w, 5, rng),
        "reverb_rt60_0.6s": lambda w, rng: reverberate(w, 0.6, params.sample_rate, rng),
    }
    waves = [load_audio(clip.path, params.sample_rate) for clip in clips]
    results = {}
    for name in CONDITIONS:
        rng = np.random.default_rng(seed)
        corrupted = window_set(clips, [clip_features(corruptions[name](wave, rng), params)[0] for wave in waves])
        results[name] = {"clip_index": corrupted.clip_index, "logits": window_logits(model, corrupted)}
    return results


def fold_result(index: int, test_speakers: list[str], model, test: WindowSet, validation: WindowSet,
                params: FeatureParams, seed: int) -> tuple[dict, dict[str, np.ndarray]]:
    """One fold's figures on its test speakers (see :func:`score_fold`) from ``model``'s window logits."""
    record = {
        "fold": index, "test_speakers": test_speakers,
        "test": {"clips": [Path(clip.path).name for clip in test.clips], "labels": test.clip_labels,
                 "conditions": {"clean": {"clip_index": test.clip_index, "logits": window_logits(model, test)},
                                **corrupted_logits(model, test.clips, params, seed)}},
        "validation": {"clips": [Path(clip.path).name for clip in validation.clips], "labels": validation.clip_labels,
                       "clip_index": validation.clip_index, "logits": window_logits(model, validation)},
    }
    return score_fold(record)


def score_fold(record: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """A fold's figures from its window logits: temperature fitted on its validation speakers,
    accuracy, UAR, macro-F1, recall, ECE and robustness on its test speakers; and the parts that
    :func:`pooled_calibration` pools over folds, with the record itself (``out_of_fold``).

    ``record`` holds the fold's window logits, as :func:`fold_result` computes them and the run's
    ``oof_<arch>.json`` keeps them, so saved logits are scored by this same code.
    """
    test, validation = record["test"], record["validation"]
    labels = np.asarray(test["labels"])
    validation_index = np.asarray(validation["clip_index"])
    temperature = fit_temperature(np.asarray(validation["logits"]), np.asarray(validation["labels"])[validation_index])

    def probabilities(condition: dict, scale: float = 1.0) -> np.ndarray:
        return clip_probabilities(np.asarray(condition["logits"]), np.asarray(condition["clip_index"]), scale)

    clean = test["conditions"]["clean"]
    clip_index = np.asarray(clean["clip_index"])
    parts = {"labels": labels, "before": probabilities(clean), "after": probabilities(clean, temperature),
             "logits": np.asarray(clean["logits"]), "window_labels": labels[clip_index], "clip_index": clip_index,
             "out_of_fold": record}
    report = classification_report(labels, parts["after"].argmax(axis=1))
    calibration = calibration_of(parts["before"], parts["after"], labels)
    robust = {}
    for name in CONDITIONS:
        if name in test["conditions"]:
            scaled = probabilities(test["conditions"][name], temperature)
            corrupted = classification_report(labels, scaled.argmax(axis=1))
            robust[name] = {"accuracy": corrupted["accuracy"], "uar": corrupted["uar"]}
    result = {
        "fold": record["fold"], "test_speakers": record["test_speakers"],
        "accuracy": report["accuracy"], "uar": report["uar"], "macro_f1": report["macro_f1"],
        "recall": {e: v["recall"] for e, v in report["per_class"].items()},
        "temperature": temperature,
        "ece_before": calibration["ece_before"],
        "ece_after": calibration["ece_after"],
        "ece_floor": calibration["ece_floor"],
        "confusion_matrix": report["confusion_matrix"],
        "robustness": robust,
    }
    return result, parts


def rounded(record, decimals: int = 4):
    """``record`` with its arrays as (rounded) lists, for JSON."""
    if isinstance(record, dict):
        return {key: rounded(value, decimals) for key, value in record.items()}
    if isinstance(record, np.ndarray):
        return (np.round(record, decimals) if record.dtype.kind == "f" else record).tolist()
    return record


def pooled_calibration(fold_parts: list[dict[str, np.ndarray]]) -> dict:
    """ECE over every test clip of every fold, each scored by its own fold's model.

    A fold's ~176 clips put the ECE of even a perfectly calibrated model near 0.07; pooling the
    folds brings that sampling floor down to about 0.03, low enough to read a 0.05 target against.

    Each fold's clips are scaled by a temperature fitted on the *other* folds' test clips (cross-
    fitting: never on the speakers it is measured on). Two or three validation actors per fold fit a
    temperature poorly (docs/experiments.md); the ECE with their temperatures is reported too.
    ``cv_temperature``, fitted on every fold's test clips, is what ``train.py --temperature-from``
    gives the shipped model.
    """
    labels = np.concatenate([part["labels"] for part in fold_parts])
    unscaled = np.concatenate([part["before"] for part in fold_parts])
    with_validation_temperature = np.concatenate([part["after"] for part in fold_parts])
    result = {"clips": int(len(labels))}
    if len(fold_parts) < 2:  # nothing to cross-fit on
        return {**result, **calibration_of(unscaled, with_validation_temperature, labels),
                "scaled_with": "validation speakers"}
    fold_temperatures = [_temperature_over(fold_parts[:k] + fold_parts[k + 1:]) for k in range(len(fold_parts))]
    cross_fitted = np.concatenate([clip_probabilities(part["logits"], part["clip_index"], temperature)
                                   for part, temperature in zip(fold_parts, fold_temperatures)])
    return {**result, **calibration_of(unscaled, cross_fitted, labels), "scaled_with": "other folds",
            "fold_temperatures": fold_temperatures, "cv_temperature": _temperature_over(fold_parts),
            "ece_validation_temperature": reliability(with_validation_temperature, labels)["ece"]}


def _temperature_over(fold_parts: list[dict[str, np.ndarray]]) -> float:
    return fit_temperature(np.concatenate([part["logits"] for part in fold_parts]),
                           np.concatenate([part["window_labels"] for part in fold_parts]))


def summarise_folds(results: list[dict]) -> dict:
    """Mean and standard deviation over the folds of every figure :func:`score_fold` gives."""
    def stats(values: list[float | None]) -> dict:
        present = [value for value in values if value is not None]  # None: the fold's corpus lacks the emotion
        figures = ({"mean": float(np.mean(present)), "std": float(np.std(present))} if present
                   else {"mean": None, "std": None})
        return figures if len(present) == len(values) else {**figures, "folds": len(present)}

    summary = {key: stats([r[key] for r in results])
               for key in ("accuracy", "uar", "macro_f1", "ece_before", "ece_after", "ece_floor", "train_seconds")}
    summary["recall"] = {e: stats([r["recall"][e] for r in results]) for e in EMOTIONS}
    for condition in results[0]["robustness"]:
        for key in ("accuracy", "uar"):
            summary[f"{condition}_{key}"] = stats([r["robustness"][condition][key] for r in results])
    return summary


def print_cv_table(results: list[dict], summary: dict) -> None:
    """The cross-validation's figures per fold, their mean and spread, and the pooled calibration."""
    print(f"\n{'fold':>5} {'acc':>6} {'UAR':>6} {'F1':>6} {'snr10 acc':>9} {'seconds':>8}")
    for r in results:
        print(f"{r['fold']:>5} {r['accuracy']:6.3f} {r['uar']:6.3f} {r['macro_f1']:6.3f} "
              f"{r['robustness']['snr_10db']['accuracy']:9.3f} {r['train_seconds']:8.0f}")
    s = summary
    for row in ("mean", "std"):
        print(f"{row:>5} {s['accuracy'][row]:6.3f} {s['uar'][row]:6.3f} {s['macro_f1'][row]:6.3f} "
              f"{s['snr_10db_accuracy'][row]:9.3f}")
    for key in ("best_checkpoint", "last_checkpoint"):
        if key in results[0]:
            values = [r[key]["accuracy"] for r in results]
            print(f"every member's {key.replace('_', ' ')}: accuracy {np.mean(values):.3f} ± {np.std(values):.3f} "
                  f"({', '.join(f'{v:.3f}' for v in values)})")
    c = s["pooled_calibration"]
    print(f"ECE over all {c['clips']} test clips: {c['ece_before']:.3f} unscaled, {c['ece_after']:.3f} with "
          f"temperatures fitted on the {c['scaled_with']} (a perfectly calibrated model would measure about "
          f"{c['ece_floor']:.3f} here)")
    if "cv_temperature" in c:
        print(f"  with each fold's validation temperature instead: {c['ece_validation_temperature']:.3f}; "
              f"temperature over all folds (for --temperature-from): {c['cv_temperature']:.3f}")
    print("per-class recall: " + ", ".join(f"{e} {s['recall'][e]['mean']:.2f}" for e in EMOTIONS))
