"""Embedding protocols on synthetic features: who trains, who tests, what adapts."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.evaluation import embedding_protocols as protocols
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS
from ser_core.training.embedding_heads import logistic_head


def _corpora(offsets=(0.0, 5.0, -4.0), speakers=3, per_class=10, seed=0):
    """Three corpora whose features are the class signal plus a large corpus-specific shift."""
    rng = np.random.default_rng(seed)
    rows, labels, corpus, speaker = [], [], [], []
    centres = rng.normal(0, 1.5, (6, 8))
    for c, offset in enumerate(offsets):
        for s in range(speakers):
            for label in range(6):
                rows.append(centres[label] + offset + rng.normal(0, 0.5, (per_class, 8)))
                labels += [label] * per_class
                corpus += [f"c{c}"] * per_class
                speaker += [f"c{c}_{s}"] * per_class
    return np.concatenate(rows), np.array(labels), np.array(corpus), np.array(speaker)


def test_adaptation_removes_a_corpus_shift():
    features, labels, corpus, _ = _corpora()
    head = logistic_head(C=1.0)
    strict = protocols.leave_one_corpus_out(features, labels, corpus, head, normalisation="global")
    adapted = protocols.leave_one_corpus_out(features, labels, corpus, head, normalisation="adapted")
    few = protocols.leave_one_corpus_out(features, labels, corpus, head, normalisation="adapted", adapt_clips=30)
    assert set(adapted) == {"c0", "c1", "c2"}
    assert protocols.summarise(adapted)["mean_uar"] > 0.9
    assert protocols.summarise(few)["mean_uar"] > 0.8
    assert protocols.summarise(strict)["min_uar"] < protocols.summarise(adapted)["min_uar"]
    assert adapted["c1"]["logits"].shape == (int((corpus == "c1").sum()), 6)


def test_weights_balance_classes_and_corpora():
    labels = np.array([0, 0, 0, 1, 0, 1])
    corpus = np.array(["a", "a", "a", "a", "b", "b"])
    by_class = protocols.sample_weights(labels, corpus, "class")
    assert by_class[labels == 0].sum() == pytest.approx(by_class[labels == 1].sum())
    by_cell = protocols.sample_weights(labels, corpus, "corpus_class")
    assert by_cell[corpus == "a"].sum() == pytest.approx(by_cell[corpus == "b"].sum())
    assert by_cell.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="speaker"):
        protocols.sample_weights(labels, corpus, "speaker")


def test_cross_validation_tests_every_fold_speaker_once():
    features, labels, corpus, speaker = _corpora()
    folds = [["c0_0"], ["c0_1"], ["c0_2"]]
    result = protocols.speaker_cross_validation(features, labels, corpus, speaker, folds, logistic_head(C=1.0))
    assert sorted(result["rows"]) == sorted(np.flatnonzero(corpus == "c0"))
    assert len(result["folds"]) == 3 and result["accuracy"] > 0.9


def test_speaker_adaptation_does_not_score_enrolment_clips():
    features, labels, corpus, speaker = _corpora()
    result = protocols.speaker_adaptation(features, labels, corpus, speaker, logistic_head(C=1.0), k=5, enrol="neutral")
    per_corpus = int((corpus == "c0").sum())
    assert result["c0"]["n"] == per_corpus - 3 * 5
    assert result["c0"]["per_class"]["neutral"]["support"] == 3 * (10 - 5)


def test_enrolled_speakers_adapt_as_in_the_app():
    """Strict as per_corpus; each held-out speaker standardised with Adaptation's statistics of k own clips."""
    features, labels, corpus, speaker = _corpora()
    rng = np.random.default_rng(5)
    speaker_shift = {name: rng.normal(0, 3.0, 8) for name in np.unique(speaker)}  # every voice sounds different
    features = features + np.stack([speaker_shift[name] for name in speaker])
    head = logistic_head(C=1.0)
    strict, enrolled = protocols.leave_one_corpus_out_enrolled(features, labels, corpus, speaker, head,
                                                               k_values=(5, 10), draws=2)
    reference = protocols.leave_one_corpus_out(features, labels, corpus, head, normalisation="per_corpus")
    for name in ("c0", "c1", "c2"):
        np.testing.assert_allclose(strict[name]["logits"], reference[name]["logits"], rtol=1e-4, atol=1e-4)
        # per speaker (60 clips) and per k, two draws; the enrolled clips are not scored
        assert len(enrolled[name]["labels"]) == 3 * 2 * ((60 - 5) + (60 - 10))
        assert sorted(set(enrolled[name]["k"].tolist())) == [5, 10]
        # rows say which clip each score belongs to: its corpus is the held-out one, its label matches
        for result in (strict[name], enrolled[name]):
            assert (corpus[result["rows"]] == name).all()
            np.testing.assert_array_equal(labels[result["rows"]], result["labels"])
        assert sorted(strict[name]["rows"].tolist()) == np.flatnonzero(corpus == name).tolist()
    assert protocols.summarise(enrolled)["mean_uar"] > protocols.summarise(strict)["mean_uar"] + 0.1
    by_speaker, _ = protocols.leave_one_corpus_out_enrolled(features, labels, corpus, speaker, head, k_values=(5,),
                                                            draws=1, speaker_norm=True)
    reference = protocols.leave_one_corpus_out(features, labels, corpus, head, normalisation="per_corpus",
                                               speakers=speaker)
    np.testing.assert_allclose(by_speaker["c1"]["logits"], reference["c1"]["logits"], rtol=1e-4, atol=1e-4)


