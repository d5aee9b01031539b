"""Emotion sets with a stated coverage (inference.emotion_sets) and their calibration on held-out corpora
(evaluation.set_calibration): the sets hold the truth as often as promised on data like the calibration's,
are never empty, and the config block train.py writes is what the predictor reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_core.evaluation.set_calibration import TARGETS, calibrate_sets, held_out_figures
from ser_core.inference.emotion_sets import (COVERAGES, METHODS, EmotionSets, calibrate, check_coverage,
                                             nonconformity, set_figures, set_mask)
from ser_core.inference.params import EMOTIONS


def _scores(n: int, seed: int, sharpness: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a noisy classifier over six emotions: the true one raised by ``sharpness``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, n)
    logits = rng.normal(0, 1, (n, 6))
    logits[np.arange(n), labels] += sharpness
    return logits, labels


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("coverage", COVERAGES)
def test_sets_hold_the_truth_as_often_as_promised_on_new_clips_like_the_calibration_ones(method, coverage):
    logits, labels = _scores(4000, seed=1)
    new_logits, new_labels = _scores(4000, seed=2)
    threshold = calibrate(_softmax(logits), labels, coverage, method)
    probabilities = _softmax(new_logits)
    figures = set_figures(probabilities, new_labels, set_mask(probabilities, threshold, method))
    assert figures["coverage"] >= coverage - 0.025
    # not by naming everything (adaptive sets without randomisation run over: the top emotion is always in)
    assert figures["coverage"] <= coverage + (0.12 if method == "aps" else 0.04)
    assert 1 <= figures["mean_set_size"] < 6


def test_a_sharper_model_gets_smaller_sets_and_more_single_answers():
    sizes, singles = [], []
    for sharpness in (1.0, 4.0):
        logits, labels = _scores(3000, seed=3, sharpness=sharpness)
        probabilities = _softmax(logits)
        mask = set_mask(probabilities, calibrate(probabilities, labels, 0.9, "lac"), "lac")
        figures = set_figures(probabilities, labels, mask)
        sizes.append(figures["mean_set_size"])
        singles.append(figures["single_rate"])
    assert sizes[1] < sizes[0] and singles[1] > singles[0]


@pytest.mark.parametrize("method", METHODS)
def test_a_set_always_holds_the_top_emotion_even_at_a_strict_threshold(method):
    probabilities = np.array([[0.4, 0.3, 0.1, 0.1, 0.05, 0.05], [0.2, 0.2, 0.2, 0.2, 0.1, 0.1]])
    threshold = [0.0] * 6 if method == "class_lac" else 0.0
    mask = set_mask(probabilities, threshold, method)
    assert mask[0, 0] and mask.sum(axis=1).min() >= 1
    assert mask[1, :4].all()  # tied at the top: all of them


def test_lac_names_every_emotion_above_its_cut_and_aps_the_top_ones_within_the_mass():
    probabilities = np.array([0.5, 0.25, 0.15, 0.05, 0.03, 0.02])
    assert set_mask(probabilities, 0.8, "lac").tolist() == [True, True, False, False, False, False]  # p >= 0.2
    assert set_mask(probabilities, 0.9, "aps").tolist() == [True, True, True, False, False, False]  # 0.5, .75, .9
    assert nonconformity(probabilities[None], np.array([1]), "aps")[0] == pytest.approx(0.75)
    per_emotion = [0.6, 0.9, 0.9, 0.9, 0.9, 0.9]  # angry needs p >= 0.4, the others p >= 0.1
    assert set_mask(probabilities, per_emotion, "class_lac").tolist() == [True, True, True, False, False, False]


def test_class_conditional_calibration_covers_a_hard_emotion_that_a_pooled_threshold_misses():
    logits, labels = _scores(6000, seed=4, sharpness=3.0)
    hard = labels == 2
    logits[hard, 2] -= 2.5  # fear is often missed
    probabilities = _softmax(logits)
    pooled = set_mask(probabilities, calibrate(probabilities, labels, 0.9, "lac"), "lac")
    per_class = set_mask(probabilities, calibrate(probabilities, labels, 0.9, "class_lac"), "class_lac")
    assert per_class[hard, 2].mean() > pooled[hard, 2].mean()
    assert per_class[hard, 2].mean() >= 0.87


def test_coverage_is_checked_and_the_message_names_the_value():
    assert check_coverage("0.8") == 0.8
    for bad in (0, 1, 1.5, "ninety", float("nan"), True):
        with pytest.raises(ValueError, match="coverage"):
            check_coverage(bad)


def _held_out_results(seed: int = 0) -> dict:
    """Four "corpora", one of them scored by an over-confident head (as TurEV-DB is)."""
    results = {}
    for index, name in enumerate(("a", "b", "c", "d")):
        logits, labels = _scores(600, seed=seed + index, sharpness=2.5)
        if name == "d":
            logits = logits * 2.0 + np.random.default_rng(9).normal(0, 2, logits.shape)
        results[name] = {"logits": logits, "labels": labels}
    return results


def test_calibrate_sets_writes_the_block_the_predictor_reads_and_measures_each_corpus_held_out():
    strict, adapted = _held_out_results(0), _held_out_results(10)
    block = json.loads(json.dumps(calibrate_sets(strict, adapted, temperature=1.0, temperature_adapted=0.8,
                                                 answered_threshold=0.5, answered_threshold_adapted=0.5)))
    assert block["method"] in METHODS and set(block["thresholds"]) == {"0.8", "0.9", "0.95"}
    assert set(block["held_out"]["strict"]) == set(METHODS)
    rows = block["held_out"]["strict"][block["method"]]
    assert set(rows) == {"a", "b", "c", "d"}
    for row in rows.values():
        assert {"coverage", "mean_set_size", "single_rate", "single_accuracy", "answered_rate",
                "answered_accuracy"} <= set(row)
    assert rows["d"]["coverage"] < min(rows[c]["coverage"] for c in "abc")  # the odd corpus is covered less
    meets = all(r["coverage"] >= TARGETS["min_coverage"] and r["mean_set_size"] <= TARGETS["max_mean_set_size"]
                for r in rows.values())
    assert ("meets the targets" in block["rule"]) == meets
    sets = EmotionSets.from_config({"emotion_sets": block})
    assert sets.calibrated and sets.coverages == COVERAGES
    assert sets.threshold(0.9, adapted=True) == block["adapted_thresholds"]["0.9"]
    probabilities = _softmax(strict["a"]["logits"][:1])[0]
    assert sets.names(probabilities, EMOTIONS, 0.95) [:1] == [EMOTIONS[int(np.argmax(probabilities))]]
    assert len(sets.names(probabilities, EMOTIONS, 0.95)) >= len(sets.names(probabilities, EMOTIONS, 0.8))


def test_held_out_figures_leave_the_corpus_out_of_its_own_calibration():
    results = _held_out_results(0)
    before = held_out_figures(results, "lac")["a"]
    # a corpus's own scores cannot move its figure: only the others' calibrate it
    changed = {**results, "a": {"logits": results["a"]["logits"] * 3, "labels": results["a"]["labels"]}}
    after_b = held_out_figures(changed, "lac")["b"]
    assert held_out_figures(results, "lac")["b"] != after_b
    assert before["clips"] == 600


def test_a_model_without_calibrated_sets_gets_the_plain_rule_and_says_so():
    sets = EmotionSets.from_config({})
    assert not sets.calibrated
    assert sets.names(np.array([0.95, 0.01, 0.01, 0.01, 0.01, 0.01]), EMOTIONS) == ["angry"]
    assert sets.names(np.array([0.5, 0.45, 0.02, 0.01, 0.01, 0.01]), EMOTIONS) == ["angry", "disgust"]
    with pytest.raises(ValueError, match="method"):
        EmotionSets(method="top3", thresholds={0.9: 0.5})
