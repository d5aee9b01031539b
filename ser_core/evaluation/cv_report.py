"""Cross-validation results for the app: read ``artifacts/cv_<arch>.json`` (written by
``train.py --cv K``) and turn them into tables. Pure functions, no Streamlit.

Every figure is the mean ± standard deviation over the folds that were run. The file's ``summary``
is used where it has the figure; otherwise it is computed from the folds the same way (population
standard deviation), so a partial or older file still shows what it holds.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ser_core.inference import artifacts
from ser_core.evaluation.member_specs import ensemble_label

LOGGER = logging.getLogger(__name__)

CV_GLOB = "cv_*.json"
# cv_<arch>.json are the log-mel CNN's speaker cross-validations; the Whisper model's figures on
# unseen corpora come from LOCO_COMMAND (artifacts/loco_whisper.json).
CV_COMMAND = "python train.py --front-end log_mel --ravdess-dir ../shared/data/ravdess --cv 5"
LOCO_COMMAND = f"{artifacts.TRAIN_COMMAND} --cv corpus"
NOISE_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("snr_20db", "White noise, 20 dB SNR"),
    ("snr_10db", "White noise, 10 dB SNR"),
    ("snr_5db", "White noise, 5 dB SNR"),
    ("reverb_rt60_0.6s", "Reverberation, RT60 0.6 s"),
)
CLEAN_LABEL = "Clean"


@dataclass(frozen=True)
class CVReport:
    """One architecture's cross-validation file."""

    arch: str
    n_folds: int
    folds: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    speakers: int | None = None
    clips: int | None = None
    path: Path | None = None
    members: tuple[str, ...] = ()  # the member recipes of an averaged ensemble
    seed: int | None = None  # train.py --seed: which speakers share a test fold

    @property
    def folds_run(self) -> int:
        return len(self.folds)

    @property
    def complete(self) -> bool:
        return self.folds_run >= self.n_folds

    def folds_label(self) -> str:
        """"5 folds", or "1 of 5 folds" when only some were run."""
        if self.complete:
            return f"{self.folds_run} fold{'s' if self.folds_run != 1 else ''}"
        return f"{self.folds_run} of {self.n_folds} folds"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def parse_cv_report(data: Any, path: Path | None = None) -> CVReport | None:
    """A :class:`CVReport` from a decoded cv file, or None when it has no usable folds."""
    if not isinstance(data, dict):
        return None
    folds = [fold for fold in data.get("folds") or [] if isinstance(fold, dict)]
    if not folds:
        return None
    arch = data.get("arch")
    if not isinstance(arch, str) or not arch:
        arch = path.stem.removeprefix("cv_") if path is not None else "unknown"
    n_folds = data.get("n_folds")
    n_folds = int(n_folds) if _number(n_folds) is not None and n_folds > 0 else len(folds)
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    seed = data.get("seed")
    return CVReport(
        arch=arch, n_folds=n_folds, folds=folds, summary=summary,
        speakers=data.get("speakers") if _number(data.get("speakers")) is not None else None,
        clips=data.get("clips") if _number(data.get("clips")) is not None else None, path=path,
        members=tuple(str(m) for m in data.get("members") or [] if isinstance(m, str)),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )


def load_cv_reports(directory: Path | str | None = None) -> dict[str, CVReport]:
    """Every readable ``cv_<arch>.json`` in the artifacts folder, by architecture (sorted)."""
    directory = Path(directory or artifacts.artifacts_dir())
    reports: dict[str, CVReport] = {}
    for path in sorted(directory.glob(CV_GLOB)):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            LOGGER.warning("unreadable %s", path)
            continue
        report = parse_cv_report(data, path)
        if report is None:
            LOGGER.warning("%s holds no cross-validation folds", path)
            continue
        reports.setdefault(report.arch, report)
    return reports


def order_archs(reports: Mapping[str, CVReport], shipped_arch: str | None) -> list[str]:
    """The shipped architecture first, then the others in name order."""
    return sorted(reports, key=lambda arch: (arch != shipped_arch, arch))


def featured_arch(reports: Mapping[str, CVReport], shipped_arch: str | None) -> str | None:
    """The architecture whose details the page shows: the shipped one when it has results."""
    archs = order_archs(reports, shipped_arch)
    return archs[0] if archs else None


# ---------------------------------------------------------------- statistics