def test_neutral_enrolment_takes_the_speakers_neutral_clips_first():
    features, labels, corpus, speaker = _corpora()
    neutral = EMOTIONS.index("neutral")
    _, enrolled = protocols.leave_one_corpus_out_enrolled(features, labels, corpus, speaker, logistic_head(C=1.0),
                                                          k_values=(3,), draws=1, enrol="neutral")
    for name in ("c0", "c1", "c2"):
        scored = enrolled[name]["rows"]
        for voice in np.unique(speaker[corpus == name]):
            rows = np.flatnonzero(speaker == voice)
            left_out = np.setdiff1d(rows, scored)  # the enrolment clips are the ones not scored
            assert len(left_out) == 3 and (labels[left_out] == neutral).all()


def test_head_input_selects_layers_and_statistics():
    pooled = np.arange(2 * 7 * 4, dtype=np.float32).reshape(2, 7, 4)
    both = head_input(pooled, (1, 3))
    assert both.shape == (2, 8)
    np.testing.assert_array_equal(both[0], np.concatenate([pooled[0, 1], pooled[0, 3]]))
    np.testing.assert_array_equal(head_input(pooled[0], (2,), "mean"), pooled[0, 2, :2])
    with pytest.raises(ValueError, match="7"):
        head_input(pooled, (7,))


def test_speaker_standardisation_of_training_rows_and_ridge_head():
    from ser_core.training.embedding_heads import ridge_head

    features, labels, corpus, speaker = _corpora()
    # every speaker of c1 also has a shift of their own, which only per-speaker statistics remove
    features = features + np.where(corpus == "c1", np.char.count(speaker, "_1") * 3.0, 0.0)[:, None]
    results = protocols.leave_one_corpus_out(features, labels, corpus, ridge_head(alpha=1.0),
                                             normalisation="adapted", speakers=speaker)
    assert protocols.summarise(results)["mean_uar"] > 0.8
    assert results["c0"]["logits"].shape == (int((corpus == "c0").sum()), 6)
    # the held-out corpus is standardised the same way with and without the option
    test = corpus == "c0"
    with_speakers = protocols._normalise_loco(features, corpus, test, "per_corpus", None, speaker)
    without = protocols._normalise_loco(features, corpus, test, "per_corpus", None)
    np.testing.assert_allclose(with_speakers[test], without[test])
    for name in np.unique(speaker[~test]):
        rows = speaker == name
        np.testing.assert_allclose(with_speakers[rows].mean(axis=0), 0.0, atol=1e-4)
    with pytest.raises(ValueError, match="per_corpus or adapted"):
        protocols.leave_one_corpus_out(features, labels, corpus, ridge_head(), normalisation="global", speakers=speaker)


# ------------------------------------------------------------------------- issue 21's protocol


