"""The shipped embedding model: train_embedding_model on synthetic embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_core.data.embedding_cache import EmbeddingSet
from ser_core.inference.embedding_head import head_input
from ser_core.training.embedding_model import EmbeddingRecipe, train_embedding_model


def _synthetic_set(seed: int = 0) -> EmbeddingSet:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (6, 7, 16))
    rows, labels, corpus, speaker = [], [], [], []
    for c, name in enumerate(("a", "b", "c")):
        for label in range(6 if name != "c" else 4):
            rows.append(centres[label] + 3.0 * c + rng.normal(0, 0.4, (12, 7, 16)))
            labels += [label] * 12
            corpus += [name] * 12
            speaker += [f"{name}_{i % 3}" for i in range(12)]
    n = len(labels)
    text = lambda values: np.array(values, dtype=str)  # noqa: E731
    return EmbeddingSet(np.concatenate(rows).astype(np.float32), np.array(labels), text(corpus), text(speaker),
                        text([""] * n), text(["x"] * n), text([f"{i}.wav" for i in range(n)]))


@pytest.mark.parametrize("head", ["lr", "ridge", "ridge+lr", "keras"])
def test_shipped_head_and_config(head, tmp_path):
    import keras

    data = _synthetic_set()
    recipe = EmbeddingRecipe(layers=(2, 3), head=head, epochs=5, hidden=16)
    # The temperature's leave-one-corpus-out fits are exercised with the fast head only.
    model, config = train_embedding_model(data, recipe, temperature=None if head != "keras" else 1.0)
    json.dumps(config)  # JSON-able
    assert config["temperature"] > 0 and list(config["recipe"]["layers"]) == [2, 3]
    assert set(config["standardisation"]["per_corpus"]) == {"a", "b", "c"}
    path = tmp_path / "head.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    stats = config["standardisation"]["per_corpus"]["a"]
    features = (head_input(data.embeddings[data.corpus == "a"], (2, 3), config["recipe"]["statistics"]) - np.array(stats["mean"])) / np.array(stats["std"])
    logits = np.asarray(loaded.predict(features.astype(np.float32), verbose=0))
    assert logits.shape == (int((data.corpus == "a").sum()), 6)
    if head in ("lr", "ridge"):
        assert (logits.argmax(axis=1) == data.labels[data.corpus == "a"]).mean() > 0.9


def test_recipe_checks_its_values():
    with pytest.raises(ValueError, match="svm"):
        EmbeddingRecipe(head="svm")
    with pytest.raises(ValueError, match="alpha"):
        EmbeddingRecipe(head="ridge", alpha=0)
    with pytest.raises(ValueError, match="train_norm"):
        EmbeddingRecipe(train_norm="room")
    with pytest.raises(ValueError, match="two corpora"):
        train_embedding_model(_synthetic_set().subset(np.arange(72)))


def test_the_uncertain_cut_off_comes_from_the_leave_one_corpus_out_rule():
    from ser_core.evaluation import embedding_protocols as protocols
    from ser_core.evaluation.metrics import ANSWERED_ACCURACY_TARGET, THRESHOLD_GRID, choose_threshold, softmax
    from ser_core.training.embedding_model import fit_head_for

    data = _synthetic_set(seed=1)
    recipe = EmbeddingRecipe(layers=(2, 3))
    _, config = train_embedding_model(data, recipe)
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    results = protocols.leave_one_corpus_out(features, data.labels, data.corpus, fit_head_for(recipe, 0),
                                             normalisation="per_corpus", weighting=recipe.weighting)
    logits = np.concatenate([r["logits"] for r in results.values()])
    labels = np.concatenate([r["labels"] for r in results.values()])
    calibrated = softmax(np.where(np.isfinite(logits), logits, -1e4), config["temperature"])
    assert config["threshold"] == choose_threshold(calibrated, labels) and config["threshold"] in THRESHOLD_GRID
    table = config["uncertain"]["table"]
    assert [row["threshold"] for row in table] == list(THRESHOLD_GRID)
    chosen = next(row for row in table if row["threshold"] == config["threshold"])
    assert chosen["accuracy"] >= ANSWERED_ACCURACY_TARGET or config["threshold"] == max(THRESHOLD_GRID)
    assert all(row["accuracy"] < ANSWERED_ACCURACY_TARGET for row in table if row["threshold"] < config["threshold"])
    json.dumps(config)


def test_the_adapted_temperature_is_fitted_on_speakers_adapted_as_in_the_app():
    from ser_core.evaluation import embedding_protocols as protocols
    from ser_core.evaluation.metrics import fit_temperature
    from ser_core.training.embedding_model import fit_head_for

    data = _synthetic_set(seed=2)
    recipe = EmbeddingRecipe(layers=(2, 3))
    _, config = train_embedding_model(data, recipe)
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    strict, enrolled = protocols.leave_one_corpus_out_enrolled(features, data.labels, data.corpus, data.speaker,
                                                          fit_head_for(recipe, 0))
    logits = np.concatenate([r["logits"] for r in enrolled.values()])
    labels = np.concatenate([r["labels"] for r in enrolled.values()])
    assert config["temperature_adapted"] == pytest.approx(fit_temperature(logits, labels))
    assert config["temperature_adapted"] != pytest.approx(config["temperature"])
    assert [row["threshold"] for row in config["uncertain_adapted"]["table"]] == \
        [row["threshold"] for row in config["uncertain"]["table"]]
    gain = config["adaptation_gain"]  # the Adapt page's "5 clips raised the recall from ... to ..."
    assert set(gain["by_clips"]) == {"5", "10", "20"}
    assert gain["strict_uar"] == pytest.approx(np.mean([r["uar"] for r in strict.values()]), abs=1e-4)
    five = [r["k"] == 5 for r in enrolled.values()]
    from ser_core.evaluation.metrics import classification_report
    expected = np.mean([classification_report(r["labels"][m], r["logits"][m].argmax(axis=1))["uar"]
                        for r, m in zip(enrolled.values(), five)])
    assert gain["by_clips"]["5"] == pytest.approx(expected, abs=1e-4)
    _, calm = protocols.leave_one_corpus_out_enrolled(features, data.labels, data.corpus, data.speaker,
                                                      fit_head_for(recipe, 0), enrol="neutral")
    expected_calm = np.mean([classification_report(r["labels"][r["k"] == 5], r["logits"][r["k"] == 5].argmax(axis=1))
                             ["uar"] for r in calm.values()])
    assert set(gain["by_calm_clips"]) == {"5", "10", "20"}
    assert gain["by_calm_clips"]["5"] == pytest.approx(expected_calm, abs=1e-4)
    neutral = [r["per_class"]["neutral"]["recall"] for r in enrolled.values() if r["per_class"]["neutral"]["support"]]
    assert neutral and gain["neutral_recall"]["by_clips"] == pytest.approx(np.mean(neutral), abs=1e-4)
    # 4 neutral clips per speaker here, all enrolled by the calm protocol: none left to score, so no figure
    assert not any(r["per_class"]["neutral"]["support"] for r in calm.values())
    assert gain["neutral_recall"]["by_calm_clips"] is None


def test_a_ridge_model_records_how_it_does_self_trained_on_a_held_out_batch():
    from ser_core.evaluation import embedding_protocols as protocols
    from ser_core.evaluation.metrics import fit_temperature
    from ser_core.training.embedding_model import fit_head_for

    data = _synthetic_set(seed=3)
    recipe = EmbeddingRecipe(layers=(2, 3), head="ridge", alpha=30.0, train_norm="speaker")
    _, config = train_embedding_model(data, recipe)
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    runs = [protocols.leave_one_corpus_out(features, data.labels, data.corpus, fit_head_for(recipe, 0),
                                           normalisation=normalisation, speakers=data.speaker, self_train=True)
            for normalisation in ("adapted", "adapted_speaker")]
    logits = np.concatenate([r["logits"] for run in runs for r in run.values()])
    labels = np.concatenate([r["labels"] for run in runs for r in run.values()])
    assert config["temperature_self_trained"] == pytest.approx(fit_temperature(logits, labels))
    batch = config["self_training"]["mean_uar"]
    assert batch["adapted_self_trained"] == pytest.approx(np.mean([r["uar"] for r in runs[0].values()]), abs=1e-4)
    assert batch["adapted_speaker_self_trained"] == pytest.approx(np.mean([r["uar"] for r in runs[1].values()]),
                                                                  abs=1e-4)
    json.dumps(config)
    # a logistic head's scores are not least-squares ones: nothing to re-fit, nothing recorded
    _, lr_config = train_embedding_model(data, EmbeddingRecipe(layers=(2, 3)))
    assert "self_training" not in lr_config and "temperature_self_trained" not in lr_config


def test_choose_threshold_picks_the_lowest_cut_off_that_meets_the_target():
    from ser_core.evaluation.metrics import choose_threshold

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.45, 0.55]])
    assert choose_threshold(probabilities, np.array([0, 1, 0, 0])) == 0.6  # 0.25-0.55: 2 of 4 right; 0.6: 2 of 3
    assert choose_threshold(probabilities, np.array([0, 1, 1, 1])) == 0.25  # all right from the start
    assert choose_threshold(probabilities, np.array([1, 0, 0, 0])) == 0.6  # never: the highest cut-off


def test_speaker_standardised_training_is_what_the_shipped_head_fits():
    """train_norm="speaker": every training speaker standardised on their own clips, then the ridge head."""
    from sklearn.linear_model import RidgeClassifier

    from ser_core.evaluation import embedding_protocols as protocols
    from ser_core.training.embedding_model import SHIPPED_RECIPE

    data = _synthetic_set(seed=3)
    recipe = EmbeddingRecipe(layers=(2, 3), head="ridge", alpha=30.0, train_norm="speaker")
    model, config = train_embedding_model(data, recipe, temperature=1.0)
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    groups = recipe.training_groups(data.corpus, data.speaker)
    assert len(np.unique(groups)) == 9 and groups[0] == "a/a_0"
    expected = RidgeClassifier(alpha=30.0).fit(protocols.standardise_groups(features, groups), data.labels,
                                               sample_weight=protocols.sample_weights(data.labels, data.corpus))
    kernel, bias = model.get_layer("logits").get_weights()
    np.testing.assert_allclose(kernel[:, expected.classes_], expected.coef_.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias[expected.classes_], expected.intercept_, rtol=1e-4, atol=1e-5)
    assert config["recipe"]["train_norm"] == "speaker" and config["recipe"]["head"] == "ridge"
    # a new room is still standardised with the training corpora's average statistics
    assert set(config["standardisation"]["per_corpus"]) == {"a", "b", "c"}
    assert SHIPPED_RECIPE.head == "ridge+lr" and SHIPPED_RECIPE.train_norm == "speaker"


def test_ridge_and_logistic_members_fold_into_the_one_served_layer(tmp_path):
    """The served layer on rows standardised as the app does equals the weighted sum of the two members,
    each fitted and standardised its own way (the ridge per speaker, the logistic regression globally)."""
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    from ser_core.evaluation import embedding_protocols as protocols
    from ser_core.inference.linear_head import read_linear_head
    from ser_core.training.embedding_heads import RIDGE_SCALE

    data = _synthetic_set(seed=5)
    data = data.subset(data.corpus != "c")  # two corpora with all six emotions
    recipe = EmbeddingRecipe(layers=(2, 3), head="ridge+lr", alpha=30.0, C=0.5, lr_weight=0.3, train_norm="speaker")
    model, config = train_embedding_model(data, recipe, temperature=1.0)
    features = head_input(data.embeddings, recipe.layers, recipe.statistics).astype(np.float64)
    weights = protocols.sample_weights(data.labels, data.corpus)
    ridge = RidgeClassifier(alpha=30.0).fit(
        protocols.standardise_groups(features, recipe.training_groups(data.corpus, data.speaker)), data.labels,
        sample_weight=weights)
    pooled_mean, pooled_std = features.mean(axis=0), features.std(axis=0) + 1e-6
    logistic = LogisticRegression(C=0.5, max_iter=500).fit(((features - pooled_mean) / pooled_std).astype(np.float32),
                                                           data.labels, sample_weight=weights)
    default = config["standardisation"]["default"]
    served_rows = (features - np.array(default["mean"])) / np.array(default["std"])
    kernel, bias = model.get_layer("logits").get_weights()
    served = served_rows @ kernel + bias
    expected = (0.7 * ridge.decision_function(served_rows)
                + 0.3 * RIDGE_SCALE * logistic.decision_function((features - pooled_mean) / pooled_std))
    np.testing.assert_allclose(served, expected, rtol=1e-3, atol=1e-3)
    assert not np.allclose(served, ridge.decision_function(served_rows), atol=1e-2)  # the logistic member counts
    model.save(tmp_path / "model.keras")  # the plain Dense layer the predictor reads without Keras
    head = read_linear_head(tmp_path / "model.keras")
    assert head is not None and np.allclose(head.kernel, kernel)


def test_reusing_fits_trains_once_per_training_set():
    from ser_core.training.embedding_heads import reusing_fits

    calls = []

    def fit(features, labels, weights):
        calls.append(len(features))
        return lambda rows: np.zeros((len(rows), 6))

    reusing = reusing_fits(fit)
    rows, labels, weights = np.ones((4, 3), np.float32), np.array([0, 1, 2, 3]), np.ones(4)
    first = reusing(rows, labels, weights)
    assert reusing(rows.copy(), labels.copy(), weights.copy()) is first
    assert reusing(rows, labels, weights * 2) is not first  # other weights: another head
    assert reusing(rows[:3], labels[:3], weights[:3]) is not first
    assert calls == [4, 4, 3]