def _stats(values: Iterable[Any]) -> tuple[float, float] | None:
    numbers = [v for v in (_number(value) for value in values) if v is not None]
    if not numbers:
        return None
    return float(np.mean(numbers)), float(np.std(numbers))


def _summary_stats(entry: Any) -> tuple[float, float] | None:
    if not isinstance(entry, dict):
        return None
    mean, std = _number(entry.get("mean")), _number(entry.get("std"))
    return (mean, std) if mean is not None and std is not None else None


def _fold_value(fold: Mapping[str, Any], *path: str) -> Any:
    value: Any = fold
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def metric_stats(report: CVReport, key: str) -> tuple[float, float] | None:
    """(mean, std) over the folds of a top-level fold figure (``accuracy``, ``uar``, ...)."""
    return _summary_stats(report.summary.get(key)) or _stats(f.get(key) for f in report.folds)


def condition_stats(report: CVReport, condition: str, key: str) -> tuple[float, float] | None:
    """(mean, std) of ``accuracy`` or ``uar`` under a robustness condition."""
    return _summary_stats(report.summary.get(f"{condition}_{key}")) or _stats(
        _fold_value(f, "robustness", condition, key) for f in report.folds
    )


def recall_stats(report: CVReport) -> dict[str, tuple[float, float]]:
    """Per-emotion recall (mean, std) in the file's emotion order."""
    summary = report.summary.get("recall") if isinstance(report.summary.get("recall"), dict) else {}
    emotions: list[str] = list(summary)
    for fold in report.folds:
        for emotion in fold.get("recall") or {}:
            if emotion not in emotions:
                emotions.append(emotion)
    result = {}
    for emotion in emotions:
        stats = _summary_stats(summary.get(emotion)) or _stats(
            _fold_value(f, "recall", emotion) for f in report.folds
        )
        if stats is not None:
            result[emotion] = stats
    return result


# ---------------------------------------------------------------- formatting


def shipped_accuracy(directory: Path | str | None, shipped_arch: str | None) -> float | None:
    """Mean cross-validated accuracy of the shipped architecture, when all its folds were run."""
    report = load_cv_reports(directory).get(shipped_arch or "")
    stats = metric_stats(report, "accuracy") if report is not None and report.complete else None
    return stats[0] if stats else None


def arch_label(report: CVReport, shipped_arch: str | None) -> str:
    """``ser_cnn``, ``ser_cnn × 3 averaged`` for an ensemble (``ser_cnn_lite × 2 + ser_tdnn, averaged`` for
    a mixed one), with `` (shipped)`` when it is."""
    label = ensemble_label(list(report.members), report.arch) if report.members else report.arch
    return f"{label} (shipped)" if report.arch == shipped_arch else label


def _per_member(value: Any) -> Any:
    """Epoch counts as text: "54", or one per member of an ensemble, "70 / 54 / 70"."""
    if isinstance(value, (list, tuple)):
        return " / ".join(str(v) for v in value)
    return None if value is None else str(value)


def pooled_confusion(report: CVReport) -> np.ndarray | None:
    """The folds' test confusion matrices summed: every clip once, scored by a model that never heard
    its speaker. None unless every fold has a square matrix of the same size."""
    matrices = [np.asarray(fold.get("confusion_matrix") or [], dtype=float) for fold in report.folds]
    shapes = {m.shape for m in matrices}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or matrices[0].shape[0] != matrices[0].shape[1]:
        return None
    return np.sum(matrices, axis=0).astype(int)


def pooled_calibration(report: CVReport) -> dict[str, Any] | None:
    """ECE and reliability bins over every fold's test clips, when the run recorded them."""
    pooled = report.summary.get("pooled_calibration")
    if isinstance(pooled, dict) and isinstance(pooled.get("reliability"), dict) and _number(pooled.get("clips")):
        return pooled
    return None


def pooled_scaling_text(pooled: dict[str, Any]) -> str:
    """Which temperatures scaled the pooled clips, in words (older reports: the validation speakers')."""
    if pooled.get("scaled_with") != "other folds":
        return "a temperature fitted on that fold's validation speakers."
    text = ("a temperature fitted on the other folds' test clips, never on the speakers it is measured on "
            "(cross-fitting).")
    validation_ece = _number(pooled.get("ece_validation_temperature"))
    if validation_ece is not None:
        text += f" With each fold's own validation speakers' temperature instead, the ECE is {validation_ece:.3f}."
    cv_temperature = _number(pooled.get("cv_temperature"))
    if cv_temperature is not None:
        text += f" Fitted on all {int(pooled['clips'])} clips, the temperature is {cv_temperature:.2f}."
    return text


