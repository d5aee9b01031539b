"""The saved models of a ``train.py --cv K --run-dir DIR`` run, each with its fold's test windows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ser_core.inference import artifacts
from ser_core.data.corpora import gather
from ser_core.data.dataset import WindowSet, extract_features, window_set
from ser_core.inference.params import FeatureParams
from ser_core.data.split import cross_validation_folds, fold_assignment


def fold_models(run_dir: Path, ravdess_dir: str,
                checkpoint: str = "best") -> Iterator[tuple[dict, object, WindowSet, WindowSet]]:
    """``(fold result, model, test windows, validation windows)`` for every fold the run recorded.

    The folds are rebuilt from the corpus with the run's seed and checked against the speakers the
    run recorded, so a changed fold assignment cannot go unnoticed.
    """
    report = json.loads(next(Path(run_dir).glob("cv_*.json")).read_text())
    params = FeatureParams.from_dict(report["feature_params"]) if "feature_params" in report else FeatureParams()
    clips, _ = gather(ravdess_dir, None)
    features, _ = extract_features(clips, params)
    folds = cross_validation_folds(clips, report.get("n_folds", 5), seed=report["seed"])
    for fold in report["folds"]:
        test_speakers = set(folds[fold["fold"]])
        assert test_speakers == set(fold["test_speakers"]), "fold assignment differs from the run's"
        assignment = fold_assignment(clips, folds[fold["fold"]], seed=report["seed"])
        test, validation = (_windows(clips, features, assignment, split) for split in ("test", "validation"))
        model = artifacts.load_model(Path(run_dir) / f"fold{fold['fold']}" / f"{checkpoint}.keras")
        yield fold, model, test, validation


def _windows(clips, features, assignment: dict[str, str], split: str) -> WindowSet:
    chosen = [i for i, clip in enumerate(clips) if assignment[clip.speaker] == split]
    return window_set([clips[i] for i in chosen], [features[i] for i in chosen])