def test_held_out_corpora_and_speaker_folds():
    labels = np.array([0, 1, 2, 0, 1, 3, 4])
    corpus = np.array(["a", "a", "a", "b", "b", "c", "c"])
    assert protocols.held_out_corpora(labels, corpus) == ["a"]
    assert protocols.held_out_corpora(labels, corpus, minimum=2) == ["a", "b", "c"]
    folds = protocols.speaker_folds(["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s1"], k=3, seed=1)
    assert sorted(sum(folds, [])) == ["s1", "s2", "s3", "s4", "s5", "s6", "s7"]
    assert sorted(map(len, folds)) == [2, 2, 3] and folds == protocols.speaker_folds(["s7", "s1", "s2", "s3", "s4",
                                                                                       "s5", "s6"], k=3, seed=1)
    with pytest.raises(ValueError, match="3 folds need 3 speakers"):
        protocols.speaker_folds(["a", "b"], k=3)


@pytest.mark.parametrize("train_norm", ["global", "corpus", "speaker"])
def test_held_out_logits_strict_uses_nothing_of_the_test_rows(train_norm):
    features, labels, corpus, speaker = _corpora()
    test = corpus == "c1"
    head = logistic_head(C=1.0)
    scores = protocols.held_out_logits(features, labels, corpus, speaker, test, head, train_norm=train_norm)
    assert scores["strict"].shape == scores["adapted"].shape == (int(test.sum()), 6)
    moved = features.copy()
    moved[test] += 3.0  # the held-out room sounds different: strict changes, adapted does not
    again = protocols.held_out_logits(moved, labels, corpus, speaker, test, head, train_norm=train_norm)
    assert not np.allclose(scores["strict"], again["strict"])
    assert np.allclose(scores["adapted"], again["adapted"], atol=1e-4)
    uar = lambda logits: np.mean([np.mean(logits[labels[test] == k].argmax(1) == k) for k in range(6)])  # noqa: E731
    assert uar(scores["adapted"]) > 0.9 and uar(scores["adapted"]) >= uar(scores["strict"])


def test_the_protocol_report_holds_out_corpora_and_cross_validates_speakers():
    from ser_core.data.embedding_cache import EmbeddingSet
    from ser_core.training.embedding_model import EmbeddingRecipe
    from ser_core.training.whisper_run import loco_report

    features, labels, corpus, speaker = _corpora(offsets=(0.0, 5.0, -4.0, 2.0), speakers=5, per_class=4)
    corpus = np.array(["ravdess", "tess", "ased", "banglaser"])[np.char.lstrip(corpus, "c").astype(int)]
    keep = (corpus != "banglaser") | np.isin(labels, [1, 2])  # a two-emotion corpus is trained on, never held out
    features, labels, corpus, speaker = features[keep], labels[keep], corpus[keep], speaker[keep]
    sentence = np.where(np.arange(len(labels)) % 4 < 2, "01", "05")  # half the ASED takes say a common sentence
    path = np.array([f"{s}-{n}-01-01-0{sp[-1]}.opus" for s, n, sp in zip(np.array(["n1", "a5"])[labels % 2], sentence,
                                                                          speaker)])
    embeddings = np.repeat(features[:, None, :], 6, axis=1).astype(np.float32)  # 6 layers of the same features
    data = EmbeddingSet(embeddings, labels, corpus, speaker, np.array([""] * len(labels)), np.array([""] * len(labels)),
                        path)
    report = loco_report(data, EmbeddingRecipe(layers=(1,), head="lr", C=1.0, train_norm="global"), "m")
    assert list(report["corpora"]) == ["ased", "ravdess", "tess"] and report["trained_only"] == ["banglaser"]
    assert report["mean"]["adapted_uar"] == pytest.approx(
        np.mean([c["adapted"]["uar"] for c in report["corpora"].values()]), abs=1e-4)
    assert set(report["speaker_cv"]) == {"ased", "ravdess"}
    ased = report["speaker_cv"]["ased"]
    assert ased["folds"] == 5 and ased["speakers"] == 5 and ased["all"]["clips"] == int((corpus == "ased").sum())
    assert 0 < ased["common_sentences"]["clips"] < ased["all"]["clips"]
    assert ased["common_sentences"]["sentences"] == ["01", "02"]
    assert "common_sentences" not in report["speaker_cv"]["ravdess"]
    assert report["speaker_cv"]["ravdess"]["all"]["strict"]["uar"] > 0.8  # known rooms, new voices
