"""Metrics, clip-level aggregation and temperature calibration (ser_core.evaluation.metrics), checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_core.evaluation.metrics import (classification_report, clip_probabilities, ece_sampling_floor, fit_temperature,
                                 reliability, report_from_confusion, softmax)
from ser_core.inference.params import EMOTIONS

LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
PREDICTED = np.array([0, 1, 1, 1, 2, 0, 3, 3, 4, 5, 5, 5])


def test_classification_report_by_hand():
    report = classification_report(LABELS, PREDICTED)
    assert report["n"] == 12
    assert report["labels"] == list(EMOTIONS)
    assert report["accuracy"] == pytest.approx(9 / 12)
    assert report["uar"] == pytest.approx((0.5 + 1 + 0.5 + 1 + 0.5 + 1) / 6)
    f1 = [0.5, 0.8, 2 / 3, 1.0, 2 / 3, 0.8]
    assert report["macro_f1"] == pytest.approx(sum(f1) / 6)
    expected = {  # precision, recall, f1, support
        "angry": (0.5, 0.5, 0.5, 2), "disgust": (2 / 3, 1.0, 0.8, 2), "fear": (1.0, 0.5, 2 / 3, 2),
        "happy": (1.0, 1.0, 1.0, 2), "neutral": (1.0, 0.5, 2 / 3, 2), "sad": (2 / 3, 1.0, 0.8, 2),
    }
    for emotion, (p, r, f, s) in expected.items():
        got = report["per_class"][emotion]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f)), emotion
        assert got["support"] == s
    assert report["confusion_matrix"] == [
        [1, 1, 0, 0, 0, 0],
        [0, 2, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
        [0, 0, 0, 2, 0, 0],
        [0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 2],
    ]
    json.dumps(report)  # plain Python types only: it goes into metrics.json


def test_uar_differs_from_accuracy_on_imbalanced_data():
    labels = np.array([0] * 8 + [1] * 2)
    predicted = np.zeros(10, dtype=int)  # always the majority class
    report = classification_report(labels, predicted)
    assert report["accuracy"] == pytest.approx(0.8)
    assert report["uar"] == pytest.approx(0.5)
    assert report["per_class"]["disgust"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2,
                                              "predicted": 0}
    assert np.asarray(report["confusion_matrix"]).shape == (6, 6)


def test_softmax_is_stable_and_tempered():
    logits = np.array([[1000.0, 1000.0, 0.0], [0.0, 1.0, 2.0]])
    p = softmax(logits)
    assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1.0)
    assert p[0, :2] == pytest.approx([0.5, 0.5])
    assert softmax(logits[1:], 1e6)[0] == pytest.approx([1 / 3] * 3, abs=1e-5)
    sharp, soft = softmax(logits[1:], 0.5)[0], softmax(logits[1:], 2.0)[0]
    assert sharp.max() > p[1].max() > soft.max()


def test_clip_probabilities_average_windows():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [5.0, 0.0, 0.0]])
    clip_index = np.array([0, 0, 0, 1])
    result = clip_probabilities(logits, clip_index)
    assert result.shape == (2, 3)
    assert result[0] == pytest.approx([1 / 3] * 3)  # symmetric windows average out
    assert result[1] == pytest.approx(softmax(logits[3:])[0])
    tempered = clip_probabilities(logits, clip_index, temperature=2.0)
    assert tempered[1] == pytest.approx(softmax(logits[3:], 2.0)[0])
    # Averages probabilities, not logits: differs from softmax of the mean logit.
    two = clip_probabilities(np.array([[4.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))[0]
    assert two == pytest.approx((softmax(np.array([4.0, 0.0])) + softmax(np.array([0.0, 1.0]))) / 2)
    assert not np.allclose(two, softmax(np.array([2.0, 0.5])))


def test_clip_probabilities_with_unordered_windows():
    logits = np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
    result = clip_probabilities(logits, np.array([1, 0, 1]))
    assert result[0] == pytest.approx(softmax(logits[1]))
    assert result[1] == pytest.approx(softmax(logits[0]))


def _calibrated_logits(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    logits = rng.normal(0, 2.0, (n, 6))
    probabilities = softmax(logits)
    labels = np.array([rng.choice(6, p=p) for p in probabilities])
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_temperature):
    logits, labels = _calibrated_logits(8000, np.random.default_rng(0))
    # Logits an overconfident (T > 1) or underconfident (T < 1) model would emit.
    fitted = fit_temperature(logits * true_temperature, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.1)


def test_temperature_improves_calibration():
    logits, labels = _calibrated_logits(8000, np.random.default_rng(1))
    overconfident = logits * 3.0
    temperature = fit_temperature(overconfident, labels)
    before = reliability(softmax(overconfident), labels)["ece"]
    after = reliability(softmax(overconfident, temperature), labels)["ece"]
    assert after < before / 3


def test_reliability_of_a_calibrated_model_is_small():
    rng = np.random.default_rng(2)
    n, k = 20_000, 6
    confidence = rng.uniform(1 / k, 1.0, n)
    predicted = rng.integers(0, k, n)
    probabilities = np.tile(((1 - confidence) / (k - 1))[:, None], (1, k))
    probabilities[np.arange(n), predicted] = confidence
    correct = rng.uniform(size=n) < confidence  # right exactly as often as it claims
    labels = np.where(correct, predicted, (predicted + rng.integers(1, k, n)) % k)
    result = reliability(probabilities, labels)
    assert result["ece"] < 0.02
    assert sum(result["count"]) == n
    assert len(result["bin_edges"]) == 11 and len(result["accuracy"]) == len(result["confidence"]) == 10
    for acc, conf, count in zip(result["accuracy"], result["confidence"], result["count"]):
        if count > 500:
            assert acc == pytest.approx(conf, abs=0.05)


def test_reliability_of_an_overconfident_model_is_large():
    rng = np.random.default_rng(3)
    n = 2000
    probabilities = np.full((n, 6), 0.002)
    predicted = rng.integers(0, 6, n)
    probabilities[np.arange(n), predicted] = 0.99
    labels = np.where(np.arange(n) % 2 == 0, predicted, (predicted + 1) % 6)  # right half the time
    result = reliability(probabilities, labels)
    assert result["ece"] == pytest.approx(0.49, abs=0.01)
    assert result["count"][-1] == n  # every prediction in the top bin
    assert result["accuracy"][-1] == pytest.approx(0.5)


def test_reliability_edges():
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    result = reliability(probabilities, np.array([0, 0, 0]), n_bins=2)
    assert result["count"] == [0, 3]  # 1.0 falls in the last bin, 0.5 in the upper half
    assert result["ece"] == pytest.approx(abs(2 / 3 - 2.5 / 3))


def test_ece_sampling_floor_matches_the_binomial_mean_absolute_deviation():
    # One bin, every confidence 0.5: ECE = E|k/n - 0.5| with k ~ Binomial(n, 0.5) ≈ sqrt(0.25/n)·sqrt(2/π).
    n = 400
    expected = np.sqrt(0.25 / n) * np.sqrt(2 / np.pi)
    assert ece_sampling_floor(np.full(n, 0.5), draws=4000) == pytest.approx(expected, rel=0.05)


def test_ece_sampling_floor_shrinks_with_more_clips_and_vanishes_for_certain_models():
    rng = np.random.default_rng(0)
    small, large = (ece_sampling_floor(rng.uniform(0.3, 0.95, n)) for n in (176, 880))
    assert 0.05 < small < 0.09 and 0.02 < large < 0.04
    assert ece_sampling_floor(np.ones(50)) == 0.0


def test_report_from_confusion_matches_the_report_of_the_predictions():
    rng = np.random.default_rng(3)
    labels, predicted = rng.integers(0, 6, 300), rng.integers(0, 6, 300)
    direct = classification_report(labels, predicted)
    rebuilt = report_from_confusion(np.asarray(direct["confusion_matrix"]))
    assert rebuilt == direct