def format_mean_std(stats: tuple[float, float] | None, percent: bool = True, single_fold: bool = False) -> str:
    """``61.0% ± 3.0%`` (or ``0.600 ± 0.030``); ``n/a`` when there is no figure.

    With ``single_fold`` the spread is left out: one fold has none to show.
    """
    if stats is None:
        return "n/a"
    mean, std = stats
    shown = f"{mean:.1%}" if percent else f"{mean:.3f}"
    if single_fold:
        return shown
    return f"{shown} ± {std:.1%}" if percent else f"{shown} ± {std:.3f}"


def summary_table(reports: Mapping[str, CVReport], shipped_arch: str | None = None) -> pd.DataFrame:
    """One row per architecture: folds run, speaker partition, accuracy, UAR and macro-F1 as mean ± std.
    Reports of different partitions (``--seed``) test different groups of speakers in each fold."""
    rows = []
    for arch in order_archs(reports, shipped_arch):
        report = reports[arch]
        single = len(report.folds) == 1
        rows.append({
            "Architecture": arch_label(report, shipped_arch),
            "Folds": report.folds_label(),
            "Partition": f"seed {report.seed}" if report.seed is not None else "–",
            "Accuracy": format_mean_std(metric_stats(report, "accuracy"), single_fold=single),
            "UAR": format_mean_std(metric_stats(report, "uar"), single_fold=single),
            "Macro-F1": format_mean_std(metric_stats(report, "macro_f1"), percent=False, single_fold=single),
        })
    return pd.DataFrame(rows, columns=["Architecture", "Folds", "Partition", "Accuracy", "UAR", "Macro-F1"])


FOLD_COLUMNS = ["Architecture", "Fold", "Test speakers", "Accuracy", "UAR", "Macro-F1",
                "ECE after", "Epochs", "Best epoch", "Training (s)"]


def folds_table(reports: Mapping[str, CVReport], shipped_arch: str | None = None) -> pd.DataFrame:
    """The per-fold figures of every architecture, one row per fold."""
    rows = []
    for arch in order_archs(reports, shipped_arch):
        for fold in reports[arch].folds:
            speakers = fold.get("test_speakers") or []
            rows.append({
                "Architecture": arch,
                "Fold": fold.get("fold"),
                "Test speakers": ", ".join(str(s) for s in speakers)
                if isinstance(speakers, (list, tuple)) else str(speakers),
                "Accuracy": _number(fold.get("accuracy")),
                "UAR": _number(fold.get("uar")),
                "Macro-F1": _number(fold.get("macro_f1")),
                "ECE after": _number(fold.get("ece_after")),
                "Epochs": _per_member(fold.get("epochs")),
                "Best epoch": _per_member(fold.get("best_epoch")),
                "Training (s)": _number(fold.get("train_seconds")),
            })
    return pd.DataFrame(rows, columns=FOLD_COLUMNS)


def recall_table(report: CVReport) -> pd.DataFrame:
    """Per-emotion recall: mean and std over the folds (fractions)."""
    stats = recall_stats(report)
    return pd.DataFrame(
        {"Emotion": list(stats), "Recall (mean)": [m for m, _ in stats.values()],
         "Std": [s for _, s in stats.values()]},
        columns=["Emotion", "Recall (mean)", "Std"],
    )


def robustness_table(report: CVReport,
                     conditions: Sequence[tuple[str, str]] = NOISE_CONDITIONS) -> pd.DataFrame:
    """Clean test speech against noise and reverberation: accuracy and UAR, mean ± std.

    Conditions without any figure in the file are left out.
    """
    rows = [{"Condition": CLEAN_LABEL,
             "Accuracy": format_mean_std(metric_stats(report, "accuracy")),
             "UAR": format_mean_std(metric_stats(report, "uar"))}]
    for condition, label in conditions:
        accuracy = condition_stats(report, condition, "accuracy")
        uar = condition_stats(report, condition, "uar")
        if accuracy is None and uar is None:
            continue
        rows.append({"Condition": label, "Accuracy": format_mean_std(accuracy),
                     "UAR": format_mean_std(uar)})
    return pd.DataFrame(rows, columns=["Condition", "Accuracy", "UAR"])
