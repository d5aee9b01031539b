"""Calibration pooled over cross-validation folds, and the shipped model calibrated from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_train
from ser_core.evaluation.metrics import clip_probabilities, softmax
from ser_core.evaluation.fold_scoring import pooled_calibration


def _fold(rng: np.random.Generator, overconfidence: float, clips: int = 400) -> dict[str, np.ndarray]:
    """One fold's test clips (one window each) from a model ``overconfidence`` times too sure."""
    true_logits = rng.normal(0, 1.5, (clips, 6))
    labels = np.array([rng.choice(6, p=p) for p in softmax(true_logits)])
    logits, index = true_logits * overconfidence, np.arange(clips)
    return {"labels": labels, "window_labels": labels, "clip_index": index, "logits": logits,
            "before": clip_probabilities(logits, index),
            "after": clip_probabilities(logits, index, 1.0)}  # a validation temperature that did nothing


def test_each_fold_is_scaled_by_a_temperature_fitted_on_the_other_folds():
    rng = np.random.default_rng(0)
    folds = [_fold(rng, 4.0)] + [_fold(rng, 2.0) for _ in range(4)]
    pooled = pooled_calibration(folds)
    assert pooled["scaled_with"] == "other folds" and pooled["clips"] == 2000
    temperatures = pooled["fold_temperatures"]
    assert temperatures[0] == pytest.approx(2.0, rel=0.15)  # fold 0's own, sharper logits are left out
    assert all(t > temperatures[0] for t in temperatures[1:])  # the others include fold 0
    assert temperatures[0] < pooled["cv_temperature"] < 4.0
    assert pooled["ece_after"] < pooled["ece_validation_temperature"] / 2
    assert pooled["ece_validation_temperature"] == pytest.approx(pooled["ece_before"])


def test_one_fold_has_nothing_to_cross_fit_on():
    pooled = pooled_calibration([_fold(np.random.default_rng(1), 2.0)])
    assert pooled["scaled_with"] == "validation speakers" and "cv_temperature" not in pooled
    assert pooled["ece_after"] == pytest.approx(pooled["ece_before"])


def _cv_report(**changes) -> dict:
    import train
    from ser_core.inference.params import FeatureParams
    from ser_core.training.recipes import DEFAULT_EPOCHS, DEFAULT_MEMBERS, ensemble_arch

    args = train.parse_args([])
    report = {"arch": ensemble_arch(args.members, args.arch), "members": list(DEFAULT_MEMBERS),
              "feature_params": FeatureParams().to_dict(), "epochs": DEFAULT_EPOCHS,
              "speakers": 20, "summary": {"pooled_calibration": {"clips": 880, "cv_temperature": 0.77}}}
    return {**report, **changes}


@pytest.mark.parametrize("changes, message", [
    ({"members": ["plateau:acoustic"]}, "members differ"),
    ({"arch": "vgg_baseline"}, "arch differ"),
    ({"pool_validation": True}, "pool_validation differ"),  # its cosine members saw 2 more actors
    ({"auxiliary_emotions": ["calm", "surprised"]}, "auxiliary_emotions differ"),  # trained on more classes
    ({"epochs": 35}, "epochs differ"),  # its members trained half as long
    ({"summary": {"pooled_calibration": {"clips": 176}}}, "no temperature fitted on out-of-fold clips"),
])
def test_temperature_from_another_recipe_is_refused_before_any_work(tmp_path, capsys, changes, message):
    report = tmp_path / "cv_ser_cnn.json"
    report.write_text(json.dumps(_cv_report(**changes)))
    code = run_train(["--ravdess-dir", str(tmp_path / "not_read"), "--temperature-from", str(report),
                      "--run-dir", str(tmp_path / "run"), "--artifacts", str(tmp_path / "out")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_temperature_from_a_missing_file_is_refused(tmp_path, capsys):
    code = run_train(["--temperature-from", str(tmp_path / "absent.json"), "--run-dir", str(tmp_path / "run")])
    assert code == 2 and "not a readable cross-validation report" in capsys.readouterr().err


def test_temperature_from_is_not_for_cross_validation(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_train(["--cv", "5", "--temperature-from", str(tmp_path / "cv.json")])
    assert "--temperature-from calibrates a model trained without --cv" in capsys.readouterr().err
