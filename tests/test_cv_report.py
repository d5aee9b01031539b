"""``ser_core.evaluation.cv_report``: reading ``cv_<arch>.json`` and the tables the Test results page shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app_helpers import EMOTIONS, fake_cv_report, write_fake_cv_reports
from ser_core.evaluation import cv_report


@pytest.fixture
def cv_dir(tmp_path: Path) -> Path:
    return write_fake_cv_reports(tmp_path)


def test_load_finds_every_architecture(cv_dir: Path) -> None:
    reports = cv_report.load_cv_reports(cv_dir)
    assert list(reports) == ["ser_cnn", "vgg_baseline"]
    assert reports["ser_cnn"].complete and reports["ser_cnn"].folds_label() == "5 folds"
    baseline = reports["vgg_baseline"]
    assert not baseline.complete and baseline.folds_label() == "1 of 5 folds"


def test_load_honours_the_artifacts_env_var(monkeypatch: pytest.MonkeyPatch, cv_dir: Path) -> None:
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(cv_dir))
    assert set(cv_report.load_cv_reports()) == {"ser_cnn", "vgg_baseline"}


def test_load_skips_absent_broken_and_empty_files(tmp_path: Path) -> None:
    assert cv_report.load_cv_reports(tmp_path) == {}
    (tmp_path / "cv_broken.json").write_text("{not json")
    (tmp_path / "cv_empty.json").write_text(json.dumps({"arch": "empty", "n_folds": 5, "folds": []}))
    (tmp_path / "cv_list.json").write_text("[1, 2]")
    assert cv_report.load_cv_reports(tmp_path) == {}
    assert cv_report.load_cv_reports(tmp_path / "missing") == {}


def test_summary_table_shows_mean_and_std(cv_dir: Path) -> None:
    reports = cv_report.load_cv_reports(cv_dir)
    table = cv_report.summary_table(reports, shipped_arch="vgg_baseline")
    assert list(table["Architecture"]) == ["vgg_baseline (shipped)", "ser_cnn"]  # shipped first
    table = cv_report.summary_table(reports, shipped_arch="ser_cnn")
    row = table.iloc[0].to_dict()
    accuracies = [0.60, 0.62, 0.64, 0.66, 0.68]
    assert row == {
        "Architecture": "ser_cnn (shipped)", "Folds": "5 folds", "Partition": "seed 0",
        "Accuracy": f"{np.mean(accuracies):.1%} ± {np.std(accuracies):.1%}",
        "UAR": f"{np.mean(accuracies) + 0.01:.1%} ± {np.std(accuracies):.1%}",
        "Macro-F1": f"{np.mean(accuracies) - 0.01:.3f} ± {np.std(accuracies):.3f}",
    }
    assert row["Accuracy"] == "64.0% ± 2.8%"
    older = fake_cv_report()
    del older["seed"]  # a report without its partition says so rather than guessing one
    assert cv_report.summary_table({"ser_cnn": cv_report.parse_cv_report(older)}).iloc[0]["Partition"] == "–"
    other = fake_cv_report()
    other["seed"] = 1
    assert cv_report.summary_table({"ser_cnn": cv_report.parse_cv_report(other)}).iloc[0]["Partition"] == "seed 1"
    assert table.iloc[1].to_dict() == {
        "Architecture": "vgg_baseline", "Folds": "1 of 5 folds", "Partition": "seed 0", "Accuracy": "40.0%",
        "UAR": "41.0%", "Macro-F1": "0.390",
    }


def test_figures_come_from_the_folds_without_a_summary() -> None:
    data = fake_cv_report("ser_cnn", folds=3)
    with_summary = cv_report.parse_cv_report(data)
    del data["summary"]
    without = cv_report.parse_cv_report(data)
    for key in ("accuracy", "uar", "macro_f1"):
        assert cv_report.metric_stats(without, key) == pytest.approx(
            cv_report.metric_stats(with_summary, key))
    assert cv_report.condition_stats(without, "snr_10db", "accuracy") == pytest.approx(
        cv_report.condition_stats(with_summary, "snr_10db", "accuracy"))
    assert cv_report.recall_table(without).equals(cv_report.recall_table(with_summary))
    assert cv_report.summary_table({"ser_cnn": without}).equals(
        cv_report.summary_table({"ser_cnn": with_summary}))


def test_folds_table_has_one_row_per_fold(cv_dir: Path) -> None:
    table = cv_report.folds_table(cv_report.load_cv_reports(cv_dir), "ser_cnn")
    assert list(table.columns) == cv_report.FOLD_COLUMNS
    assert list(table["Architecture"]) == ["ser_cnn"] * 5 + ["vgg_baseline"]
    assert list(table["Fold"]) == [0, 1, 2, 3, 4, 0]
    first = table.iloc[0]
    assert first["Test speakers"] == "ravdess_01, ravdess_02, ravdess_03, ravdess_04"
    assert first["Accuracy"] == pytest.approx(0.60) and first["Best epoch"] == "25"


def test_folds_table_shows_an_ensembles_epochs_per_member() -> None:
    report = fake_cv_report()
    report["folds"][0].update(epochs=[70, 54, 70], best_epoch=[61, 34, 48])
    table = cv_report.folds_table({"ser_cnn": cv_report.parse_cv_report(report)}, "ser_cnn")
    assert table.iloc[0]["Epochs"] == "70 / 54 / 70" and table.iloc[0]["Best epoch"] == "61 / 34 / 48"


def test_recall_table_is_the_mean_per_emotion(cv_dir: Path) -> None:
    report = cv_report.load_cv_reports(cv_dir)["ser_cnn"]
    table = cv_report.recall_table(report)
    assert list(table["Emotion"]) == list(EMOTIONS)
    # fold i gives emotion k a recall of 0.4 + 0.1 k + 0.01 i: the mean over i = 0..4 adds 0.02
    np.testing.assert_allclose(table["Recall (mean)"], [0.42 + 0.1 * k for k in range(6)])


def test_robustness_table_compares_conditions(cv_dir: Path) -> None:
    report = cv_report.load_cv_reports(cv_dir)["ser_cnn"]
    table = cv_report.robustness_table(report)
    assert list(table["Condition"]) == [
        "Clean", "White noise, 20 dB SNR", "White noise, 10 dB SNR", "White noise, 5 dB SNR",
        "Reverberation, RT60 0.6 s",
    ]
    assert list(table["Accuracy"]) == ["64.0% ± 2.8%", "59.0% ± 2.8%", "54.0% ± 2.8%",
                                       "49.0% ± 2.8%", "44.0% ± 2.8%"]
    data = fake_cv_report(folds=2)
    for fold in data["folds"]:
        del fold["robustness"]["snr_5db"]
    data["summary"] = {}
    partial = cv_report.robustness_table(cv_report.parse_cv_report(data))
    assert "White noise, 5 dB SNR" not in list(partial["Condition"]) and len(partial) == 4


def test_format_mean_std() -> None:
    assert cv_report.format_mean_std((0.6123, 0.0311)) == "61.2% ± 3.1%"
    assert cv_report.format_mean_std((0.6, 0.03), percent=False) == "0.600 ± 0.030"
    assert cv_report.format_mean_std(None) == "n/a"
    assert cv_report.format_mean_std((0.216, 0.0), single_fold=True) == "21.6%"


def test_featured_arch_prefers_the_shipped_one(cv_dir: Path) -> None:
    reports = cv_report.load_cv_reports(cv_dir)
    assert cv_report.featured_arch(reports, "ser_cnn") == "ser_cnn"
    assert cv_report.featured_arch(reports, "vgg_baseline") == "vgg_baseline"
    assert cv_report.featured_arch({"vgg_baseline": reports["vgg_baseline"]}, "ser_cnn") == "vgg_baseline"
    assert cv_report.featured_arch({}, "ser_cnn") is None
    assert cv_report.CV_COMMAND == "python train.py --front-end log_mel --ravdess-dir ../shared/data/ravdess --cv 5"
    assert cv_report.LOCO_COMMAND == ".venv/bin/python train.py --cv corpus"  # every local corpus, or Kaggle


def test_pooled_calibration_is_read_only_when_complete() -> None:
    with_pooled = cv_report.parse_cv_report(fake_cv_report())
    assert cv_report.pooled_calibration(with_pooled)["ece_floor"] == 0.031
    assert cv_report.pooled_calibration(cv_report.parse_cv_report(fake_cv_report(pooled=False))) is None
    broken = fake_cv_report()
    broken["summary"]["pooled_calibration"] = {"clips": 880, "ece_after": 0.05}  # no reliability bins
    assert cv_report.pooled_calibration(cv_report.parse_cv_report(broken)) is None


def test_an_ensemble_is_labelled_with_its_member_count() -> None:
    data = fake_cv_report()
    data["members"] = ["plateau:acoustic", "cosine+ema:acoustic", "cosine+ema:acoustic_vtlp"]
    reports = {"ser_cnn": cv_report.parse_cv_report(data),
               "vgg_baseline": cv_report.parse_cv_report(fake_cv_report("vgg_baseline", folds=1))}
    assert list(cv_report.summary_table(reports, "ser_cnn")["Architecture"]) == [
        "ser_cnn × 3 averaged (shipped)", "vgg_baseline"]


def test_pooled_scaling_is_described_for_new_and_older_reports() -> None:
    pooled = cv_report.pooled_calibration(cv_report.parse_cv_report(fake_cv_report()))
    text = cv_report.pooled_scaling_text(pooled)
    assert "other folds' test clips" in text and "0.069" in text and "temperature is 0.77" in text
    older = {key: value for key, value in pooled.items()
             if key not in ("scaled_with", "ece_validation_temperature", "cv_temperature", "fold_temperatures")}
    assert cv_report.pooled_scaling_text(older) == "a temperature fitted on that fold's validation speakers."
